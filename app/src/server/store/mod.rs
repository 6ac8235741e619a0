//! Persistence behind one interface, on SQLite (embedded default) or PostgreSQL.
//!
//! The SQL is written once: `$n` placeholders, integer timestamps and JSON as text work on both
//! engines, and `on_pool!` instantiates each method body for each pool type. Every query over
//! tenant-owned rows takes a [`TenantScope`], which only a verified session (or an explicitly
//! trusted caller such as the CLI) can produce.
//!
//! On PostgreSQL those queries also run in a transaction that names the tenant (see `scoped!`),
//! so row-level security (migration 0002) stops a query that forgot its tenant filter. The few
//! lookups that must cross tenants call SECURITY DEFINER functions there; on SQLite, which has
//! no row-level security, they are plain queries.

use crate::domain::policy::InstanceFacts;
use crate::domain::SessionOrigin;
use crate::domain::{
    Email, Endpoint, InstanceId, ParamValue, Plan, Resources, Role, Status, TenantId, UserId,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
use sqlx::Transaction;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The tenant every scoped query is limited to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: TenantId,
}

impl TenantScope {
    /// For callers that act on behalf of the provider, not a signed-in user: the CLI, demo seeding
    /// and tests. Request handlers get their scope from [`crate::server::auth::Session`].
    pub fn trusted(tenant_id: TenantId) -> Self {
        TenantScope { tenant_id }
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub plan_id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserCredentials {
    pub user_id: UserId,
    pub password_hash: Option<String>,
    pub disabled: bool,
    /// The password was chosen by whoever held an invitation link, and the email's owner has
    /// not proved the email since.
    pub password_from_invitation: bool,
}

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

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub id: InstanceId,
    pub tenant_id: TenantId,
    pub name: String,
    pub plan_id: String,
    pub environment: String,
    pub region: String,
    pub status: Status,
    pub status_reason: Option<String>,
    pub resources: Resources,
    pub parameters: BTreeMap<String, ParamValue>,
    pub endpoints: Vec<Endpoint>,
    pub delete_protected: bool,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl InstanceRecord {
    /// What the policy needs to know about this instance.
    pub fn facts<'a>(&'a self, plan: &'a Plan, operation_in_flight: bool) -> InstanceFacts<'a> {
        InstanceFacts {
            name: &self.name,
            status: self.status,
            plan,
            resources: self.resources,
            parameters: &self.parameters,
            delete_protected: self.delete_protected,
            operation_in_flight,
        }
    }
}

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool, whichever engine this store uses.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// Opens a transaction confined to one tenant.
trait BeginIn {
    type Db: sqlx::Database;
    fn begin_in(
        &self,
        tenant: &str,
    ) -> impl std::future::Future<Output = sqlx::Result<Transaction<'static, Self::Db>>> + Send;
}

impl BeginIn for SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_in(&self, _tenant: &str) -> sqlx::Result<Transaction<'static, sqlx::Sqlite>> {
        self.begin().await
    }
}

