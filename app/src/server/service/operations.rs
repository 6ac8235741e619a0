//! Asking for lifecycle operations and following them. A request is checked by the policy and
//! recorded, with its audit line, in one store transaction; the worker carries it out.

use super::session::tenant_plan;
use super::{Principal, ServiceError};
use crate::domain::policy::{self, CreateRequest, Denial, OperationRequest, Request};
use crate::domain::{InstanceId, OperationStatus, ParamValue, Plan, Status};
use crate::server::state::AppState;
use crate::server::store::{
    new_id, now_millis, InstanceRecord, OperationRecord, Submitted, TenantScope,
};
use std::collections::BTreeMap;

/// Asks for `request` on one of the tenant's instances. The same `idempotency_key` with the
/// same request answers what the first call answered.
pub async fn request(
    state: &AppState,
    who: &Principal,
    instance_id: &str,
    request: Request,
    idempotency_key: &str,
) -> Result<OperationStatus, ServiceError> {
    let key = key(idempotency_key)?;
    let Ok(id) = InstanceId::parse(instance_id) else {
        return Err(ServiceError::NotFound);
    };
    let scope = who.scope();
    let plan_of = |plan_id: &str| state.provider.plan(plan_id);
    // The plan is needed for redaction before the transaction; a missing instance is simply
    // not found inside it.
    let plan_id = state
        .store
        .get_instance(&scope, &id)
        .await?
        .map(|i| i.plan_id);
    let op_request = OperationRequest::Change(request.clone());
    let redacted = redact(plan_id.as_deref().and_then(plan_of), &op_request);
    let roles = &state.provider.roles;
    let role = who.role();
    let submitted = state
        .store
        .submit_change(
            &scope,
            &who.actor(),
            &id,
            &op_request,
            redacted,
            Some(&key),
            now_millis(),
            |inst, in_flight| {
                let Some(plan) = plan_of(&inst.plan_id) else {
                    return Err(Denial::PlanDisables {
                        operation: request.operation(),
                        plan: inst.plan_id.clone(),
                    });
                };
                let facts = inst.facts(plan, in_flight);
                policy::check(roles, role, &facts, &request)
            },
        )
        .await?;
    answer(state, &scope, submitted).await
}

/// Asks for a new instance on the tenant's plan.
pub async fn create(
    state: &AppState,
    who: &Principal,
    request: CreateRequest,
    idempotency_key: &str,
) -> Result<OperationStatus, ServiceError> {
    let key = key(idempotency_key)?;
    let scope = who.scope();
    let plan = tenant_plan(state, who).await?;
    // Parameters the customer did not set take the plan's defaults.
    let mut parameters: BTreeMap<String, ParamValue> = plan
        .parameters
        .iter()
        .map(|p| (p.name.clone(), p.default.clone()))
        .collect();
    parameters.extend(request.parameters.clone());
    let record = InstanceRecord {
        id: InstanceId::parse(&new_id()).map_err(ServiceError::internal)?,
        tenant_id: scope.tenant_id().clone(),
        name: request.name.clone(),
        plan_id: plan.id.clone(),
        environment: request.environment.clone(),
        region: request.region.clone(),
        status: Status::Deploying,
        status_reason: None,
        resources: request.resources,
        parameters,
        endpoints: vec![],
        delete_protected: false,
        version: 1,
        created_at: 0,
        updated_at: 0,
        external_id: None,
        observed_at: None,
        missing_since: None,
    };
    let op_request = OperationRequest::Create(request.clone());
    let redacted = redact(Some(plan), &op_request);
    let roles = &state.provider.roles;
    let role = who.role();
    let submitted = state
        .store
        .submit_create(
            &scope,
            &who.actor(),
            &record,
            &op_request,
            redacted,
            Some(&key),
            now_millis(),
            |existing| policy::check_create(roles, role, plan, existing, &request),
        )
        .await?;
    answer(state, &scope, submitted).await
}

/// Where one of the tenant's operations stands.
pub async fn status(
    state: &AppState,
    who: &Principal,
    operation_id: &str,
) -> Result<OperationStatus, ServiceError> {
    let scope = who.scope();
    let op = state
        .store
        .get_operation(&scope, operation_id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    status_of(state, &scope, &op).await
}

fn key(k: &str) -> Result<String, ServiceError> {
    let k = k.trim().to_owned();
    if k.is_empty() || k.len() > 128 {
        return Err(ServiceError::invalid(
            "idempotency_key",
            "must be 1 to 128 characters",
        ));
    }
    Ok(k)
}

/// The request as the audit log stores it: secret values masked.
fn redact(plan: Option<&Plan>, request: &OperationRequest) -> String {
    serde_json::to_string(&crate::domain::secrets::mask_request(plan, request)).unwrap_or_default()
}

async fn status_of(
    state: &AppState,
    scope: &TenantScope,
    op: &OperationRecord,
) -> Result<OperationStatus, ServiceError> {
    let inst = state
        .store
        .get_instance(scope, &op.instance_id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    Ok(op_status(op, inst.status))
}

/// An operation as its requester sees it.
pub(super) fn op_status(op: &OperationRecord, instance_status: Status) -> OperationStatus {
    OperationStatus {
        operation_id: op.id.clone(),
        instance_id: op.instance_id.to_string(),
        operation: op.operation(),
        state: op.state,
        attempts: op.attempts,
        last_error: op.last_error.clone(),
        instance_status,
        progress_message: op.progress_message.clone(),
        progress_percent: op.progress_percent,
    }
}

async fn answer(
    state: &AppState,
    scope: &TenantScope,
    submitted: Submitted,
) -> Result<OperationStatus, ServiceError> {
    let op = state
        .store
        .get_operation(scope, submitted.operation_id())
        .await?
        .ok_or_else(|| ServiceError::internal("submitted operation vanished"))?;
    status_of(state, scope, &op).await
}
