//! The per-tenant event log behind live updates.
//!
//! A change that a page shows writes an event in its own transaction ([`emit`]), numbered from
//! the tenant's sequence: the sequence row stays locked until the transaction ends, so one
//! tenant's events commit in the order of their numbers and a reader that has seen `n` has seen
//! everything before it. On PostgreSQL the same transaction sends `NOTIFY portico_events`, which
//! PostgreSQL delivers to every replica's listener when it commits; on SQLite (one process) the
//! transaction hands its notices to an in-process channel after it commits.

use super::{parse_id, Conn, Pool, Result, Sql, Store, TenantScope, Tx};
use crate::domain::{EventKind, TenantId};
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;

/// The channel PostgreSQL notifications travel on; payload `<tenant>:<seq>`, a few dozen bytes.
pub const CHANNEL: &str = "portico_events";

/// One change, as the live stream sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub tenant_id: TenantId,
    pub seq: i64,
    pub kind: EventKind,
    pub instance_id: Option<String>,
    pub operation_id: Option<String>,
    /// The member a membership or session event is about.
    pub user_id: Option<String>,
    pub created_at: i64,
}

/// A tenant's events up to `seq` are committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub tenant_id: String,
    pub seq: i64,
}

impl Notice {
    /// Reads a notification's payload, `<tenant>:<seq>`.
    pub fn parse(payload: &str) -> Option<Notice> {
        let (tenant, seq) = payload.rsplit_once(':')?;
        Some(Notice {
            tenant_id: tenant.to_owned(),
            seq: seq.parse().ok()?,
        })
    }
}

/// What an event names.
#[derive(Debug, Clone, Copy)]
pub(super) struct NewEvent<'a> {
    pub kind: EventKind,
    pub instance_id: Option<&'a str>,
    pub operation_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
}

impl<'a> NewEvent<'a> {
    pub fn instance(kind: EventKind, instance_id: &'a str) -> Self {
        NewEvent {
            kind,
            instance_id: Some(instance_id),
            operation_id: None,
            user_id: None,
        }
    }

    pub fn operation(instance_id: &'a str, operation_id: &'a str) -> Self {
        NewEvent {
            kind: EventKind::OperationChanged,
            instance_id: Some(instance_id),
            operation_id: Some(operation_id),
            user_id: None,
        }
    }

    pub fn member(kind: EventKind, user_id: &'a str) -> Self {
        NewEvent {
            kind,
            instance_id: None,
            operation_id: None,
            user_id: Some(user_id),
        }
    }
}

/// Notices a SQLite transaction holds until it commits.
#[derive(Debug)]
pub(super) struct Pending {
    bus: broadcast::Sender<Notice>,
    notices: Vec<Notice>,
}

impl Pending {
    pub fn new(bus: broadcast::Sender<Notice>) -> Pending {
        Pending {
            bus,
            notices: Vec::new(),
        }
    }

    /// After the commit: tell this process's listener. Nobody listening is not an error.
    pub fn announce(self) {
        for n in self.notices {
            let _ = self.bus.send(n);
        }
    }
}

/// Writes an event about `tenant` in `tx`, numbered next in the tenant's sequence; returns its
/// number. It is announced when `tx` commits, and never if it rolls back.
pub(super) async fn emit(
    tx: &mut Tx,
    tenant: &str,
    e: NewEvent<'_>,
    now: i64,
) -> sqlx::Result<i64> {
    let seq: i64 = tx
        .conn()
        .scalar(
            Sql::new(
                "INSERT INTO event_sequence (tenant_id, last_seq) VALUES ($1, 1) \
                 ON CONFLICT (tenant_id) DO UPDATE SET last_seq = event_sequence.last_seq + 1 \
                 RETURNING last_seq",
            )
            .bind(tenant),
        )
        .await?;
    tx.conn()
        .execute(
            Sql::new(
                "INSERT INTO event (tenant_id, seq, kind, instance_id, operation_id, user_id, \
                   created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(tenant)
            .bind(seq)
            .bind(e.kind.as_str())
            .bind(e.instance_id)
            .bind(e.operation_id)
            .bind(e.user_id)
            .bind(now),
        )
        .await?;
    let payload = format!("{tenant}:{seq}");
    match tx {
        Tx::Sqlite(_, pending) => pending.notices.push(Notice {
            tenant_id: tenant.to_owned(),
            seq,
        }),
        Tx::Postgres(_) => {
            tx.conn()
                .execute(
                    Sql::new("SELECT pg_notify($1, $2)")
                        .bind(CHANNEL)
                        .bind(payload),
                )
                .await?;
        }
    }
    Ok(seq)
}

#[derive(sqlx::FromRow)]
struct EventRow {
    tenant_id: String,
    seq: i64,
    kind: String,
    instance_id: Option<String>,
    operation_id: Option<String>,
    user_id: Option<String>,
    created_at: i64,
}

impl TryFrom<EventRow> for EventRecord {
    type Error = super::StoreError;
    fn try_from(r: EventRow) -> Result<EventRecord> {
        Ok(EventRecord {
            tenant_id: parse_id(r.tenant_id)?,
            seq: r.seq,
            kind: EventKind::parse(&r.kind)
                .ok_or_else(|| super::StoreError::Corrupt(format!("event kind {:?}", r.kind)))?,
            instance_id: r.instance_id,
            operation_id: r.operation_id,
            user_id: r.user_id,
            created_at: r.created_at,
        })
    }
}

/// Where a tenant's log stands: the first event still kept (none when the log is empty) and
/// the number of the last one written (0 before the first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventHead {
    pub oldest: Option<i64>,
    pub last: i64,
}

