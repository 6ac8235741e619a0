//! Every integration test of the server, in one test binary.
//!
//! One binary instead of one per file: each test binary links the whole server and compiles its
//! own copy of the generic code the tests instantiate, which made `cargo test --release` spend
//! most of its time compiling and linking. Run one part with a filter, e.g.
//! `cargo test --release -p portico --test it -- security::`.

// First: its macros (`on_both_engines!`) are used by the modules below.
#[macro_use]
mod common;

mod authz_matrix;
mod cli;
mod control_plane;
mod ctl;
mod embed;
mod events;
mod http;
mod leptos_config;
mod limiter;
mod list_pages;
mod members;
mod operations;
mod provider_api;
mod replicas;
mod rest;
mod row_level_security;
mod security;
mod sso;
mod store_conformance;
mod store_pages;
mod webhooks;
