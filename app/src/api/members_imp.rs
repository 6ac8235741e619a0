//! Server side of the member-management functions: admins only, the tenant from the session.

use super::imp::{actor, client_addr, internal, session, state};
use super::AppError;
use crate::domain::members::{may_manage_members, INVITATION_DAYS, MIN_PASSWORD_CHARS};
use crate::domain::{
    Email, EmailDelivery, InvitationInfo, Member, Members, PendingInvitation, Role, UserId,
};
use crate::server::auth::{self, Session, SignInError};
use crate::server::state::AppState;
use crate::server::store::MemberError;
use crate::server::store::{now_millis, StoreError, TenantScope};
use http::header::SET_COOKIE;
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

async fn admin_session() -> Result<(AppState, Session), AppError> {
    let (state, s) = session().await?;
    if !may_manage_members(s.role()) {
        return Err(AppError::Denied {
            reason: "Only admins manage members.".into(),
            field: None,
        });
    }
    Ok((state, s))
}

fn role(field: &str, r: &str) -> Result<Role, AppError> {
    Role::parse(r).ok_or_else(|| AppError::invalid(field, "must be admin, operator or viewer"))
}

fn user_id(id: &str) -> Result<UserId, AppError> {
    UserId::parse(id).map_err(|_| AppError::NotFound)
}

impl From<MemberError> for AppError {
    fn from(e: MemberError) -> Self {
        match e {
            MemberError::NotFound => AppError::NotFound,
            MemberError::LastAdmin => AppError::Denied {
                reason:
                    "The organisation needs at least one admin: make someone else an admin first."
                        .into(),
                field: None,
            },
            MemberError::Store(e) => e.into(),
        }
    }
}

pub async fn list_members() -> Result<Members, AppError> {
    let (state, s) = admin_session().await?;
    let scope = s.scope();
    let members = state.store.list_members(&scope).await?;
    let invitations = state
        .store
        .pending_invitations(&scope, now_millis())
        .await?;
    Ok(Members {
        members: members
            .into_iter()
            .map(|m| Member {
                is_you: m.user_id == s.record.user_id,
                user_id: m.user_id.to_string(),
                email: m.email,
                display_name: m.display_name,
                role: m.role,
            })
            .collect(),
        invitations: invitations
            .into_iter()
            .map(|i| PendingInvitation {
                id: i.id,
                email: i.email,
                role: i.role,
                invited_by: i.invited_by,
                expires_at: i.expires_at,
            })
            .collect(),
    })
}

pub async fn invite_member(
    email: String,
    role_name: String,
) -> Result<crate::domain::NewInvitation, AppError> {
    let (state, s) = admin_session().await?;
    let email = Email::parse(&email).map_err(|e| AppError::invalid("email", e))?;
    let role = role("role", &role_name)?;
    let scope = s.scope();
    if state
        .store
        .list_members(&scope)
        .await?
        .iter()
        .any(|m| m.email == email.as_str())
    {
        return Err(AppError::Denied {
            reason: format!("{email} is already a member."),
            field: Some("email".into()),
        });
    }
    let token = auth::new_token();
    let expires_at = now_millis() + INVITATION_DAYS * 24 * 3600 * 1000;
    state
        .store
        .create_invitation(
            &scope,
            &actor(&s),
            &auth::token_hash(&token),
            &email,
            role,
            expires_at,
        )
        .await?;
    tracing::info!(email = %email, role = role.as_str(), "member invited");
    let path = format!("/invite/{token}");
    let delivery = match (&state.mailer, &state.settings.public_origin) {
        (Some(mailer), Some(origin)) => {
            let link = format!("{}{path}", origin.trim_end_matches('/'));
            let mail = crate::server::mail::Invitation {
                to: &email,
                provider: &state.provider.provider.name,
                tenant: &s.record.tenant_name,
                invited_by: &s.record.display_name,
                role: role.as_str(),
                link: &link,
                days: INVITATION_DAYS,
            };
            match mailer.send_invitation(&mail).await {
                Ok(()) => {
                    tracing::info!(email = %email, "invitation emailed");
                    EmailDelivery::Sent
                }
                Err(why) => {
                    // The invitation stands; the admin copies the link instead.
                    tracing::warn!(email = %email, %why, "invitation email not sent");
                    EmailDelivery::Failed
                }
            }
        }
        _ => EmailDelivery::NotConfigured,
    };
    Ok(crate::domain::NewInvitation {
        path,
        email: delivery,
    })
}

