//! Asking for lifecycle operations and following them. A request is checked by the policy and
//! recorded, with its audit line, in one store transaction; the worker carries it out.

use super::page;
use super::session::{ensure_active, tenant_plan};
use super::{Principal, ServiceError};
use crate::domain::policy::{self, CreateRequest, Denial, OperationRequest, Request};
use crate::domain::{InstanceId, OperationStatus, Page, ParamValue, Plan, Status};
use crate::server::state::AppState;
use crate::server::store::{
    new_id, now_millis, InstanceRecord, OperationRecord, Seek, Submitted, TenantScope,
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
    ensure_active(state, who).await?;
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
    ensure_active(state, who).await?;
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

/// How many operations a page of an instance's history holds.
pub const HISTORY_PAGE: usize = 50;

/// One of the tenant's instances' operations, newest first: the first page, or the one after
/// `cursor` (a previous page's `next`).
pub async fn history(
    state: &AppState,
    who: &Principal,
    instance_id: &str,
    cursor: &str,
) -> Result<Page<OperationStatus>, ServiceError> {
    let Ok(id) = InstanceId::parse(instance_id) else {
        return Err(ServiceError::NotFound);
    };
    let scope = who.scope();
    let inst = state
        .store
        .get_instance(&scope, &id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let before = match page::seek(cursor, "")? {
        Seek::After(key) => {
            let (at, op) = key.split_once('/').ok_or(ServiceError::BadPageLink)?;
            let at = at.parse::<i64>().map_err(|_| ServiceError::BadPageLink)?;
            Some((at, op.to_owned()))
        }
        _ => None,
    };
    let slice = state
        .store
        .operation_history(&scope, &id, before, HISTORY_PAGE)
        .await?;
    Ok(page::page(
        slice,
        &Seek::After(String::new()),
        None,
        |o| format!("{}/{}", o.created_at, o.id),
        |o| op_status(&o, inst.status),
    ))
    .map(|mut p: Page<OperationStatus>| {
        // Only forward: a script walks the history from the newest.
        p.previous = None;
        p
    })
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
        requested_millis: op.created_at,
        finished_millis: op.finished_at,
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
