//! Server side of the server functions.

use super::AppError;
use crate::domain::policy::{self, CreateRequest, OperationRequest, Request};
use crate::domain::{
    ActionState, AuditEntry, Bounds, CreateOptions, FormParam, Operation, OperationStatus,
    ParamValue, Plan, ResourceBounds, Role, Status,
};
use crate::domain::{
    Email, InstanceDetail, InstanceFilter, InstanceId, InstanceSummary, Me, ParamEntry,
};
use crate::server::auth::{self, Session, SignInError};
use crate::server::password::PasswordError;
use crate::server::security;
use crate::server::state::AppState;
use crate::server::store::{new_id, InstanceRecord, StoreError, TenantScope};
use crate::server::store::{
    Actor, AuditEvent, AuditFilter, OpState, OperationRecord, SubmitError, Submitted,
};
use http::header::SET_COOKIE;
use http::request::Parts;
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use std::collections::BTreeMap;

/// Sets the HTTP status (and `Retry-After`) that match an error before it is encoded.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &result {
        if let (Some(opts), Ok(code)) = (
            use_context::<ResponseOptions>(),
            http::StatusCode::from_u16(e.status()),
        ) {
            opts.set_status(code);
            match e {
                AppError::RateLimited { retry_after_secs } => {
                    opts.insert_header(http::header::RETRY_AFTER, (*retry_after_secs).into());
                }
                AppError::Busy => {
                    opts.insert_header(http::header::RETRY_AFTER, 5.into());
                }
                _ => {}
            }
        }
    }
    result
}

pub(crate) fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| internal(&"AppState missing from context"))
}

fn request_id() -> String {
    use_context::<Parts>()
        .map(|p| security::request_id(&p.headers).to_owned())
        .filter(|id| id != "-")
        .unwrap_or_else(crate::server::store::new_id)
}

/// Logs the full cause with a request id and returns an error that shows only the id.
pub fn internal(e: &dyn std::fmt::Debug) -> AppError {
    let request_id = request_id();
    tracing::error!(%request_id, error = ?e, "request failed");
    AppError::Internal { request_id }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        internal(&e)
    }
}

/// The verified session of this request, or `Unauthenticated`.
pub async fn session() -> Result<(AppState, Session), AppError> {
    let state = state()?;
    let parts = use_context::<Parts>().ok_or_else(|| internal(&"request parts missing"))?;
    match auth::current_session(&state, &parts.headers).await? {
        Some(s) => {
            let span = tracing::Span::current();
            span.record("tenant", s.record.tenant_id.as_str());
            span.record("user", s.record.user_id.as_str());
            Ok((state, s))
        }
        None => Err(AppError::Unauthenticated),
    }
}

pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    let state = state()?;
    let email = Email::parse(&email).map_err(|e| AppError::invalid("email", e))?;
    if password.is_empty() {
        return Err(AppError::invalid("password", "must not be empty"));
    }
    let addr = client_addr(&state)?;
    let (token, record) = auth::sign_in_with_password(&state, addr, &email, password).await?;
    tracing::info!(user = %record.user_id, tenant = %record.tenant_id, "signed in");
    let opts = expect_context::<ResponseOptions>();
    if let Ok(v) = auth::session_cookie(&state, &token).parse() {
        opts.append_header(SET_COOKIE, v);
    }
    leptos_axum::redirect("/instances");
    Ok(())
}

/// The client address of this server function's request, as the limiter counts it.
pub(crate) fn client_addr(state: &AppState) -> Result<Option<std::net::IpAddr>, AppError> {
    let parts = use_context::<Parts>().ok_or_else(|| internal(&"request parts missing"))?;
    Ok(security::client_addr(
        &parts.extensions,
        &parts.headers,
        &state.settings.trusted_proxies,
    ))
}

impl From<SignInError> for AppError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::BadCredentials => AppError::BadCredentials,
            SignInError::NoTenant => AppError::NoTenant,
            SignInError::RateLimited(wait) => {
                tracing::warn!("sign-in refused: too many failures");
                AppError::RateLimited {
                    retry_after_secs: wait.as_secs().max(1),
                }
            }
            SignInError::Password(e) => e.into(),
            SignInError::Store(e) => e.into(),
        }
    }
}

impl From<PasswordError> for AppError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => AppError::Busy,
            e => internal(&e),
        }
    }
}

