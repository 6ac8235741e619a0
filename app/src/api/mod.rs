//! Server functions: thin. Session -> tenant scope -> store -> typed error.

pub mod client;
mod codec;
mod error;
pub use codec::JsonText;
pub use error::AppError;

use crate::domain::policy::{CreateRequest, Request};
use crate::domain::{
    AuditEntry, CreateOptions, InstanceDetail, InstanceSummary, InvitationInfo, Me, Members,
    NewInvitation, OperationStatus, SsoButton,
};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
pub(crate) mod imp;
#[cfg(feature = "ssr")]
mod members_imp;

/// Signs in with email and password; on success sets the session cookie and goes to the list.
#[server(endpoint = "sign_in", output = JsonText, client = client::SessionClient)]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    imp::respond(imp::sign_in(email, password).await)
}

/// The single sign-on buttons the sign-in page offers beside the password form.
#[server(endpoint = "sign_in_options", output = JsonText, client = client::SessionClient)]
pub async fn sign_in_options() -> Result<Vec<SsoButton>, AppError> {
    imp::respond(imp::sign_in_options().await)
}

/// Ends the session on the server and clears the cookie.
#[server(endpoint = "sign_out", output = JsonText, client = client::SessionClient)]
pub async fn sign_out() -> Result<(), AppError> {
    imp::respond(imp::sign_out().await)
}

/// The signed-in user and their tenant.
#[server(endpoint = "current_user", output = JsonText, client = client::SessionClient)]
pub async fn current_user() -> Result<Me, AppError> {
    imp::respond(imp::current_user().await)
}

/// The tenant's instances matching the filters (blank means any).
#[server(endpoint = "list_instances", output = JsonText, client = client::SessionClient)]
pub async fn list_instances(
    environment: String,
    status: String,
    q: String,
) -> Result<Vec<InstanceSummary>, AppError> {
    imp::respond(imp::list_instances(environment, status, q).await)
}

/// One of the tenant's instances; any other id is not found.
#[server(endpoint = "get_instance", output = JsonText, client = client::SessionClient)]
pub async fn get_instance(id: String) -> Result<InstanceDetail, AppError> {
    imp::respond(imp::get_instance(id).await)
}

/// Asks for a lifecycle operation on one of the tenant's instances. Returns at once with the
/// queued operation; the same `idempotency_key` with the same request returns the first answer.
#[server(endpoint = "request_operation", input = JsonText, output = JsonText, client = client::SessionClient)]
pub async fn request_operation(
    instance_id: String,
    request: Request,
    idempotency_key: String,
) -> Result<OperationStatus, AppError> {
    imp::respond(imp::request_operation(instance_id, request, idempotency_key).await)
}

/// What the create form may offer this person: the tenant plan's environments, regions,
/// limits and editable parameters, or why they cannot create an instance.
#[server(endpoint = "create_options", output = JsonText, client = client::SessionClient)]
pub async fn get_create_options() -> Result<CreateOptions, AppError> {
    imp::respond(imp::create_options().await)
}

/// Asks for a new instance on the tenant's plan.
#[server(endpoint = "create_instance", input = JsonText, output = JsonText, client = client::SessionClient)]
pub async fn create_instance(
    request: CreateRequest,
    idempotency_key: String,
) -> Result<OperationStatus, AppError> {
    imp::respond(imp::create_instance(request, idempotency_key).await)
}

/// Where an operation stands.
#[server(endpoint = "operation_status", output = JsonText, client = client::SessionClient)]
pub async fn get_operation_status(operation_id: String) -> Result<OperationStatus, AppError> {
    imp::respond(imp::operation_status(operation_id).await)
}

/// The tenant's audit log, newest first, filtered (blank means any). Admins and operators may
/// read it; viewers only when the provider configuration allows. It cannot be changed.
#[server(endpoint = "audit_log", output = JsonText, client = client::SessionClient)]
pub async fn audit_log(
    instance_id: String,
    operation: String,
    user: String,
    outcome: String,
) -> Result<Vec<AuditEntry>, AppError> {
    imp::respond(imp::audit_log(instance_id, operation, user, outcome).await)
}

/// The tenant's members and pending invitations. Admins only.
#[server(endpoint = "list_members", output = JsonText, client = client::SessionClient)]
pub async fn list_members() -> Result<Members, AppError> {
    imp::respond(members_imp::list_members().await)
}

/// Invites someone by email with a role; returns the invitation link's path, which the admin
/// copies to them, and whether it was also emailed (when SMTP is configured). Inviting the same
/// email again replaces the earlier link. Admins only.
#[server(endpoint = "invite_member", output = JsonText, client = client::SessionClient)]
pub async fn invite_member(email: String, role: String) -> Result<NewInvitation, AppError> {
    imp::respond(members_imp::invite_member(email, role).await)
}

/// Gives a member another role; the tenant's last admin cannot be demoted. Admins only.
#[server(endpoint = "change_member_role", output = JsonText, client = client::SessionClient)]
pub async fn change_member_role(user_id: String, role: String) -> Result<(), AppError> {
    imp::respond(members_imp::change_member_role(user_id, role).await)
}

/// Removes a member and ends their sessions here; the last admin cannot be removed. Admins
/// only.
#[server(endpoint = "remove_member", output = JsonText, client = client::SessionClient)]
pub async fn remove_member(user_id: String) -> Result<(), AppError> {
    imp::respond(members_imp::remove_member(user_id).await)
}

/// Withdraws a pending invitation, so its link stops working. Admins only.
#[server(endpoint = "revoke_invitation", output = JsonText, client = client::SessionClient)]
pub async fn revoke_invitation(invitation_id: String) -> Result<(), AppError> {
    imp::respond(members_imp::revoke_invitation(invitation_id).await)
}

/// What an invitation link offers; anyone holding the link may ask.
#[server(endpoint = "invitation_info", output = JsonText, client = client::SessionClient)]
pub async fn get_invitation(token: String) -> Result<InvitationInfo, AppError> {
    imp::respond(members_imp::invitation_info(token).await)
}

/// Accepts an invitation: with the account's password when the email has one, or creating
/// the account with `display_name` and `password`. Signs in to the tenant.
#[server(endpoint = "accept_invitation", output = JsonText, client = client::SessionClient)]
pub async fn accept_invitation(
    token: String,
    display_name: String,
    password: String,
) -> Result<(), AppError> {
    imp::respond(members_imp::accept_invitation(token, display_name, password).await)
}
