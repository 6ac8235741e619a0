//! Submitting operations: a request becomes a queued operation, the instance's transitional
//! status and an audit event in one transaction, after the policy has had its say under the
//! instance's (or tenant's) lock. A repeated idempotency key answers as the first request did.

use super::audit::insert_audit;
use super::error::on_constraint;
use super::events::{emit, NewEvent};
use super::instances::{instance_in, to_json, INSTANCE_COLUMNS, LIVE_ON_PLAN};
use super::webhooks;
use super::{
    new_id, parse_id, Actor, AuditEvent, Conn, InstanceRecord, Sql, Store, StoreError, SubmitError,
    Submitted, TenantScope,
};
use crate::domain::lifecycle::transition;
use crate::domain::policy::{Denial, OperationRequest};
use crate::domain::{AuditOutcome, EventKind, InstanceId, Operation, Status};

/// An idempotency key as stored: each user's keys are their own, so a key another member used
/// (seen in a shared screen or a log) answers nothing but this user's own requests.
/// Why a submission was refused, as its audit line says: a policy denial or a reused key.
fn denial(outcome: &std::result::Result<Submitted, SubmitError>) -> Option<String> {
    match outcome {
        Err(SubmitError::Denied(d)) => Some(d.to_string()),
        Err(SubmitError::KeyReused) => Some(SubmitError::KeyReused.to_string()),
        _ => None,
    }
}

fn user_key(actor: &Actor, key: &str) -> String {
    format!("{}/{key}", actor.user_id)
}

/// The operation an idempotency key was first used for: (operation id, instance id, request).
async fn prior_with_key(
    conn: &mut Conn<'_>,
    tenant: &str,
    key: &str,
) -> sqlx::Result<Option<(String, String, String)>> {
    conn.fetch_optional(
        Sql::new(
            "SELECT operation_id, instance_id, request FROM operation \
             WHERE tenant_id = $1 AND idempotency_key = $2",
        )
        .bind(tenant)
        .bind(key),
    )
    .await
}

/// An operation to queue: the columns that differ between a create and a change.
struct NewOperation<'a> {
    id: &'a str,
    tenant: &'a str,
    instance_id: &'a InstanceId,
    kind: Operation,
    request_json: &'a str,
    actor: &'a Actor,
    idempotency_key: Option<&'a str>,
    previous_status: Status,
    now: i64,
}

/// Inserts `o` as queued, with no attempts yet.
async fn insert_operation(conn: &mut Conn<'_>, o: NewOperation<'_>) -> sqlx::Result<u64> {
    conn.execute(
        Sql::new(
            "INSERT INTO operation (operation_id, tenant_id, instance_id, kind, request, state, \
               requested_by, requested_role, request_id, idempotency_key, previous_status, \
               attempts, not_before, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, 0, 0, $11, $11)",
        )
        .bind(o.id)
        .bind(o.tenant)
        .bind(o.instance_id.as_str())
        .bind(o.kind.as_str())
        .bind(o.request_json)
        .bind(o.actor.user_id.as_str())
        .bind(o.actor.role.as_str())
        .bind(&o.actor.request_id)
        .bind(o.idempotency_key)
        .bind(o.previous_status.as_str())
        .bind(o.now),
    )
    .await
}