pub async fn sign_in_options() -> Result<Vec<crate::domain::SsoButton>, AppError> {
    let state = state()?;
    Ok(state
        .sso
        .as_ref()
        .map(|sso| {
            sso.buttons()
                .into_iter()
                .map(|(id, label)| crate::domain::SsoButton { id, label })
                .collect()
        })
        .unwrap_or_default())
}

pub async fn sign_out() -> Result<(), AppError> {
    let state = state()?;
    if let Some(parts) = use_context::<Parts>() {
        if let Some(token) = auth::session_token(&parts.headers) {
            state
                .store
                .delete_session(&auth::token_hash(&token))
                .await?;
        }
    }
    if let Ok(v) = auth::clear_cookie(&state).parse() {
        expect_context::<ResponseOptions>().append_header(SET_COOKIE, v);
    }
    leptos_axum::redirect("/sign-in");
    Ok(())
}

pub async fn current_user() -> Result<Me, AppError> {
    let (state, s) = session().await?;
    let r = &s.record;
    let plan = tenant_plan(&state, &s).await?;
    Ok(Me {
        create: ActionState {
            operation: Operation::Create,
            reason: policy::permitted(&state.provider.roles, r.role, Operation::Create, plan)
                .err()
                .map(|d| d.to_string()),
        },
        can_read_audit: state.provider.audit.may_read(r.role),
        can_manage_members: crate::domain::members::may_manage_members(r.role),
        logo_url: state
            .provider
            .provider
            .branding
            .logo_url
            .clone()
            .unwrap_or_else(|| "/logo.svg".into()),
        hide_header: [auth::ORIGIN_EMBED, auth::ORIGIN_EMBED_HEADER].contains(&r.origin.as_str())
            && !state.provider.embed.as_ref().is_some_and(|e| e.show_header),
        email: r.email.clone(),
        display_name: r.display_name.clone(),
        tenant_name: r.tenant_name.clone(),
        role: r.role,
        provider_name: state.provider.provider.name.clone(),
        environments: state
            .provider
            .environments
            .iter()
            .map(|e| (e.id.clone(), e.name.clone()))
            .collect(),
    })
}

async fn tenant_plan<'a>(state: &'a AppState, s: &Session) -> Result<&'a Plan, AppError> {
    let tenant = state.store.tenant(&s.scope()).await?;
    state
        .provider
        .plan(&tenant.plan_id)
        .ok_or_else(|| internal(&format!("tenant plan {} is not configured", tenant.plan_id)))
}

pub async fn list_instances(
    environment: String,
    status: String,
    q: String,
) -> Result<Vec<InstanceSummary>, AppError> {
    let (state, s) = session().await?;
    let filter = InstanceFilter::from_query(&environment, &status, &q);
    let scope = s.scope();
    let records = state.store.list_instances(&scope).await?;
    let in_flight = state.store.operations_in_flight(&scope).await?;
    Ok(records
        .iter()
        .map(|i| {
            let op = in_flight.iter().find(|o| o.instance_id == i.id);
            let mut out = summary(&state, i);
            out.in_flight = op.map(|o| op_status(o, i.status));
            out.actions = state
                .provider
                .plan(&i.plan_id)
                .map(|pl| actions(&state, i, pl, s.role(), op.is_some()))
                .unwrap_or_default();
            out
        })
        .filter(|i| filter.matches(i))
        .collect())
}

pub async fn get_instance(id: String) -> Result<InstanceDetail, AppError> {
    let (state, s) = session().await?;
    // A malformed id cannot name an instance; answer exactly as for another tenant's.
    let Ok(id) = InstanceId::parse(&id) else {
        return Err(AppError::NotFound);
    };
    let scope = s.scope();
    let i = state
        .store
        .get_instance(&scope, &id)
        .await?
        .ok_or(AppError::NotFound)?;
    let in_flight = state
        .store
        .latest_operation(&scope, &id)
        .await?
        .filter(|op| matches!(op.state, OpState::Queued | OpState::Running));
    Ok(detail(&state, &i, s.role(), in_flight.as_ref()))
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
        updated_at: timestamp(i.updated_at),
        actions: vec![],
        in_flight: None,
    }
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
    i: &InstanceRecord,
    role: Role,
    in_flight: Option<&OperationRecord>,
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
                value: if spec.is_some_and(|s| s.secret) {
                    "••••••••".into()
                } else {
                    value.to_string()
                },
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
        resources: i.resources,
        parameters,
        endpoints: i.endpoints.clone(),
        actions: plan
            .map(|pl| actions(state, i, pl, role, in_flight.is_some()))
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
        created_at: timestamp(i.created_at),
        updated_at: timestamp(i.updated_at),
    }
}

