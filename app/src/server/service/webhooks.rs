//! A tenant's webhook endpoints: admins add, change, rotate, try and remove them, and read
//! each one's delivery log. Every entry point (the portal's page, `/api/v1`) calls these.

use super::{Principal, ServiceError};
use crate::domain::members::may_manage_members;
use crate::domain::webhooks::{self, Allowance, WebhookEvent, DESCRIPTION_MAX};
use crate::server::control_plane::signature::Secret;
use crate::server::state::AppState;
use crate::server::store::{
    new_id, now_millis, AttemptRecord, Backlog, EndpointChange, EndpointRecord, NewEndpoint,
};
use std::time::Duration;

/// How long the previous secret keeps signing after a rotation.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// Attempts the delivery log shows at most.
pub const LOG_MAX: i64 = 100;

fn admin(who: &Principal) -> Result<(), ServiceError> {
    if may_manage_members(who.role()) {
        Ok(())
    } else {
        Err(ServiceError::denied("Only admins manage webhooks."))
    }
}

fn allowance(state: &AppState) -> Allowance {
    // Validated when the configuration was loaded.
    Allowance::parse(&state.provider.webhooks.allow).unwrap_or_default()
}

fn check_url(state: &AppState, url: &str) -> Result<String, ServiceError> {
    webhooks::check_url(url, &allowance(state)).map_err(|why| ServiceError::invalid("url", why))?;
    Ok(url.trim().to_owned())
}

fn check_description(d: &str) -> Result<String, ServiceError> {
    let d = d.trim();
    if d.chars().count() > DESCRIPTION_MAX {
        return Err(ServiceError::invalid(
            "description",
            format!("at most {DESCRIPTION_MAX} characters"),
        ));
    }
    Ok(d.to_owned())
}

fn check_types(names: &[String]) -> Result<Vec<WebhookEvent>, ServiceError> {
    webhooks::parse_event_types(names).map_err(|why| ServiceError::invalid("event_types", why))
}

/// The tenant's endpoints, oldest first.
pub async fn list(state: &AppState, who: &Principal) -> Result<Vec<EndpointRecord>, ServiceError> {
    admin(who)?;
    Ok(state.store.list_webhook_endpoints(&who.scope()).await?)
}