pub async fn change_member_role(user: String, role_name: String) -> Result<(), AppError> {
    let (state, s) = admin_session().await?;
    let role = role("role", &role_name)?;
    state
        .store
        .change_member_role(&s.scope(), &actor(&s), &user_id(&user)?, role)
        .await?;
    Ok(())
}

pub async fn remove_member(user: String) -> Result<(), AppError> {
    let (state, s) = admin_session().await?;
    state
        .store
        .remove_member(&s.scope(), &actor(&s), &user_id(&user)?)
        .await?;
    Ok(())
}

pub async fn revoke_invitation(invitation_id: String) -> Result<(), AppError> {
    let (state, s) = admin_session().await?;
    if !state
        .store
        .revoke_invitation(&s.scope(), &actor(&s), &invitation_id)
        .await?
    {
        return Err(AppError::NotFound);
    }
    Ok(())
}

/// The tenant and pending invitation a link's token names; expired, used, revoked and made-up
/// links are all simply not found.
async fn pending(
    state: &AppState,
    token: &str,
) -> Result<(TenantScope, crate::server::store::InvitationRecord), AppError> {
    let id = auth::token_hash(token.trim());
    let Some(tenant) = state.store.invitation_tenant(&id).await? else {
        return Err(AppError::NotFound);
    };
    let tenant = crate::domain::TenantId::parse(&tenant).map_err(|e| internal(&e))?;
    // The tenant comes from the link's token, which only its admin was given.
    let scope = TenantScope::provider(tenant);
    let invitation = state
        .store
        .invitation(&scope, &id, now_millis())
        .await?
        .ok_or(AppError::NotFound)?;
    Ok((scope, invitation))
}

pub async fn invitation_info(token: String) -> Result<InvitationInfo, AppError> {
    let state = state()?;
    let (scope, invitation) = pending(&state, &token).await?;
    // Not whether the email has an account: whoever holds the link (the inviting admin too)
    // has not proved the email, and the answer would tell them about other tenants.
    Ok(InvitationInfo {
        tenant_name: state.store.tenant(&scope).await?.name,
        email: invitation.email,
        role: invitation.role,
    })
}

pub async fn accept_invitation(
    token: String,
    display_name: String,
    password: String,
) -> Result<(), AppError> {
    let state = state()?;
    let (scope, invitation) = pending(&state, &token).await?;
    let email = Email::parse(&invitation.email).map_err(|e| internal(&e))?;
    let user = match state.store.user_credentials(&email).await? {
        Some(creds) => {
            // An existing account joins only with its own password, counted like sign-ins.
            let addr = client_addr(&state)?;
            match auth::check_password(&state, addr, &email, password, Some(&creds)).await {
                Ok(()) => creds.user_id,
                Err(SignInError::BadCredentials) => {
                    return Err(AppError::Denied {
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
                return Err(AppError::invalid(
                    "display_name",
                    "must be between 1 and 100 characters",
                ));
            }
            if password.chars().count() < MIN_PASSWORD_CHARS {
                return Err(AppError::invalid(
                    "password",
                    format!("must be at least {MIN_PASSWORD_CHARS} characters"),
                ));
            }
            let hash = state.passwords.hash(password).await?;
            match state.store.create_invited_user(&email, name, &hash).await {
                Ok(user) => user,
                // Accepted at the same moment elsewhere: that acceptance used the link.
                Err(StoreError::Conflict(_)) => return Err(AppError::NotFound),
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !state
        .store
        .accept_invitation(&scope, &invitation.id, &user, now_millis())
        .await?
    {
        return Err(AppError::NotFound);
    }
    let session = auth::start_session(&state, &user, scope.tenant_id(), "password").await?;
    tracing::info!(email = %email, tenant = %scope.tenant_id(), "invitation accepted");
    if let Ok(v) = auth::session_cookie(&state, &session).parse() {
        expect_context::<ResponseOptions>().append_header(SET_COOKIE, v);
    }
    leptos_axum::redirect("/instances");
    Ok(())
}