/// Each lifecycle action on an existing instance, as the policy decides it for this user now.
fn actions(
    state: &AppState,
    i: &InstanceRecord,
    plan: &Plan,
    role: Role,
    in_flight: bool,
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
        reason: policy::availability(&state.provider.roles, role, op, &facts)
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
            delete.reason = Some(policy::Denial::DeleteProtected.to_string());
        }
    }
    out
}

/// `2026-11-26 14:10 UTC`
fn timestamp(millis: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(millis / 1000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

pub(crate) fn actor(s: &Session) -> Actor {
    Actor {
        user_id: s.record.user_id.clone(),
        email: s.record.email.clone(),
        role: s.record.role,
        request_id: Some(request_id()),
    }
}

fn key(k: String) -> Result<String, AppError> {
    let k = k.trim().to_owned();
    if k.is_empty() || k.len() > 128 {
        return Err(AppError::invalid(
            "idempotency_key",
            "must be 1 to 128 characters",
        ));
    }
    Ok(k)
}

impl From<SubmitError> for AppError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Denied(d) => AppError::Denied {
                reason: d.to_string(),
                field: d.field().map(str::to_owned),
            },
            SubmitError::NotFound => AppError::NotFound,
            SubmitError::KeyReused => AppError::KeyReused,
            SubmitError::Store(e) => e.into(),
        }
    }
}

/// The request as the audit log stores it: secret values masked.
fn redact(plan: Option<&Plan>, request: &OperationRequest) -> String {
    let mask = |params: &BTreeMap<String, ParamValue>| -> BTreeMap<String, ParamValue> {
        params
            .iter()
            .map(|(k, v)| {
                let secret =
                    plan.is_some_and(|p| p.parameters.iter().any(|s| &s.name == k && s.secret));
                (
                    k.clone(),
                    if secret {
                        ParamValue::Text("[redacted]".into())
                    } else {
                        v.clone()
                    },
                )
            })
            .collect()
    };
    let redacted = match request {
        OperationRequest::Change(Request::UpdateConfig { changes }) => {
            OperationRequest::Change(Request::UpdateConfig {
                changes: mask(changes),
            })
        }
        OperationRequest::Create(c) => OperationRequest::Create(CreateRequest {
            parameters: mask(&c.parameters),
            ..c.clone()
        }),
        other => other.clone(),
    };
    serde_json::to_string(&redacted).unwrap_or_default()
}

