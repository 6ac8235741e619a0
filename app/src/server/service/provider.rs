//! What the provider does through its API: tenants (create, rename, change plan, suspend and
//! resume), people (add, invite), instances it already runs (import), and its keys. Each call
//! acts in one named tenant, under that tenant's scope like every other path; the reads reuse
//! the tenant services with the provider as the principal.

use super::{Principal, ServiceError};
use crate::domain::api_token::{self, SecretKind};
use crate::domain::{
    Email, InstanceId, InstanceName, ParamValue, Resources, Role, Status, TenantId,
};
use crate::server::auth;
use crate::server::state::AppState;
use crate::server::store::{
    new_id, now_millis, AuditEvent, InstanceRecord, ProviderKeyRecord, StoreError, TenantChange,
    TenantRecord, TenantScope,
};
use std::collections::BTreeMap;

/// A provider key that authenticated a request, before it names a tenant.
#[derive(Debug, Clone)]
pub struct ProviderCaller {
    pub key_id: String,
    pub key_name: String,
    pub request_id: String,
}

impl ProviderCaller {
    /// The provider acting in `tenant`: not found when there is no such tenant.
    pub async fn acting_in(
        &self,
        state: &AppState,
        tenant: &str,
    ) -> Result<Principal, ServiceError> {
        let t = tenant_record(state, tenant).await?;
        Ok(Principal::provider(
            &self.key_id,
            &self.key_name,
            t.id,
            t.name,
            self.request_id.clone(),
        ))
    }
}

/// The caller a provider key stands for: `None` when it is malformed, unknown or revoked.
/// Keys come from the database (`portico provider-key create`) or the environment variables
/// the settings name.
pub async fn authenticate(
    state: &AppState,
    secret: &str,
    request_id: String,
) -> Result<Option<ProviderCaller>, ServiceError> {
    if !api_token::well_formed(SecretKind::ProviderKey, secret) {
        return Ok(None);
    }
    let hash = auth::token_hash(secret);
    if let Some((name, _)) = state
        .settings
        .provider_keys
        .iter()
        .find(|(_, h)| *h == hash)
    {
        return Ok(Some(ProviderCaller {
            key_id: format!("env-{}", name.to_lowercase().replace('_', "-")),
            key_name: name.clone(),
            request_id,
        }));
    }
    Ok(state
        .store
        .resolve_provider_key(&hash, now_millis())
        .await?
        .map(|k| ProviderCaller {
            key_id: k.id,
            key_name: k.name,
            request_id,
        }))
}

/// A new provider key named `name`: the stored record and its secret, printed once.
pub async fn create_key(
    store: &crate::server::store::Store,
    name: &str,
) -> Result<(ProviderKeyRecord, String), ServiceError> {
    let name = name.trim();
    api_token::check_name(name).map_err(|why| ServiceError::invalid("name", why))?;
    let secret = super::tokens::new_secret(SecretKind::ProviderKey);
    let id = new_id();
    let now = now_millis();
    store
        .create_provider_key(&id, name, &auth::token_hash(&secret), now)
        .await
        .map_err(conflict("name"))?;
    Ok((
        ProviderKeyRecord {
            id,
            name: name.to_owned(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        },
        secret,
    ))
}

/// A store conflict (a name or id taken) as the field it concerns.
fn conflict(field: &'static str) -> impl Fn(StoreError) -> ServiceError {
    move |e| match e {
        StoreError::Conflict(why) => ServiceError::Denied {
            reason: format!("{}{}.", why[..1].to_uppercase(), &why[1..]),
            field: Some(field.into()),
        },
        e => e.into(),
    }
}

async fn tenant_record(state: &AppState, tenant: &str) -> Result<TenantRecord, ServiceError> {
    let id = TenantId::parse(tenant).map_err(|_| ServiceError::NotFound)?;
    if !state.store.tenant_exists(&id).await? {
        return Err(ServiceError::NotFound);
    }
    Ok(state.store.tenant(&TenantScope::provider(id)).await?)
}

fn plan_exists(state: &AppState, plan: &str) -> Result<(), ServiceError> {
    if state.provider.plan(plan).is_some() {
        Ok(())
    } else {
        let known: Vec<&str> = state.provider.plans.iter().map(|p| p.id.as_str()).collect();
        Err(ServiceError::invalid(
            "plan",
            format!("is not a configured plan (one of: {})", known.join(", ")),
        ))
    }
}

/// Every tenant, by id.
pub async fn tenants(state: &AppState) -> Result<Vec<TenantRecord>, ServiceError> {
    let mut out = Vec::new();
    for id in state.store.tenant_ids().await? {
        out.push(state.store.tenant(&TenantScope::provider(id)).await?);
    }
    Ok(out)
}

pub async fn tenant(state: &AppState, tenant: &str) -> Result<TenantRecord, ServiceError> {
    tenant_record(state, tenant).await
}

/// Creates a tenant on a plan; its log starts with the provider key that made it.
pub async fn create_tenant(
    state: &AppState,
    caller: &ProviderCaller,
    id: &str,
    name: &str,
    plan: &str,
) -> Result<TenantRecord, ServiceError> {
    let tenant = TenantId::parse(id.trim()).map_err(|e| ServiceError::invalid("id", e))?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(ServiceError::invalid("name", "must be 1 to 128 characters"));
    }
    plan_exists(state, plan)?;
    let now = now_millis();
    state
        .store
        .create_tenant(&tenant, name, plan, now)
        .await
        .map_err(conflict("id"))?;
    let who = caller.acting_in(state, tenant.as_str()).await?;
    let mut event = provider_event(&who, "tenant-create", now);
    event.parameters = serde_json::json!({ "name": name, "plan": plan }).to_string();
    state.store.record_audit(&event).await?;
    tenant_record(state, tenant.as_str()).await
}

