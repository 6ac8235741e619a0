//! `GET /sso/<id>/start` and `GET /sso/<id>/callback`: the browser's side of single sign-on.

use super::oidc::{IssuerClient, SsoError};
use crate::domain::{SessionOrigin, TenantId, UserId};
use crate::server::metrics::Refusal;
use crate::server::service::onboarding::{admit_identity, NoAccess};
use crate::server::state::AppState;
use crate::server::store::SsoLogin;
use crate::server::store::{now_millis, StoreError};
use crate::server::{auth, security};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The cookie that ties a sign-in to the browser that started it.
pub const BROWSER_COOKIE: &str = "__Host-portico_sso";
/// How long a started sign-in waits for its callback.
pub const LOGIN_TTL: Duration = Duration::from_secs(10 * 60);

fn browser_cookie(headers: &HeaderMap) -> Option<String> {
    auth::cookie_value(headers, BROWSER_COOKIE)
}

fn set_browser_cookie(token: &str, max_age: u64) -> String {
    // Lax: the issuer sends the browser back with a top-level GET from its own site.
    format!("{BROWSER_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax")
}

/// The configured issuer `id`.
fn configured_issuer(state: &AppState, id: &str) -> Option<Arc<IssuerClient>> {
    state.sso.as_ref().and_then(|s| s.issuer(id)).cloned()
}

/// The page for an issuer id the configuration does not name.
fn unknown_issuer(state: &AppState, request_id: &str) -> Response {
    page(
        state,
        StatusCode::NOT_FOUND,
        "This sign-in method is not available on this portal.",
        request_id,
    )
}