async fn status_of(
    state: &AppState,
    scope: &TenantScope,
    op: &OperationRecord,
) -> Result<OperationStatus, AppError> {
    let inst = state
        .store
        .get_instance(scope, &op.instance_id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(op_status(op, inst.status))
}

fn op_status(op: &OperationRecord, instance_status: Status) -> OperationStatus {
    OperationStatus {
        operation_id: op.id.clone(),
        instance_id: op.instance_id.to_string(),
        operation: op.operation(),
        state: op.state.as_str().into(),
        attempts: op.attempts,
        last_error: op.last_error.clone(),
        instance_status,
    }
}

async fn answer(
    state: &AppState,
    scope: &TenantScope,
    submitted: Submitted,
) -> Result<OperationStatus, AppError> {
    let op = state
        .store
        .get_operation(scope, submitted.operation_id())
        .await?
        .ok_or_else(|| internal(&"submitted operation vanished"))?;
    status_of(state, scope, &op).await
}

pub async fn request_operation(
    instance_id: String,
    request: Request,
    idempotency_key: String,
) -> Result<OperationStatus, AppError> {
    let (state, s) = session().await?;
    let key = key(idempotency_key)?;
    let Ok(id) = InstanceId::parse(&instance_id) else {
        return Err(AppError::NotFound);
    };
    let scope = s.scope();
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
    let role = s.role();
    let submitted = state
        .store
        .submit_change(
            &scope,
            &actor(&s),
            &id,
            &op_request,
            redacted,
            Some(&key),
            |inst, in_flight| {
                let Some(plan) = plan_of(&inst.plan_id) else {
                    return Err(policy::Denial::PlanDisables {
                        operation: request.operation(),
                        plan: inst.plan_id.clone(),
                    });
                };
                let facts = inst.facts(plan, in_flight);
                policy::check(roles, role, &facts, &request)
            },
        )
        .await?;
    answer(&state, &scope, submitted).await
}

pub async fn create_options() -> Result<CreateOptions, AppError> {
    let (state, s) = session().await?;
    let plan = tenant_plan(&state, &s).await?;
    let p = &state.provider;
    let mut denied = policy::permitted(&p.roles, s.role(), Operation::Create, plan).err();
    if denied.is_none() {
        let existing = state
            .store
            .count_live_instances(&s.scope(), &plan.id)
            .await?;
        if existing >= plan.quota {
            denied = Some(policy::Denial::QuotaReached { quota: plan.quota });
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

pub async fn create_instance(
    request: CreateRequest,
    idempotency_key: String,
) -> Result<OperationStatus, AppError> {
    let (state, s) = session().await?;
    let key = key(idempotency_key)?;
    let scope = s.scope();
    let plan = tenant_plan(&state, &s).await?;
    // Parameters the customer did not set take the plan's defaults.
    let mut parameters: BTreeMap<String, ParamValue> = plan
        .parameters
        .iter()
        .map(|p| (p.name.clone(), p.default.clone()))
        .collect();
    parameters.extend(request.parameters.clone());
    let record = InstanceRecord {
        id: InstanceId::parse(&new_id()).map_err(|e| internal(&e))?,
        tenant_id: scope.tenant_id().clone(),
        name: request.name.clone(),
        plan_id: plan.id.clone(),
        environment: request.environment.clone(),
        region: request.region.clone(),
        status: crate::domain::Status::Deploying,
        status_reason: None,
        resources: request.resources,
        parameters,
        endpoints: vec![],
        delete_protected: false,
        version: 1,
        created_at: 0,
        updated_at: 0,
    };
    let op_request = OperationRequest::Create(request.clone());
    let redacted = redact(Some(plan), &op_request);
    let roles = &state.provider.roles;
    let role = s.role();
    let submitted = state
        .store
        .submit_create(
            &scope,
            &actor(&s),
            &record,
            &op_request,
            redacted,
            Some(&key),
            |existing| policy::check_create(roles, role, plan, existing, &request),
        )
        .await?;
    answer(&state, &scope, submitted).await
}

pub async fn operation_status(operation_id: String) -> Result<OperationStatus, AppError> {
    let (state, s) = session().await?;
    let scope = s.scope();
    let op = state
        .store
        .get_operation(&scope, &operation_id)
        .await?
        .ok_or(AppError::NotFound)?;
    status_of(&state, &scope, &op).await
}

/// The most lines one audit query returns.
pub const AUDIT_LIMIT: i64 = 1000;

pub fn audit_filter(instance_id: &str, operation: &str, user: &str, outcome: &str) -> AuditFilter {
    let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    AuditFilter {
        instance_id: some(instance_id),
        operation: some(operation),
        user: some(user),
        outcome: some(outcome),
    }
}

pub fn audit_entry(e: AuditEvent) -> AuditEntry {
    AuditEntry {
        time: timestamp_secs(e.created_at),
        actor: e.actor_email.or(e.user_id).unwrap_or_default(),
        role: e.role.unwrap_or_default(),
        instance: e
            .instance_name
            .clone()
            .or(e.instance_id.clone())
            .unwrap_or_default(),
        instance_id: e.instance_id.unwrap_or_default(),
        operation: e.operation.unwrap_or_default(),
        parameters: e.parameters,
        outcome: e.outcome,
        reason: e.reason.unwrap_or_default(),
        request_id: e.request_id.unwrap_or_default(),
    }
}

/// Whether this session may read the audit log.
pub fn may_read_audit(state: &AppState, s: &Session) -> Result<(), AppError> {
    if state.provider.audit.may_read(s.role()) {
        Ok(())
    } else {
        Err(AppError::Denied {
            reason: "Your role may not read the audit log.".into(),
            field: None,
        })
    }
}

/// Reads the audit log for a session, honouring who may read it.
pub async fn read_audit(
    state: &AppState,
    s: &Session,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, AppError> {
    may_read_audit(state, s)?;
    let events = state
        .store
        .list_audit(&s.scope(), filter, AUDIT_LIMIT)
        .await?;
    Ok(events.into_iter().map(audit_entry).collect())
}

pub async fn audit_log(
    instance_id: String,
    operation: String,
    user: String,
    outcome: String,
) -> Result<Vec<AuditEntry>, AppError> {
    let (state, s) = session().await?;
    read_audit(
        &state,
        &s,
        &audit_filter(&instance_id, &operation, &user, &outcome),
    )
    .await
}

/// `2026-11-26 14:10:05 UTC`
fn timestamp_secs(millis: i64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(millis / 1000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}
