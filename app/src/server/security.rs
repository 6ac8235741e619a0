//! Protections every request passes through: refusal of cross-site state changes, security
//! headers on every response, the per-page Content-Security-Policy nonce, panics contained to a
//! generic error.

use super::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, HOST, ORIGIN, REFERRER_POLICY,
    STRICT_TRANSPORT_SECURITY, VARY, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// Refuses state-changing requests from other sites and adds the security headers.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let dynamic = !is_static_asset(req.uri().path());
    // The control plane's callbacks come from a server, signed; no browser sends them.
    let refused = if super::callbacks::is_callback(req.uri().path()) {
        None
    } else {
        cross_site_refusal(&state, req.method(), req.headers())
    };
    let mut res = match refused {
        Some(why) => {
            tracing::warn!(why, "cross-site request refused");
            (
                StatusCode::FORBIDDEN,
                "Cross-site request refused: this action must come from the portal's own pages.",
            )
                .into_response()
        }
        None => next.run(req).await,
    };
    add_headers(&state, res.headers_mut());
    // Pages, server functions and exports may carry a tenant's data (and pages a one-time
    // CSP nonce): no cache, shared or private, keeps them.
    if dynamic && !res.headers().contains_key(CACHE_CONTROL) {
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Files of the site (the bundle, styles, images), named with an extension; every route that
/// answers with data has none.
fn is_static_asset(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

/// Whether `s` holds a control character other than tab and line breaks: nothing a person
/// types, and PostgreSQL refuses NUL in text outright.
pub fn has_control_character(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// The first field (query parameter, form field or JSON string) of `query` and `body` holding
/// a control character: its name, or `"-"` when the field has none.
fn field_with_control_character(query: &str, content_type: &str, body: &[u8]) -> Option<String> {
    let in_pairs = |bytes: &[u8]| {
        form_urlencoded::parse(bytes)
            .find(|(k, v)| has_control_character(k) || has_control_character(v))
            .map(|(k, _)| k.into_owned())
    };
    if let Some(field) = in_pairs(query.as_bytes()) {
        return Some(field);
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return in_pairs(body);
    }
    if content_type.starts_with("application/json") {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        return json_field_with_control_character(&value, "-");
    }
    None
}

fn json_field_with_control_character(v: &serde_json::Value, name: &str) -> Option<String> {
    match v {
        serde_json::Value::String(s) => has_control_character(s).then(|| name.to_owned()),
        serde_json::Value::Array(items) => items
            .iter()
            .find_map(|i| json_field_with_control_character(i, name)),
        serde_json::Value::Object(m) => m.iter().find_map(|(k, v)| {
            if has_control_character(k) {
                Some(name.to_owned())
            } else {
                json_field_with_control_character(v, k)
            }
        }),
        _ => None,
    }
}

/// Refuses, with 422 naming the field, any request whose query string or server-function
/// body holds a control character: ids, emails, keys, filters and parameter names never do.
pub async fn refuse_control_characters(req: Request, next: Next) -> Response {
    let query = req.uri().query().unwrap_or("").to_owned();
    let api = req.uri().path().starts_with("/api/");
    let (req, body) = if api {
        let (parts, body) = req.into_parts();
        // Inside the body size limit: reading fails (413) past it.
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        };
        let req = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
        (req, bytes)
    } else {
        (req, Default::default())
    };
    let content_type = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let Some(field) = field_with_control_character(&query, &content_type, &body) else {
        return next.run(req).await;
    };
    tracing::info!(field, "request refused: a control character");
    let error = crate::api::AppError::invalid(&field, "must not contain control characters");
    // Server functions answer their error type; anything else, its message.
    let (content_type, body) = if api {
        (
            "application/json",
            serde_json::to_string(&error).unwrap_or_default(),
        )
    } else {
        ("text/plain; charset=utf-8", error.to_string())
    };
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        [(axum::http::header::CONTENT_TYPE, content_type)],
        body,
    )
        .into_response()
}

/// A request's path as logs may show it: an invitation link's token is a credential, so it
/// is left out.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/invite/") {
        Some(token) if !token.is_empty() => {
            format!("/invite/{}", crate::domain::secrets::MASK).into()
        }
        _ => path.into(),
    }
}

/// The header that names a request in logs, the audit log and error messages.
pub const REQUEST_ID: &str = "x-request-id";

/// Gives every request an id of the server's own, replacing whatever the client sent: an id
/// is believed only from a trusted proxy, and only in a strict form (1–64 of `A-Z a-z 0-9 . _ -`),
/// so no client can write text of its choosing into logs and the audit log.
pub async fn assign_request_id(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let from_proxy = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|c| state.settings.trusted_proxies.contains(&c.0.ip()));
    let forwarded = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| from_proxy && is_request_id(id))
        .map(str::to_owned);
    let id = forwarded.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if let Ok(v) = HeaderValue::from_str(&id) {
        req.headers_mut().insert(REQUEST_ID, v);
    }
    next.run(req).await
}

fn is_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Why a request must be refused as cross-site, if it must. Reads never change state, so only
/// other methods are checked: `Sec-Fetch-Site` decides when the browser sent it; otherwise the
/// `Origin` must be the portal's own or one the provider configuration allows. A request with
/// neither header does not come from a browser page, so it cannot carry a victim's intent.
pub fn cross_site_refusal(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> Option<&'static str> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    match fetch_site {
        Some("same-origin") | Some("none") => return None,
        Some("cross-site") => return Some("Sec-Fetch-Site is cross-site"),
        _ => {}
    }
    match headers.get(ORIGIN).map(|o| o.to_str().unwrap_or("")) {
        None if fetch_site.is_some() => Some("same-site request without an Origin"),
        None => None,
        Some(origin) if origin_allowed(state, headers, origin) => None,
        Some(_) => Some("Origin is neither the portal's nor an allowed one"),
    }
}

