//! What a server function needs from its request: the state, the verified principal, the
//! client address, and a way to set the status, headers and cookies of its answer.

use super::error::internal;
use super::AppError;
use crate::server::service::Principal;
use crate::server::state::AppState;
use crate::server::{auth, security};
use http::header::SET_COOKIE;
use http::request::Parts;
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

/// Converts a service's answer for the wire, setting the HTTP status (and `Retry-After`)
/// that match an error before it is encoded.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &result {
        if let (Some(opts), Ok(code)) = (
            use_context::<ResponseOptions>(),
            http::StatusCode::from_u16(e.status()),
        ) {
            opts.set_status(code);
            match e {
                AppError::RateLimited { retry_after_secs } => {
                    opts.insert_header(http::header::RETRY_AFTER, (*retry_after_secs).into());
                }
                AppError::Busy => {
                    opts.insert_header(http::header::RETRY_AFTER, 5.into());
                }
                _ => {}
            }
        }
    }
    result
}

pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| internal(&"AppState missing from context"))
}

fn parts() -> Result<Parts, AppError> {
    use_context::<Parts>().ok_or_else(|| internal(&"request parts missing"))
}

/// The id this request's log lines carry.
pub fn request_id() -> String {
    use_context::<Parts>()
        .map(|p| security::request_id(&p.headers).to_owned())
        .filter(|id| id != "-")
        .unwrap_or_else(crate::server::store::new_id)
}

/// The signed-in principal of this request, or `Unauthenticated`.
pub async fn principal() -> Result<(AppState, Principal), AppError> {
    let state = state()?;
    let parts = parts()?;
    match auth::current_session(&state, &parts.headers).await? {
        Some(s) => {
            let span = tracing::Span::current();
            span.record("tenant", s.record.tenant_id.as_str());
            span.record("user", s.record.user_id.as_str());
            Ok((state, Principal::member(&s, request_id())))
        }
        None => Err(AppError::Unauthenticated),
    }
}

/// The session token this request carries, if any.
pub fn session_token() -> Option<String> {
    use_context::<Parts>().and_then(|p| auth::session_token(&p.headers))
}

/// The client address of this request, as the sign-in limiter counts it.
pub fn client_addr(state: &AppState) -> Result<Option<std::net::IpAddr>, AppError> {
    let parts = parts()?;
    Ok(security::client_addr(
        &parts.extensions,
        &parts.headers,
        &state.settings.trusted_proxies,
    ))
}

/// Whether this call is a plain HTML form post (the page ran no script): such a request asks
/// for HTML, the portal's own client for JSON.
pub fn plain_form_post() -> bool {
    use_context::<Parts>().is_some_and(|p| {
        p.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    })
}

/// Answers with `303 See Other` to `location` (a path of the portal), replacing any status
/// and redirect set so far.
pub fn see_other(location: &str) {
    if let (Ok(v), Some(opts)) = (
        http::HeaderValue::from_str(location),
        use_context::<ResponseOptions>(),
    ) {
        opts.set_status(http::StatusCode::SEE_OTHER);
        opts.insert_header(http::header::LOCATION, v);
    }
}

/// Adds a `Set-Cookie` header to the answer.
pub fn set_cookie(value: &str) {
    if let (Ok(v), Some(opts)) = (value.parse(), use_context::<ResponseOptions>()) {
        opts.append_header(SET_COOKIE, v);
    }
}
