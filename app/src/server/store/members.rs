//! A tenant's members and invitations, managed by its admins. Every change is audited in the
//! same transaction, and a tenant always keeps at least one admin.

use super::ops::{Actor, AuditEvent};
use super::{
    new_id, now_millis, parse_id, parse_role, BeginIn, Pool, Result, Store, StoreError, TenantScope,
};
use crate::domain::AuditOutcome;
use crate::domain::{Email, Role, TenantId, UserId};
use sqlx::Row;

#[derive(Debug, Clone, PartialEq)]
pub struct MemberRecord {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub since: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InvitationRecord {
    /// SHA-256 of the link's token, hex.
    pub id: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("not found")]
    NotFound,
    #[error("a tenant needs at least one admin")]
    LastAdmin,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MemberError {
    fn from(e: sqlx::Error) -> Self {
        MemberError::Store(StoreError::Database(e))
    }
}

/// An audit event about membership, by `actor`; `what` is e.g. "member-invite".
fn member_event(
    scope: &TenantScope,
    actor: &Actor,
    what: &str,
    email: &str,
    role: Option<Role>,
) -> AuditEvent {
    let parameters = match role {
        Some(r) => serde_json::json!({ "email": email, "role": r.as_str() }),
        None => serde_json::json!({ "email": email }),
    };
    AuditEvent {
        id: new_id(),
        tenant_id: scope.tenant_id().to_string(),
        user_id: Some(actor.user_id.to_string()),
        actor_email: Some(actor.email.clone()),
        role: Some(actor.role.as_str().into()),
        instance_id: None,
        instance_name: None,
        operation_id: None,
        operation: Some(what.into()),
        parameters: parameters.to_string(),
        outcome: AuditOutcome::Succeeded.into(),
        reason: None,
        request_id: actor.request_id.clone(),
        created_at: now_millis(),
    }
}

/// The audit event of someone joining `tenant` without an admin's action (just in time from
/// an embed token, or by a single sign-on rule), as themselves.
pub fn join_event(
    tenant: &TenantId,
    user: &UserId,
    email: &str,
    role: Role,
    reason: &str,
) -> AuditEvent {
    let joined = Actor {
        user_id: user.clone(),
        email: email.into(),
        role,
        request_id: None,
    };
    let scope = TenantScope::trusted(tenant.clone());
    AuditEvent {
        reason: Some(reason.into()),
        ..member_event(&scope, &joined, "member-join", email, Some(role))
    }
}

/// The member's role and whether they are the tenant's only admin, read inside `tx`.
macro_rules! role_and_sole_admin {
    ($tx:expr, $tenant:expr, $user:expr) => {{
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM membership WHERE tenant_id = $1 AND user_id = $2")
                .bind($tenant)
                .bind($user)
                .fetch_optional(&mut *$tx)
                .await?;
        match role.as_deref().and_then(Role::parse) {
            None => None,
            Some(Role::Admin) => {
                let admins: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM membership WHERE tenant_id = $1 AND role = 'admin'",
                )
                .bind($tenant)
                .fetch_one(&mut *$tx)
                .await?;
                Some((Role::Admin, admins <= 1))
            }
            Some(r) => Some((r, false)),
        }
    }};
}

