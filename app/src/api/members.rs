//! Members and invitations: managing them (admins only) and accepting an invitation link.

use super::{AppError, JsonText};
use crate::domain::{InvitationInfo, Members, NewInvitation};
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{client_addr, principal, respond, set_cookie, state},
    crate::server::auth,
    crate::server::service::{members, onboarding},
};

/// The tenant's members and pending invitations. Admins only.
#[server(endpoint = "list_members", output = JsonText)]
pub async fn list_members() -> Result<Members, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(members::list(&state, &who).await?)
        }
        .await,
    )
}

/// Invites someone by email with a role; returns the invitation link's path, which the admin
/// copies to them, and whether it was also emailed (when SMTP is configured). Inviting the same
/// email again replaces the earlier link. Admins only.
#[server(endpoint = "invite_member", output = JsonText)]
pub async fn invite_member(email: String, role: String) -> Result<NewInvitation, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(members::invite(&state, &who, &email, &role).await?)
        }
        .await,
    )
}

/// Gives a member another role; the tenant's last admin cannot be demoted. Admins only.
#[server(endpoint = "change_member_role", output = JsonText)]
pub async fn change_member_role(user_id: String, role: String) -> Result<(), AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(members::change_role(&state, &who, &user_id, &role).await?)
        }
        .await,
    )
}

/// Removes a member and ends their sessions here; the last admin cannot be removed. Admins
/// only.
#[server(endpoint = "remove_member", output = JsonText)]
pub async fn remove_member(user_id: String) -> Result<(), AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(members::remove(&state, &who, &user_id).await?)
        }
        .await,
    )
}

/// Withdraws a pending invitation, so its link stops working. Admins only.
#[server(endpoint = "revoke_invitation", output = JsonText)]
pub async fn revoke_invitation(invitation_id: String) -> Result<(), AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(members::revoke_invitation(&state, &who, &invitation_id).await?)
        }
        .await,
    )
}

/// What an invitation link offers; anyone holding the link may ask.
#[server(endpoint = "invitation_info", output = JsonText)]
pub async fn get_invitation(token: String) -> Result<InvitationInfo, AppError> {
    respond(
        async {
            let state = state()?;
            Ok(onboarding::invitation_info(&state, &token).await?)
        }
        .await,
    )
}

/// Accepts an invitation: with the account's password when the email has one, or creating
/// the account with `display_name` and `password`. Signs in to the tenant.
#[server(endpoint = "accept_invitation", output = JsonText)]
pub async fn accept_invitation(
    token: String,
    display_name: String,
    password: String,
) -> Result<(), AppError> {
    respond(
        async {
            let state = state()?;
            let addr = client_addr(&state)?;
            let session =
                onboarding::accept_invitation(&state, addr, &token, &display_name, password)
                    .await?;
            set_cookie(&auth::session_cookie(&state, &session));
            leptos_axum::redirect("/instances");
            Ok(())
        }
        .await,
    )
}