/// Starts a sign-in at the issuer `id`.
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: axum::extract::Request,
) -> Response {
    let headers = req.headers();
    let request_id = security::request_id(headers).to_owned();
    let Some(issuer) = configured_issuer(&state, &id) else {
        return unknown_issuer(&state, &request_id);
    };
    // Each start writes a row before anyone has signed in: a client gets only so many.
    let addr = security::client_addr(req.extensions(), headers, &state.settings.trusted_proxies);
    let counted = match state.sso_starts.hit(addr, now_millis()).await {
        Ok(counted) => counted,
        Err(e) => {
            tracing::error!(%request_id, error = ?e, "could not count the sign-in");
            return security::internal_error_response(&request_id);
        }
    };
    if let Err(wait) = counted {
        state.metrics.refused(Refusal::SsoStarts);
        tracing::warn!(%request_id, ?addr, "single sign-on start refused: too many");
        let mut res = page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ins were started from your network. Wait a few minutes, then try again.",
            &request_id,
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    // Identity providers refuse to be framed: continue in the whole window.
    if headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok()) == Some("iframe") {
        let href = format!("/sso/{}/start", issuer.cfg.id);
        return page_with_link(
            &state,
            StatusCode::OK,
            "Signing in continues in the whole window.",
            (&href, &issuer.cfg.label, true),
            &request_id,
        );
    }
    let login_state = auth::new_token();
    let nonce = auth::new_token();
    let (url, verifier) = match issuer.authorization_url(&login_state, &nonce).await {
        Ok(u) => u,
        Err(e) => return refuse(&state, &e, &request_id),
    };
    // One cookie per browser, kept across sign-ins started in several tabs.
    let browser = browser_cookie(headers).unwrap_or_else(auth::new_token);
    let login = SsoLogin {
        state_hash: auth::token_hash(&login_state),
        browser_hash: auth::token_hash(&browser),
        issuer_id: issuer.cfg.id.clone(),
        nonce,
        pkce_verifier: verifier,
        expires_at: now_millis() + i64::try_from(LOGIN_TTL.as_millis()).unwrap_or(i64::MAX),
    };
    if let Err(e) = state.store.begin_sso_login(&login).await {
        tracing::error!(%request_id, error = ?e, "could not record the sign-in");
        return security::internal_error_response(&request_id);
    }
    tracing::info!(%request_id, issuer = %issuer.cfg.issuer, "single sign-on started");
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response();
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&set_browser_cookie(&browser, LOGIN_TTL.as_secs())) {
        h.insert(header::SET_COOKIE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[derive(Debug, Default, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
    /// RFC 9207: the issuer that answered, when it says so; another issuer's answer (a mix-up
    /// attack) is refused.
    #[serde(default)]
    iss: Option<String>,
}

/// Where the issuer sends the browser back. The URL holds a code, so it is never logged (the
/// request span records the path only) and the answer is a redirect or a page of our own.
pub async fn callback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let request_id = security::request_id(&headers).to_owned();
    let Some(issuer) = configured_issuer(&state, &id) else {
        return unknown_issuer(&state, &request_id);
    };
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let mut res = match finish(&state, &issuer, &headers, q).await {
        Ok(Finished::SignedIn {
            token,
            tenant,
            user,
        }) => {
            tracing::info!(%request_id, %tenant, %user, issuer = %issuer.cfg.issuer, "signed in by single sign-on");
            let mut res =
                (StatusCode::SEE_OTHER, [(header::LOCATION, "/instances")]).into_response();
            if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(&state, &token)) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            res
        }
        Ok(Finished::NoAccess(why)) => {
            tracing::info!(%request_id, issuer = %issuer.cfg.issuer, reason = ?why, "single sign-on: no tenant");
            page_with_link(
                &state,
                StatusCode::FORBIDDEN,
                why.message(),
                ("/sign-in", "Back to sign-in", false),
                &request_id,
            )
        }
        Err(Failure::Refused(e)) => {
            tracing::warn!(%request_id, issuer = %issuer.cfg.issuer, reason = %e, "single sign-on refused");
            refuse(&state, &e, &request_id)
        }
        Err(Failure::Store(e)) => {
            tracing::error!(%request_id, error = ?e, "single sign-on failed");
            security::internal_error_response(&request_id)
        }
    };
    // The browser cookie has done its job, whatever the outcome.
    if let Ok(v) = HeaderValue::from_str(&set_browser_cookie("", 0)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

enum Finished {
    SignedIn {
        token: String,
        tenant: TenantId,
        user: UserId,
    },
    NoAccess(NoAccess),
}

enum Failure {
    Refused(SsoError),
    Store(StoreError),
}

impl From<SsoError> for Failure {
    fn from(e: SsoError) -> Self {
        Failure::Refused(e)
    }
}
impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

async fn finish(
    state: &AppState,
    issuer: &IssuerClient,
    headers: &HeaderMap,
    q: CallbackQuery,
) -> Result<Finished, Failure> {
    let now = now_millis();
    let login_state = q.state.filter(|s| !s.is_empty() && s.len() <= 200);
    let Some(login_state) = login_state else {
        return Err(SsoError::WrongState.into());
    };
    // Taken, so this state is spent whatever happens next.
    let Some(login) = state
        .store
        .take_sso_login(&auth::token_hash(&login_state), now)
        .await?
    else {
        return Err(SsoError::WrongState.into());
    };
    if login.issuer_id != issuer.cfg.id {
        return Err(SsoError::WrongState.into());
    }
    let browser = browser_cookie(headers).map(|b| auth::token_hash(&b));
    if browser.as_deref() != Some(login.browser_hash.as_str()) {
        return Err(SsoError::WrongBrowser.into());
    }
    if q.iss.as_ref().is_some_and(|iss| *iss != issuer.cfg.issuer) {
        return Err(SsoError::WrongIssuer.into());
    }
    if let Some(error) = q.error {
        let error: String = error
            .chars()
            .filter(char::is_ascii_graphic)
            .take(64)
            .collect();
        return Err(SsoError::Denied(error).into());
    }
    let Some(code) = q.code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
        return Err(SsoError::Denied("no code".into()).into());
    };
    let id_token = issuer.exchange(&code, &login.pkce_verifier).await?;
    let now_secs = u64::try_from(now / 1000).unwrap_or_default();
    let identity = issuer.verify(&id_token, &login.nonce, now_secs).await?;
    // A session in this browser proves the account's password, for linking.
    let signed_in = auth::current_session(state, headers)
        .await?
        .map(|s| s.record.user_id);
    match admit_identity(state, &issuer.cfg, &identity, signed_in.as_ref()).await? {
        Ok((user, tenant)) => {
            let token = auth::start_session(state, &user, &tenant, SessionOrigin::Sso).await?;
            Ok(Finished::SignedIn {
                token,
                tenant,
                user,
            })
        }
        Err(why) => Ok(Finished::NoAccess(why)),
    }
}

fn refuse(state: &AppState, e: &SsoError, request_id: &str) -> Response {
    page(state, e.status(), e.message(), request_id)
}

/// A page of one message and a link back to sign-in.
fn page(state: &AppState, status: StatusCode, message: &str, request_id: &str) -> Response {
    page_with_link(
        state,
        status,
        message,
        ("/sign-in", "Back to sign-in", false),
        request_id,
    )
}

/// A page of one message and one link (`top` opens it in the whole window).
fn page_with_link(
    state: &AppState,
    status: StatusCode,
    message: &str,
    (href, text, top): (&str, &str, bool),
    request_id: &str,
) -> Response {
    let target = if top { " target=\"_top\"" } else { "" };
    let link = format!(
        "<p><a class=\"button primary\" href=\"{}\"{target}>{}</a></p>",
        security::escape_html(href),
        security::escape_html(text)
    );
    security::message_page(state, status, message, &link, request_id)
}
