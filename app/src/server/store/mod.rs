//! Persistence behind one interface, on SQLite (embedded default) or PostgreSQL.
//!
//! The SQL is written once: `$n` placeholders, integer timestamps and JSON as text work on both
//! engines, and `on_pool!` instantiates each method body for each pool type. Every query over
//! tenant-owned rows takes a [`TenantScope`], which only a verified session (or an explicitly
//! trusted caller such as the CLI) can produce.

use crate::domain::policy::InstanceFacts;
use crate::domain::{
    Email, Endpoint, InstanceId, ParamValue, Plan, Resources, Role, Status, TenantId, UserId,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
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
    /// How it began: "password" now; later "oidc" or "embed".
    pub origin: String,
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

pub mod ops;

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

    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await?,
            Pool::Postgres(p) => sqlx::migrate!("./migrations/postgres").run(p).await?,
        }
        Ok(())
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
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO tenant (tenant_id, name, plan_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)"
        )
        .bind(id.as_str())
        .bind(name)
        .bind(plan_id)
        .bind(now)
        .execute(p).await.map(|r| r.rows_affected()))
        .map_err(conflict("a tenant with this id already exists"))?;
        Ok(())
    }

    pub async fn tenant_exists(&self, id: &TenantId) -> Result<bool> {
        let n: i64 = on_pool!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM tenant WHERE tenant_id = $1"
        )
        .bind(id.as_str())
        .fetch_one(p)
        .await)?;
        Ok(n > 0)
    }

    pub async fn count_tenants(&self) -> Result<i64> {
        Ok(on_pool!(self, |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM tenant"
        )
        .fetch_one(p)
        .await)?)
    }

    pub async fn create_user(
        &self,
        email: &Email,
        display_name: &str,
        password_hash: Option<&str>,
    ) -> Result<UserId> {
        let id = UserId::parse(&new_id()).expect("uuids are valid ids");
        let now = now_millis();
        on_pool!(self, |p| sqlx::query(
            "INSERT INTO app_user (user_id, email, display_name, password_hash, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, FALSE, $5, $5)"
        )
        .bind(id.as_str())
        .bind(email.as_str())
        .bind(display_name)
        .bind(password_hash)
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
        on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO membership (tenant_id, user_id, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at"
        )
        .bind(scope.tenant_id.as_str())
        .bind(user.as_str())
        .bind(role.as_str())
        .bind(now)
        .execute(p).await.map(|r| r.rows_affected())
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

    /// Sets a user's password hash and, in the same transaction, ends every session they hold:
    /// whoever knew the old password is signed out at once. Returns the sessions ended.
    pub async fn set_password(&self, user: &UserId, password_hash: &str) -> Result<u64> {
        let now = now_millis();
        let ended = on_pool!(self, |p| async {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE app_user SET password_hash = $2, updated_at = $3 WHERE user_id = $1",
            )
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
            Ok::<u64, sqlx::Error>(ended)
        }
        .await)?;
        Ok(ended)
    }

    // ---- authentication (looked up before a tenant is known) ----

    pub async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>> {
        let row = on_pool!(self, |p| sqlx::query(
            "SELECT user_id, password_hash, disabled FROM app_user WHERE email = $1"
        )
        .bind(email.as_str())
        .fetch_optional(p)
        .await
        .map(|r| r.map(|r| -> Result<UserCredentials> {
            Ok(UserCredentials {
                user_id: parse_id(r.try_get("user_id")?)?,
                password_hash: r.try_get("password_hash")?,
                disabled: r.try_get("disabled")?,
            })
        })))?;
        row.transpose()
    }

    /// The tenants a user belongs to, oldest membership first.
    pub async fn memberships(&self, user: &UserId) -> Result<Vec<(TenantId, Role)>> {
        let rows = on_pool!(self, |p| {
            sqlx::query(
            "SELECT tenant_id, role FROM membership WHERE user_id = $1 ORDER BY created_at, tenant_id"
        )
        .bind(user.as_str())
        .fetch_all(p)
        .await
        .map(|rows| rows.into_iter().map(|r| -> Result<(TenantId, Role)> {
            Ok((parse_id(r.try_get("tenant_id")?)?, parse_role(r.try_get("role")?)?))
        }).collect::<Vec<_>>())
        })?;
        rows.into_iter().collect()
    }

    pub async fn create_session(&self, s: &NewSession) -> Result<()> {
        on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO session (session_id, user_id, tenant_id, origin, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)"
        )
        .bind(&s.session_id)
        .bind(s.user_id.as_str())
        .bind(s.tenant_id.as_str())
        .bind(&s.origin)
        .bind(s.now)
        .bind(s.expires_at)
        .execute(p).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Resolves a session that is neither expired nor idle past `idle_cutoff`, whose user is
    /// enabled and still a member of the session's tenant; marks it seen at `now`.
    pub async fn find_session(
        &self,
        session_id: &str,
        now: i64,
        idle_cutoff: i64,
    ) -> Result<Option<SessionRecord>> {
        let row = on_pool!(self, |p| {
            sqlx::query(
            "SELECT s.user_id, u.email, u.display_name, s.tenant_id, t.name AS tenant_name, m.role, \
                    s.created_at, s.last_seen_at, s.expires_at \
             FROM session s \
             JOIN app_user u ON u.user_id = s.user_id \
             JOIN membership m ON m.user_id = s.user_id AND m.tenant_id = s.tenant_id \
             JOIN tenant t ON t.tenant_id = s.tenant_id \
             WHERE s.session_id = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 AND NOT u.disabled"
        )
        .bind(session_id)
        .bind(now)
        .bind(idle_cutoff)
        .fetch_optional(p)
        .await
        .map(|r| r.map(|r| -> Result<SessionRecord> {
            Ok(SessionRecord {
                user_id: parse_id(r.try_get("user_id")?)?,
                email: r.try_get("email")?,
                display_name: r.try_get("display_name")?,
                tenant_id: parse_id(r.try_get("tenant_id")?)?,
                tenant_name: r.try_get("tenant_name")?,
                role: parse_role(r.try_get("role")?)?,
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        }))
        })?;
        let Some(record) = row.transpose()? else {
            return Ok(None);
        };
        // Writing on every request would serialise readers on SQLite; a minute of slack is plenty
        // for idle timeouts measured in minutes.
        if now - record.last_seen_at > 60_000 {
            on_pool!(self, |p| sqlx::query(
                "UPDATE session SET last_seen_at = $2 WHERE session_id = $1"
            )
            .bind(session_id)
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        }
        Ok(Some(record))
    }

    pub async fn delete_session(&self, session_id: &str) -> Result<()> {
        on_pool!(self, |p| sqlx::query(
            "DELETE FROM session WHERE session_id = $1"
        )
        .bind(session_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Removes sessions past their absolute expiry or idle cutoff; returns how many.
    pub async fn delete_stale_sessions(&self, now: i64, idle_cutoff: i64) -> Result<u64> {
        let r = on_pool!(self, |p| sqlx::query(
            "DELETE FROM session WHERE expires_at <= $1 OR last_seen_at <= $2"
        )
        .bind(now)
        .bind(idle_cutoff)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(r)
    }

    // ---- tenant-scoped reads and writes ----

    pub async fn tenant(&self, scope: &TenantScope) -> Result<TenantRecord> {
        let row = on_pool!(self, |p| sqlx::query(
            "SELECT tenant_id, name, plan_id FROM tenant WHERE tenant_id = $1"
        )
        .bind(scope.tenant_id.as_str())
        .fetch_one(p)
        .await
        .map(|r| -> Result<TenantRecord> {
            Ok(TenantRecord {
                id: parse_id(r.try_get("tenant_id")?)?,
                name: r.try_get("name")?,
                plan_id: r.try_get("plan_id")?,
            })
        }))?;
        row
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
        on_pool!(self, |p| sqlx::query(
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
        .execute(p).await.map(|r| r.rows_affected()))
        .map_err(conflict("an instance with this name already exists"))?;
        Ok(())
    }

    /// The tenant's instances, excluding deleted ones, by name.
    pub async fn list_instances(&self, scope: &TenantScope) -> Result<Vec<InstanceRecord>> {
        let rows = on_pool!(self, |p| {
            sqlx::query(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instance WHERE tenant_id = $1 AND status <> 'deleted' ORDER BY name"
        ))
        .bind(scope.tenant_id.as_str())
        .fetch_all(p)
        .await
        .map(|rows| rows.iter().map(instance_from_row).collect::<Vec<_>>())
        })?;
        rows.into_iter().collect()
    }

    /// One of the tenant's instances; another tenant's instance is simply not found.
    pub async fn get_instance(
        &self,
        scope: &TenantScope,
        id: &InstanceId,
    ) -> Result<Option<InstanceRecord>> {
        let row = on_pool!(self, |p| sqlx::query(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instance WHERE tenant_id = $1 AND instance_id = $2"
        ))
        .bind(scope.tenant_id.as_str())
        .bind(id.as_str())
        .fetch_optional(p)
        .await
        .map(|r| r.as_ref().map(instance_from_row)))?;
        row.transpose()
    }
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

/// Maps a unique-constraint violation to a `Conflict` with a message a person can act on.
fn conflict(msg: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(msg.into()),
        _ => StoreError::Database(e),
    }
}
