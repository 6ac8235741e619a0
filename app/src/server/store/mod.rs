//! Persistence behind one interface, on SQLite (embedded default) or PostgreSQL.
//!
//! The SQL is written once: `$n` placeholders, integer timestamps and JSON as text work on both
//! engines. A query is built as an engine-neutral [`Sql`] (text and bound values) and run on a
//! [`Conn`], which hands it to whichever engine this store uses; rows decode into
//! `#[derive(sqlx::FromRow)]` structs, which work for both. Every query over tenant-owned rows
//! takes a [`TenantScope`], which only a verified session (or the provider's own code, such as
//! the CLI) can produce.
//!
//! On PostgreSQL those queries also run in a transaction that names the tenant
//! ([`Store::begin_in`]), so row-level security (migration 0002) stops a query that forgot its
//! tenant filter. The few lookups that must cross tenants call SECURITY DEFINER functions
//! there; on SQLite, which has no row-level security, they are plain queries.
//!
//! One file per aggregate; everything public is re-exported here, so callers name
//! `crate::server::store::X` and never the file it lives in.

mod api_tokens;
mod attempts;
mod audit;
mod embed_tokens;
mod error;
mod events;
mod instances;
mod invitations;
mod jobs;
mod memberships;
mod migrate;
mod observations;
mod operations;
mod page;
mod provider_keys;
mod scope;
mod sessions;
mod sso;
mod submit;
mod tenants;
mod users;
mod webhook_deliveries;
mod webhooks;

pub use api_tokens::{ApiTokenRecord, NewApiToken};
pub use attempts::{Counted, Counter};
pub use audit::{
    bounded_parameters, bounded_text, Actor, AuditEvent, AuditFilter, AUDIT_TEXT_MAX,
    DENIALS_AUDITED_PER_MINUTE,
};
pub use error::{Result, StoreError};
pub use events::{EventHead, EventRecord, Notice};
pub use instances::InstanceRecord;
pub use invitations::InvitationRecord;
pub use jobs::Job;
pub use memberships::{MemberError, MemberRecord};
pub use observations::{InstanceReport, Repair, PROVIDER_ACTOR};
pub use operations::{
    EventApplied, Finish, OpState, OperationCount, OperationRecord, Reported, SubmitError,
    Submitted,
};
pub use page::{Seek, Slice};
pub use provider_keys::ProviderKeyRecord;
pub use scope::TenantScope;
pub use sessions::{NewSession, SessionRecord};
pub use sso::SsoLogin;
pub use tenants::{TenantChange, TenantRecord};
pub use users::UserCredentials;
pub use webhook_deliveries::{
    AttemptOutcome, AttemptRecord, Backlog, DeliveryRecord, MessageRecord, NextStep, Recorded,
};
pub use webhooks::{EndpointChange, EndpointRecord, NewEndpoint};

use crate::domain::Role;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Arguments, Database, Encode, FromRow, Postgres, Sqlite, Transaction, Type};
use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// On SQLite, where committed events are announced in this process (see `events`).
    bus: tokio::sync::broadcast::Sender<Notice>,
    /// Woken when this process queued a webhook delivery outside any change with an event (a
    /// test message, a redelivery, an endpoint enabled again).
    webhooks_due: std::sync::Arc<tokio::sync::Notify>,
}

/// Notices a process may fall behind by before its listener reads the tenants' logs again.
const NOTICE_BACKLOG: usize = 4096;

