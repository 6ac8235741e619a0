//! Sessions: a signed-in user in one tenant, keyed by the SHA-256 of the cookie's token.

use super::events::{emit, NewEvent};
use super::{now_millis, parse_id, parse_role, Pool, Result, Sql, Store, StoreError};
use crate::domain::{EventKind, Role, SessionOrigin, TenantId, UserId};

/// What a live session resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub role: Role,
    /// How it began (stored as [`SessionOrigin::as_str`]).
    pub origin: SessionOrigin,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    user_id: String,
    email: String,
    display_name: String,
    tenant_id: String,
    tenant_name: String,
    role: String,
    origin: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<SessionRecord> {
        Ok(SessionRecord {
            user_id: parse_id(r.user_id)?,
            email: r.email,
            display_name: r.display_name,
            tenant_id: parse_id(r.tenant_id)?,
            tenant_name: r.tenant_name,
            role: parse_role(r.role)?,
            origin: SessionOrigin::parse(&r.origin)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown origin {}", r.origin)))?,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    /// SHA-256 of the cookie token, hex.
    pub session_id: String,
    pub user_id: UserId,
    pub tenant_id: TenantId,
    /// How it began (see [`SessionRecord::origin`]).
    pub origin: SessionOrigin,
    pub now: i64,
    pub expires_at: i64,
}

impl Store {
    pub async fn create_session(&self, s: &NewSession) -> Result<()> {
        let mut tx = self.begin_in(s.tenant_id.as_str()).await?;
        tx.conn()
            .execute(
                Sql::new(
                    "INSERT INTO session (session_id, user_id, tenant_id, origin, created_at, \
                       last_seen_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $5, $6)",
                )
                .bind(&s.session_id)
                .bind(s.user_id.as_str())
                .bind(s.tenant_id.as_str())
                .bind(s.origin.as_str())
                .bind(s.now)
                .bind(s.expires_at),
            )
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant a session belongs to: the one lookup made before any tenant is known.
    async fn session_tenant(&self, session_id: &str) -> Result<Option<String>> {
        let sql = self.per_engine(
            "SELECT (SELECT tenant_id FROM session WHERE session_id = $1)",
            "SELECT portico_session_tenant($1)",
        );
        Ok(self
            .pooled()
            .await?
            .conn()
            .scalar(Sql::new(sql).bind(session_id))
            .await?)
    }

    /// Resolves a session that is neither expired nor idle past `idle_cutoff`, whose user is
    /// enabled and still a member of the session's tenant; marks it seen at `now`.
    pub async fn find_session(
        &self,
        session_id: &str,
        now: i64,
        idle_cutoff: i64,
    ) -> Result<Option<SessionRecord>> {
        self.resolve_session(session_id, now, idle_cutoff, true)
            .await
    }

    /// As [`Store::find_session`], without marking it seen: whether a session that is only
    /// watching (a live stream) still holds. Watching is not using: it never keeps a session
    /// from going idle.
    pub async fn peek_session(
        &self,
        session_id: &str,
        now: i64,
        idle_cutoff: i64,
    ) -> Result<Option<SessionRecord>> {
        self.resolve_session(session_id, now, idle_cutoff, false)
            .await
    }

    async fn resolve_session(
        &self,
        session_id: &str,
        now: i64,
        idle_cutoff: i64,
        touch: bool,
    ) -> Result<Option<SessionRecord>> {
        let Some(tenant) = self.session_tenant(session_id).await? else {
            return Ok(None);
        };
        let mut tx = self.begin_in(&tenant).await?;
        let row: Option<SessionRow> = tx
            .conn()
            .fetch_optional(
                Sql::new(
                    "SELECT s.user_id, u.email, u.display_name, s.tenant_id, \
                       t.name AS tenant_name, m.role, \
                       s.origin, s.created_at, s.last_seen_at, s.expires_at \
                     FROM session s \
                     JOIN app_user u ON u.user_id = s.user_id \
                     JOIN membership m ON m.user_id = s.user_id AND m.tenant_id = s.tenant_id \
                     JOIN tenant t ON t.tenant_id = s.tenant_id \
                     WHERE s.session_id = $1 AND s.tenant_id = $4 AND s.expires_at > $2 \
                       AND s.last_seen_at > $3 AND NOT u.disabled",
                )
                .bind(session_id)
                .bind(now)
                .bind(idle_cutoff)
                .bind(&tenant),
            )
            .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let record = SessionRecord::try_from(row)?;
        // Writing on every request would serialise readers on SQLite; a minute of slack is
        // plenty for idle timeouts measured in minutes.
        if touch && now - record.last_seen_at > 60_000 {
            tx.conn()
                .execute(
                    Sql::new(
                        "UPDATE session SET last_seen_at = $2 \
                         WHERE session_id = $1 AND tenant_id = $3",
                    )
                    .bind(session_id)
                    .bind(now)
                    .bind(&tenant),
                )
                .await?;
        }
        tx.commit().await?;
        Ok(Some(record))
    }

    pub async fn delete_session(&self, session_id: &str) -> Result<()> {
        let Some(tenant) = self.session_tenant(session_id).await? else {
            return Ok(());
        };
        let mut tx = self.begin_in(&tenant).await?;
        let user: Option<String> = tx
            .conn()
            .scalar_optional(
                Sql::new(
                    "DELETE FROM session WHERE session_id = $1 AND tenant_id = $2 \
                     RETURNING user_id",
                )
                .bind(session_id)
                .bind(&tenant),
            )
            .await?;
        if let Some(user) = user {
            let ended = NewEvent::member(EventKind::SessionEnded, &user);
            emit(&mut tx, &tenant, ended, now_millis()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes sessions past their absolute expiry or idle cutoff, in every tenant; returns how
    /// many.
    pub async fn delete_stale_sessions(&self, now: i64, idle_cutoff: i64) -> Result<u64> {
        let mut pooled = self.pooled().await?;
        let mut conn = pooled.conn();
        Ok(match self.pool {
            Pool::Sqlite(_) => {
                conn.execute(
                    Sql::new("DELETE FROM session WHERE expires_at <= $1 OR last_seen_at <= $2")
                        .bind(now)
                        .bind(idle_cutoff),
                )
                .await?
            }
            Pool::Postgres(_) => {
                let n: i64 = conn
                    .scalar(
                        Sql::new("SELECT portico_delete_stale_sessions($1, $2)")
                            .bind(now)
                            .bind(idle_cutoff),
                    )
                    .await?;
                u64::try_from(n).unwrap_or_default()
            }
        })
    }
}
