//! Operations: the queue of requested changes to instances. Submitting one is `submit.rs`;
//! here they are read, claimed by workers under an expiring lease, and finished exactly once
//! (with the instance's new state and the audit event, in one transaction).

use super::audit::insert_audit;
use super::events::{emit, NewEvent};
use super::instances::{instance_in, write_state};
use super::webhooks;
use super::{new_id, parse_id, AuditEvent, Pool, Result, Sql, Store, StoreError, TenantScope};
use crate::domain::lifecycle::{apply, settle, Observed, Outcome};
use crate::domain::policy::{Denial, OperationRequest};
use crate::domain::AuditOutcome;
use crate::domain::{InstanceId, Operation, Role, Status, TenantId, UserId};

/// The store's name for [`crate::domain::lifecycle::OperationState`].
pub use crate::domain::lifecycle::OperationState as OpState;

#[derive(Debug, Clone, PartialEq)]
pub struct OperationRecord {
    pub id: String,
    pub tenant_id: TenantId,
    pub instance_id: InstanceId,
    pub request: OperationRequest,
    pub state: OpState,
    pub requested_by: UserId,
    pub requested_role: Role,
    pub request_id: Option<String>,
    pub previous_status: Status,
    pub attempts: u32,
    pub lease_owner: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// When the control plane accepted it (202): from then on it is polled, not sent.
    pub dispatched_at: Option<i64>,
    /// The highest callback `seq` applied.
    pub last_seq: i64,
    /// The control plane's latest progress report.
    pub progress_message: Option<String>,
    pub progress_percent: Option<u8>,
}

impl OperationRecord {
    pub fn operation(&self) -> Operation {
        self.request.operation()
    }
}

const OP_COLUMNS: &str = "operation_id, tenant_id, instance_id, request, state, requested_by, \
     requested_role, request_id, previous_status, attempts, lease_owner, last_error, \
     created_at, finished_at, dispatched_at, last_seq, progress_message, progress_percent";

/// An `operation` row as stored: [`OP_COLUMNS`].
#[derive(sqlx::FromRow)]
struct OperationRow {
    operation_id: String,
    tenant_id: String,
    instance_id: String,
    request: String,
    state: String,
    requested_by: String,
    requested_role: String,
    request_id: Option<String>,
    previous_status: String,
    attempts: i64,
    lease_owner: Option<String>,
    last_error: Option<String>,
    created_at: i64,
    finished_at: Option<i64>,
    dispatched_at: Option<i64>,
    last_seq: i64,
    progress_message: Option<String>,
    progress_percent: Option<i32>,
}

impl TryFrom<OperationRow> for OperationRecord {
    type Error = StoreError;
    fn try_from(r: OperationRow) -> Result<OperationRecord> {
        let corrupt = |what: String| StoreError::Corrupt(what);
        Ok(OperationRecord {
            id: r.operation_id,
            tenant_id: parse_id(r.tenant_id)?,
            instance_id: parse_id(r.instance_id)?,
            request: serde_json::from_str(&r.request)
                .map_err(|e| corrupt(format!("request: {e}")))?,
            state: OpState::parse(&r.state).ok_or_else(|| corrupt(format!("state {}", r.state)))?,
            requested_by: parse_id(r.requested_by)?,
            requested_role: Role::parse(&r.requested_role)
                .ok_or_else(|| corrupt(format!("role {}", r.requested_role)))?,
            request_id: r.request_id,
            previous_status: Status::parse(&r.previous_status)
                .ok_or_else(|| corrupt(format!("status {}", r.previous_status)))?,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            lease_owner: r.lease_owner,
            last_error: r.last_error,
            created_at: r.created_at,
            finished_at: r.finished_at,
            dispatched_at: r.dispatched_at,
            last_seq: r.last_seq,
            progress_message: r.progress_message,
            progress_percent: r.progress_percent.and_then(|p| u8::try_from(p).ok()),
        })
    }
}

