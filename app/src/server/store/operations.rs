//! Operations: the queue of requested changes to instances. Submitting one is `submit.rs`;
//! here they are read, claimed by workers under an expiring lease, and finished exactly once
//! (with the instance's new state and the audit event, in one transaction).

use super::audit::insert_audit;
use super::instances::{instance_in, to_json};
use super::{new_id, parse_id, AuditEvent, Pool, Result, Sql, Store, StoreError, TenantScope};
use crate::domain::lifecycle::{apply, settle, Outcome};
use crate::domain::policy::{Denial, OperationRequest};
use crate::domain::AuditOutcome;
use crate::domain::{Endpoint, InstanceId, Operation, Role, Status, TenantId, UserId};

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
}

impl OperationRecord {
    pub fn operation(&self) -> Operation {
        self.request.operation()
    }
}

const OP_COLUMNS: &str = "operation_id, tenant_id, instance_id, request, state, requested_by, \
     requested_role, request_id, previous_status, attempts, lease_owner, last_error, \
     created_at, finished_at";

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

/// How a claimed operation ends (or goes back to the queue).
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    Succeeded {
        endpoints: Option<Vec<Endpoint>>,
    },
    /// Try again no earlier than `not_before`.
    Retry {
        error: String,
        not_before: i64,
    },
    Failed {
        error: String,
    },
    /// The policy refused it at execution time.
    Denied {
        reason: String,
    },
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

    /// Records how a claimed operation ended, fenced by the lease: a worker that lost its lease
    /// changes nothing (returns false), so each operation completes exactly once.
    pub async fn finish_operation(
        &self,
        op: &OperationRecord,
        worker: &str,
        finish: &Finish,
        now: i64,
    ) -> Result<bool> {
        let (state, error, not_before) = match finish {
            Finish::Succeeded { .. } => (OpState::Succeeded, None, 0),
            Finish::Retry { error, not_before } => {
                (OpState::Queued, Some(error.clone()), *not_before)
            }
            Finish::Failed { error } => (OpState::Failed, Some(error.clone()), 0),
            Finish::Denied { reason } => (OpState::Failed, Some(reason.clone()), 0),
        };
        let finished_at = matches!(state, OpState::Succeeded | OpState::Failed).then_some(now);
        let tenant = op.tenant_id.as_str();
        let mut tx = self.begin_in(tenant).await?;
        let n = tx
            .conn()
            .execute(
                Sql::new(
                    "UPDATE operation SET state = $3, last_error = COALESCE($4, last_error), \
                       not_before = $5, finished_at = $6, lease_owner = NULL, \
                       lease_expires_at = NULL, updated_at = $7 \
                     WHERE operation_id = $1 AND lease_owner = $2 AND state = 'running'",
                )
                .bind(&op.id)
                .bind(worker)
                .bind(state.as_str())
                .bind(error)
                .bind(not_before)
                .bind(finished_at)
                .bind(now),
            )
            .await?;
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        let mut inst = instance_in(&mut tx.conn(), tenant, &op.instance_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        let outcome = match finish {
            Finish::Retry { .. } => None,
            Finish::Succeeded { endpoints } => {
                let settled = settle(op.operation(), op.previous_status, &Outcome::Succeeded);
                (inst.status, inst.status_reason) = settled;
                apply(&mut inst.resources, &mut inst.parameters, &op.request);
                if let Some(e) = endpoints {
                    inst.endpoints = e.clone();
                }
                Some((AuditOutcome::Succeeded, None))
            }
            Finish::Failed { error } => {
                let failed = Outcome::Failed(error.clone());
                (inst.status, inst.status_reason) =
                    settle(op.operation(), op.previous_status, &failed);
                Some((AuditOutcome::Failed, Some(error.clone())))
            }
            Finish::Denied { reason } => {
                let denied = Outcome::Denied(reason.clone());
                (inst.status, inst.status_reason) =
                    settle(op.operation(), op.previous_status, &denied);
                Some((AuditOutcome::Denied, Some(reason.clone())))
            }
        };
        if let Some((outcome, reason)) = outcome {
            tx.conn()
                .execute(
                    Sql::new(
                        "UPDATE instance SET status = $3, status_reason = $4, replicas = $5, \
                           cpu_millicores = $6, memory_mib = $7, storage_gib = $8, \
                           parameters = $9, endpoints = $10, version = version + 1, \
                           updated_at = $11 \
                         WHERE tenant_id = $1 AND instance_id = $2",
                    )
                    .bind(tenant)
                    .bind(op.instance_id.as_str())
                    .bind(inst.status.as_str())
                    .bind(&inst.status_reason)
                    .bind(i64::from(inst.resources.replicas))
                    .bind(i64::from(inst.resources.cpu_millicores))
                    .bind(i64::from(inst.resources.memory_mib))
                    .bind(i64::from(inst.resources.storage_gib))
                    .bind(to_json(&inst.parameters)?)
                    .bind(to_json(&inst.endpoints)?)
                    .bind(now),
                )
                .await?;
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
            insert_audit(&mut tx.conn(), &event).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
