//! `/api/v1/webhooks`: a tenant's webhook endpoints, for its admins' tokens. Adapters over
//! `service::webhooks`, as the rest of `/api/v1` is over its services.

use super::problem::{JsonBody, Problem, ProblemResponse, QueryArgs};
use super::types::*;
use super::v1::fail;
use crate::server::service::{webhooks, Principal, ServiceError};
use crate::server::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;

type Answer = Result<Response, ProblemResponse>;

fn names(types: &[crate::domain::webhooks::WebhookEvent]) -> Vec<String> {
    types.iter().map(|t| t.as_str().to_owned()).collect()
}

/// The tenant's webhook endpoints, oldest first (admin tokens).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "The endpoints", body = Vec<WebhookView>),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
) -> Answer {
    let list = webhooks::list(&state, &who).await.map_err(fail(&headers))?;
    Ok(Json(list.iter().map(WebhookView::from).collect::<Vec<_>>()).into_response())
}

/// Add a webhook endpoint (admin tokens). Its signing secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = WebhookBody,
    responses(
        (status = 201, description = "Created", body = WebhookCreated),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_webhook(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<WebhookBody>,
) -> Answer {
    let e = webhooks::create(
        &state,
        &who,
        &body.url,
        &body.description,
        &names(&body.event_types),
    )
    .await
    .map_err(fail(&headers))?;
    let created = WebhookCreated {
        endpoint: WebhookView::from(&e),
        secret: e.secret,
    };
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// One webhook endpoint with its queue (admin tokens).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookDetail),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_webhook(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let (e, backlog) = webhooks::get(&state, &who, &id)
        .await
        .map_err(fail(&headers))?;
    Ok(Json(WebhookDetail {
        endpoint: WebhookView::from(&e),
        pending_deliveries: backlog.pending,
        failed_deliveries: backlog.failed,
    })
    .into_response())
}

/// Change a webhook endpoint (admin tokens): its URL, description, event types, or whether it
/// is enabled. Re-enabling an endpoint Portico disabled resumes its waiting deliveries.
#[utoipa::path(patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", request_body = WebhookPatch,
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The endpoint as changed", body = WebhookView),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_webhook(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<WebhookPatch>,
) -> Answer {
    let change = webhooks::Change {
        url: body.url,
        description: body.description,
        event_types: body.event_types.as_deref().map(names),
        enabled: body.enabled,
    };
    let e = webhooks::update(&state, &who, &id, &change)
        .await
        .map_err(fail(&headers))?;
    Ok(Json(WebhookView::from(&e)).into_response())
}

/// Remove a webhook endpoint, what waits for it, and its log (admin tokens).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    webhooks::delete(&state, &who, &id)
        .await
        .map_err(fail(&headers))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Give a webhook endpoint a new signing secret (admin tokens). For 24 hours every delivery
/// carries signatures by both the new and the previous secret.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/rotate", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 200, description = "The new secret", body = WebhookSecret),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_webhook(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let e = webhooks::rotate(&state, &who, &id)
        .await
        .map_err(fail(&headers))?;
    let until = e.previous_secret_until.unwrap_or(e.updated_at);
    Ok(Json(WebhookSecret {
        secret: e.secret,
        previous_secret_valid_until: crate::server::control_plane::contract::rfc3339(until),
    })
    .into_response())
}

/// Send a `webhook.test` message to an endpoint (admin tokens), whatever it subscribed to.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses(
        (status = 202, description = "Queued", body = WebhookQueued),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn test_webhook(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let message_id = webhooks::send_test(&state, &who, &id)
        .await
        .map_err(fail(&headers))?;
    Ok((StatusCode::ACCEPTED, Json(WebhookQueued { message_id })).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AttemptQuery {
    /// At most this many, newest first (1 to 100; 50 unless given).
    pub(super) limit: Option<i64>,
}

/// An endpoint's delivery log: its latest attempts, newest first (admin tokens).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/attempts", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id"), AttemptQuery),
    responses(
        (status = 200, description = "The attempts", body = Vec<WebhookAttempt>),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_attempts(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
    QueryArgs(q): QueryArgs<AttemptQuery>,
) -> Answer {
    let list = webhooks::attempts(&state, &who, &id, q.limit.unwrap_or(50))
        .await
        .map_err(fail(&headers))?;
    let list = list
        .into_iter()
        .map(WebhookAttempt::try_from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(&headers)(ServiceError::internal(e)))?;
    Ok(Json(list).into_response())
}

/// Send a message an endpoint was sent before once more, with the same `webhook-id`
/// (admin tokens).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/messages/{message_id}/redeliver",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "The endpoint's id"),
        ("message_id" = String, Path, description = "The message's `webhook-id`"),
    ),
    responses(
        (status = 202, description = "Queued", body = WebhookQueued),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn redeliver(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path((id, message_id)): Path<(String, String)>,
) -> Answer {
    webhooks::redeliver(&state, &who, &id, &message_id)
        .await
        .map_err(fail(&headers))?;
    Ok((StatusCode::ACCEPTED, Json(WebhookQueued { message_id })).into_response())
}
