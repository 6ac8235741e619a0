//! A tenant's members and their roles. Admins' changes are audited in the same transaction,
//! and a tenant always keeps at least one admin.

use super::audit::insert_audit;
use super::events::{emit, NewEvent};
use super::webhooks;
use super::{
    parse_id, parse_role, Actor, AuditEvent, Conn, Result, Sql, Store, StoreError, TenantScope,
};
use crate::domain::webhooks::WebhookEvent;
use crate::domain::{EventKind, Role, TenantId, UserId};

#[derive(Debug, Clone, PartialEq)]
pub struct MemberRecord {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub since: i64,
}

#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: String,
    email: String,
    display_name: String,
    role: String,
    created_at: i64,
}

impl TryFrom<MemberRow> for MemberRecord {
    type Error = StoreError;
    fn try_from(r: MemberRow) -> Result<MemberRecord> {
        Ok(MemberRecord {
            user_id: parse_id(r.user_id)?,
            email: r.email,
            display_name: r.display_name,
            role: parse_role(r.role)?,
            since: r.created_at,
        })
    }
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

/// An audit event about membership, by `actor` at `now`; `what` is e.g. "member-invite".
pub(super) fn member_event(
    scope: &TenantScope,
    actor: &Actor,
    what: &str,
    email: &str,
    role: Option<Role>,
    now: i64,
) -> AuditEvent {
    let parameters = match role {
        Some(r) => serde_json::json!({ "email": email, "role": r.as_str() }),
        None => serde_json::json!({ "email": email }),
    };
    AuditEvent::change(scope, actor, what, parameters.to_string(), now)
}

/// The audit event of someone joining `tenant` without an admin's action (just in time from
/// an embed token, or by a single sign-on rule), as themselves, at `now`.
fn join_event(
    tenant: &TenantId,
    user: &UserId,
    email: &str,
    role: Role,
    reason: &str,
    now: i64,
) -> AuditEvent {
    let joined = Actor {
        user_id: user.clone(),
        email: email.into(),
        role,
        request_id: None,
    };
    let scope = TenantScope::provider(tenant.clone());
    AuditEvent {
        reason: Some(reason.into()),
        ..member_event(&scope, &joined, "member-join", email, Some(role), now)
    }
}

/// Makes `user` a member with `role` unless they already are one (whose role then stays);
/// true when they joined.
pub(super) async fn insert_membership(
    conn: &mut Conn<'_>,
    tenant: &str,
    user: &UserId,
    role: Role,
    now: i64,
) -> sqlx::Result<bool> {
    let n = conn
        .execute(
            Sql::new(
                "INSERT INTO membership (tenant_id, user_id, role, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, user_id) DO NOTHING",
            )
            .bind(tenant)
            .bind(user.as_str())
            .bind(role.as_str())
            .bind(now),
        )
        .await?;
    Ok(n == 1)
}

/// The member's role and whether they are the tenant's only admin, read inside the caller's
/// transaction.
async fn role_and_sole_admin(
    conn: &mut Conn<'_>,
    tenant: &str,
    user: &UserId,
) -> sqlx::Result<Option<(Role, bool)>> {
    let role: Option<String> = conn
        .scalar_optional(
            Sql::new("SELECT role FROM membership WHERE tenant_id = $1 AND user_id = $2")
                .bind(tenant)
                .bind(user.as_str()),
        )
        .await?;
    Ok(match role.as_deref().and_then(Role::parse) {
        None => None,
        Some(Role::Admin) => {
            let admins: i64 = conn
                .scalar(
                    Sql::new(
                        "SELECT COUNT(*) FROM membership WHERE tenant_id = $1 AND role = 'admin'",
                    )
                    .bind(tenant),
                )
                .await?;
            Some((Role::Admin, admins <= 1))
        }
        Some(r) => Some((r, false)),
    })
}

/// Serialises membership changes per tenant, so two admins demoting each other cannot both
/// succeed.
async fn lock_tenant(conn: &mut Conn<'_>, tenant: &str) -> sqlx::Result<()> {
    conn.execute(
        Sql::new("UPDATE tenant SET updated_at = updated_at WHERE tenant_id = $1").bind(tenant),
    )
    .await?;
    Ok(())
}

async fn email_of(conn: &mut Conn<'_>, user: &UserId) -> sqlx::Result<String> {
    conn.scalar(Sql::new("SELECT email FROM app_user WHERE user_id = $1").bind(user.as_str()))
        .await
}

impl Store {
    /// Gives `user` `role` in the scope's tenant at `now`, whether or not they were a member.
    pub async fn set_membership(
        &self,
        scope: &TenantScope,
        user: &UserId,
        role: Role,
        now: i64,
    ) -> Result<()> {
        self.upsert_membership(scope.tenant_id(), user, role, now)
            .await
    }