pub fn now_millis() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// A duration in milliseconds, as timestamps are stored.
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
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
                bus: tokio::sync::broadcast::channel(NOTICE_BACKLOG).0,
                webhooks_due: Default::default(),
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
                // The database is a local file each connection holds open in-process: nothing
                // can close it under us, so the default ping before every acquire was only an
                // extra round trip to the connection's worker thread (~8% of the CPU time of
                // `GET /instances`). `/readyz` still pings.
                .test_before_acquire(false)
                .connect_with(opts)
                .await?;
            Ok(Store {
                pool: Pool::Sqlite(pool),
                bus: tokio::sync::broadcast::channel(NOTICE_BACKLOG).0,
                webhooks_due: Default::default(),
            })
        }
    }

    pub fn engine(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Cheap liveness query for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        self.pooled()
            .await?
            .conn()
            .execute(Sql::new("SELECT 1"))
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }

    /// The same query, spelt for whichever engine this store uses.
    fn per_engine(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => sqlite,
            Pool::Postgres(_) => postgres,
        }
    }

    /// A connection from the pool, for a query outside any tenant's transaction.
    async fn pooled(&self) -> sqlx::Result<Pooled> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Pooled::Sqlite(p.acquire().await?),
            Pool::Postgres(p) => Pooled::Postgres(p.acquire().await?),
        })
    }

    /// A transaction that names no tenant (for the few writes that span tenants).
    async fn begin(&self) -> sqlx::Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?, events::Pending::new(self.bus.clone())),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A transaction confined to one tenant. On PostgreSQL `set_config(.., true)` is
    /// `SET LOCAL` with a bind parameter: the setting ends with the transaction, so a pooled
    /// connection never carries a tenant into its next use. Dropping the transaction without
    /// [`Tx::commit`] rolls it back.
    async fn begin_in(&self, tenant: &str) -> sqlx::Result<Tx> {
        let mut tx = self.begin().await?;
        if let Tx::Postgres(_) = tx {
            tx.conn()
                .execute(Sql::new("SELECT set_config('portico.tenant_id', $1, true)").bind(tenant))
                .await?;
        }
        Ok(tx)
    }
}

/// A value bound to a query: the three kinds the schema stores.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(bool),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(Some(v.to_owned()))
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Arg {
        Arg::Text(Some(v))
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Arg {
        Arg::Text(Some(v.clone()))
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        Arg::Text(v.map(str::to_owned))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Arg {
        Arg::Text(v)
    }
}
impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Arg {
        Arg::Text(v.clone())
    }
}
impl From<Option<Cow<'_, str>>> for Arg {
    fn from(v: Option<Cow<'_, str>>) -> Arg {
        Arg::Text(v.map(Cow::into_owned))
    }
}
impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Arg {
        Arg::Bool(v)
    }
}

/// A query and its bound values, the same for both engines.
#[derive(Debug, Clone)]
struct Sql {
    text: Cow<'static, str>,
    args: Vec<Arg>,
}

impl Sql {
    fn new(text: impl Into<Cow<'static, str>>) -> Sql {
        Sql {
            text: text.into(),
            args: Vec::new(),
        }
    }

    /// Binds the next `$n`.
    fn bind(mut self, value: impl Into<Arg>) -> Sql {
        self.args.push(value.into());
        self
    }
}

