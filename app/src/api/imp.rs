//! Server side of the server functions.

use super::AppError;
use crate::domain::{
    Email, InstanceDetail, InstanceFilter, InstanceId, InstanceSummary, Me, ParamEntry,
};
use crate::server::auth::{self, Session, SignInError};
use crate::server::state::AppState;
use crate::server::store::{InstanceRecord, StoreError};
use http::header::SET_COOKIE;
use http::request::Parts;
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

/// Sets the HTTP status that matches an error before it is encoded.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(e) = &result {
        if let (Some(opts), Ok(code)) = (
            use_context::<ResponseOptions>(),
            http::StatusCode::from_u16(e.status()),
        ) {
            opts.set_status(code);
        }
    }
    result
}

fn state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| internal(&"AppState missing from context"))
}

fn request_id() -> String {
    use_context::<Parts>()
        .and_then(|p| {
            p.headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
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
        Some(s) => Ok((state, s)),
        None => Err(AppError::Unauthenticated),
    }
}

pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    let state = state()?;
    let email = Email::parse(&email).map_err(|e| AppError::invalid("email", e))?;
    if password.is_empty() {
        return Err(AppError::invalid("password", "must not be empty"));
    }
    match auth::sign_in_with_password(&state, &email, password).await {
        Ok((token, record)) => {
            tracing::info!(user = %record.user_id, tenant = %record.tenant_id, "signed in");
            let opts = expect_context::<ResponseOptions>();
            if let Ok(v) = auth::session_cookie(&state, &token).parse() {
                opts.append_header(SET_COOKIE, v);
            }
            leptos_axum::redirect("/instances");
            Ok(())
        }
        Err(SignInError::BadCredentials) => {
            tracing::info!(email = %email, "sign-in refused");
            Err(AppError::BadCredentials)
        }
        Err(SignInError::NoTenant) => Err(AppError::NoTenant),
        Err(SignInError::Store(e)) => Err(e.into()),
    }
}

pub async fn sign_out() -> Result<(), AppError> {
    let state = state()?;
    if let Some(parts) = use_context::<Parts>() {
        if let Some(token) = auth::token_from_headers(&parts.headers) {
            state.store.delete_session(&auth::token_hash(&token)).await?;
        }
    }
    if let Ok(v) = auth::clear_cookie().parse() {
        expect_context::<ResponseOptions>().append_header(SET_COOKIE, v);
    }
    leptos_axum::redirect("/sign-in");
    Ok(())
}

pub async fn current_user() -> Result<Me, AppError> {
    let (state, s) = session().await?;
    let r = &s.record;
    Ok(Me {
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

pub async fn list_instances(
    environment: String,
    status: String,
    q: String,
) -> Result<Vec<InstanceSummary>, AppError> {
    let (state, s) = session().await?;
    let filter = InstanceFilter::from_query(&environment, &status, &q);
    let records = state.store.list_instances(&s.scope()).await?;
    Ok(records
        .iter()
        .map(|i| summary(&state, i))
        .filter(|i| filter.matches(i))
        .collect())
}

pub async fn get_instance(id: String) -> Result<InstanceDetail, AppError> {
    let (state, s) = session().await?;
    // A malformed id cannot name an instance; answer exactly as for another tenant's.
    let Ok(id) = InstanceId::parse(&id) else {
        return Err(AppError::NotFound);
    };
    let i = state
        .store
        .get_instance(&s.scope(), &id)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(detail(&state, &i))
}

fn summary(state: &AppState, i: &InstanceRecord) -> InstanceSummary {
    let p = &state.provider;
    InstanceSummary {
        id: i.id.to_string(),
        name: i.name.clone(),
        plan_name: p.plan(&i.plan_id).map_or(i.plan_id.clone(), |pl| pl.name.clone()),
        environment: i.environment.clone(),
        environment_name: p.environment_name(&i.environment).to_owned(),
        region: i.region.clone(),
        status: i.status,
        replicas: i.resources.replicas,
        updated_at: timestamp(i.updated_at),
    }
}

fn detail(state: &AppState, i: &InstanceRecord) -> InstanceDetail {
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
        enabled_operations: plan.map(|pl| pl.operations.clone()).unwrap_or_default(),
        created_at: timestamp(i.created_at),
        updated_at: timestamp(i.updated_at),
    }
}

/// `2026-11-26 14:10 UTC`
fn timestamp(millis: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(millis / 1000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}
