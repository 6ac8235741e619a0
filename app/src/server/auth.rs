//! Passwords, session tokens and the session cookie.
//!
//! A session is a row in the database keyed by the SHA-256 of a random token; the browser holds
//! only the token, in an HttpOnly cookie. Every way of signing in (password now; OpenID Connect
//! and embed tokens later) ends in [`start_session`], so cookies and expiry live in one place.

use super::state::AppState;
use super::store::{now_millis, NewSession, SessionRecord, StoreError, TenantScope};
use crate::domain::{Email, Role, TenantId, UserId};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
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
    pub fn scope(&self) -> TenantScope {
        TenantScope::trusted(self.record.tenant_id.clone())
    }
    pub fn role(&self) -> Role {
        self.record.role
    }
}

/// Hashes with argon2id off the async runtime: a hash takes tens of milliseconds of CPU.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// Checks a password; with no stored hash it still spends the time of one check, so response
/// time does not reveal which emails exist.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let decoy;
        let hash = match &stored {
            Some(h) => h.as_str(),
            None => {
                decoy = decoy_hash();
                decoy.as_str()
            }
        };
        let ok = PasswordHash::new(hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && stored.is_some()
    })
    .await
    .unwrap_or(false)
}

fn decoy_hash() -> String {
    let salt = SaltString::encode_b64(b"portico-decoy-salt").expect("static salt is valid");
    Argon2::default()
        .hash_password(b"decoy", &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Verifies email and password and starts a session in the user's first tenant.
#[tracing::instrument(skip(state, password), fields(email = %email))]
pub async fn sign_in_with_password(
    state: &AppState,
    email: &Email,
    password: String,
) -> Result<(String, SessionRecord), SignInError> {
    let creds = state.store.user_credentials(email).await?;
    let hash = creds.as_ref().and_then(|c| c.password_hash.clone());
    let ok = verify_password(password, hash).await;
    let Some(creds) = creds.filter(|c| ok && !c.disabled) else {
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
    let token = start_session(state, &creds.user_id, &tenant, "password").await?;
    let record = state
        .store
        .find_session(&token_hash(&token), now_millis(), i64::MIN)
        .await?
        .ok_or(SignInError::NoTenant)?;
    Ok((token, record))
}

/// Creates a fresh session (a new id every time: no fixation) and returns its cookie token.
pub async fn start_session(
    state: &AppState,
    user: &UserId,
    tenant: &TenantId,
    origin: &str,
) -> Result<String, StoreError> {
    let token = new_token();
    let now = now_millis();
    state
        .store
        .create_session(&NewSession {
            session_id: token_hash(&token),
            user_id: user.clone(),
            tenant_id: tenant.clone(),
            origin: origin.into(),
            now,
            expires_at: now + millis(state.settings.session_absolute),
        })
        .await?;
    Ok(token)
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The header that carries an embedded session's token when the browser keeps no cookie for
/// the portal at all (a third-party iframe where even partitioned cookies are refused). Only the
/// portal's own script can send it: another site's page would need a CORS preflight for a
/// custom header, and the portal grants none. See `crate::api::client`.
pub const SESSION_HEADER: &str = "x-portico-session";

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
        // Only an embedded session's token ever reaches the page's script.
        .filter(|record| !by_header || record.origin == "embed")
        .map(|record| Session {
            token_hash: hash,
            record,
        }))
}

/// Deletes sessions past their absolute or idle limit, used embed tokens past their expiry and
/// single sign-ons nobody came back from, every `every`, until `shutdown` is true. Lookups
/// already refuse all of them; this only keeps the tables from growing.
pub async fn sweep_sessions(
    state: AppState,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
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
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
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

    #[tokio::test]
    async fn password_hash_verifies_only_the_right_password() {
        let hash = hash_password("portico-demo".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("portico-demo".into(), Some(hash.clone())).await);
        assert!(!verify_password("portico-dem0".into(), Some(hash)).await);
        assert!(!verify_password("anything".into(), None).await);
    }

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