/// One endpoint, with how many of its deliveries wait or ran out of attempts.
pub async fn get(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<(EndpointRecord, Backlog), ServiceError> {
    admin(who)?;
    let scope = who.scope();
    let e = state
        .store
        .webhook_endpoint(&scope, id)
        .await?
        .ok_or(ServiceError::NotFound)?;
    let backlog = state.store.webhook_backlog(&scope, id).await?;
    Ok((e, backlog))
}

/// Adds an endpoint; its secret is in the answer (the record) and shown once.
pub async fn create(
    state: &AppState,
    who: &Principal,
    url: &str,
    description: &str,
    event_types: &[String],
) -> Result<EndpointRecord, ServiceError> {
    admin(who)?;
    super::session::ensure_active(state, who).await?;
    let url = check_url(state, url)?;
    let description = check_description(description)?;
    let event_types = check_types(event_types)?;
    let scope = who.scope();
    let max = state.provider.webhooks.max_endpoints;
    let have = state.store.list_webhook_endpoints(&scope).await?.len();
    if have >= usize::try_from(max).unwrap_or(usize::MAX) {
        return Err(ServiceError::Denied {
            reason: format!("A tenant may have at most {max} webhook endpoints."),
            field: None,
        });
    }
    let new = NewEndpoint {
        id: new_id(),
        url,
        description,
        event_types,
        secret: Secret::generate(),
    };
    let e = state
        .store
        .create_webhook_endpoint(&scope, &who.actor(), &new, now_millis())
        .await?;
    tracing::info!(endpoint = %e.id, "webhook endpoint created");
    Ok(e)
}

/// What a person may change about an endpoint; `None` keeps a field.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// Changes an endpoint. Enabling one that Portico disabled resumes its waiting deliveries.
pub async fn update(
    state: &AppState,
    who: &Principal,
    id: &str,
    c: &Change,
) -> Result<EndpointRecord, ServiceError> {
    admin(who)?;
    // Disabling stays possible while suspended: it only sends less.
    if c.url.is_some() || c.event_types.is_some() || c.enabled == Some(true) {
        super::session::ensure_active(state, who).await?;
    }
    let change = EndpointChange {
        url: c.url.as_deref().map(|u| check_url(state, u)).transpose()?,
        description: c
            .description
            .as_deref()
            .map(check_description)
            .transpose()?,
        event_types: c.event_types.as_deref().map(check_types).transpose()?,
        enabled: c.enabled,
    };
    state
        .store
        .update_webhook_endpoint(&who.scope(), &who.actor(), id, &change, now_millis())
        .await?
        .ok_or(ServiceError::NotFound)
}

/// Removes an endpoint, what waits for it, and its log.
pub async fn delete(state: &AppState, who: &Principal, id: &str) -> Result<(), ServiceError> {
    admin(who)?;
    let gone = state
        .store
        .delete_webhook_endpoint(&who.scope(), &who.actor(), id, now_millis())
        .await?;
    if gone {
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

/// Gives an endpoint a new secret (returned, shown once); the old one keeps signing, beside
/// it, for [`ROTATION_OVERLAP`].
pub async fn rotate(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<EndpointRecord, ServiceError> {
    admin(who)?;
    let now = now_millis();
    let keep_until = now + crate::server::store::millis(ROTATION_OVERLAP);
    state
        .store
        .rotate_webhook_secret(
            &who.scope(),
            &who.actor(),
            id,
            &Secret::generate(),
            keep_until,
            now,
        )
        .await?
        .ok_or(ServiceError::NotFound)
}

/// Queues a `webhook.test` message to one endpoint; returns its message id.
pub async fn send_test(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> Result<String, ServiceError> {
    admin(who)?;
    super::session::ensure_active(state, who).await?;
    state
        .store
        .send_test_webhook(&who.scope(), &who.actor(), id, now_millis())
        .await?
        .ok_or(ServiceError::NotFound)
}

/// The endpoint's latest attempts, newest first.
pub async fn attempts(
    state: &AppState,
    who: &Principal,
    id: &str,
    limit: i64,
) -> Result<Vec<AttemptRecord>, ServiceError> {
    admin(who)?;
    let scope = who.scope();
    if state.store.webhook_endpoint(&scope, id).await?.is_none() {
        return Err(ServiceError::NotFound);
    }
    Ok(state
        .store
        .webhook_attempts(&scope, id, limit.clamp(1, LOG_MAX))
        .await?)
}

/// Sends a message the endpoint was sent before once more, with the same `webhook-id`.
pub async fn redeliver(
    state: &AppState,
    who: &Principal,
    id: &str,
    message_id: &str,
) -> Result<String, ServiceError> {
    admin(who)?;
    super::session::ensure_active(state, who).await?;
    state
        .store
        .redeliver_webhook(&who.scope(), id, message_id, now_millis())
        .await?
        .ok_or(ServiceError::NotFound)
}

/// Whether the tenant has used its hourly deliveries: more are queued, not dropped.
pub async fn over_hourly_limit(state: &AppState, who: &Principal) -> Result<bool, ServiceError> {
    let since = now_millis() - 3_600_000;
    let used = state
        .store
        .webhook_attempts_since(&who.scope(), since)
        .await?;
    Ok(used >= i64::from(state.provider.webhooks.deliveries_per_hour))
}

/// The Webhooks page: every endpoint with its queue and its latest attempts.
pub async fn page(
    state: &AppState,
    who: &Principal,
) -> Result<crate::domain::webhooks::WebhooksView, ServiceError> {
    use crate::domain::webhooks::{WebhookAttemptView, WebhookEndpointView, WebhooksView};
    let endpoints = list(state, who).await?;
    let scope = who.scope();
    let now = now_millis();
    let mut views = Vec::with_capacity(endpoints.len());
    for e in endpoints {
        let backlog = state.store.webhook_backlog(&scope, &e.id).await?;
        let attempts = state.store.webhook_attempts(&scope, &e.id, 10).await?;
        views.push(WebhookEndpointView {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e
                .event_types
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since.map(|t| super::timestamp(t, false)),
            rotating_until: e
                .previous_secret_until
                .filter(|t| *t > now)
                .map(|t| super::timestamp(t, false)),
            pending: backlog.pending,
            failed: backlog.failed,
            attempts: attempts
                .into_iter()
                .map(|a| WebhookAttemptView {
                    message_id: a.message_id,
                    event_type: a.event_type,
                    attempted_at: super::timestamp(a.attempted_at, true),
                    status: a.status.and_then(|s| u16::try_from(s).ok()),
                    latency_ms: a.latency_ms,
                    response: a.response,
                    state: a.delivery_state,
                })
                .collect(),
        });
    }
    Ok(WebhooksView {
        endpoints: views,
        over_hourly_limit: over_hourly_limit(state, who).await?,
        deliveries_per_hour: state.provider.webhooks.deliveries_per_hour,
        max_endpoints: state.provider.webhooks.max_endpoints,
    })
}