impl Store {
    /// The tenant's events numbered above `after`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        scope: &TenantScope,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let rows: Vec<EventRow> = tx
            .conn()
            .fetch_all(
                Sql::new(
                    "SELECT tenant_id, seq, kind, instance_id, operation_id, user_id, created_at \
                     FROM event WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                )
                .bind(tenant)
                .bind(after)
                .bind(limit),
            )
            .await?;
        tx.commit().await?;
        rows.into_iter().map(EventRecord::try_from).collect()
    }

    /// Where the tenant's event log stands.
    pub async fn event_head(&self, scope: &TenantScope) -> Result<EventHead> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let (last, oldest): (i64, Option<i64>) = tx
            .conn()
            .fetch_one(
                Sql::new(
                    "SELECT COALESCE((SELECT last_seq FROM event_sequence WHERE tenant_id = $1), \
                       0), (SELECT MIN(seq) FROM event WHERE tenant_id = $1)",
                )
                .bind(tenant),
            )
            .await?;
        tx.commit().await?;
        Ok(EventHead { oldest, last })
    }

    /// The last event number of every tenant that has events: where a listener stands after
    /// it (re)connects.
    pub async fn event_heads(&self) -> Result<Vec<(TenantId, i64)>> {
        let sql = self.per_engine(
            "SELECT tenant_id, last_seq FROM event_sequence ORDER BY tenant_id",
            "SELECT tenant_id, last_seq FROM portico_event_heads()",
        );
        let rows: Vec<(String, i64)> = self.pooled().await?.conn().fetch_all(Sql::new(sql)).await?;
        rows.into_iter()
            .map(|(t, s)| Ok((parse_id(t)?, s)))
            .collect()
    }

    /// Removes events written before `before`, in every tenant; returns how many. A client
    /// that reconnects from an event older than that is sent a snapshot instead.
    pub async fn prune_events(&self, before: i64) -> Result<u64> {
        let mut pooled = self.pooled().await?;
        let mut conn: Conn<'_> = pooled.conn();
        Ok(match self.pool {
            Pool::Sqlite(_) => {
                conn.execute(Sql::new("DELETE FROM event WHERE created_at < $1").bind(before))
                    .await?
            }
            Pool::Postgres(_) => {
                let n: i64 = conn
                    .scalar(Sql::new("SELECT portico_prune_events($1)").bind(before))
                    .await?;
                u64::try_from(n).unwrap_or_default()
            }
        })
    }

    /// How this process hears that events were committed: on SQLite the store's own channel;
    /// on PostgreSQL a `LISTEN` connection, through [`Store::listen_events`].
    pub fn local_notices(&self) -> Option<broadcast::Receiver<Notice>> {
        match self.pool {
            Pool::Sqlite(_) => Some(self.bus.subscribe()),
            Pool::Postgres(_) => None,
        }
    }

    /// A connection listening on [`CHANNEL`] (PostgreSQL only).
    pub async fn listen_events(&self) -> Result<Option<PgListener>> {
        let Pool::Postgres(p) = &self.pool else {
            return Ok(None);
        };
        let mut l = PgListener::connect_with(p).await?;
        l.listen(CHANNEL).await?;
        Ok(Some(l))
    }
}

#[cfg(test)]
mod tests {
    use super::Notice;

    #[test]
    fn notices_read_back_from_their_payload() {
        assert_eq!(
            Notice::parse("globex:42"),
            Some(Notice {
                tenant_id: "globex".into(),
                seq: 42
            })
        );
        assert_eq!(Notice::parse("globex"), None);
        assert_eq!(Notice::parse("globex:x"), None);
    }
}
