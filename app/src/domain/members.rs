//! A tenant's people, as its admins manage them.

use super::Role;
use serde::{Deserialize, Serialize};

/// How long an invitation link stays valid.
pub const INVITATION_DAYS: i64 = 7;
/// The shortest password a new account may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// What the audit log calls membership changes.
pub const AUDIT_EVENTS: [&str; 5] = [
    "member-invite",
    "member-join",
    "member-role",
    "member-remove",
    "invitation-revoke",
];

/// A new invitation: the link's path, and whether it was also emailed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewInvitation {
    pub path: String,
    pub email: EmailDelivery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum EmailDelivery {
    /// No SMTP server is configured: the admin sends the link.
    NotConfigured,
    Sent,
    /// Sending failed (logged with the request id): the admin sends the link.
    Failed,
}

/// A single sign-on button on the sign-in page: `/sso/<id>/start`, labelled by the provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SsoButton {
    pub id: String,
    pub label: String,
}

/// Only admins invite, change roles and remove members.
pub fn may_manage_members(role: Role) -> bool {
    role == Role::Admin
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// This is the signed-in person.
    pub is_you: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingInvitation {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Members {
    pub members: Vec<Member>,
    pub invitations: Vec<PendingInvitation>,
}

/// What an invitation link offers, shown before it is accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvitationInfo {
    pub tenant_name: String,
    pub email: String,
    pub role: Role,
}
