//! Protections every request passes through: refusal of cross-site state changes, security
//! headers on every response, the per-page Content-Security-Policy nonce, panics contained to a
//! generic error, and the sign-in rate limiter.

use super::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    CONTENT_SECURITY_POLICY, HOST, ORIGIN, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY, VARY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refuses state-changing requests from other sites and adds the security headers.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let refused = cross_site_refusal(&state, req.method(), req.headers());
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
    res
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
    crate::domain::config::is_origin(&origin).then_some(origin)
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
        .get("x-request-id")
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

/// Failed sign-ins allowed per key and window before sign-in is refused until it ends.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub failures: u32,
    pub window: Duration,
}

/// Counts failed sign-ins per client address and per account. Memory stays bounded: at most
/// `max_keys` entries per kind; when full, expired entries go first, then the oldest.
pub struct SignInLimiter {
    per_addr: Limit,
    per_account: Limit,
    max_keys: usize,
    state: Mutex<(HashMap<IpAddr, Window>, HashMap<String, Window>)>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    failures: u32,
    ends: Instant,
}

impl Default for SignInLimiter {
    fn default() -> Self {
        SignInLimiter::new(
            Limit {
                failures: 20,
                window: Duration::from_secs(15 * 60),
            },
            Limit {
                failures: 5,
                window: Duration::from_secs(15 * 60),
            },
            10_000,
        )
    }
}

impl SignInLimiter {
    pub fn new(per_addr: Limit, per_account: Limit, max_keys: usize) -> Self {
        SignInLimiter {
            per_addr,
            per_account,
            max_keys: max_keys.max(1),
            state: Mutex::new((HashMap::new(), HashMap::new())),
        }
    }

    /// `Err(wait)` when this address or account has failed too often; checked before the
    /// password is even looked at.
    pub fn check(&self, addr: Option<IpAddr>, account: &str, now: Instant) -> Result<(), Duration> {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let blocked = |w: Option<&Window>, limit: Limit| {
            w.filter(|w| w.ends > now && w.failures >= limit.failures)
                .map(|w| w.ends - now)
        };
        let by_addr = addr.and_then(|a| blocked(guard.0.get(&a), self.per_addr));
        let by_account = blocked(guard.1.get(account), self.per_account);
        match by_addr.into_iter().chain(by_account).max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, addr: Option<IpAddr>, account: &str, now: Instant) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (by_addr, by_account) = &mut *guard;
        if let Some(a) = addr {
            bump(by_addr, a, self.per_addr, self.max_keys, now);
        }
        bump(
            by_account,
            account.to_owned(),
            self.per_account,
            self.max_keys,
            now,
        );
    }

    /// A successful sign-in clears the account's failures (not the address's).
    pub fn record_success(&self, account: &str) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        guard.1.remove(account);
    }

    /// Entries held, per address and per account.
    pub fn len(&self) -> (usize, usize) {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (guard.0.len(), guard.1.len())
    }
}

fn bump<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, Window>,
    key: K,
    limit: Limit,
    max_keys: usize,
    now: Instant,
) {
    if !map.contains_key(&key) && map.len() >= max_keys {
        map.retain(|_, w| w.ends > now);
        if map.len() >= max_keys {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, w)| w.ends)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
    }
    let w = map.entry(key).or_insert(Window {
        failures: 0,
        ends: now + limit.window,
    });
    if w.ends <= now {
        *w = Window {
            failures: 0,
            ends: now + limit.window,
        };
    }
    w.failures += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max_keys: usize) -> SignInLimiter {
        let l = Limit {
            failures: 3,
            window: Duration::from_secs(60),
        };
        SignInLimiter::new(
            Limit {
                failures: 5,
                window: Duration::from_secs(60),
            },
            l,
            max_keys,
        )
    }

    #[test]
    fn an_account_is_refused_after_its_failures_until_the_window_ends() {
        let l = limiter(100);
        let t0 = Instant::now();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(Some(ip), "a@x.test", t0).is_ok());
            l.record_failure(Some(ip), "a@x.test", t0);
        }
        let wait = l.check(Some(ip), "a@x.test", t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        assert!(
            l.check(Some(ip), "b@x.test", t0).is_ok(),
            "other accounts are not affected"
        );
        assert!(l
            .check(Some(ip), "a@x.test", t0 + Duration::from_secs(61))
            .is_ok());
    }

    #[test]
    fn an_address_is_refused_after_failures_across_accounts() {
        let l = limiter(100);
        let t0 = Instant::now();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        for i in 0..5 {
            l.record_failure(Some(ip), &format!("user{i}@x.test"), t0);
        }
        assert!(l.check(Some(ip), "fresh@x.test", t0).is_err());
        let other: IpAddr = "10.0.0.3".parse().unwrap();
        assert!(l.check(Some(other), "fresh@x.test", t0).is_ok());
    }

    #[test]
    fn success_clears_the_accounts_failures() {
        let l = limiter(100);
        let t0 = Instant::now();
        for _ in 0..2 {
            l.record_failure(None, "a@x.test", t0);
        }
        l.record_success("a@x.test");
        l.record_failure(None, "a@x.test", t0);
        assert!(l.check(None, "a@x.test", t0).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let l = limiter(50);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            l.record_failure(Some(ip), &format!("u{i}@x.test"), t0);
        }
        let (addrs, accounts) = l.len();
        assert!(addrs <= 50 && accounts <= 50, "{addrs} {accounts}");
    }

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
