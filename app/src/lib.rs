//! Portico: the customer portal. Everything both sides share lives here; server-only code sits
//! behind the `ssr` feature.

pub mod api;
pub mod domain;
#[cfg(feature = "ssr")]
pub mod server;
pub mod ui;
