//! Reading the tenant's instances, with what the policy lets this principal do to each now.

use super::operations::op_status;
use super::page;
use super::session::{suspended, tenant_plan};
use super::{timestamp, Principal, ServiceError};
use crate::domain::policy::{self, Denial};
use crate::domain::{
    ActionState, Bounds, CreateOptions, FormParam, InstanceDetail, InstanceFilter, InstanceId,
    InstanceSummary, Operation, Page, ParamEntry, Plan, ResourceBounds,
};
use crate::server::state::AppState;
use crate::server::store::{now_millis, InstanceRecord, OpState, OperationRecord, Seek};

/// How many instances a page of the list shows. Fifty cards render to about 2 KB of HTML each
/// (with their action forms and the data the page hydrates from), which compresses well within
/// the 40 KB budget for a page; a person scanning for an instance also has the search box.
pub const PAGE_SIZE: usize = 50;

/// The most instances one page may hold, however many a caller asks for.
pub const MAX_PAGE_SIZE: usize = 200;

/// One page of the tenant's instances that match `filter`, by name, read from `at`, with how
/// many match in all; `size` instances a page (at most [`MAX_PAGE_SIZE`]).
pub async fn list(
    state: &AppState,
    who: &Principal,
    filter: &InstanceFilter,
    at: &Seek<String>,
    size: usize,
) -> Result<Page<InstanceSummary>, ServiceError> {
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(ServiceError::invalid(
            "limit",
            format!("must be 1 to {MAX_PAGE_SIZE}"),
        ));
    }
    let scope = who.scope();
    let (slice, total) = state.store.instance_page(&scope, filter, at, size).await?;
    let in_flight = state.store.operations_in_flight(&scope).await?;
    let suspended = suspended(state, who).await?;
    Ok(page::page(
        slice,
        at,
        Some(total),
        |i| i.name.clone(),
        |i| {
            let op = in_flight.iter().find(|o| o.instance_id == i.id);
            card(state, who, &i, op, suspended)
        },
    ))
}

/// The id and name of each of the tenant's instances, by name: what the audit log's filter
/// offers.
pub async fn names(
    state: &AppState,
    who: &Principal,
) -> Result<Vec<(String, String)>, ServiceError> {
    Ok(state.store.instance_names(&who.scope()).await?)
}

