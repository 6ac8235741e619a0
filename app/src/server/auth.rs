//! Passwords, session tokens and the session cookie.
//!
//! A session is a row in the database keyed by the SHA-256 of a random token; the browser holds
//! only the token, in an HttpOnly cookie. Every way of signing in (password now; OpenID Connect
//! and embed tokens later) ends in [`start_session`], so cookies and expiry live in one place.

use super::metrics::Refusal;
use super::password::PasswordError;
use super::state::AppState;
use super::store::{
    millis, now_millis, Job, NewSession, SessionRecord, StoreError, TenantScope, UserCredentials,
};
use crate::domain::{Email, SessionOrigin, TenantId, UserId};
use base64::Engine;
use http::HeaderMap;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const COOKIE_NAME: &str = "__Host-portico_session";

/// A verified, live session: the only source of a request's tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub record: SessionRecord,
}

impl Session {
    /// The tenant this session was verified for: the scope of everything done with it.
    pub fn scope(&self) -> TenantScope {
        TenantScope::provider(self.record.tenant_id.clone())
    }
}

pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a sign-in was refused. Deliberately coarse: the user learns nothing about which part was wrong.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("incorrect email or password")]
    BadCredentials,
    #[error("the account has no tenant")]
    NoTenant,
    /// This client has failed too often at this account, or at too many accounts.
    #[error("too many failed sign-ins; wait {0:?}")]
    RateLimited(std::time::Duration),
    /// The check could not run: every hasher stayed busy, or hashing failed.
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks `password` for the account `email` (`creds`: its credentials, if it exists) from
/// the client `addr`: the attempt is reserved with the sign-in limiter before any hashing, so
/// parallel guesses cannot outrun it, and a disabled or unknown account costs the same as a
/// wrong password. Every password check of a person (sign-in, joining with an existing
/// account) goes through here.
#[tracing::instrument(skip(state, password, creds), fields(email = %email))]
pub async fn check_password(
    state: &AppState,
    addr: Option<std::net::IpAddr>,
    email: &Email,
    password: String,
    creds: Option<&UserCredentials>,
) -> Result<(), SignInError> {
    let reservation = state
        .sign_in_limiter
        .reserve(addr, email.as_str(), now_millis())
        .await?
        .map_err(|wait| {
            state.metrics.refused(Refusal::Password);
            SignInError::RateLimited(wait)
        })?;
    if !reservation.delay.is_zero() {
        tokio::time::sleep(reservation.delay).await;
    }
    let hash = creds.and_then(|c| c.password_hash.clone());
    let ok = state.passwords.verify(password, hash).await?;
    if ok && creds.is_some_and(|c| !c.disabled) {
        state.sign_in_limiter.succeeded(reservation).await?;
        Ok(())
    } else {
        tracing::info!(?addr, "password refused");
        Err(SignInError::BadCredentials)
    }
}

/// Verifies email and password from the client `addr` and starts a session in the user's
/// first tenant.
#[tracing::instrument(skip(state, password), fields(email = %email))]
pub async fn sign_in_with_password(
    state: &AppState,
    addr: Option<std::net::IpAddr>,
    email: &Email,
    password: String,
) -> Result<(String, SessionRecord), SignInError> {
    let creds = state.store.user_credentials(email).await?;
    check_password(state, addr, email, password, creds.as_ref()).await?;
    let Some(creds) = creds else {
        return Err(SignInError::BadCredentials);
    };
    let Some((tenant, _)) = state
        .store
        .memberships(&creds.user_id)
        .await?
        .into_iter()
        .next()
    else {
        return Err(SignInError::NoTenant);
    };
    let token = start_session(state, &creds.user_id, &tenant, SessionOrigin::Password).await?;
    let record = state
        .store
        .find_session(&token_hash(&token), now_millis(), i64::MIN)
        .await?
        .ok_or(SignInError::NoTenant)?;
    Ok((token, record))
}

/// How long an embedded page's header token ([`SessionOrigin::EmbedHeader`], accepted only in
/// [`SESSION_HEADER`]) lasts; the provider's page signs the frame in again after.
pub const EMBED_HEADER_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// Creates a fresh session (a new id every time: no fixation) and returns its cookie token.
pub async fn start_session(
    state: &AppState,
    user: &UserId,
    tenant: &TenantId,
    origin: SessionOrigin,
) -> Result<String, StoreError> {
    start_session_lasting(state, user, tenant, origin, state.settings.session_absolute).await
}

/// [`start_session`], ending after `lifetime` (at most the configured absolute limit).
pub async fn start_session_lasting(
    state: &AppState,
    user: &UserId,
    tenant: &TenantId,
    origin: SessionOrigin,
    lifetime: std::time::Duration,
) -> Result<String, StoreError> {
    let lifetime = lifetime.min(state.settings.session_absolute);
    let token = new_token();
    let now = now_millis();
    state
        .store
        .create_session(&NewSession {
            session_id: token_hash(&token),
            user_id: user.clone(),
            tenant_id: tenant.clone(),
            origin,
            now,
            expires_at: now + millis(lifetime),
        })
        .await?;
    Ok(token)
}