    /// The same, for the provider's own tools (the CLI's `create-admin`), which name the
    /// tenant themselves.
    pub async fn set_membership_as_provider(
        &self,
        tenant: &TenantId,
        user: &UserId,
        role: Role,
        now: i64,
    ) -> Result<()> {
        self.upsert_membership(tenant, user, role, now).await
    }

    async fn upsert_membership(
        &self,
        tenant: &TenantId,
        user: &UserId,
        role: Role,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_in(tenant.as_str()).await?;
        // Written before anything is read (see `lock_tenant`).
        lock_tenant(&mut tx.conn(), tenant.as_str()).await?;
        let before: Option<String> = tx
            .conn()
            .scalar_optional(
                Sql::new("SELECT role FROM membership WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant.as_str())
                    .bind(user.as_str()),
            )
            .await?;
        tx.conn()
            .execute(
                Sql::new(
                    "INSERT INTO membership (tenant_id, user_id, role, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4) \
                     ON CONFLICT (tenant_id, user_id) \
                       DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at",
                )
                .bind(tenant.as_str())
                .bind(user.as_str())
                .bind(role.as_str())
                .bind(now),
            )
            .await?;
        let changed = NewEvent::member(EventKind::MemberChanged, user.as_str());
        emit(&mut tx, tenant.as_str(), changed, now).await?;
        let hook = match before.as_deref() {
            None => Some(WebhookEvent::MemberAdded),
            Some(r) if r != role.as_str() => Some(WebhookEvent::MemberRoleChanged),
            Some(_) => None,
        };
        if let Some(hook) = hook {
            let email = email_of(&mut tx.conn(), user).await?;
            webhooks::member_changed(
                &mut tx,
                tenant.as_str(),
                hook,
                user,
                &email,
                Some(role),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Makes `user` (whose email is `email`) a member with `role` unless they already are one,
    /// and audits the join ([`join_event`], with `reason`) in the same transaction. True when
    /// they joined; an existing member keeps their role and nothing is audited.
    pub async fn join_tenant(
        &self,
        scope: &TenantScope,
        user: &UserId,
        email: &str,
        role: Role,
        reason: &str,
        now: i64,
    ) -> Result<bool> {
        let tenant = scope.tenant_id();
        let mut tx = self.begin_in(tenant.as_str()).await?;
        let joined = insert_membership(&mut tx.conn(), tenant.as_str(), user, role, now).await?;
        if joined {
            let event = join_event(tenant, user, email, role, reason, now);
            insert_audit(&mut tx, &event).await?;
            let added = WebhookEvent::MemberAdded;
            webhooks::member_changed(
                &mut tx,
                tenant.as_str(),
                added,
                user,
                email,
                Some(role),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(joined)
    }

    /// The tenants a user belongs to, oldest membership first.
    pub async fn memberships(&self, user: &UserId) -> Result<Vec<(TenantId, Role)>> {
        let sql = self.per_engine(
            "SELECT tenant_id, role FROM membership WHERE user_id = $1 \
             ORDER BY created_at, tenant_id",
            "SELECT tenant_id, role FROM portico_user_memberships($1) \
             ORDER BY created_at, tenant_id",
        );
        let rows: Vec<(String, String)> = self
            .pooled()
            .await?
            .conn()
            .fetch_all(Sql::new(sql).bind(user.as_str()))
            .await?;
        rows.into_iter()
            .map(|(tenant, role)| Ok((parse_id(tenant)?, parse_role(role)?)))
            .collect()
    }

    /// The member's current role in the tenant, if still a member.
    pub async fn role_of(&self, scope: &TenantScope, user: &UserId) -> Result<Option<Role>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let role: Option<String> = tx
            .conn()
            .scalar_optional(
                Sql::new("SELECT role FROM membership WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant)
                    .bind(user.as_str()),
            )
            .await?;
        tx.commit().await?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    /// One member of the tenant (role and email), if still a member.
    pub async fn member(&self, scope: &TenantScope, user: &UserId) -> Result<Option<MemberRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let row: Option<MemberRow> = tx
            .conn()
            .fetch_optional(
                Sql::new(
                    "SELECT m.user_id, u.email, u.display_name, m.role, m.created_at \
                     FROM membership m JOIN app_user u ON u.user_id = m.user_id \
                     WHERE m.tenant_id = $1 AND m.user_id = $2",
                )
                .bind(tenant)
                .bind(user.as_str()),
            )
            .await?;
        tx.commit().await?;
        row.map(MemberRecord::try_from).transpose()
    }

    /// The tenant's members, by email.
    pub async fn list_members(&self, scope: &TenantScope) -> Result<Vec<MemberRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let rows: Vec<MemberRow> = tx
            .conn()
            .fetch_all(
                Sql::new(
                    "SELECT m.user_id, u.email, u.display_name, m.role, m.created_at \
                     FROM membership m JOIN app_user u ON u.user_id = m.user_id \
                     WHERE m.tenant_id = $1 ORDER BY u.email",
                )
                .bind(tenant),
            )
            .await?;
        tx.commit().await?;
        rows.into_iter().map(MemberRecord::try_from).collect()
    }

    /// Gives a member another role at `now`. The tenant's last admin cannot be demoted.
    pub async fn change_member_role(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        user: &UserId,
        role: Role,
        now: i64,
    ) -> std::result::Result<(), MemberError> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        lock_tenant(&mut tx.conn(), tenant).await?;
        let Some((current, sole_admin)) = role_and_sole_admin(&mut tx.conn(), tenant, user).await?
        else {
            return Err(MemberError::NotFound);
        };
        if current == role {
            return Ok(());
        }
        if sole_admin {
            return Err(MemberError::LastAdmin);
        }
        tx.conn()
            .execute(
                Sql::new(
                    "UPDATE membership SET role = $3, updated_at = $4 \
                     WHERE tenant_id = $1 AND user_id = $2",
                )
                .bind(tenant)
                .bind(user.as_str())
                .bind(role.as_str())
                .bind(now),
            )
            .await?;
        let email = email_of(&mut tx.conn(), user).await?;
        let event = member_event(scope, actor, "member-role", &email, Some(role), now);
        insert_audit(&mut tx, &event).await?;
        let changed = NewEvent::member(EventKind::MemberChanged, user.as_str());
        emit(&mut tx, tenant, changed, now).await?;
        let hook = WebhookEvent::MemberRoleChanged;
        webhooks::member_changed(&mut tx, tenant, hook, user, &email, Some(role), now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a member and ends their sessions in this tenant, audited at `now`. The last
    /// admin cannot leave.
    pub async fn remove_member(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        user: &UserId,
        now: i64,
    ) -> std::result::Result<(), MemberError> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        lock_tenant(&mut tx.conn(), tenant).await?;
        let Some((_, sole_admin)) = role_and_sole_admin(&mut tx.conn(), tenant, user).await? else {
            return Err(MemberError::NotFound);
        };
        if sole_admin {
            return Err(MemberError::LastAdmin);
        }
        let email = email_of(&mut tx.conn(), user).await?;
        for delete in [
            "DELETE FROM membership WHERE tenant_id = $1 AND user_id = $2",
            "DELETE FROM session WHERE tenant_id = $1 AND user_id = $2",
        ] {
            tx.conn()
                .execute(Sql::new(delete).bind(tenant).bind(user.as_str()))
                .await?;
        }
        let event = member_event(scope, actor, "member-remove", &email, None, now);
        insert_audit(&mut tx, &event).await?;
        let removed = NewEvent::member(EventKind::MemberChanged, user.as_str());
        emit(&mut tx, tenant, removed, now).await?;
        let hook = WebhookEvent::MemberRemoved;
        webhooks::member_changed(&mut tx, tenant, hook, user, &email, None, now).await?;
        tx.commit().await?;
        Ok(())
    }
}