impl Store {
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
        now: i64,
        decide: impl FnOnce(&InstanceRecord, bool) -> std::result::Result<(), Denial>,
    ) -> std::result::Result<Submitted, SubmitError> {
        let op = request.operation();
        let key = idempotency_key.map(|k| user_key(actor, k));
        let outcome = self
            .change_in_tx(
                scope,
                actor,
                instance_id,
                request,
                &redacted,
                key,
                now,
                decide,
            )
            .await;
        if let Some(reason) = denial(&outcome) {
            self.audit_denial(scope, actor, Some(instance_id), op, &redacted, reason, now)
                .await?;
        }
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    async fn change_in_tx(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        instance_id: &InstanceId,
        request: &OperationRequest,
        redacted: &str,
        key: Option<String>,
        now: i64,
        decide: impl FnOnce(&InstanceRecord, bool) -> std::result::Result<(), Denial>,
    ) -> std::result::Result<Submitted, SubmitError> {
        let tenant = scope.tenant_id().as_str();
        let request_json = to_json(request)?;
        let op = request.operation();
        let operation_id = new_id();
        let mut tx = self.begin_in(tenant).await?;
        // A write first: takes the instance's row lock (PostgreSQL) or the database's write
        // lock (SQLite) before anything is read, so concurrent requests queue here.
        let locked = tx
            .conn()
            .execute(
                Sql::new(
                    "UPDATE instance SET version = version \
                     WHERE tenant_id = $1 AND instance_id = $2",
                )
                .bind(tenant)
                .bind(instance_id.as_str()),
            )
            .await?;
        if locked == 0 {
            return Err(SubmitError::NotFound);
        }
        if let Some(key) = &key {
            if let Some((prior_id, prior_instance, prior_request)) =
                prior_with_key(&mut tx.conn(), tenant, key).await?
            {
                return if prior_instance == instance_id.as_str() && prior_request == request_json {
                    Ok(Submitted::Repeated {
                        operation_id: prior_id,
                        instance_id: instance_id.clone(),
                    })
                } else {
                    Err(SubmitError::KeyReused)
                };
            }
        }
        let instance = instance_in(&mut tx.conn(), tenant, instance_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        let in_flight: i64 = tx
            .conn()
            .scalar(
                Sql::new(
                    "SELECT COUNT(*) FROM operation \
                     WHERE instance_id = $1 AND state IN ('queued', 'running')",
                )
                .bind(instance_id.as_str()),
            )
            .await?;
        if let Err(denial) = decide(&instance, in_flight > 0) {
            tx.rollback().await?;
            return Err(SubmitError::Denied(denial));
        }
        let new = NewOperation {
            id: &operation_id,
            tenant,
            instance_id,
            kind: op,
            request_json: &request_json,
            actor,
            idempotency_key: key.as_deref(),
            previous_status: instance.status,
            now,
        };
        insert_operation(&mut tx.conn(), new)
            .await
            .map_err(|e| match on_constraint(e) {
                StoreError::Conflict(_) => SubmitError::KeyReused,
                other => SubmitError::Store(other),
            })?;
        tx.conn()
            .execute(
                Sql::new(
                    "UPDATE instance SET status = $3, status_reason = NULL, \
                       version = version + 1, updated_at = $4 \
                     WHERE tenant_id = $1 AND instance_id = $2",
                )
                .bind(tenant)
                .bind(instance_id.as_str())
                .bind(transition(op).during.as_str())
                .bind(now),
            )
            .await?;
        let mut event = AuditEvent::by(
            scope,
            actor,
            Some((instance_id, &instance.name)),
            op,
            redacted.to_owned(),
            AuditOutcome::Requested,
            None,
            now,
        );
        event.operation_id = Some(operation_id.clone());
        insert_audit(&mut tx, &event).await?;
        let requested = NewEvent::operation(instance_id.as_str(), &operation_id);
        emit(&mut tx, tenant, requested, now).await?;
        let before = instance.status;
        let mut during = instance;
        during.status = transition(op).during;
        webhooks::operation_requested(
            &mut tx,
            &during,
            &operation_id,
            op,
            actor.user_id.as_str(),
            now,
        )
        .await?;
        webhooks::status_changed(&mut tx, &during, before, now).await?;
        tx.commit().await?;
        Ok(Submitted::New {
            operation_id,
            instance_id: instance_id.clone(),
        })
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
        now: i64,
        decide: impl FnOnce(u32) -> std::result::Result<(), Denial>,
    ) -> std::result::Result<Submitted, SubmitError> {
        let key = idempotency_key.map(|k| user_key(actor, k));
        let outcome = self
            .create_in_tx(scope, actor, instance, request, &redacted, key, now, decide)
            .await;
        if let Some(reason) = denial(&outcome) {
            let op = Operation::Create;
            self.audit_denial(scope, actor, None, op, &redacted, reason, now)
                .await?;
        }
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_in_tx(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        instance: &InstanceRecord,
        request: &OperationRequest,
        redacted: &str,
        key: Option<String>,
        now: i64,
        decide: impl FnOnce(u32) -> std::result::Result<(), Denial>,
    ) -> std::result::Result<Submitted, SubmitError> {
        let tenant = scope.tenant_id().as_str();
        let request_json = to_json(request)?;
        let operation_id = new_id();
        let params = to_json(&instance.parameters)?;
        let endpoints = to_json(&instance.endpoints)?;
        let mut tx = self.begin_in(tenant).await?;
        tx.conn()
            .execute(
                Sql::new("UPDATE tenant SET updated_at = updated_at WHERE tenant_id = $1")
                    .bind(tenant),
            )
            .await?;
        if let Some(key) = &key {
            if let Some((prior_id, prior_instance, prior_request)) =
                prior_with_key(&mut tx.conn(), tenant, key).await?
            {
                return if prior_request == request_json {
                    Ok(Submitted::Repeated {
                        operation_id: prior_id,
                        instance_id: parse_id(prior_instance)?,
                    })
                } else {
                    Err(SubmitError::KeyReused)
                };
            }
        }
        let existing: i64 = tx
            .conn()
            .scalar(Sql::new(LIVE_ON_PLAN).bind(tenant).bind(&instance.plan_id))
            .await?;
        if let Err(denial) = decide(u32::try_from(existing).unwrap_or(u32::MAX)) {
            tx.rollback().await?;
            return Err(SubmitError::Denied(denial));
        }
        tx.conn()
            .execute(
                Sql::new(format!(
                    "INSERT INTO instance ({INSTANCE_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'deploying', NULL, $7, $8, $9, $10, $11, \
                       $12, FALSE, 1, $13, $13, NULL, NULL, NULL)"
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
                .bind(params)
                .bind(endpoints)
                .bind(now),
            )
            .await
            .map_err(|e| match on_constraint(e) {
                StoreError::Conflict(why) => SubmitError::Denied(Denial::InvalidName { why }),
                other => SubmitError::Store(other),
            })?;
        let new = NewOperation {
            id: &operation_id,
            tenant,
            instance_id: &instance.id,
            kind: Operation::Create,
            request_json: &request_json,
            actor,
            idempotency_key: key.as_deref(),
            previous_status: Status::Deploying,
            now,
        };
        insert_operation(&mut tx.conn(), new).await?;
        let mut event = AuditEvent::by(
            scope,
            actor,
            Some((&instance.id, &instance.name)),
            Operation::Create,
            redacted.to_owned(),
            AuditOutcome::Requested,
            None,
            now,
        );
        event.operation_id = Some(operation_id.clone());
        insert_audit(&mut tx, &event).await?;
        let created = NewEvent::instance(EventKind::InstanceCreated, instance.id.as_str());
        emit(&mut tx, tenant, created, now).await?;
        let requested = NewEvent::operation(instance.id.as_str(), &operation_id);
        emit(&mut tx, tenant, requested, now).await?;
        let mut deploying = instance.clone();
        deploying.status = Status::Deploying;
        webhooks::instance_created(&mut tx, &deploying, now).await?;
        webhooks::operation_requested(
            &mut tx,
            &deploying,
            &operation_id,
            Operation::Create,
            actor.user_id.as_str(),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Submitted::New {
            operation_id,
            instance_id: instance.id.clone(),
        })
    }
}
