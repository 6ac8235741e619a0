//! Operations and the audit log: requests recorded atomically with the instance's transitional
//! status, claimed by workers under an expiring lease, and finished exactly once.

use super::{
    conflict, instance_from_row, new_id, now_millis, parse_id, BeginIn, InstanceRecord, Pool,
    Result, Store, StoreError, TenantScope, INSTANCE_COLUMNS,
};
/// The store's name for [`crate::domain::lifecycle::OperationState`].
pub use crate::domain::lifecycle::OperationState as OpState;
use crate::domain::lifecycle::{apply, settle, transition, Outcome};
use crate::domain::policy::{Denial, OperationRequest};
use crate::domain::AuditOutcome;
use crate::domain::{Endpoint, InstanceId, Operation, Role, Status, TenantId, UserId};
use serde::{Deserialize, Serialize};
use sqlx::Row;

const LIVE_ON_PLAN: &str =
    "SELECT COUNT(*) FROM instance WHERE tenant_id = $1 AND plan_id = $2 AND status <> 'deleted'";

/// Who asks, as the audit log records them.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub request_id: Option<String>,
}

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

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: String,
    pub tenant_id: String,
    pub user_id: Option<String>,
    pub actor_email: Option<String>,
    pub role: Option<String>,
    pub instance_id: Option<String>,
    pub instance_name: Option<String>,
    pub operation_id: Option<String>,
    pub operation: Option<String>,
    /// JSON, secrets redacted.
    pub parameters: String,
    /// An [`AuditOutcome`]'s word (rows are read back as stored).
    pub outcome: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub instance_id: Option<String>,
    pub operation: Option<String>,
    pub user: Option<String>,
    pub outcome: Option<String>,
}

const OP_COLUMNS: &str = "operation_id, tenant_id, instance_id, request, state, requested_by, requested_role, request_id, \
    previous_status, attempts, lease_owner, last_error, created_at, finished_at";

fn op_from_row<R>(r: &R) -> Result<OperationRecord>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let request: String = r.try_get("request")?;
    let state: String = r.try_get("state")?;
    let role: String = r.try_get("requested_role")?;
    let prev: String = r.try_get("previous_status")?;
    let attempts: i64 = r.try_get("attempts")?;
    Ok(OperationRecord {
        id: r.try_get("operation_id")?,
        tenant_id: parse_id(r.try_get("tenant_id")?)?,
        instance_id: parse_id(r.try_get("instance_id")?)?,
        request: serde_json::from_str(&request)
            .map_err(|e| StoreError::Corrupt(format!("request: {e}")))?,
        state: OpState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("state {state}")))?,
        requested_by: parse_id(r.try_get("requested_by")?)?,
        requested_role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("role {role}")))?,
        request_id: r.try_get("request_id")?,
        previous_status: Status::parse(&prev)
            .ok_or_else(|| StoreError::Corrupt(format!("status {prev}")))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        lease_owner: r.try_get("lease_owner")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn audit_from_row<R>(r: &R) -> Result<AuditEvent>
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AuditEvent {
        id: r.try_get("audit_event_id")?,
        tenant_id: r.try_get("tenant_id")?,
        user_id: r.try_get("user_id")?,
        actor_email: r.try_get("actor_email")?,
        role: r.try_get("role")?,
        instance_id: r.try_get("instance_id")?,
        instance_name: r.try_get("instance_name")?,
        operation_id: r.try_get("operation_id")?,
        operation: r.try_get("operation")?,
        parameters: r.try_get("parameters")?,
        outcome: r.try_get("outcome")?,
        reason: r.try_get("reason")?,
        request_id: r.try_get("request_id")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The most bytes of an audit event's parameters or reason that are stored: a denied request
/// may carry a body of hundreds of kilobytes, which must not become the audit log's.
pub const AUDIT_TEXT_MAX: usize = 2048;

/// Denied requests of one user recorded per minute; further ones are refused unrecorded.
pub const DENIALS_AUDITED_PER_MINUTE: i64 = 20;

/// `s`, cut to at most [`AUDIT_TEXT_MAX`] bytes (on a character boundary) and marked when cut.
pub fn bounded_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= AUDIT_TEXT_MAX {
        return s.into();
    }
    let mark = format!("… [truncated from {} bytes]", s.len());
    format!("{}{mark}", start_of(s, AUDIT_TEXT_MAX - mark.len())).into()
}

