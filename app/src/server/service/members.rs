//! Managing a tenant's members and invitations: admins only.

use super::{Principal, ServiceError};
use crate::domain::members::{may_manage_members, INVITATION_DAYS};
use crate::domain::{
    Email, EmailDelivery, Member, Members, NewInvitation, PendingInvitation, Role, UserId,
};
use crate::server::auth;
use crate::server::mail::Invitation;
use crate::server::state::AppState;
use crate::server::store::now_millis;

fn admin(who: &Principal) -> Result<(), ServiceError> {
    if may_manage_members(who.role()) {
        Ok(())
    } else {
        Err(ServiceError::denied("Only admins manage members."))
    }
}

fn role(field: &str, r: &str) -> Result<Role, ServiceError> {
    Role::parse(r).ok_or_else(|| ServiceError::invalid(field, "must be admin, operator or viewer"))
}

/// A malformed id cannot name a member: not found, as another tenant's.
fn user_id(id: &str) -> Result<UserId, ServiceError> {
    UserId::parse(id).map_err(|_| ServiceError::NotFound)
}

/// The tenant's members and pending invitations.
pub async fn list(state: &AppState, who: &Principal) -> Result<Members, ServiceError> {
    admin(who)?;
    let scope = who.scope();
    let members = state.store.list_members(&scope).await?;
    let invitations = state
        .store
        .pending_invitations(&scope, now_millis())
        .await?;
    Ok(Members {
        members: members
            .into_iter()
            .map(|m| Member {
                is_you: &m.user_id == who.user_id(),
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

/// Invites `email` as `role`: returns the link's path and whether it was also emailed.
/// Inviting the same email again replaces the earlier link.
pub async fn invite(
    state: &AppState,
    who: &Principal,
    email: &str,
    role_name: &str,
) -> Result<NewInvitation, ServiceError> {
    admin(who)?;
    super::session::ensure_active(state, who).await?;
    let email = Email::parse(email).map_err(|e| ServiceError::invalid("email", e))?;
    let role = role("role", role_name)?;
    let scope = who.scope();
    if state
        .store
        .list_members(&scope)
        .await?
        .iter()
        .any(|m| m.email == email.as_str())
    {
        return Err(ServiceError::Denied {
            reason: format!("{email} is already a member."),
            field: Some("email".into()),
        });
    }
    let token = auth::new_token();
    let now = now_millis();
    let expires_at = now + INVITATION_DAYS * 24 * 3600 * 1000;
    state
        .store
        .create_invitation(
            &scope,
            &who.actor(),
            &auth::token_hash(&token),
            &email,
            role,
            expires_at,
            now,
        )
        .await?;
    tracing::info!(email = %email, role = role.as_str(), "member invited");
    let path = format!("/invite/{token}");
    let email = deliver(state, who, &email, role, &path).await;
    Ok(NewInvitation { path, email })
}

/// Emails the invitation link when SMTP is configured. A failed email leaves the invitation
/// standing: the admin copies the link instead.
async fn deliver(
    state: &AppState,
    who: &Principal,
    email: &Email,
    role: Role,
    path: &str,
) -> EmailDelivery {
    let (Some(mailer), Some(origin)) = (&state.mailer, &state.settings.public_origin) else {
        return EmailDelivery::NotConfigured;
    };
    let link = format!("{}{path}", origin.trim_end_matches('/'));
    let invited_by = who.display_name();
    let mail = Invitation {
        to: email,
        provider: &state.provider.provider.name,
        tenant: who.tenant_name(),
        invited_by: &invited_by,
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
            tracing::warn!(email = %email, %why, "invitation email not sent");
            EmailDelivery::Failed
        }
    }
}

/// Gives a member another role; the tenant's last admin cannot be demoted.
pub async fn change_role(
    state: &AppState,
    who: &Principal,
    user: &str,
    role_name: &str,
) -> Result<(), ServiceError> {
    admin(who)?;
    super::session::ensure_active(state, who).await?;
    let role = role("role", role_name)?;
    state
        .store
        .change_member_role(
            &who.scope(),
            &who.actor(),
            &user_id(user)?,
            role,
            now_millis(),
        )
        .await?;
    Ok(())
}

/// Removes a member and ends their sessions; the last admin cannot be removed.
pub async fn remove(state: &AppState, who: &Principal, user: &str) -> Result<(), ServiceError> {
    admin(who)?;
    state
        .store
        .remove_member(&who.scope(), &who.actor(), &user_id(user)?, now_millis())
        .await?;
    Ok(())
}

/// Withdraws a pending invitation, so its link stops working.
pub async fn revoke_invitation(
    state: &AppState,
    who: &Principal,
    invitation_id: &str,
) -> Result<(), ServiceError> {
    admin(who)?;
    if state
        .store
        .revoke_invitation(&who.scope(), &who.actor(), invitation_id, now_millis())
        .await?
    {
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}