fn origin_allowed(state: &AppState, headers: &HeaderMap, origin: &str) -> bool {
    if state
        .provider
        .security
        .allowed_origins
        .iter()
        .any(|o| o == origin)
    {
        return true;
    }
    match &state.settings.public_origin {
        Some(own) => own.trim_end_matches('/') == origin,
        // Without a configured origin, compare the authority with the Host header the
        // browser sent (a page cannot forge another site's Host).
        None => {
            let authority = origin.split_once("://").map_or("", |(_, a)| a);
            headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|host| !host.is_empty() && host == authority)
        }
    }
}

/// The Content-Security-Policy of pages; `nonce` admits the hydration scripts.
pub fn page_policy(state: &AppState, nonce: Option<&str>) -> String {
    let scripts = nonce.map_or(String::new(), |n| format!(" 'nonce-{n}'"));
    // A logo the provider hosts elsewhere is the one image from another origin.
    let logo = state
        .provider
        .provider
        .branding
        .logo_url
        .as_deref()
        .and_then(logo_origin)
        .map_or(String::new(), |o| format!(" {o}"));
    format!(
        "default-src 'self'; script-src 'self'{scripts} 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:{logo}; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors {}",
        frame_ancestors(state)
    )
}

/// `https://host[:port]` of an absolute http(s) URL; `None` for a path on the portal itself.
fn logo_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let origin = format!("{scheme}://{authority}");
    crate::domain::provider::is_origin(&origin).then_some(origin)
}

fn frame_ancestors(state: &AppState) -> String {
    let list = &state.provider.security.frame_ancestors;
    if list.is_empty() {
        "'none'".into()
    } else {
        list.join(" ")
    }
}

/// Sets the page policy with this response's nonce. Called while a page renders, after
/// leptos_axum has provided the nonce the hydration scripts carry.
pub fn provide_page_policy(state: &AppState) {
    use leptos::prelude::use_context;
    if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
        let nonce = leptos::nonce::use_nonce();
        if let Ok(v) = HeaderValue::from_str(&page_policy(state, nonce.as_deref())) {
            opts.insert_header(CONTENT_SECURITY_POLICY, v);
        }
    }
}

fn add_headers(state: &AppState, h: &mut HeaderMap) {
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(CONTENT_SECURITY_POLICY) {
        // Not a page (data, assets, errors): nothing in it may run or be framed.
        let policy = format!(
            "default-src 'none'; frame-ancestors {}; base-uri 'none'",
            frame_ancestors(state)
        );
        if let Ok(v) = HeaderValue::from_str(&policy) {
            h.insert(CONTENT_SECURITY_POLICY, v);
        }
    }
    if state.settings.behind_tls {
        h.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    // What a response depends on, so no cache hands one person's answer to another.
    h.append(
        VARY,
        HeaderValue::from_static("Origin, Sec-Fetch-Site, Cookie"),
    );
}

/// The id `SetRequestIdLayer` gave this request ("-" outside the router, e.g. in unit tests).
pub fn request_id(headers: &HeaderMap) -> &str {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}

/// Turns a panic in a handler into the same generic error as any other internal failure,
/// logged with the request id.
pub async fn contain_panics(req: Request, next: Next) -> Response {
    use futures::FutureExt;
    let request_id = request_id(req.headers()).to_owned();
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(res) => res,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(%request_id, panic = %what, "handler panicked");
            internal_error_response(&request_id)
        }
    }
}

/// A page of the portal's stylesheet, one message, optional `extra_html` (already escaped) and
/// the request id: what /embed and single sign-on answer when they cannot sign someone in.
/// The page policy applies, so a frame on a configured site may show it.
pub fn message_page(
    state: &AppState,
    status: StatusCode,
    message: &str,
    extra_html: &str,
    request_id: &str,
) -> Response {
    let title = escape_html(&format!("{} portal", state.provider.provider.name));
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/pkg/portico.css\"></head>\
         <body><main class=\"page narrow\"><h1>{title}</h1><p class=\"error-box\" role=\"alert\">{}</p>\
         {extra_html}<p class=\"hint\">Request id {}</p></main></body></html>",
        escape_html(message),
        escape_html(request_id),
    );
    let mut res = (status, axum::response::Html(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&page_policy(state, None)) {
        res.headers_mut().insert(CONTENT_SECURITY_POLICY, v);
    }
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    res
}

/// Text made safe for HTML content and quoted attributes.
pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The body every internal failure gets: nothing but a request id to quote.
pub fn internal_error_response(request_id: &str) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("Something went wrong on our side. If it persists, quote request id {request_id}."),
    )
        .into_response()
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest address
/// in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_addr(
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|a| !trusted.contains(a))
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        let mut ext = axum::http::Extensions::new();
        let proxy: SocketAddr = "10.0.0.9:5555".parse().unwrap();
        ext.insert(ConnectInfo(proxy));
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.7, 10.0.0.8".parse().unwrap());
        let trusted: Vec<IpAddr> = vec!["10.0.0.9".parse().unwrap(), "10.0.0.8".parse().unwrap()];
        assert_eq!(
            client_addr(&ext, &h, &trusted),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            client_addr(&ext, &h, &[]),
            Some("10.0.0.9".parse().unwrap()),
            "an untrusted peer's header is ignored"
        );
    }
}