/// The longest start of `s` of at most `max` bytes that ends on a character boundary.
fn start_of(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The parameters' JSON as stored: whole when small, else still JSON, saying it was cut and
/// keeping its start.
pub fn bounded_parameters(json: &str) -> std::borrow::Cow<'_, str> {
    if json.len() <= AUDIT_TEXT_MAX {
        return json.into();
    }
    let start = start_of(json, AUDIT_TEXT_MAX / 2);
    serde_json::json!({ "truncated_from_bytes": json.len(), "start": start })
        .to_string()
        .into()
}

/// Inserts one audit event with any executor (pool or open transaction).
macro_rules! insert_audit {
    ($exec:expr, $e:expr) => {{
        let e: &AuditEvent = $e;
        sqlx::query(
            "INSERT INTO audit_event (audit_event_id, tenant_id, user_id, actor_email, role, instance_id, instance_name, \
               operation_id, operation, parameters, outcome, reason, request_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&e.id)
        .bind(&e.tenant_id)
        .bind(&e.user_id)
        .bind(&e.actor_email)
        .bind(&e.role)
        .bind(&e.instance_id)
        .bind(&e.instance_name)
        .bind(&e.operation_id)
        .bind(&e.operation)
        .bind($crate::server::store::ops::bounded_parameters(&e.parameters).as_ref())
        .bind(&e.outcome)
        .bind(e.reason.as_deref().map($crate::server::store::ops::bounded_text))
        .bind(&e.request_id)
        .bind(e.created_at)
        .execute($exec)
        .await
        .map(|r| r.rows_affected())
    }};
}

/// An idempotency key as stored: each user's keys are their own, so a key another member used
/// (seen in a shared screen or a log) answers nothing but this user's own requests.
fn user_key(actor: &Actor, key: &str) -> String {
    format!("{}/{key}", actor.user_id)
}

/// The operation an idempotency key was first used for: (operation id, instance id, request).
macro_rules! prior_with_key {
    ($exec:expr, $tenant:expr, $key:expr) => {{
        let prior: Option<(String, String, String)> = sqlx::query_as(
            "SELECT operation_id, instance_id, request FROM operation WHERE tenant_id = $1 AND idempotency_key = $2",
        )
        .bind($tenant)
        .bind($key)
        .fetch_optional($exec)
        .await?;
        prior
    }};
}

impl AuditEvent {
    /// An event about `actor` acting on an instance; `parameters` must already be redacted.
    pub fn by(
        scope: &TenantScope,
        actor: &Actor,
        instance: Option<(&InstanceId, &str)>,
        operation: Operation,
        parameters: String,
        outcome: AuditOutcome,
        reason: Option<String>,
    ) -> AuditEvent {
        AuditEvent {
            id: new_id(),
            tenant_id: scope.tenant_id().to_string(),
            user_id: Some(actor.user_id.to_string()),
            actor_email: Some(actor.email.clone()),
            role: Some(actor.role.as_str().into()),
            instance_id: instance.map(|(id, _)| id.to_string()),
            instance_name: instance.map(|(_, n)| n.to_owned()),
            operation_id: None,
            operation: Some(operation.as_str().into()),
            parameters,
            outcome: outcome.into(),
            reason,
            request_id: actor.request_id.clone(),
            created_at: now_millis(),
        }
    }
}

impl Store {
    pub async fn record_audit(&self, e: &AuditEvent) -> Result<()> {
        scoped!(self, &e.tenant_id, |tx| insert_audit!(&mut *tx, e)?)?;
        Ok(())
    }

    /// The tenant's audit log, newest first.
    pub async fn list_audit(
        &self,
        scope: &TenantScope,
        f: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        let page = self.audit_page(scope, f, None, limit).await?;
        Ok(page.into_iter().map(|(_, e)| e).collect())
    }

    /// One page of the tenant's audit log, newest first, from just before the position
    /// `before` (the start when `None`); each event with its position, the next page's
    /// `before`.
    pub async fn audit_page(
        &self,
        scope: &TenantScope,
        f: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(i64, AuditEvent)>> {
        let tenant = scope.tenant_id().as_str();
        scoped!(self, tenant, |tx| sqlx::query(
            "SELECT * FROM audit_event WHERE tenant_id = $1 \
               AND ($2 IS NULL OR instance_id = $2) AND ($3 IS NULL OR operation = $3) \
               AND ($4 IS NULL OR actor_email = $4) AND ($5 IS NULL OR outcome = $5) \
               AND ($7 IS NULL OR audit_seq < $7) \
             ORDER BY audit_seq DESC LIMIT $6"
        )
        .bind(tenant)
        .bind(&f.instance_id)
        .bind(&f.operation)
        .bind(&f.user)
        .bind(&f.outcome)
        .bind(limit)
        .bind(before)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| -> Result<(i64, AuditEvent)> { Ok((r.try_get("audit_seq")?, audit_from_row(r)?)) })
        .collect::<Result<Vec<_>>>()?)
    }

    /// The member's current role in the tenant, if still a member.
    pub async fn role_of(&self, scope: &TenantScope, user: &UserId) -> Result<Option<Role>> {
        let tenant = scope.tenant_id().as_str();
        let role: Option<String> = scoped!(self, tenant, |tx| sqlx::query_scalar(
            "SELECT role FROM membership WHERE tenant_id = $1 AND user_id = $2"
        )
        .bind(tenant)
        .bind(user.as_str())
        .fetch_optional(&mut *tx)
        .await?)?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    pub async fn get_operation(
        &self,
        scope: &TenantScope,
        id: &str,
    ) -> Result<Option<OperationRecord>> {
        let tenant = scope.tenant_id().as_str();
        scoped!(self, tenant, |tx| sqlx::query(&format!(
            "SELECT {OP_COLUMNS} FROM operation WHERE tenant_id = $1 AND operation_id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(op_from_row)
        .transpose()?)
    }

    /// The newest operation on an instance.
    pub async fn latest_operation(
        &self,
        scope: &TenantScope,
        instance: &InstanceId,
    ) -> Result<Option<OperationRecord>> {
        let tenant = scope.tenant_id().as_str();
        scoped!(self, tenant, |tx| sqlx::query(&format!(
            "SELECT {OP_COLUMNS} FROM operation WHERE tenant_id = $1 AND instance_id = $2 \
             ORDER BY created_at DESC, operation_id DESC LIMIT 1"
        ))
        .bind(tenant)
        .bind(instance.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(op_from_row)
        .transpose()?)
    }

    /// How many live (not deleted) instances the tenant holds on a plan, as quotas count them.
    pub async fn count_live_instances(&self, scope: &TenantScope, plan_id: &str) -> Result<u32> {
        let tenant = scope.tenant_id().as_str();
        let n: i64 = scoped!(self, tenant, |tx| sqlx::query_scalar(LIVE_ON_PLAN)
            .bind(tenant)
            .bind(plan_id)
            .fetch_one(&mut *tx)
            .await?)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The tenant's queued and running operations, oldest first (at most one per instance).
    pub async fn operations_in_flight(&self, scope: &TenantScope) -> Result<Vec<OperationRecord>> {
        let tenant = scope.tenant_id().as_str();
        scoped!(self, tenant, |tx| sqlx::query(&format!(
            "SELECT {OP_COLUMNS} FROM operation WHERE tenant_id = $1 \
               AND state IN ('queued', 'running') ORDER BY created_at, operation_id"
        ))
        .bind(tenant)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(op_from_row)
        .collect::<Result<Vec<_>>>()?)
    }

    /// Records a change to an existing instance: in one transaction, locks the instance,
    /// answers a repeated idempotency key, asks `decide` (the policy, given the instance and
    /// whether another operation is in flight), then writes the operation, the transitional
    /// status and the audit event. A denial changes nothing but is audited.
    #[allow(clippy::too_many_arguments)]
    pub async fn submit_change(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        instance_id: &InstanceId,
        request: &OperationRequest,
        redacted: String,
        idempotency_key: Option<&str>,
        decide: impl FnOnce(&InstanceRecord, bool) -> std::result::Result<(), Denial>,
    ) -> std::result::Result<Submitted, SubmitError> {
        let tenant = scope.tenant_id().as_str();
        let key = idempotency_key.map(|k| user_key(actor, k));
        let idempotency_key = key.as_deref();
        let request_json =
            serde_json::to_string(request).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let op = request.operation();
        let now = now_millis();
        let operation_id = new_id();
        let outcome: std::result::Result<Submitted, SubmitError> = on_pool!(self, |p| {
            async {
                let mut tx = p.begin_in(tenant).await?;
                // A write first: takes the instance's row lock (PostgreSQL) or the database's
                // write lock (SQLite) before anything is read, so concurrent requests queue here.
                let locked = sqlx::query("UPDATE instance SET version = version WHERE tenant_id = $1 AND instance_id = $2")
                    .bind(tenant)
                    .bind(instance_id.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if locked == 0 {
                    return Err(SubmitError::NotFound);
                }
                if let Some(key) = idempotency_key {
                    let prior = prior_with_key!(&mut *tx, tenant, key);
                    if let Some((prior_id, prior_instance, prior_request)) = prior {
                        return if prior_instance == instance_id.as_str() && prior_request == request_json {
                            Ok(Submitted::Repeated { operation_id: prior_id, instance_id: instance_id.clone() })
                        } else {
                            Err(SubmitError::KeyReused)
                        };
                    }
                }
                let row = sqlx::query(&format!("SELECT {INSTANCE_COLUMNS} FROM instance WHERE tenant_id = $1 AND instance_id = $2"))
                    .bind(tenant)
                    .bind(instance_id.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                let instance = instance_from_row(&row)?;
                let in_flight: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM operation WHERE instance_id = $1 AND state IN ('queued', 'running')",
                )
                .bind(instance_id.as_str())
                .fetch_one(&mut *tx)
                .await?;
                if let Err(denial) = decide(&instance, in_flight > 0) {
                    tx.rollback().await?;
                    return Err(SubmitError::Denied(denial));
                }
                sqlx::query(
                    "INSERT INTO operation (operation_id, tenant_id, instance_id, kind, request, state, requested_by, \
                       requested_role, request_id, idempotency_key, previous_status, attempts, not_before, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, 0, 0, $11, $11)",
                )
                .bind(&operation_id)
                .bind(tenant)
                .bind(instance_id.as_str())
                .bind(op.as_str())
                .bind(&request_json)
                .bind(actor.user_id.as_str())
                .bind(actor.role.as_str())
                .bind(&actor.request_id)
                .bind(idempotency_key)
                .bind(instance.status.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| match conflict("")(e) {
                    StoreError::Conflict(_) => SubmitError::KeyReused,
                    other => SubmitError::Store(other),
                })?;
                sqlx::query("UPDATE instance SET status = $3, status_reason = NULL, version = version + 1, updated_at = $4 WHERE tenant_id = $1 AND instance_id = $2")
                    .bind(tenant)
                    .bind(instance_id.as_str())
                    .bind(transition(op).during.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let mut event = AuditEvent::by(scope, actor, Some((instance_id, &instance.name)), op, redacted.clone(), AuditOutcome::Requested, None);
                event.operation_id = Some(operation_id.clone());
                insert_audit!(&mut *tx, &event)?;
                tx.commit().await?;
                Ok(Submitted::New { operation_id: operation_id.clone(), instance_id: instance_id.clone() })
            }
            .await
        });
        self.audit_denial(scope, actor, Some(instance_id), op, &redacted, &outcome)
            .await?;
        outcome
    }

    /// Records a create: in one transaction, serialises on the tenant, answers a repeated key,
    /// asks `decide` with the tenant's live instance count on the plan, then inserts the
    /// instance (deploying), the operation and the audit event.
    #[allow(clippy::too_many_arguments)]
    pub async fn submit_create(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        instance: &InstanceRecord,
        request: &OperationRequest,
        redacted: String,
        idempotency_key: Option<&str>,
        decide: impl FnOnce(u32) -> std::result::Result<(), Denial>,
    ) -> std::result::Result<Submitted, SubmitError> {
        let tenant = scope.tenant_id().as_str();
        let key = idempotency_key.map(|k| user_key(actor, k));
        let idempotency_key = key.as_deref();
        let request_json =
            serde_json::to_string(request).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = now_millis();
        let operation_id = new_id();
        let params = serde_json::to_string(&instance.parameters)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let endpoints = serde_json::to_string(&instance.endpoints)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let outcome: std::result::Result<Submitted, SubmitError> = on_pool!(self, |p| {
            async {
                let mut tx = p.begin_in(tenant).await?;
                sqlx::query("UPDATE tenant SET updated_at = updated_at WHERE tenant_id = $1")
                    .bind(tenant)
                    .execute(&mut *tx)
                    .await?;
                if let Some(key) = idempotency_key {
                    let prior = prior_with_key!(&mut *tx, tenant, key);
                    if let Some((prior_id, prior_instance, prior_request)) = prior {
                        return if prior_request == request_json {
                            Ok(Submitted::Repeated { operation_id: prior_id, instance_id: parse_id(prior_instance)? })
                        } else {
                            Err(SubmitError::KeyReused)
                        };
                    }
                }
                let existing: i64 = sqlx::query_scalar(LIVE_ON_PLAN)
                .bind(tenant)
                .bind(&instance.plan_id)
                .fetch_one(&mut *tx)
                .await?;
                if let Err(denial) = decide(u32::try_from(existing).unwrap_or(u32::MAX)) {
                    tx.rollback().await?;
                    return Err(SubmitError::Denied(denial));
                }
                sqlx::query(&format!(
                    "INSERT INTO instance ({INSTANCE_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'deploying', NULL, $7, $8, $9, $10, $11, $12, FALSE, 1, $13, $13)"
                ))
                .bind(instance.id.as_str())
                .bind(tenant)
                .bind(&instance.name)
                .bind(&instance.plan_id)
                .bind(&instance.environment)
                .bind(&instance.region)
                .bind(i64::from(instance.resources.replicas))
                .bind(i64::from(instance.resources.cpu_millicores))
                .bind(i64::from(instance.resources.memory_mib))
                .bind(i64::from(instance.resources.storage_gib))
                .bind(&params)
                .bind(&endpoints)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(|e| match conflict("")(e) {
                    StoreError::Conflict(_) => SubmitError::Denied(Denial::InvalidName {
                        why: "an instance with this name already exists".into(),
                    }),
                    other => SubmitError::Store(other),
                })?;
                sqlx::query(
                    "INSERT INTO operation (operation_id, tenant_id, instance_id, kind, request, state, requested_by, \
                       requested_role, request_id, idempotency_key, previous_status, attempts, not_before, created_at, updated_at) \
                     VALUES ($1, $2, $3, 'create', $4, 'queued', $5, $6, $7, $8, 'deploying', 0, 0, $9, $9)",
                )
                .bind(&operation_id)
                .bind(tenant)
                .bind(instance.id.as_str())
                .bind(&request_json)
                .bind(actor.user_id.as_str())
                .bind(actor.role.as_str())
                .bind(&actor.request_id)
                .bind(idempotency_key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let mut event = AuditEvent::by(scope, actor, Some((&instance.id, &instance.name)), Operation::Create, redacted.clone(), AuditOutcome::Requested, None);
                event.operation_id = Some(operation_id.clone());
                insert_audit!(&mut *tx, &event)?;
                tx.commit().await?;
                Ok(Submitted::New { operation_id: operation_id.clone(), instance_id: instance.id.clone() })
            }
            .await
        });
        self.audit_denial(scope, actor, None, Operation::Create, &redacted, &outcome)
            .await?;
        outcome
    }

    async fn audit_denial(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        instance: Option<&InstanceId>,
        op: Operation,
        redacted: &str,
        outcome: &std::result::Result<Submitted, SubmitError>,
    ) -> Result<()> {
        let reason = match outcome {
            Err(SubmitError::Denied(d)) => d.to_string(),
            Err(SubmitError::KeyReused) => SubmitError::KeyReused.to_string(),
            _ => return Ok(()),
        };
        // A member sending denied requests in a loop must not fill the log.
        let since = now_millis() - 60_000;
        let tenant = scope.tenant_id().as_str();
        let recent: i64 = scoped!(self, tenant, |tx| sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_event \
             WHERE tenant_id = $1 AND user_id = $2 AND outcome = 'denied' AND created_at > $3"
        )
        .bind(tenant)
        .bind(actor.user_id.as_str())
        .bind(since)
        .fetch_one(&mut *tx)
        .await?)?;
        if recent >= DENIALS_AUDITED_PER_MINUTE {
            tracing::warn!(user = %actor.user_id, "denied request not audited: too many this minute");
            return Ok(());
        }
        let mut event = AuditEvent::by(
            scope,
            actor,
            None,
            op,
            redacted.to_owned(),
            AuditOutcome::Denied,
            Some(reason),
        );
        event.instance_id = instance.map(|i| i.to_string());
        self.record_audit(&event).await
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
                "UPDATE operation SET state = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, updated_at = $3 \
                 WHERE operation_id = ( \
                   SELECT operation_id FROM operation \
                   WHERE (state = 'queued' AND not_before <= $3) OR (state = 'running' AND lease_expires_at < $3) \
                   ORDER BY created_at, operation_id LIMIT 1) \
                 RETURNING {OP_COLUMNS}"
            ),
        };
        let row = on_pool!(self, |p| sqlx::query(&sql)
            .bind(worker)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_optional(p)
            .await
            .map(|r| r.as_ref().map(op_from_row)))?;
        row.transpose()
    }

    /// Extends a lease the worker still holds; false when it has lost it.
    pub async fn renew_lease(
        &self,
        op: &OperationRecord,
        worker: &str,
        until: i64,
    ) -> Result<bool> {
        let tenant = op.tenant_id.as_str();
        let n = scoped!(self, tenant, |tx| sqlx::query(
            "UPDATE operation SET lease_expires_at = $4 \
             WHERE tenant_id = $1 AND operation_id = $2 AND lease_owner = $3 AND state = 'running'"
        )
        .bind(tenant)
        .bind(&op.id)
        .bind(worker)
        .bind(until)
        .execute(&mut *tx)
        .await?
        .rows_affected())?;
        Ok(n == 1)
    }

    /// Records how a claimed operation ended, fenced by the lease: a worker that lost its lease
    /// changes nothing (returns false), so each operation completes exactly once.
    pub async fn finish_operation(
        &self,
        op: &OperationRecord,
        worker: &str,
        finish: &Finish,
    ) -> Result<bool> {
        let now = now_millis();
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
        let ok: Result<bool> = on_pool!(self, |p| {
            async {
                let mut tx = p.begin_in(tenant).await?;
                let n = sqlx::query(
                    "UPDATE operation SET state = $3, last_error = COALESCE($4, last_error), not_before = $5, finished_at = $6, \
                       lease_owner = NULL, lease_expires_at = NULL, updated_at = $7 \
                     WHERE operation_id = $1 AND lease_owner = $2 AND state = 'running'",
                )
                .bind(&op.id)
                .bind(worker)
                .bind(state.as_str())
                .bind(&error)
                .bind(not_before)
                .bind(finished_at)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                let row = sqlx::query(&format!("SELECT {INSTANCE_COLUMNS} FROM instance WHERE tenant_id = $1 AND instance_id = $2"))
                    .bind(tenant)
                    .bind(op.instance_id.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                let mut inst = instance_from_row(&row)?;
                let outcome = match finish {
                    Finish::Retry { .. } => None,
                    Finish::Succeeded { endpoints } => {
                        (inst.status, inst.status_reason) = settle(op.operation(), op.previous_status, &Outcome::Succeeded);
                        apply(&mut inst.resources, &mut inst.parameters, &op.request);
                        if let Some(e) = endpoints {
                            inst.endpoints = e.clone();
                        }
                        Some((AuditOutcome::Succeeded, None))
                    }
                    Finish::Failed { error } => {
                        (inst.status, inst.status_reason) = settle(op.operation(), op.previous_status, &Outcome::Failed(error.clone()));
                        Some((AuditOutcome::Failed, Some(error.clone())))
                    }
                    Finish::Denied { reason } => {
                        (inst.status, inst.status_reason) = settle(op.operation(), op.previous_status, &Outcome::Denied(reason.clone()));
                        Some((AuditOutcome::Denied, Some(reason.clone())))
                    }
                };
                if let Some((outcome, reason)) = outcome {
                    let params = serde_json::to_string(&inst.parameters).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    sqlx::query(
                        "UPDATE instance SET status = $3, status_reason = $4, replicas = $5, cpu_millicores = $6, memory_mib = $7, \
                           storage_gib = $8, parameters = $9, endpoints = $10, version = version + 1, updated_at = $11 \
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
                    .bind(&params)
                    .bind(serde_json::to_string(&inst.endpoints).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                    .bind(now)
                    .execute(&mut *tx)
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
                    insert_audit!(&mut *tx, &event)?;
                }
                tx.commit().await?;
                Ok(true)
            }
            .await
        });
        ok
    }
}
