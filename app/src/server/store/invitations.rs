//! Invitations: links an admin sends to an email, accepted once. Every change is audited in
//! the same transaction.

use super::audit::insert_audit;
use super::memberships::{insert_membership, member_event};
use super::{parse_id, parse_role, Actor, Result, Sql, Store, StoreError, TenantScope};
use crate::domain::{Email, Role, TenantId, UserId};

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

#[derive(sqlx::FromRow)]
struct InvitationRow {
    invitation_id: String,
    email: String,
    role: String,
    invited_by: String,
    created_at: i64,
    expires_at: i64,
}

impl TryFrom<InvitationRow> for InvitationRecord {
    type Error = StoreError;
    fn try_from(r: InvitationRow) -> Result<InvitationRecord> {
        Ok(InvitationRecord {
            id: r.invitation_id,
            email: r.email,
            role: parse_role(r.role)?,
            invited_by: r.invited_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
    }
}

impl Store {
    /// Invitations neither accepted nor expired, newest first.
    pub async fn pending_invitations(
        &self,
        scope: &TenantScope,
        now: i64,
    ) -> Result<Vec<InvitationRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let rows: Vec<InvitationRow> = tx
            .conn()
            .fetch_all(
                Sql::new(
                    "SELECT invitation_id, email, role, invited_by, created_at, expires_at \
                     FROM invitation \
                     WHERE tenant_id = $1 AND accepted_at IS NULL AND expires_at > $2 \
                     ORDER BY created_at DESC, invitation_id",
                )
                .bind(tenant)
                .bind(now),
            )
            .await?;
        tx.commit().await?;
        rows.into_iter().map(InvitationRecord::try_from).collect()
    }

    /// Records an invitation (replacing a pending one for the same email) and audits it.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_invitation(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        invitation_id: &str,
        email: &Email,
        role: Role,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        let tenant = scope.tenant_id().as_str();
        let event = member_event(
            scope,
            actor,
            "member-invite",
            email.as_str(),
            Some(role),
            now,
        );
        let mut tx = self.begin_in(tenant).await?;
        tx.conn()
            .execute(
                Sql::new(
                    "DELETE FROM invitation \
                     WHERE tenant_id = $1 AND email = $2 AND accepted_at IS NULL",
                )
                .bind(tenant)
                .bind(email.as_str()),
            )
            .await?;
        tx.conn()
            .execute(
                Sql::new(
                    "INSERT INTO invitation (invitation_id, tenant_id, email, role, invited_by, \
                       created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(invitation_id)
                .bind(tenant)
                .bind(email.as_str())
                .bind(role.as_str())
                .bind(&actor.email)
                .bind(event.created_at)
                .bind(expires_at),
            )
            .await?;
        insert_audit(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Withdraws a pending invitation; false when there was none.
    pub async fn revoke_invitation(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        invitation_id: &str,
        now: i64,
    ) -> Result<bool> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let email: Option<String> = tx
            .conn()
            .scalar_optional(
                Sql::new(
                    "DELETE FROM invitation WHERE tenant_id = $1 AND invitation_id = $2 \
                     AND accepted_at IS NULL RETURNING email",
                )
                .bind(tenant)
                .bind(invitation_id),
            )
            .await?;
        let Some(email) = email else {
            tx.commit().await?;
            return Ok(false);
        };
        let event = member_event(scope, actor, "invitation-revoke", &email, None, now);
        insert_audit(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The tenant an invitation link belongs to: looked up before any tenant is known.
    pub async fn invitation_tenant(&self, invitation_id: &str) -> Result<Option<String>> {
        let sql = self.per_engine(
            "SELECT (SELECT tenant_id FROM invitation WHERE invitation_id = $1)",
            "SELECT portico_invitation_tenant($1)",
        );
        Ok(self
            .pooled()
            .await?
            .conn()
            .scalar(Sql::new(sql).bind(invitation_id))
            .await?)
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
        let mut tx = self.begin_in(tenant).await?;
        let row: Option<(String, String)> = tx
            .conn()
            .fetch_optional(
                Sql::new(
                    "UPDATE invitation SET accepted_at = $3 \
                     WHERE tenant_id = $1 AND invitation_id = $2 AND accepted_at IS NULL \
                       AND expires_at > $3 \
                     RETURNING email, role",
                )
                .bind(tenant)
                .bind(invitation_id)
                .bind(now),
            )
            .await?;
        let Some((email, role)) = row else {
            tx.commit().await?;
            return Ok(false);
        };
        let role = parse_role(role)?;
        let added = insert_membership(&mut tx.conn(), tenant, user, role, now).await?;
        let joined = Actor {
            user_id: user.clone(),
            email: email.clone(),
            role,
            request_id: None,
        };
        let event = member_event(scope, &joined, "member-join", &email, Some(role), now);
        insert_audit(&mut tx, &event).await?;
        if added {
            let hook = crate::domain::webhooks::WebhookEvent::MemberAdded;
            super::webhooks::member_changed(&mut tx, tenant, hook, user, &email, Some(role), now)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Pending invitations for an email in any tenant, oldest first: `(tenant, invitation id)`.
    pub async fn invitations_for_email(
        &self,
        email: &str,
        now: i64,
    ) -> Result<Vec<(TenantId, String)>> {
        let sql = self.per_engine(
            "SELECT tenant_id, invitation_id FROM invitation \
             WHERE email = $1 AND accepted_at IS NULL AND expires_at > $2 \
             ORDER BY created_at, invitation_id",
            "SELECT tenant_id, invitation_id FROM portico_invitations_for_email($1, $2) \
             ORDER BY created_at, invitation_id",
        );
        let rows: Vec<(String, String)> = self
            .pooled()
            .await?
            .conn()
            .fetch_all(Sql::new(sql).bind(email).bind(now))
            .await?;
        rows.into_iter()
            .map(|(tenant, invitation)| Ok((parse_id(tenant)?, invitation)))
            .collect()
    }
}
