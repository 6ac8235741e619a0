//! Everything that runs only on the server.

pub mod auth;
pub mod callbacks;
pub mod config;
pub mod control_plane;
pub mod demo;
pub mod embed;
pub mod jwks;
pub mod limiter;
pub mod mail;
pub mod password;
pub mod reconcile;
pub mod routes;
pub mod security;
pub mod service;
pub mod sso;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod worker;