/// The header that carries an embedded session's token when the browser keeps no cookie for
/// the portal at all (a third-party iframe where even partitioned cookies are refused). Only the
/// portal's own script can send it: another site's page would need a CORS preflight for a
/// custom header, and the portal grants none. See `crate::api::client`.
pub const SESSION_HEADER: &str = crate::api::client::HEADER;

/// The token in the request's session cookie, if any.
pub fn token_from_headers(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, COOKIE_NAME)
}

/// The token in the session header, if any (see [`SESSION_HEADER`]).
fn token_from_session_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map(str::to_owned)
}

/// The request's session token: the cookie's, else the session header's.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    token_from_headers(headers).or_else(|| token_from_session_header(headers))
}

/// The value of the request's cookie `name`, if present and not empty.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// Resolves the request's session, honouring idle and absolute timeouts.
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, StoreError> {
    let (token, by_header) = match token_from_headers(headers) {
        Some(t) => (t, false),
        None => match token_from_session_header(headers) {
            Some(t) => (t, true),
            None => return Ok(None),
        },
    };
    let hash = token_hash(&token);
    let now = now_millis();
    let idle_cutoff = now - millis(state.settings.session_idle);
    Ok(state
        .store
        .find_session(&hash, now, idle_cutoff)
        .await?
        // The header takes only the short-lived token made for it (the only token the page's
        // script ever holds), and a cookie never does.
        .filter(|record| by_header == (record.origin == SessionOrigin::EmbedHeader))
        .map(|record| Session {
            token_hash: hash,
            record,
        }))
}

/// Deletes sessions past their absolute or idle limit, used embed tokens past their expiry and
/// single sign-ons nobody came back from, every `every`, until `shutdown` is true. Lookups
/// already refuse all of them; this only keeps the tables from growing. With several replicas,
/// one at a time sweeps ([`Job::SweepSessions`]).
pub async fn sweep_sessions(
    state: AppState,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        let pass = state
            .store
            .exclusively(Job::SweepSessions, sweep_once(&state));
        if let Err(e) = pass.await {
            tracing::warn!(error = ?e, "session sweep could not start");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn sweep_once(state: &AppState) {
    let now = now_millis();
    match state
        .store
        .delete_stale_sessions(now, now - millis(state.settings.session_idle))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed expired sessions"),
        Err(e) => tracing::warn!(error = ?e, "session sweep failed"),
    }
    if let Err(e) = state.store.delete_expired_embed_tokens(now).await {
        tracing::warn!(error = ?e, "embed token sweep failed");
    }
    if let Err(e) = state.store.delete_expired_sso_logins(now).await {
        tracing::warn!(error = ?e, "single sign-on sweep failed");
    }
    if let Err(e) = state.store.delete_ended_attempt_windows(now).await {
        tracing::warn!(error = ?e, "sign-in limiter sweep failed");
    }
}

/// `SameSite` and `Partitioned` as the embedding mode needs. When the provider lets sites
/// frame the portal, the cookie must reach it inside their third-party iframe: `SameSite=None`
/// (cross-site requests are then refused by the Sec-Fetch-Site/Origin check instead) and
/// `Partitioned`, so the browser keeps it in a jar per embedding site.
fn cookie_scope(state: &AppState) -> &'static str {
    if state.provider.security.frame_ancestors.is_empty() {
        "SameSite=Lax"
    } else {
        "SameSite=None; Partitioned"
    }
}

/// `Set-Cookie` value carrying a new session token.
pub fn session_cookie(state: &AppState, token: &str) -> String {
    let max_age = state.settings.session_absolute.as_secs();
    let scope = cookie_scope(state);
    format!("{COOKIE_NAME}={token}; Path=/; Max-Age={max_age}; HttpOnly; Secure; {scope}")
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(state: &AppState) -> String {
    let scope = cookie_scope(state);
    format!("{COOKIE_NAME}=; Path=/; Max-Age=0; HttpOnly; Secure; {scope}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_token_is_read_from_among_other_cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::COOKIE,
            "theme=dark; __Host-portico_session=abc123; x=y"
                .parse()
                .unwrap(),
        );
        assert_eq!(token_from_headers(&h).as_deref(), Some("abc123"));
        h.insert(
            http::header::COOKIE,
            "__Host-portico_session=".parse().unwrap(),
        );
        assert_eq!(token_from_headers(&h), None);
    }

    #[test]
    fn tokens_are_unique_and_hashes_stable() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash("x"), token_hash("x"));
        assert_eq!(token_hash("x").len(), 64);
    }
}
