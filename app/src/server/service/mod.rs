//! The use cases, written once for every entry point.
//!
//! Each is a plain async function taking the state, the acting [`Principal`] and typed
//! arguments, and returning view types or a [`ServiceError`]. None touches the Leptos context
//! or HTTP: server functions, routes and (later) the REST API, the event stream and callbacks
//! are adapters that authenticate, call one function here and map its error to their own
//! wire format.

pub mod audit;
pub mod control_plane;
mod error;
pub mod instances;
pub mod members;
pub mod onboarding;
pub mod operations;
pub mod page;
mod principal;
pub mod provider;
pub mod session;
pub mod tokens;
pub mod webhooks;

pub use error::ServiceError;
pub use principal::Principal;

/// `2026-11-26 14:10 UTC`, or with `[second]` when `seconds` is set.
pub(crate) fn timestamp(millis: i64, seconds: bool) -> String {
    let minutes = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    let secs =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(millis / 1000)
        .ok()
        .and_then(|t| t.format(if seconds { &secs } else { &minutes }).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_read_in_utc_with_or_without_seconds() {
        let millis = 1_764_166_205_000; // 2025-11-26 14:10:05 UTC
        assert_eq!(super::timestamp(millis, false), "2025-11-26 14:10 UTC");
        assert_eq!(super::timestamp(millis, true), "2025-11-26 14:10:05 UTC");
    }
}
