//! Structured logging. Credentials never reach a log: handlers skip them in their spans.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber: JSON lines when `json`, readable text otherwise.
/// `RUST_LOG` overrides the default filter.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = fmt().with_env_filter(filter).with_target(false);
    // A second init (tests) keeps the first subscriber; that is fine.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.compact().try_init()
    };
}