/// One of the tenant's instances. A malformed id, or another tenant's, is not found.
pub async fn get(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<InstanceDetail, ServiceError> {
    let (i, in_flight) = load(state, who, id).await?;
    let suspended = suspended(state, who).await?;
    Ok(detail(state, who, &i, in_flight.as_ref(), suspended))
}

/// One of the tenant's instances as the list shows it (a card reloads itself with this after
/// an operation). Not found exactly when [`get`] is.
pub async fn get_summary(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<InstanceSummary, ServiceError> {
    let (i, in_flight) = load(state, who, id).await?;
    let suspended = suspended(state, who).await?;
    Ok(card(state, who, &i, in_flight.as_ref(), suspended))
}

/// One of the tenant's instances and the operation queued or running on it, if any. A malformed
/// id, or another tenant's, is not found.
async fn load(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<(InstanceRecord, Option<OperationRecord>), ServiceError> {
    let Ok(id) = InstanceId::parse(id) else {
        return Err(ServiceError::NotFound);
    };
    let scope = who.scope();
    let i = state
        .store
        .get_instance(&scope, &id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let in_flight = state
        .store
        .latest_operation(&scope, &id)
        .await?
        .filter(|op| matches!(op.state, OpState::Queued | OpState::Running));
    Ok((i, in_flight))
}

/// An instance as the list shows it: its summary, the operation in flight and what this
/// principal may do to it now.
fn card(
    state: &AppState,
    who: &Principal,
    i: &InstanceRecord,
    in_flight: Option<&OperationRecord>,
    suspended: bool,
) -> InstanceSummary {
    let mut out = summary(state, i);
    out.in_flight = in_flight.map(|o| op_status(o, i.status));
    out.actions = state
        .provider
        .plan(&i.plan_id)
        .map(|pl| actions(state, who, i, pl, in_flight.is_some(), suspended))
        .unwrap_or_default();
    out
}

/// What the create form may offer: the tenant plan's environments, regions, limits and
/// editable parameters, or why this principal cannot create an instance.
pub async fn create_options(
    state: &AppState,
    who: &Principal,
) -> Result<CreateOptions, ServiceError> {
    let plan = tenant_plan(state, who).await?;
    let p = &state.provider;
    let mut denied = policy::permitted(&p.roles, who.role(), Operation::Create, plan).err();
    if denied.is_none() && suspended(state, who).await? {
        denied = Some(Denial::TenantSuspended);
    }
    if denied.is_none() {
        let existing = state
            .store
            .count_live_instances(&who.scope(), &plan.id)
            .await?;
        if existing >= plan.quota {
            denied = Some(Denial::QuotaReached { quota: plan.quota });
        }
    }
    let named = |ids: &[String], name: &dyn Fn(&str) -> String| {
        ids.iter().map(|id| (id.clone(), name(id))).collect()
    };
    Ok(CreateOptions {
        plan_name: plan.name.clone(),
        denied: denied.map(|d| d.to_string()),
        environments: named(&plan.environments, &|id| p.environment_name(id).to_owned()),
        regions: named(&plan.regions, &|id| p.region_name(id).to_owned()),
        bounds: plan.resources.clone(),
        parameters: editable(plan),
    })
}

fn summary(state: &AppState, i: &InstanceRecord) -> InstanceSummary {
    let p = &state.provider;
    InstanceSummary {
        id: i.id.to_string(),
        name: i.name.clone(),
        plan_name: p
            .plan(&i.plan_id)
            .map_or(i.plan_id.clone(), |pl| pl.name.clone()),
        environment: i.environment.clone(),
        environment_name: p.environment_name(&i.environment).to_owned(),
        region: i.region.clone(),
        status: i.status,
        replicas: i.resources.replicas,
        updated_at: timestamp(i.updated_at, false),
        updated_millis: i.updated_at,
        actions: vec![],
        in_flight: None,
        status_note: status_note(state, i),
    }
}

/// With the provider's control plane connected: a line when it no longer lists the instance,
/// or has not confirmed its status for longer than `stale_after_minutes`.
fn status_note(state: &AppState, i: &InstanceRecord) -> Option<String> {
    state.control_plane.as_ref()?;
    if let Some(since) = i.missing_since {
        return Some(format!(
            "The provider's systems no longer list this instance (since {}).",
            timestamp(since, false)
        ));
    }
    let stale_ms = i64::try_from(state.provider.control_plane.stale_after_minutes)
        .unwrap_or(i64::MAX / 60_000)
        .saturating_mul(60_000);
    let confirmed = i.observed_at.unwrap_or(i.updated_at);
    (now_millis().saturating_sub(confirmed) > stale_ms)
        .then(|| format!("Status as of {}.", timestamp(confirmed, false)))
}

/// The customer-editable parameters of a plan, safe to send to the browser.
fn editable(plan: &Plan) -> Vec<FormParam> {
    plan.parameters
        .iter()
        .filter(|p| p.customer_editable)
        .map(FormParam::from)
        .collect()
}

fn detail(
    state: &AppState,
    who: &Principal,
    i: &InstanceRecord,
    in_flight: Option<&OperationRecord>,
    suspended: bool,
) -> InstanceDetail {
    let p = &state.provider;
    let plan = p.plan(&i.plan_id);
    let parameters = i
        .parameters
        .iter()
        .map(|(name, value)| {
            let spec = plan.and_then(|pl| pl.parameters.iter().find(|s| &s.name == name));
            ParamEntry {
                name: name.clone(),
                label: spec.map_or(name.clone(), |s| s.label().to_owned()),
                value: crate::domain::secrets::shown(plan, name, value),
                customer_editable: spec.is_some_and(|s| s.customer_editable),
            }
        })
        .collect();
    InstanceDetail {
        id: i.id.to_string(),
        name: i.name.clone(),
        plan_id: i.plan_id.clone(),
        plan_name: plan.map_or(i.plan_id.clone(), |pl| pl.name.clone()),
        environment: i.environment.clone(),
        environment_name: p.environment_name(&i.environment).to_owned(),
        region: i.region.clone(),
        region_name: p.region_name(&i.region).to_owned(),
        status: i.status,
        status_reason: i.status_reason.clone(),
        status_note: status_note(state, i),
        resources: i.resources,
        parameters,
        endpoints: i.endpoints.clone(),
        actions: plan
            .map(|pl| actions(state, who, i, pl, in_flight.is_some(), suspended))
            .unwrap_or_default(),
        in_flight: in_flight.map(|op| op_status(op, i.status)),
        bounds: plan.map_or(
            ResourceBounds {
                replicas: Bounds::fixed(i.resources.replicas),
                cpu_millicores: Bounds::fixed(i.resources.cpu_millicores),
                memory_mib: Bounds::fixed(i.resources.memory_mib),
                storage_gib: Bounds::fixed(i.resources.storage_gib),
            },
            |pl| pl.resources.clone(),
        ),
        editable: plan.map(editable).unwrap_or_default(),
        created_at: timestamp(i.created_at, false),
        updated_at: timestamp(i.updated_at, false),
        created_millis: i.created_at,
        updated_millis: i.updated_at,
    }
}

/// Each lifecycle action on an existing instance, as the policy decides it for this principal
/// now.
fn actions(
    state: &AppState,
    who: &Principal,
    i: &InstanceRecord,
    plan: &Plan,
    in_flight: bool,
    suspended: bool,
) -> Vec<ActionState> {
    let facts = i.facts(plan, in_flight);
    let mut out: Vec<ActionState> = [
        Operation::Start,
        Operation::Stop,
        Operation::Restart,
        Operation::Scale,
        Operation::UpdateConfig,
        Operation::Delete,
    ]
    .into_iter()
    .map(|op| ActionState {
        operation: op,
        reason: policy::availability(&state.provider.roles, who.role(), op, &facts)
            .and(if suspended {
                Err(Denial::TenantSuspended)
            } else {
                Ok(())
            })
            .err()
            .map(|d| d.to_string()),
    })
    .collect();
    // Delete-protection is known before anyone types a name; say so up front.
    if let Some(delete) = out
        .iter_mut()
        .find(|a| a.operation == Operation::Delete && a.allowed())
    {
        if i.delete_protected {
            delete.reason = Some(Denial::DeleteProtected.to_string());
        }
    }
    out
}