impl BeginIn for PgPool {
    type Db = sqlx::Postgres;
    /// `set_config(.., true)` is `SET LOCAL` with a bind parameter: the setting ends with the
    /// transaction, so a pooled connection never carries a tenant into its next use.
    async fn begin_in(&self, tenant: &str) -> sqlx::Result<Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT set_config('portico.tenant_id', $1, true)")
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// Evaluates `$body` with `$tx` bound to a transaction confined to `$tenant`, and commits.
/// `?` inside the body returns a [`StoreError`] (and rolls back, by dropping the transaction).
macro_rules! scoped {
    ($store:expr, $tenant:expr, |$tx:ident| $body:expr) => {
        on_pool!($store, |pool| async {
            let mut $tx = pool.begin_in($tenant).await?;
            let out = $body;
            $tx.commit().await?;
            Ok::<_, StoreError>(out)
        }
        .await)
    };
}

#[macro_use]
pub mod ops;
pub mod members;
pub mod sso;
pub use members::{InvitationRecord, MemberError, MemberRecord};
pub use ops::{
    Actor, AuditEvent, AuditFilter, Finish, OpState, OperationRecord, SubmitError, Submitted,
};

#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

pub fn now_millis() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Store {
    /// Connects to `sqlite://path` (created if missing, WAL) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(Store {
                pool: Pool::Postgres(pool),
            })
        } else {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(opts)
                .await?;
            Ok(Store {
                pool: Pool::Sqlite(pool),
            })
        }
    }

    pub fn engine(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Applies the migrations not yet applied. On PostgreSQL an up-to-date database is only read
    /// (which migrations it has, and their checksums), so the portal's own role, which may not
    /// create tables, can start against a database that the tables' owner migrated.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await?,
            Pool::Postgres(p) => {
                let migrator = sqlx::migrate!("./migrations/postgres");
                if !pg_migrated(p, &migrator).await? {
                    migrator.run(p).await?;
                }
            }
        }
        Ok(())
    }

    /// On PostgreSQL, why this connection's role must not serve the portal: it could read
    /// around row-level security (a superuser, a BYPASSRLS role, or the tables' owner, or a
    /// member of one), or the tables do not have it enabled and forced. `None` on SQLite.
    pub async fn row_security_problem(&self) -> Result<Option<String>> {
        let Pool::Postgres(p) = &self.pool else {
            return Ok(None);
        };
        let (role, bypass, owns, forced): (String, bool, bool, bool) = sqlx::query_as(
            "WITH t AS (SELECT c.* FROM pg_class c WHERE c.oid IN ('tenant'::regclass, \
               'membership'::regclass, 'session'::regclass, 'instance'::regclass, \
               'operation'::regclass, 'audit_event'::regclass, 'invitation'::regclass)) \
             SELECT current_user::text, \
               EXISTS (SELECT 1 FROM pg_roles r WHERE (r.rolsuper OR r.rolbypassrls) \
                         AND pg_has_role(current_user, r.oid, 'MEMBER')), \
               EXISTS (SELECT 1 FROM t WHERE pg_has_role(current_user, t.relowner, 'MEMBER')), \
               (SELECT bool_and(t.relrowsecurity AND t.relforcerowsecurity) FROM t)",
        )
        .fetch_one(p)
        .await?;
        Ok(if bypass {
            Some(format!(
                "the database role {role:?} is a superuser or may bypass row-level security"
            ))
        } else if owns {
            Some(format!(
                "the database role {role:?} owns Portico's tables (or may act as their owner), \
                 so row-level security cannot hold it"
            ))
        } else if !forced {
            Some("row-level security is not enabled and forced on every tenant table".into())
        } else {
            None
        })
    }

    /// Cheap liveness query for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, |p| sqlx::query("SELECT 1").execute(p).await.map(drop))?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }

    // ---- provider-level writes (CLI, demo seeding) ----

    pub async fn create_tenant(&self, id: &TenantId, name: &str, plan_id: &str) -> Result<()> {
        let now = now_millis();
        scoped!(self, id.as_str(), |tx| {
            sqlx::query(
            "INSERT INTO tenant (tenant_id, name, plan_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)"
        )
        .bind(id.as_str())
        .bind(name)
        .bind(plan_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(conflict("a tenant with this id already exists"))?
        .rows_affected()
        })?;
        Ok(())
    }

    pub async fn tenant_exists(&self, id: &TenantId) -> Result<bool> {
        let n: i64 = scoped!(self, id.as_str(), |tx| sqlx::query_scalar(
            "SELECT COUNT(*) FROM tenant WHERE tenant_id = $1"
        )
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?)?;
        Ok(n > 0)
    }

    /// How many tenants exist, across all of them (the demo loads only into an empty database).
    pub async fn count_tenants(&self) -> Result<i64> {
        let sql = self.per_engine(
            "SELECT COUNT(*) FROM tenant",
            "SELECT portico_tenant_count()",
        );
        Ok(on_pool!(self, |p| sqlx::query_scalar(sql)
            .fetch_one(p)
            .await)?)
    }

    pub async fn create_user(
        &self,
        email: &Email,
        display_name: &str,
        password_hash: Option<&str>,
    ) -> Result<UserId> {
        self.insert_user(email, display_name, password_hash, false)
            .await
    }

    /// A user created by accepting an invitation link with a password: the link proves only
    /// that its holder received it, so the password is cleared when the email's owner first
    /// signs in through an identity provider that verified the email.
    pub async fn create_invited_user(
        &self,
        email: &Email,
        display_name: &str,
        password_hash: &str,
    ) -> Result<UserId> {
        self.insert_user(email, display_name, Some(password_hash), true)
            .await
    }

    async fn insert_user(
        &self,
        email: &Email,
        display_name: &str,
        password_hash: Option<&str>,
        password_from_invitation: bool,
    ) -> Result<UserId> {
        let id = UserId::parse(&new_id()).expect("uuids are valid ids");
        let now = now_millis();
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO app_user (user_id, email, display_name, password_hash, password_from_invitation, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, FALSE, $6, $6)"
        )
        .bind(id.as_str())
        .bind(email.as_str())
        .bind(display_name)
        .bind(password_hash)
        .bind(password_from_invitation)
        .bind(now)
        .execute(p).await.map(|r| r.rows_affected()))
        .map_err(conflict("a user with this email already exists"))?;
        Ok(id)
    }

    pub async fn set_membership(
        &self,
        scope: &TenantScope,
        user: &UserId,
        role: Role,
    ) -> Result<()> {
        let now = now_millis();
        scoped!(self, scope.tenant_id.as_str(), |tx| {
            sqlx::query(
            "INSERT INTO membership (tenant_id, user_id, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at"
        )
        .bind(scope.tenant_id.as_str())
        .bind(user.as_str())
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        })?;
        Ok(())
    }

    /// A disabled user cannot sign in, and their sessions stop resolving at once.
    pub async fn set_user_disabled(&self, user: &UserId, disabled: bool) -> Result<()> {
        on_pool!(self, |p| sqlx::query(
            "UPDATE app_user SET disabled = $2, updated_at = $3 WHERE user_id = $1"
        )
        .bind(user.as_str())
        .bind(disabled)
        .bind(now_millis())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Sets a user's password hash (`None` clears it: no password sign-in) and, in the same
    /// transaction, ends every session they hold in any tenant: whoever knew the old password
    /// is signed out at once. Returns the sessions ended.
    pub async fn set_password(&self, user: &UserId, password_hash: Option<&str>) -> Result<u64> {
        const SET: &str =
            "UPDATE app_user SET password_hash = $2, password_from_invitation = FALSE, \
             updated_at = $3 WHERE user_id = $1";
        let now = now_millis();
        let ended = match &self.pool {
            Pool::Sqlite(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(SET)
                    .bind(user.as_str())
                    .bind(password_hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let ended = sqlx::query("DELETE FROM session WHERE user_id = $1")
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                ended
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(SET)
                    .bind(user.as_str())
                    .bind(password_hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let ended: i64 = sqlx::query_scalar("SELECT portico_end_user_sessions($1)")
                    .bind(user.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                u64::try_from(ended).unwrap_or_default()
            }
        };
        Ok(ended)
    }

    // ---- authentication (looked up before a tenant is known) ----

    pub async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>> {
        let row = on_pool!(self, |p| {
            sqlx::query(
            "SELECT user_id, password_hash, disabled, password_from_invitation FROM app_user WHERE email = $1"
        )
        .bind(email.as_str())
        .fetch_optional(p)
        .await
        .map(|r| r.map(|r| -> Result<UserCredentials> {
            Ok(UserCredentials {
                user_id: parse_id(r.try_get("user_id")?)?,
                password_hash: r.try_get("password_hash")?,
                disabled: r.try_get("disabled")?,
                password_from_invitation: r.try_get("password_from_invitation")?,
            })
        }))
        })?;
        row.transpose()
    }

    /// The tenants a user belongs to, oldest membership first.
    pub async fn memberships(&self, user: &UserId) -> Result<Vec<(TenantId, Role)>> {
        let sql = self.per_engine(
            "SELECT tenant_id, role FROM membership WHERE user_id = $1 ORDER BY created_at, tenant_id",
            "SELECT tenant_id, role FROM portico_user_memberships($1) ORDER BY created_at, tenant_id",
        );
        let rows = on_pool!(self, |p| {
            sqlx::query(sql)
                .bind(user.as_str())
                .fetch_all(p)
                .await
                .map(|rows| {
                    rows.into_iter()
                        .map(|r| -> Result<(TenantId, Role)> {
                            Ok((
                                parse_id(r.try_get("tenant_id")?)?,
                                parse_role(r.try_get("role")?)?,
                            ))
                        })
                        .collect::<Vec<_>>()
                })
        })?;
        rows.into_iter().collect()
    }

    pub async fn create_session(&self, s: &NewSession) -> Result<()> {
        scoped!(self, s.tenant_id.as_str(), |tx| {
            sqlx::query(
            "INSERT INTO session (session_id, user_id, tenant_id, origin, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)"
        )
        .bind(&s.session_id)
        .bind(s.user_id.as_str())
        .bind(s.tenant_id.as_str())
        .bind(s.origin.as_str())
        .bind(s.now)
        .bind(s.expires_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        })?;
        Ok(())
    }

    /// The tenant a session belongs to: the one lookup made before any tenant is known.
    async fn session_tenant(&self, session_id: &str) -> Result<Option<String>> {
        let sql = self.per_engine(
            "SELECT (SELECT tenant_id FROM session WHERE session_id = $1)",
            "SELECT portico_session_tenant($1)",
        );
        Ok(on_pool!(self, |p| sqlx::query_scalar(sql)
            .bind(session_id)
            .fetch_one(p)
            .await)?)
    }

    /// Resolves a session that is neither expired nor idle past `idle_cutoff`, whose user is
    /// enabled and still a member of the session's tenant; marks it seen at `now`.
    pub async fn find_session(
        &self,
        session_id: &str,
        now: i64,
        idle_cutoff: i64,
    ) -> Result<Option<SessionRecord>> {
        let Some(tenant) = self.session_tenant(session_id).await? else {
            return Ok(None);
        };
        scoped!(self, &tenant, |tx| {
            let row = sqlx::query(
                "SELECT s.user_id, u.email, u.display_name, s.tenant_id, t.name AS tenant_name, m.role, \
                        s.origin, s.created_at, s.last_seen_at, s.expires_at \
                 FROM session s \
                 JOIN app_user u ON u.user_id = s.user_id \
                 JOIN membership m ON m.user_id = s.user_id AND m.tenant_id = s.tenant_id \
                 JOIN tenant t ON t.tenant_id = s.tenant_id \
                 WHERE s.session_id = $1 AND s.tenant_id = $4 AND s.expires_at > $2 AND s.last_seen_at > $3 \
                   AND NOT u.disabled",
            )
            .bind(session_id)
            .bind(now)
            .bind(idle_cutoff)
            .bind(&tenant)
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                None => None,
                Some(r) => {
                    let record = SessionRecord {
                        user_id: parse_id(r.try_get("user_id")?)?,
                        email: r.try_get("email")?,
                        display_name: r.try_get("display_name")?,
                        tenant_id: parse_id(r.try_get("tenant_id")?)?,
                        tenant_name: r.try_get("tenant_name")?,
                        role: parse_role(r.try_get("role")?)?,
                        origin: parse_origin(r.try_get("origin")?)?,
                        created_at: r.try_get("created_at")?,
                        last_seen_at: r.try_get("last_seen_at")?,
                        expires_at: r.try_get("expires_at")?,
                    };
                    // Writing on every request would serialise readers on SQLite; a minute of
                    // slack is plenty for idle timeouts measured in minutes.
                    if now - record.last_seen_at > 60_000 {
                        sqlx::query(
                            "UPDATE session SET last_seen_at = $2 WHERE session_id = $1 AND tenant_id = $3",
                        )
                        .bind(session_id)
                        .bind(now)
                        .bind(&tenant)
                        .execute(&mut *tx)
                        .await?;
                    }
                    Some(record)
                }
            }
        })
    }

    pub async fn delete_session(&self, session_id: &str) -> Result<()> {
        let Some(tenant) = self.session_tenant(session_id).await? else {
            return Ok(());
        };
        scoped!(self, &tenant, |tx| sqlx::query(
            "DELETE FROM session WHERE session_id = $1 AND tenant_id = $2"
        )
        .bind(session_id)
        .bind(&tenant)
        .execute(&mut *tx)
        .await?
        .rows_affected())?;
        Ok(())
    }

    /// Removes sessions past their absolute expiry or idle cutoff, in every tenant; returns how
    /// many.
    pub async fn delete_stale_sessions(&self, now: i64, idle_cutoff: i64) -> Result<u64> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => {
                sqlx::query("DELETE FROM session WHERE expires_at <= $1 OR last_seen_at <= $2")
                    .bind(now)
                    .bind(idle_cutoff)
                    .execute(p)
                    .await?
                    .rows_affected()
            }
            Pool::Postgres(p) => {
                let n: i64 = sqlx::query_scalar("SELECT portico_delete_stale_sessions($1, $2)")
                    .bind(now)
                    .bind(idle_cutoff)
                    .fetch_one(p)
                    .await?;
                u64::try_from(n).unwrap_or_default()
            }
        })
    }

    // ---- embed tokens (single use, before a tenant is trusted) ----

    /// Records an embed token's `jti` as used until `expires_at`; false when it already was.
    pub async fn use_embed_token(&self, jti: &str, expires_at: i64, now: i64) -> Result<bool> {
        let n = on_pool!(self, |p| sqlx::query(
            "INSERT INTO embed_token (jti, expires_at, used_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING"
        )
        .bind(jti)
        .bind(expires_at)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Forgets used tokens that would be refused as expired anyway; returns how many.
    pub async fn delete_expired_embed_tokens(&self, now: i64) -> Result<u64> {
        Ok(on_pool!(self, |p| sqlx::query(
            "DELETE FROM embed_token WHERE expires_at < $1"
        )
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }

    // ---- tenant-scoped reads and writes ----

    pub async fn tenant(&self, scope: &TenantScope) -> Result<TenantRecord> {
        let tenant = scope.tenant_id.as_str();
        scoped!(self, tenant, |tx| {
            let r = sqlx::query("SELECT tenant_id, name, plan_id FROM tenant WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?;
            TenantRecord {
                id: parse_id(r.try_get("tenant_id")?)?,
                name: r.try_get("name")?,
                plan_id: r.try_get("plan_id")?,
            }
        })
    }

    pub async fn insert_instance(&self, scope: &TenantScope, i: &InstanceRecord) -> Result<()> {
        if &i.tenant_id != scope.tenant_id() {
            return Err(StoreError::Conflict(
                "instance belongs to another tenant".into(),
            ));
        }
        let params =
            serde_json::to_string(&i.parameters).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let endpoints =
            serde_json::to_string(&i.endpoints).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        scoped!(self, scope.tenant_id.as_str(), |tx| {
            sqlx::query(
            "INSERT INTO instance (instance_id, tenant_id, name, plan_id, environment, region, status, status_reason, \
               replicas, cpu_millicores, memory_mib, storage_gib, parameters, endpoints, delete_protected, version, \
               created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        )
        .bind(i.id.as_str())
        .bind(scope.tenant_id.as_str())
        .bind(&i.name)
        .bind(&i.plan_id)
        .bind(&i.environment)
        .bind(&i.region)
        .bind(i.status.as_str())
        .bind(&i.status_reason)
        .bind(i64::from(i.resources.replicas))
        .bind(i64::from(i.resources.cpu_millicores))
        .bind(i64::from(i.resources.memory_mib))
        .bind(i64::from(i.resources.storage_gib))
        .bind(&params)
        .bind(&endpoints)
        .bind(i.delete_protected)
        .bind(i.version)
        .bind(i.created_at)
        .bind(i.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict("an instance with this name already exists"))?
        .rows_affected()
        })?;
        Ok(())
    }

    /// The tenant's instances, excluding deleted ones, by name.
    pub async fn list_instances(&self, scope: &TenantScope) -> Result<Vec<InstanceRecord>> {
        let tenant = scope.tenant_id.as_str();
        scoped!(self, tenant, |tx| {
            sqlx::query(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instance WHERE tenant_id = $1 AND status <> 'deleted' ORDER BY name"
        ))
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(instance_from_row)
        .collect::<Result<Vec<_>>>()?
        })
    }

    /// One of the tenant's instances; another tenant's instance is simply not found.
    pub async fn get_instance(
        &self,
        scope: &TenantScope,
        id: &InstanceId,
    ) -> Result<Option<InstanceRecord>> {
        let tenant = scope.tenant_id.as_str();
        scoped!(self, tenant, |tx| sqlx::query(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instance WHERE tenant_id = $1 AND instance_id = $2"
        ))
        .bind(tenant)
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(instance_from_row)
        .transpose()?)
    }

    /// The same query, spelt for whichever engine this store uses.
    fn per_engine(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => sqlite,
            Pool::Postgres(_) => postgres,
        }
    }
}

/// Whether every migration is applied, unchanged. A missing bookkeeping table means a new
/// database; an applied migration whose checksum differs is refused, as sqlx itself would.
async fn pg_migrated(p: &PgPool, migrator: &sqlx::migrate::Migrator) -> Result<bool> {
    let applied: Vec<(i64, Vec<u8>)> =
        match sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(p)
            .await
        {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                return Ok(false)
            }
            Err(e) => return Err(e.into()),
        };
    for m in migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
    {
        match applied.iter().find(|(v, _)| *v == m.version) {
            None => return Ok(false),
            Some((_, sum)) if sum.as_slice() != &*m.checksum => {
                return Err(sqlx::migrate::MigrateError::VersionMismatch(m.version).into())
            }
            Some(_) => {}
        }
    }
    Ok(true)
}

const INSTANCE_COLUMNS: &str = "instance_id, tenant_id, name, plan_id, environment, region, status, status_reason, \
    replicas, cpu_millicores, memory_mib, storage_gib, parameters, endpoints, delete_protected, version, created_at, updated_at";

fn instance_from_row<R>(r: &R) -> Result<InstanceRecord>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    bool: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let int = |col: &str| -> Result<u32> {
        let v: i64 = r.try_get(col)?;
        u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v} is out of range")))
    };
    let status: String = r.try_get("status")?;
    let params: String = r.try_get("parameters")?;
    let endpoints: String = r.try_get("endpoints")?;
    Ok(InstanceRecord {
        id: parse_id(r.try_get("instance_id")?)?,
        tenant_id: parse_id(r.try_get("tenant_id")?)?,
        name: r.try_get("name")?,
        plan_id: r.try_get("plan_id")?,
        environment: r.try_get("environment")?,
        region: r.try_get("region")?,
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status}")))?,
        status_reason: r.try_get("status_reason")?,
        resources: Resources {
            replicas: int("replicas")?,
            cpu_millicores: int("cpu_millicores")?,
            memory_mib: int("memory_mib")?,
            storage_gib: int("storage_gib")?,
        },
        parameters: serde_json::from_str(&params)
            .map_err(|e| StoreError::Corrupt(format!("parameters: {e}")))?,
        endpoints: serde_json::from_str(&endpoints)
            .map_err(|e| StoreError::Corrupt(format!("endpoints: {e}")))?,
        delete_protected: r.try_get("delete_protected")?,
        version: r.try_get("version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn parse_id<T: TryFrom<String, Error = crate::domain::IdError>>(s: String) -> Result<T> {
    T::try_from(s.clone()).map_err(|e| StoreError::Corrupt(format!("id {s:?}: {e}")))
}

fn parse_role(s: String) -> Result<Role> {
    Role::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("unknown role {s}")))
}

fn parse_origin(s: String) -> Result<SessionOrigin> {
    SessionOrigin::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("unknown origin {s}")))
}

/// Maps a unique-constraint violation to a `Conflict` with a message a person can act on.
fn conflict(msg: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(msg.into()),
        _ => StoreError::Database(e),
    }
}
