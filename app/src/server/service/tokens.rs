//! A tenant's API tokens: admins create, list and revoke them; scripts act with them.

use super::{Principal, ServiceError};
use crate::domain::api_token::{self, SecretKind, RANDOM_LEN};
use crate::domain::members::may_manage_members;
use crate::domain::Role;
use crate::server::auth;
use crate::server::state::AppState;
use crate::server::store::{new_id, now_millis, ApiTokenRecord, NewApiToken};
use rand::RngCore;

/// The longest expiry a token may be given, in days.
pub const MAX_EXPIRY_DAYS: u32 = 3650;

fn admin(who: &Principal) -> Result<(), ServiceError> {
    if may_manage_members(who.role()) {
        Ok(())
    } else {
        Err(ServiceError::denied("Only admins manage API tokens."))
    }
}

/// A new secret of `kind`: random base62 characters (by rejection, so every character is
/// equally likely) with the prefix and checksum of [`api_token`].
pub fn new_secret(kind: SecretKind) -> String {
    let mut random = [0u8; RANDOM_LEN];
    let mut rng = rand::rng();
    for slot in random.iter_mut() {
        *slot = loop {
            let b = (rng.next_u32() & 0xFF) as u8;
            if b < 248 {
                break b;
            }
        };
    }
    api_token::compose(kind, &random)
}

/// The tenant's tokens, revoked ones included, newest first.
pub async fn list(state: &AppState, who: &Principal) -> Result<Vec<ApiTokenRecord>, ServiceError> {
    admin(who)?;
    Ok(state.store.list_api_tokens(&who.scope()).await?)
}

/// Creates a token named `name` acting as `role` (no higher than the creator's), expiring
/// after `expires_in_days` if given. Returns the token and its secret, which is never shown
/// again.
pub async fn create(
    state: &AppState,
    who: &Principal,
    name: &str,
    role: &str,
    expires_in_days: Option<u32>,
) -> Result<(ApiTokenRecord, String), ServiceError> {
    admin(who)?;
    super::session::ensure_active(state, who).await?;
    let name = name.trim();
    api_token::check_name(name).map_err(|why| ServiceError::invalid("name", why))?;
    let role = Role::parse(role.trim())
        .ok_or_else(|| ServiceError::invalid("role", "must be admin, operator or viewer"))?;
    if !api_token::may_grant(who.role(), role) {
        return Err(ServiceError::Denied {
            reason: format!(
                "A token may not act with a higher role than yours ({}).",
                who.role()
            ),
            field: Some("role".into()),
        });
    }
    let now = now_millis();
    let expires_at = match expires_in_days {
        None => None,
        Some(d) if (1..=MAX_EXPIRY_DAYS).contains(&d) => {
            Some(now + i64::from(d) * 24 * 3600 * 1000)
        }
        Some(_) => {
            return Err(ServiceError::invalid(
                "expires_in_days",
                format!("must be 1 to {MAX_EXPIRY_DAYS} days"),
            ))
        }
    };
    let scope = who.scope();
    if state
        .store
        .list_api_tokens(&scope)
        .await?
        .iter()
        .any(|t| t.name == name && t.live(now))
    {
        return Err(ServiceError::Denied {
            reason: format!("A token named {name} already exists."),
            field: Some("name".into()),
        });
    }
    let secret = new_secret(SecretKind::TenantToken);
    let new = NewApiToken {
        id: new_id(),
        name: name.to_owned(),
        role,
        token_hash: auth::token_hash(&secret),
        expires_at,
    };
    let record = state
        .store
        .create_api_token(&scope, &who.actor(), &new, now)
        .await?;
    tracing::info!(token = %record.name, role = role.as_str(), "API token created");
    Ok((record, secret))
}

/// Revokes one of the tenant's tokens: refused from its next request on.
pub async fn revoke(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<ApiTokenRecord, ServiceError> {
    admin(who)?;
    let revoked = state
        .store
        .revoke_api_token(&who.scope(), &who.actor(), id, now_millis())
        .await?
        .ok_or(ServiceError::NotFound)?;
    tracing::info!(token = %revoked.name, "API token revoked");
    Ok(revoked)
}

/// A token as the portal's page shows it.
pub fn view(t: &ApiTokenRecord) -> crate::domain::api_token::ApiTokenView {
    crate::domain::api_token::ApiTokenView {
        id: t.id.clone(),
        name: t.name.clone(),
        role: t.role,
        created_by: t.created_by.clone(),
        created_at: super::timestamp(t.created_at, false),
        expires_at: t.expires_at.map(|e| super::timestamp(e, false)),
        last_used_at: t.last_used_at.map(|e| super::timestamp(e, false)),
        ended: !t.live(now_millis()),
    }
}

/// The principal a request's secret stands for: `None` when it is malformed, unknown,
/// revoked or expired (the caller answers all of them alike).
#[tracing::instrument(skip_all)]
pub async fn authenticate(
    state: &AppState,
    secret: &str,
    request_id: String,
) -> Result<Option<Principal>, ServiceError> {
    if !api_token::well_formed(SecretKind::TenantToken, secret) {
        return Ok(None);
    }
    let found = state
        .store
        .resolve_api_token(&auth::token_hash(secret), now_millis())
        .await?;
    Ok(found.map(|(token, tenant_name)| Principal::token(token, tenant_name, request_id)))
}