/// An audit line by the provider in `who`'s tenant.
fn provider_event(who: &Principal, what: &str, now: i64) -> AuditEvent {
    AuditEvent {
        role: None,
        ..AuditEvent::change(&who.scope(), &who.actor(), what, "{}".into(), now)
    }
}

/// Renames a tenant, moves it to another plan, suspends or resumes it.
pub async fn update_tenant(
    state: &AppState,
    who: &Principal,
    change: TenantChange,
) -> Result<TenantRecord, ServiceError> {
    if let Some(name) = &change.name {
        if name.trim().is_empty() || name.chars().count() > 128 {
            return Err(ServiceError::invalid("name", "must be 1 to 128 characters"));
        }
    }
    if let Some(plan) = &change.plan_id {
        plan_exists(state, plan)?;
    }
    Ok(state
        .store
        .update_tenant(&who.scope(), &who.actor(), &change, now_millis())
        .await?)
}

/// Makes `email` a member with `role`, creating the account (without a password: they sign
/// in with single sign-on, or set one through an invitation) when it does not exist.
pub async fn add_member(
    state: &AppState,
    who: &Principal,
    email: &str,
    role: Role,
    display_name: Option<&str>,
) -> Result<(), ServiceError> {
    let email = Email::parse(email).map_err(|e| ServiceError::invalid("email", e))?;
    let now = now_millis();
    let user = match state.store.user_credentials(&email).await? {
        Some(c) => c.user_id,
        None => {
            let name = display_name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| email.as_str().split('@').next().unwrap_or_default());
            state.store.create_user(&email, name, None, now).await?
        }
    };
    let reason = format!("added by the provider key {}", key_name(who));
    let joined = state
        .store
        .join_tenant(&who.scope(), &user, email.as_str(), role, &reason, now)
        .await?;
    if !joined {
        return Err(ServiceError::Denied {
            reason: format!("{email} is already a member."),
            field: Some("email".into()),
        });
    }
    Ok(())
}

fn key_name(who: &Principal) -> &str {
    match who {
        Principal::Provider { key_name, .. } => key_name,
        _ => "",
    }
}

/// An instance the provider already runs, recorded under the tenant as it is.
#[derive(Debug, Clone)]
pub struct Import {
    pub name: String,
    pub external_id: String,
    pub plan: Option<String>,
    pub environment: String,
    pub region: String,
    pub status: Status,
    pub resources: Resources,
    pub parameters: BTreeMap<String, ParamValue>,
}

/// Records an instance the provider's systems already run under the tenant, with its
/// external id (the control plane's own), on the tenant's plan unless another is named.
/// No operation runs: the instance is as the provider says.
pub async fn import_instance(
    state: &AppState,
    who: &Principal,
    import: Import,
) -> Result<String, ServiceError> {
    let scope = who.scope();
    let name =
        InstanceName::parse(import.name.trim()).map_err(|e| ServiceError::invalid("name", e))?;
    let external_id = import.external_id.trim();
    if external_id.is_empty() || external_id.len() > 256 {
        return Err(ServiceError::invalid(
            "external_id",
            "must be 1 to 256 characters",
        ));
    }
    let plan_id = match import.plan {
        Some(p) => p,
        None => state.store.tenant(&scope).await?.plan_id,
    };
    plan_exists(state, &plan_id)?;
    let p = &state.provider;
    if !p.environments.iter().any(|e| e.id == import.environment) {
        return Err(ServiceError::invalid(
            "environment",
            "is not a configured environment",
        ));
    }
    if !p.regions.iter().any(|r| r.id == import.region) {
        return Err(ServiceError::invalid(
            "region",
            "is not a configured region",
        ));
    }
    let now = now_millis();
    let id = InstanceId::parse(&new_id()).map_err(ServiceError::internal)?;
    let record = InstanceRecord {
        id: id.clone(),
        tenant_id: scope.tenant_id().clone(),
        name: name.as_str().to_owned(),
        plan_id,
        environment: import.environment,
        region: import.region,
        status: import.status,
        status_reason: None,
        resources: import.resources,
        parameters: import.parameters,
        endpoints: vec![],
        delete_protected: false,
        version: 1,
        created_at: now,
        updated_at: now,
        external_id: Some(external_id.to_owned()),
        observed_at: Some(now),
        missing_since: None,
    };
    let mut event = provider_event(who, "instance-import", now);
    event.instance_id = Some(id.to_string());
    event.instance_name = Some(record.name.clone());
    event.parameters = serde_json::json!({ "external_id": external_id }).to_string();
    state
        .store
        .insert_instance_audited(&scope, &record, Some(&event))
        .await
        .map_err(conflict("name"))?;
    Ok(id.to_string())
}