/// The answer to a submitted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// A new operation was queued.
    New {
        operation_id: String,
        instance_id: InstanceId,
    },
    /// The idempotency key was seen before with the same request: the first answer again.
    Repeated {
        operation_id: String,
        instance_id: InstanceId,
    },
}

impl Submitted {
    pub fn operation_id(&self) -> &str {
        match self {
            Submitted::New { operation_id, .. } | Submitted::Repeated { operation_id, .. } => {
                operation_id
            }
        }
    }
    pub fn instance_id(&self) -> &InstanceId {
        match self {
            Submitted::New { instance_id, .. } | Submitted::Repeated { instance_id, .. } => {
                instance_id
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Denied(Denial),
    #[error("not found")]
    NotFound,
    #[error("this idempotency key was already used for a different request")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SubmitError {
    fn from(e: sqlx::Error) -> Self {
        SubmitError::Store(StoreError::Database(e))
    }
}

/// How a claimed operation ends, waits for the control plane, or goes back to the queue.
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    /// Done, with the instance as the control plane reported it.
    Succeeded {
        observed: Observed,
    },
    /// The control plane took it (or still works on it): wait for a callback, and poll at
    /// `poll_at` if none came.
    Dispatched {
        poll_at: i64,
        message: Option<String>,
        percent: Option<u8>,
    },
    /// Try again no earlier than `not_before`.
    Retry {
        error: String,
        not_before: i64,
    },
    Failed {
        error: String,
        observed: Observed,
    },
    /// The policy refused it at execution time.
    Denied {
        reason: String,
    },
}

/// A callback's report about an operation, as the store applies it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reported {
    Progress {
        message: Option<String>,
        percent: Option<u8>,
    },
    Succeeded {
        observed: Observed,
    },
    Failed {
        error: String,
        observed: Observed,
    },
}

/// What a callback changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventApplied {
    /// No such operation.
    Unknown,
    /// A duplicate, out of order, or about a finished operation: nothing changed.
    Stale,
    Progress,
    Finished,
    /// A report about an instance changed it.
    Changed,
}

