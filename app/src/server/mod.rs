//! Everything that runs only on the server.

pub mod assets;
pub mod auth;
pub mod callbacks;
pub mod config;
pub mod control_plane;
pub mod demo;
pub mod embed;
pub mod jwks;
pub mod limiter;
pub mod live;
pub mod mail;
pub mod metrics;
pub mod password;
pub mod reconcile;
pub mod rest;
pub mod routes;
pub mod security;
pub mod service;
pub mod sso;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod webhooks;
pub mod worker;

/// Resolves on ctrl-c or SIGTERM: when a server (the portal, the reference control plane)
/// should stop taking requests and finish the ones in hand.
pub async fn shutdown_requested() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