/// `args`, encoded for `DB`.
fn arguments<'q, DB: Database>(args: Vec<Arg>) -> sqlx::Result<DB::Arguments<'q>>
where
    Option<String>: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    let mut encoded = DB::Arguments::default();
    for arg in args {
        match arg {
            Arg::Text(v) => encoded.add(v),
            Arg::Int(v) => encoded.add(v),
            Arg::Bool(v) => encoded.add(v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(encoded)
}

/// What a row can be decoded into on either engine: `#[derive(sqlx::FromRow)]` structs and
/// tuples of plain values.
trait FromEitherRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> FromEitherRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// A connection to run [`Sql`] on: a transaction's, or one borrowed from the pool.
enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Conn<'_> {
    /// Runs a statement; returns the rows it affected.
    async fn execute(&mut self, q: Sql) -> sqlx::Result<u64> {
        let Sql { text, args } = q;
        Ok(match self {
            Conn::Sqlite(c) => sqlx::query_with::<Sqlite, _>(&text, arguments::<Sqlite>(args)?)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            Conn::Postgres(c) => {
                sqlx::query_with::<Postgres, _>(&text, arguments::<Postgres>(args)?)
                    .execute(&mut **c)
                    .await?
                    .rows_affected()
            }
        })
    }

    async fn fetch_all<T: FromEitherRow>(&mut self, q: Sql) -> sqlx::Result<Vec<T>> {
        let Sql { text, args } = q;
        match self {
            Conn::Sqlite(c) => {
                sqlx::query_as_with::<Sqlite, T, _>(&text, arguments::<Sqlite>(args)?)
                    .fetch_all(&mut **c)
                    .await
            }
            Conn::Postgres(c) => {
                sqlx::query_as_with::<Postgres, T, _>(&text, arguments::<Postgres>(args)?)
                    .fetch_all(&mut **c)
                    .await
            }
        }
    }

    async fn fetch_optional<T: FromEitherRow>(&mut self, q: Sql) -> sqlx::Result<Option<T>> {
        let Sql { text, args } = q;
        match self {
            Conn::Sqlite(c) => {
                sqlx::query_as_with::<Sqlite, T, _>(&text, arguments::<Sqlite>(args)?)
                    .fetch_optional(&mut **c)
                    .await
            }
            Conn::Postgres(c) => {
                sqlx::query_as_with::<Postgres, T, _>(&text, arguments::<Postgres>(args)?)
                    .fetch_optional(&mut **c)
                    .await
            }
        }
    }

    async fn fetch_one<T: FromEitherRow>(&mut self, q: Sql) -> sqlx::Result<T> {
        let Sql { text, args } = q;
        match self {
            Conn::Sqlite(c) => {
                sqlx::query_as_with::<Sqlite, T, _>(&text, arguments::<Sqlite>(args)?)
                    .fetch_one(&mut **c)
                    .await
            }
            Conn::Postgres(c) => {
                sqlx::query_as_with::<Postgres, T, _>(&text, arguments::<Postgres>(args)?)
                    .fetch_one(&mut **c)
                    .await
            }
        }
    }

    /// The first column of the one row the query returns.
    async fn scalar<T: Send + Unpin>(&mut self, q: Sql) -> sqlx::Result<T>
    where
        (T,): FromEitherRow,
    {
        Ok(self.fetch_one::<(T,)>(q).await?.0)
    }

    /// The first column of the row the query returns, if it returns one.
    async fn scalar_optional<T: Send + Unpin>(&mut self, q: Sql) -> sqlx::Result<Option<T>>
    where
        (T,): FromEitherRow,
    {
        Ok(self.fetch_optional::<(T,)>(q).await?.map(|(v,)| v))
    }
}

/// An open transaction on either engine. A SQLite one holds the events it wrote until it
/// commits (PostgreSQL's NOTIFY waits for the commit by itself).
enum Tx {
    Sqlite(Transaction<'static, Sqlite>, events::Pending),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Sqlite(t, _) => Conn::Sqlite(t),
            Tx::Postgres(t) => Conn::Postgres(t),
        }
    }

    async fn commit(self) -> sqlx::Result<()> {
        match self {
            Tx::Sqlite(t, pending) => {
                t.commit().await?;
                pending.announce();
                Ok(())
            }
            Tx::Postgres(t) => t.commit().await,
        }
    }

    async fn rollback(self) -> sqlx::Result<()> {
        match self {
            Tx::Sqlite(t, _) => t.rollback().await,
            Tx::Postgres(t) => t.rollback().await,
        }
    }
}

/// A connection borrowed from the pool (returned to it when dropped).
enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(c) => Conn::Sqlite(c),
            Pooled::Postgres(c) => Conn::Postgres(c),
        }
    }
}

fn parse_id<T: TryFrom<String, Error = crate::domain::IdError>>(s: String) -> Result<T> {
    T::try_from(s.clone()).map_err(|e| StoreError::Corrupt(format!("id {s:?}: {e}")))
}

fn parse_role(s: String) -> Result<Role> {
    Role::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("unknown role {s}")))
}