impl Store {
    /// The tenant's members, by email.
    pub async fn list_members(&self, scope: &TenantScope) -> Result<Vec<MemberRecord>> {
        let tenant = scope.tenant_id().as_str();
        scoped!(self, tenant, |tx| {
            let rows = sqlx::query(
                "SELECT m.user_id, u.email, u.display_name, m.role, m.created_at \
                 FROM membership m JOIN app_user u ON u.user_id = m.user_id \
                 WHERE m.tenant_id = $1 ORDER BY u.email",
            )
            .bind(tenant)
            .fetch_all(&mut *tx)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(MemberRecord {
                    user_id: parse_id(r.try_get("user_id")?)?,
                    email: r.try_get("email")?,
                    display_name: r.try_get("display_name")?,
                    role: parse_role(r.try_get("role")?)?,
                    since: r.try_get("created_at")?,
                });
            }
            out
        })
    }

    /// Invitations neither accepted nor expired, newest first.
    pub async fn pending_invitations(
        &self,
        scope: &TenantScope,
        now: i64,
    ) -> Result<Vec<InvitationRecord>> {
        let tenant = scope.tenant_id().as_str();
        scoped!(self, tenant, |tx| {
            let rows = sqlx::query(
                "SELECT invitation_id, email, role, invited_by, created_at, expires_at \
                 FROM invitation WHERE tenant_id = $1 AND accepted_at IS NULL AND expires_at > $2 \
                 ORDER BY created_at DESC, invitation_id",
            )
            .bind(tenant)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(InvitationRecord {
                    id: r.try_get("invitation_id")?,
                    email: r.try_get("email")?,
                    role: parse_role(r.try_get("role")?)?,
                    invited_by: r.try_get("invited_by")?,
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                });
            }
            out
        })
    }

    /// Records an invitation (replacing a pending one for the same email) and audits it.
    pub async fn create_invitation(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        invitation_id: &str,
        email: &Email,
        role: Role,
        expires_at: i64,
    ) -> Result<()> {
        let tenant = scope.tenant_id().as_str();
        let event = member_event(scope, actor, "member-invite", email.as_str(), Some(role));
        scoped!(self, tenant, |tx| {
            sqlx::query(
                "DELETE FROM invitation WHERE tenant_id = $1 AND email = $2 AND accepted_at IS NULL",
            )
            .bind(tenant)
            .bind(email.as_str())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO invitation (invitation_id, tenant_id, email, role, invited_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(invitation_id)
            .bind(tenant)
            .bind(email.as_str())
            .bind(role.as_str())
            .bind(&actor.email)
            .bind(event.created_at)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, &event)?
        })?;
        Ok(())
    }

    /// Withdraws a pending invitation; false when there was none.
    pub async fn revoke_invitation(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        invitation_id: &str,
    ) -> Result<bool> {
        let tenant = scope.tenant_id().as_str();
        scoped!(self, tenant, |tx| {
            let email: Option<String> = sqlx::query_scalar(
                "DELETE FROM invitation WHERE tenant_id = $1 AND invitation_id = $2 \
                 AND accepted_at IS NULL RETURNING email",
            )
            .bind(tenant)
            .bind(invitation_id)
            .fetch_optional(&mut *tx)
            .await?;
            match email {
                Some(email) => {
                    let event = member_event(scope, actor, "invitation-revoke", &email, None);
                    insert_audit!(&mut *tx, &event)?;
                    true
                }
                None => false,
            }
        })
    }

    /// Gives a member another role. The tenant's last admin cannot be demoted.
    pub async fn change_member_role(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        user: &UserId,
        role: Role,
    ) -> std::result::Result<(), MemberError> {
        let tenant = scope.tenant_id().as_str();
        on_pool!(self, |p| {
            async {
            let mut tx = p.begin_in(tenant).await?;
            // Serialise membership changes per tenant, so two admins demoting each other
            // cannot both succeed.
            sqlx::query("UPDATE tenant SET updated_at = updated_at WHERE tenant_id = $1")
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
            let Some((current, sole_admin)) = role_and_sole_admin!(tx, tenant, user.as_str())
            else {
                return Err(MemberError::NotFound);
            };
            if current == role {
                return Ok(());
            }
            if sole_admin {
                return Err(MemberError::LastAdmin);
            }
            sqlx::query(
                "UPDATE membership SET role = $3, updated_at = $4 WHERE tenant_id = $1 AND user_id = $2",
            )
            .bind(tenant)
            .bind(user.as_str())
            .bind(role.as_str())
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
            let email: String =
                sqlx::query_scalar("SELECT email FROM app_user WHERE user_id = $1")
                    .bind(user.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            insert_audit!(
                &mut *tx,
                &member_event(scope, actor, "member-role", &email, Some(role))
            )?;
            tx.commit().await?;
            Ok(())
        }
        .await
        })
    }

    /// Removes a member and ends their sessions in this tenant. The last admin cannot leave.
    pub async fn remove_member(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        user: &UserId,
    ) -> std::result::Result<(), MemberError> {
        let tenant = scope.tenant_id().as_str();
        on_pool!(self, |p| async {
            let mut tx = p.begin_in(tenant).await?;
            sqlx::query("UPDATE tenant SET updated_at = updated_at WHERE tenant_id = $1")
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
            let Some((_, sole_admin)) = role_and_sole_admin!(tx, tenant, user.as_str()) else {
                return Err(MemberError::NotFound);
            };
            if sole_admin {
                return Err(MemberError::LastAdmin);
            }
            let email: String = sqlx::query_scalar("SELECT email FROM app_user WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM membership WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant)
                .bind(user.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM session WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant)
                .bind(user.as_str())
                .execute(&mut *tx)
                .await?;
            insert_audit!(
                &mut *tx,
                &member_event(scope, actor, "member-remove", &email, None)
            )?;
            tx.commit().await?;
            Ok(())
        }
        .await)
    }

    /// The tenant an invitation link belongs to: looked up before any tenant is known.
    pub async fn invitation_tenant(&self, invitation_id: &str) -> Result<Option<String>> {
        let sql = self.per_engine(
            "SELECT (SELECT tenant_id FROM invitation WHERE invitation_id = $1)",
            "SELECT portico_invitation_tenant($1)",
        );
        Ok(on_pool!(self, |p| sqlx::query_scalar(sql)
            .bind(invitation_id)
            .fetch_one(p)
            .await)?)
    }

    /// A pending invitation by id within its tenant.
    pub async fn invitation(
        &self,
        scope: &TenantScope,
        invitation_id: &str,
        now: i64,
    ) -> Result<Option<InvitationRecord>> {
        Ok(self
            .pending_invitations(scope, now)
            .await?
            .into_iter()
            .find(|i| i.id == invitation_id))
    }

    /// Accepts a pending invitation for `user` (whose email it names): makes them a member with
    /// the invitation's role, unless they already are one (their role then stays), marks it
    /// accepted and audits it. False when the invitation is no longer pending.
    pub async fn accept_invitation(
        &self,
        scope: &TenantScope,
        invitation_id: &str,
        user: &UserId,
        now: i64,
    ) -> Result<bool> {
        let tenant = scope.tenant_id().as_str();
        scoped!(self, tenant, |tx| {
            let row: Option<(String, String)> = sqlx::query_as(
                "UPDATE invitation SET accepted_at = $3 \
                 WHERE tenant_id = $1 AND invitation_id = $2 AND accepted_at IS NULL AND expires_at > $3 \
                 RETURNING email, role",
            )
            .bind(tenant)
            .bind(invitation_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                None => false,
                Some((email, role)) => {
                    let role = parse_role(role)?;
                    sqlx::query(
                        "INSERT INTO membership (tenant_id, user_id, role, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, user_id) DO NOTHING",
                    )
                    .bind(tenant)
                    .bind(user.as_str())
                    .bind(role.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let joined = Actor {
                        user_id: user.clone(),
                        email: email.clone(),
                        role,
                        request_id: None,
                    };
                    let event = member_event(scope, &joined, "member-join", &email, Some(role));
                    insert_audit!(&mut *tx, &event)?;
                    true
                }
            }
        })
    }
}
