//! How people come to belong to a tenant: an invitation link, single sign-on, or an embed
//! token from the provider's site. Each finds or creates the account and joins it to the
//! tenant; the membership and its audit line are written together.

use super::ServiceError;
use crate::domain::members::MIN_PASSWORD_CHARS;
use crate::domain::{Email, InvitationInfo, SessionOrigin, TenantId};
use crate::server::auth::{self, SignInError};
use crate::server::state::AppState;
use crate::server::store::{
    now_millis, InvitationRecord, Store, StoreError, TenantScope, UserCredentials,
};
use std::net::IpAddr;

/// The account for `email`, created without a password (named `name`) when there is none. When
/// two first visits race, the one that loses finds the account the other created.
pub async fn find_or_create_user(
    store: &Store,
    email: &Email,
    name: &str,
) -> Result<Option<UserCredentials>, StoreError> {
    if let Some(c) = store.user_credentials(email).await? {
        return Ok(Some(c));
    }
    match store.create_user(email, name, None).await {
        Ok(user_id) => Ok(Some(UserCredentials {
            user_id,
            password_hash: None,
            disabled: false,
            password_from_invitation: false,
        })),
        Err(StoreError::Conflict(_)) => store.user_credentials(email).await,
        Err(e) => Err(e),
    }
}

/// The tenant and pending invitation a link's token names; expired, used, revoked and made-up
/// links are all simply not found.
async fn pending(
    state: &AppState,
    token: &str,
) -> Result<(TenantScope, InvitationRecord), ServiceError> {
    let id = auth::token_hash(token.trim());
    let Some(tenant) = state.store.invitation_tenant(&id).await? else {
        return Err(ServiceError::NotFound);
    };
    let tenant = TenantId::parse(&tenant).map_err(ServiceError::internal)?;
    // The tenant comes from the link's token, which only its admin was given.
    let scope = TenantScope::trusted(tenant);
    let invitation = state
        .store
        .invitation(&scope, &id, now_millis())
        .await?
        .ok_or(ServiceError::NotFound)?;
    Ok((scope, invitation))
}

/// What an invitation link offers; anyone holding the link may ask.
pub async fn invitation_info(
    state: &AppState,
    token: &str,
) -> Result<InvitationInfo, ServiceError> {
    let (scope, invitation) = pending(state, token).await?;
    // Not whether the email has an account: whoever holds the link (the inviting admin too)
    // has not proved the email, and the answer would tell them about other tenants.
    Ok(InvitationInfo {
        tenant_name: state.store.tenant(&scope).await?.name,
        email: invitation.email,
        role: invitation.role,
    })
}

/// Accepts an invitation: with the account's password when the email has one (checked like a
/// sign-in from `addr`), or creating the account with `display_name` and `password`. Returns
/// the new session's cookie token.
pub async fn accept_invitation(
    state: &AppState,
    addr: Option<IpAddr>,
    token: &str,
    display_name: &str,
    password: String,
) -> Result<String, ServiceError> {
    let (scope, invitation) = pending(state, token).await?;
    let email = Email::parse(&invitation.email).map_err(ServiceError::internal)?;
    let user = match state.store.user_credentials(&email).await? {
        Some(creds) => {
            match auth::check_password(state, addr, &email, password, Some(&creds)).await {
                Ok(()) => creds.user_id,
                Err(SignInError::BadCredentials) => {
                    return Err(ServiceError::Denied {
                        reason: "Incorrect password for this account.".into(),
                        field: Some("password".into()),
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => {
            let name = display_name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(ServiceError::invalid(
                    "display_name",
                    "must be between 1 and 100 characters",
                ));
            }
            if password.chars().count() < MIN_PASSWORD_CHARS {
                return Err(ServiceError::invalid(
                    "password",
                    format!("must be at least {MIN_PASSWORD_CHARS} characters"),
                ));
            }
            let hash = state.passwords.hash(password).await?;
            match state.store.create_invited_user(&email, name, &hash).await {
                Ok(user) => user,
                // Accepted at the same moment elsewhere: that acceptance used the link.
                Err(StoreError::Conflict(_)) => return Err(ServiceError::NotFound),
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !state
        .store
        .accept_invitation(&scope, &invitation.id, &user, now_millis())
        .await?
    {
        return Err(ServiceError::NotFound);
    }
    let session =
        auth::start_session(state, &user, scope.tenant_id(), SessionOrigin::Password).await?;
    tracing::info!(email = %email, tenant = %scope.tenant_id(), "invitation accepted");
    Ok(session)
}