/// How an operation ended, for the instance and the audit log.
enum End<'a> {
    Succeeded(&'a Observed),
    Failed(&'a str, &'a Observed),
    Denied(&'a str),
}

impl<'a> End<'a> {
    /// Whether the operation succeeded, and its error if not.
    fn verdict(&self) -> (bool, Option<&'a str>) {
        match *self {
            End::Succeeded(_) => (true, None),
            End::Failed(e, _) | End::Denied(e) => (false, Some(e)),
        }
    }
}

impl Store {
    pub async fn get_operation(
        &self,
        scope: &TenantScope,
        id: &str,
    ) -> Result<Option<OperationRecord>> {
        let sql = format!(
            "SELECT {OP_COLUMNS} FROM operation WHERE tenant_id = $1 AND operation_id = $2"
        );
        self.one_operation(
            scope,
            Sql::new(sql).bind(scope.tenant_id().as_str()).bind(id),
        )
        .await
    }

    /// The newest operation on an instance.
    pub async fn latest_operation(
        &self,
        scope: &TenantScope,
        instance: &InstanceId,
    ) -> Result<Option<OperationRecord>> {
        let sql = format!(
            "SELECT {OP_COLUMNS} FROM operation WHERE tenant_id = $1 AND instance_id = $2 \
             ORDER BY created_at DESC, operation_id DESC LIMIT 1"
        );
        let q = Sql::new(sql)
            .bind(scope.tenant_id().as_str())
            .bind(instance.as_str());
        self.one_operation(scope, q).await
    }

    /// An instance's operations, newest first, `limit` at a time: those older than `before`
    /// (a `(created_at, operation id)` from the previous page) when given.
    pub async fn operation_history(
        &self,
        scope: &TenantScope,
        instance: &InstanceId,
        before: Option<(i64, String)>,
        limit: usize,
    ) -> Result<super::Slice<OperationRecord>> {
        let tenant = scope.tenant_id().as_str();
        let (at, id) = before.unwrap_or((i64::MAX, String::new()));
        let mut tx = self.begin_in(tenant).await?;
        let rows: Vec<OperationRow> = tx
            .conn()
            .fetch_all(
                Sql::new(format!(
                    "SELECT {OP_COLUMNS} FROM operation WHERE tenant_id = $1 AND instance_id = $2 \
                       AND (created_at < $3 OR (created_at = $3 AND operation_id < $4)) \
                     ORDER BY created_at DESC, operation_id DESC LIMIT $5"
                ))
                .bind(tenant)
                .bind(instance.as_str())
                .bind(at)
                .bind(id)
                .bind(super::page::read_limit(limit)),
            )
            .await?;
        tx.commit().await?;
        let rows = rows
            .into_iter()
            .map(OperationRecord::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(super::Slice::from_read(rows, limit, false))
    }

    async fn one_operation(&self, scope: &TenantScope, q: Sql) -> Result<Option<OperationRecord>> {
        let mut tx = self.begin_in(scope.tenant_id().as_str()).await?;
        let row: Option<OperationRow> = tx.conn().fetch_optional(q).await?;
        tx.commit().await?;
        row.map(OperationRecord::try_from).transpose()
    }

    /// The tenant's queued and running operations, oldest first (at most one per instance).
    pub async fn operations_in_flight(&self, scope: &TenantScope) -> Result<Vec<OperationRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let rows: Vec<OperationRow> = tx
            .conn()
            .fetch_all(
                Sql::new(format!(
                    "SELECT {OP_COLUMNS} FROM operation WHERE tenant_id = $1 \
                       AND state IN ('queued', 'running') ORDER BY created_at, operation_id"
                ))
                .bind(tenant),
            )
            .await?;
        tx.commit().await?;
        rows.into_iter().map(OperationRecord::try_from).collect()
    }

    /// Claims the oldest runnable operation: queued and due, or running under an expired lease
    /// (its worker died). Atomic on both engines; PostgreSQL workers skip rows others hold.
    pub async fn claim_operation(
        &self,
        worker: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<Option<OperationRecord>> {
        // PostgreSQL's version, which also skips rows other workers hold, is a SECURITY DEFINER
        // function: the claim is the one write that must look across tenants.
        let sql = match self.pool {
            Pool::Postgres(_) => {
                format!("SELECT {OP_COLUMNS} FROM portico_claim_operation($1, $2, $3)")
            }
            Pool::Sqlite(_) => format!(
                "UPDATE operation SET state = 'running', lease_owner = $1, lease_expires_at = $2, \
                   attempts = attempts + 1, updated_at = $3 \
                 WHERE operation_id = ( \
                   SELECT operation_id FROM operation \
                   WHERE (state = 'queued' AND not_before <= $3) \
                     OR (state = 'running' AND lease_expires_at < $3) \
                   ORDER BY created_at, operation_id LIMIT 1) \
                 RETURNING {OP_COLUMNS}"
            ),
        };
        let row: Option<OperationRow> = self
            .pooled()
            .await?
            .conn()
            .fetch_optional(Sql::new(sql).bind(worker).bind(now + lease_ms).bind(now))
            .await?;
        row.map(OperationRecord::try_from).transpose()
    }

    /// Extends a lease the worker still holds; false when it has lost it.
    pub async fn renew_lease(
        &self,
        op: &OperationRecord,
        worker: &str,
        until: i64,
    ) -> Result<bool> {
        let tenant = op.tenant_id.as_str();
        let mut tx = self.begin_in(tenant).await?;
        let n = tx
            .conn()
            .execute(
                Sql::new(
                    "UPDATE operation SET lease_expires_at = $4 \
                     WHERE tenant_id = $1 AND operation_id = $2 AND lease_owner = $3 \
                       AND state = 'running'",
                )
                .bind(tenant)
                .bind(&op.id)
                .bind(worker)
                .bind(until),
            )
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Records how a claimed operation ended (or that the control plane took it), fenced by the
    /// lease: a worker that lost its lease, or whose operation a callback already finished,
    /// changes nothing (returns false), so each operation completes exactly once.
    pub async fn finish_operation(
        &self,
        op: &OperationRecord,
        worker: &str,
        finish: &Finish,
        now: i64,
    ) -> Result<bool> {
        let tenant = op.tenant_id.as_str();
        let mut tx = self.begin_in(tenant).await?;
        let fenced = "WHERE operation_id = $1 AND lease_owner = $2 AND state = 'running'";
        let q = match finish {
            Finish::Dispatched {
                poll_at,
                message,
                percent,
            } => Sql::new(format!(
                "UPDATE operation SET lease_owner = NULL, lease_expires_at = $3, \
                   dispatched_at = COALESCE(dispatched_at, $4), \
                   progress_message = COALESCE($5, progress_message), \
                   progress_percent = COALESCE($6, progress_percent), updated_at = $4 {fenced}"
            ))
            .bind(&op.id)
            .bind(worker)
            .bind(*poll_at)
            .bind(now)
            .bind(message.clone())
            .bind(percent.map(i64::from)),
            Finish::Retry { error, not_before } => Sql::new(format!(
                "UPDATE operation SET state = 'queued', last_error = $3, not_before = $4, \
                   lease_owner = NULL, lease_expires_at = NULL, updated_at = $5 {fenced}"
            ))
            .bind(&op.id)
            .bind(worker)
            .bind(error)
            .bind(*not_before)
            .bind(now),
            Finish::Succeeded { .. } | Finish::Failed { .. } | Finish::Denied { .. } => {
                let (state, error) = match finish {
                    Finish::Succeeded { .. } => (OpState::Succeeded, None),
                    Finish::Failed { error, .. } => (OpState::Failed, Some(error.clone())),
                    Finish::Denied { reason } => (OpState::Failed, Some(reason.clone())),
                    _ => unreachable!("matched above"),
                };
                Sql::new(format!(
                    "UPDATE operation SET state = $3, last_error = COALESCE($4, last_error), \
                       finished_at = $5, lease_owner = NULL, lease_expires_at = NULL, \
                       updated_at = $5 {fenced}"
                ))
                .bind(&op.id)
                .bind(worker)
                .bind(state.as_str())
                .bind(error)
                .bind(now)
            }
        };
        if tx.conn().execute(q).await? != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let end = match finish {
            Finish::Dispatched { .. } | Finish::Retry { .. } => None,
            Finish::Succeeded { observed } => Some(End::Succeeded(observed)),
            Finish::Failed { error, observed } => Some(End::Failed(error, observed)),
            Finish::Denied { reason } => Some(End::Denied(reason)),
        };
        if let Some(end) = end {
            settle_instance(&mut tx, op, &end, now).await?;
            let (ok, error) = end.verdict();
            webhooks::operation_ended(&mut tx, op, ok, error, now).await?;
        }
        let changed = NewEvent::operation(op.instance_id.as_str(), &op.id);
        emit(&mut tx, tenant, changed, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The tenant of an operation, looked up before any tenant is known (a callback names only
    /// the operation, and is verified before this is asked).
    pub async fn operation_tenant(&self, operation_id: &str) -> Result<Option<TenantId>> {
        let sql = self.per_engine(
            "SELECT (SELECT tenant_id FROM operation WHERE operation_id = $1)",
            "SELECT portico_operation_tenant($1)",
        );
        let tenant: Option<String> = self
            .pooled()
            .await?
            .conn()
            .scalar(Sql::new(sql).bind(operation_id))
            .await?;
        tenant.map(parse_id).transpose()
    }

    /// Applies a control plane's callback numbered `seq`. Only a `seq` above the last applied
    /// one, about an operation not yet finished, changes anything; a final report settles the
    /// instance and audits the outcome, as the worker would have, in one transaction.
    pub async fn record_operation_event(
        &self,
        operation_id: &str,
        seq: i64,
        report: &Reported,
        now: i64,
    ) -> Result<EventApplied> {
        let Some(tenant) = self.operation_tenant(operation_id).await? else {
            return Ok(EventApplied::Unknown);
        };
        let tenant = tenant.as_str();
        let mut tx = self.begin_in(tenant).await?;
        // Callbacks about one operation take turns: the row is locked until this one commits.
        let lock = self.per_engine("", " FOR UPDATE");
        let row: Option<OperationRow> = tx
            .conn()
            .fetch_optional(
                Sql::new(format!(
                    "SELECT {OP_COLUMNS} FROM operation \
                     WHERE tenant_id = $1 AND operation_id = $2{lock}"
                ))
                .bind(tenant)
                .bind(operation_id),
            )
            .await?;
        let Some(op) = row.map(OperationRecord::try_from).transpose()? else {
            tx.rollback().await?;
            return Ok(EventApplied::Unknown);
        };
        if op.state.is_finished() || seq <= op.last_seq {
            tx.rollback().await?;
            return Ok(EventApplied::Stale);
        }
        let applied = match report {
            Reported::Progress { message, percent } => {
                tx.conn()
                    .execute(
                        Sql::new(
                            "UPDATE operation SET last_seq = $2, \
                               progress_message = COALESCE($3, progress_message), \
                               progress_percent = COALESCE($4, progress_percent), updated_at = $5 \
                             WHERE operation_id = $1",
                        )
                        .bind(operation_id)
                        .bind(seq)
                        .bind(message.clone())
                        .bind(percent.map(i64::from))
                        .bind(now),
                    )
                    .await?;
                EventApplied::Progress
            }
            Reported::Succeeded { .. } | Reported::Failed { .. } => {
                let (state, error, end) = match report {
                    Reported::Succeeded { observed } => {
                        (OpState::Succeeded, None, End::Succeeded(observed))
                    }
                    Reported::Failed { error, observed } => (
                        OpState::Failed,
                        Some(error.clone()),
                        End::Failed(error, observed),
                    ),
                    Reported::Progress { .. } => unreachable!("matched above"),
                };
                tx.conn()
                    .execute(
                        Sql::new(
                            "UPDATE operation SET state = $2, last_seq = $3, \
                               last_error = COALESCE($4, last_error), finished_at = $5, \
                               lease_owner = NULL, lease_expires_at = NULL, updated_at = $5 \
                             WHERE operation_id = $1",
                        )
                        .bind(operation_id)
                        .bind(state.as_str())
                        .bind(seq)
                        .bind(error)
                        .bind(now),
                    )
                    .await?;
                settle_instance(&mut tx, &op, &end, now).await?;
                let (ok, error) = end.verdict();
                webhooks::operation_ended(&mut tx, &op, ok, error, now).await?;
                EventApplied::Finished
            }
        };
        let changed = NewEvent::operation(op.instance_id.as_str(), operation_id);
        emit(&mut tx, tenant, changed, now).await?;
        tx.commit().await?;
        Ok(applied)
    }

    /// Forgets a message's id: it could not be applied, and its retry must not be a replay.
    pub async fn forget_message_id(&self, id: &str) -> Result<()> {
        self.pooled()
            .await?
            .conn()
            .execute(Sql::new("DELETE FROM control_plane_message WHERE message_id = $1").bind(id))
            .await?;
        Ok(())
    }

    /// Remembers a signed message's `webhook-id`; false when it was seen before (a replay).
    /// Ids older than `keep_ms` are forgotten: their timestamps are refused by then anyway.
    pub async fn accept_message_id(&self, id: &str, now: i64, keep_ms: i64) -> Result<bool> {
        let mut pooled = self.pooled().await?;
        let mut conn = pooled.conn();
        conn.execute(
            Sql::new("DELETE FROM control_plane_message WHERE received_at < $1")
                .bind(now - keep_ms),
        )
        .await?;
        let n = conn
            .execute(
                Sql::new(
                    "INSERT INTO control_plane_message (message_id, received_at) VALUES ($1, $2) \
                     ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(id)
                .bind(now),
            )
            .await?;
        Ok(n == 1)
    }
}

/// Settles the instance of an ended operation inside `tx`: its status along the state machine
/// (or as the control plane reported it), the request's changes on success, what the control
/// plane observed, and the audit entry of the outcome.
async fn settle_instance(
    tx: &mut super::Tx,
    op: &OperationRecord,
    end: &End<'_>,
    now: i64,
) -> Result<()> {
    let tenant = op.tenant_id.as_str();
    let mut inst = instance_in(&mut tx.conn(), tenant, &op.instance_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?;
    let (outcome, reason, observed) = match end {
        End::Succeeded(observed) => {
            (inst.status, inst.status_reason) =
                settle(op.operation(), op.previous_status, &Outcome::Succeeded);
            apply(&mut inst.resources, &mut inst.parameters, &op.request);
            (AuditOutcome::Succeeded, None, Some(*observed))
        }
        End::Failed(error, observed) => {
            let failed = Outcome::Failed((*error).to_owned());
            (inst.status, inst.status_reason) = settle(op.operation(), op.previous_status, &failed);
            (
                AuditOutcome::Failed,
                Some((*error).to_owned()),
                Some(*observed),
            )
        }
        End::Denied(reason) => {
            let denied = Outcome::Denied((*reason).to_owned());
            (inst.status, inst.status_reason) = settle(op.operation(), op.previous_status, &denied);
            (AuditOutcome::Denied, Some((*reason).to_owned()), None)
        }
    };
    // What the control plane says it did wins over what the state machine expects.
    if let Some(seen) = observed {
        inst.observe(seen, now);
    }
    write_state(tx, &inst, now).await?;
    let event = AuditEvent {
        id: new_id(),
        tenant_id: tenant.to_owned(),
        user_id: Some(op.requested_by.to_string()),
        actor_email: None,
        role: Some(op.requested_role.as_str().into()),
        instance_id: Some(op.instance_id.to_string()),
        instance_name: Some(inst.name.clone()),
        operation_id: Some(op.id.clone()),
        operation: Some(op.operation().as_str().into()),
        parameters: "{}".into(),
        outcome: outcome.into(),
        reason,
        request_id: op.request_id.clone(),
        created_at: now,
    };
    insert_audit(tx, &event).await?;
    Ok(())
}

/// How many operations of one kind are in one state, across every tenant (for metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationCount {
    pub kind: String,
    pub state: String,
    pub operations: i64,
    /// When the oldest of them was requested (ms since the epoch).
    pub oldest: i64,
}

impl Store {
    /// Operations by kind and state, in every tenant: numbers only.
    pub async fn operation_counts(&self) -> Result<Vec<OperationCount>> {
        let sql = self.per_engine(
            "SELECT kind, state, count(*), min(created_at) FROM operation \
             GROUP BY kind, state ORDER BY kind, state",
            "SELECT kind, state, operations, oldest FROM portico_operation_counts() \
             ORDER BY kind, state",
        );
        let rows: Vec<(String, String, i64, i64)> =
            self.pooled().await?.conn().fetch_all(Sql::new(sql)).await?;
        Ok(rows
            .into_iter()
            .map(|(kind, state, operations, oldest)| OperationCount {
                kind,
                state,
                operations,
                oldest,
            })
            .collect())
    }
}
