//! The routes the provider's control plane calls: `POST /control-plane/v1/operations/{id}/events`
//! (progress and completion of an operation) and `POST /control-plane/v1/instances/{id}/events`
//! (a change made outside the portal).
//!
//! They sit outside the browser's cross-site guard (a server calls them, not a page) and accept
//! nothing unsigned: every request must carry a Standard Webhooks signature made with the
//! callback secret, a timestamp within five minutes, and a `webhook-id` not seen before.
//! Any of those missing or wrong answers 401 and changes nothing.

use super::control_plane::contract::{
    CallbackAnswer, InstanceEvent, OperationEvent, Refusal, CALLBACK_PREFIX,
};
use super::control_plane::signature::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::service::{self, ServiceError};
use super::state::AppState;
use super::store::{now_millis, EventApplied};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// How long accepted `webhook-id`s are remembered: longer than the timestamps' tolerance
/// either way, so a replay is refused by one check or the other.
const REMEMBER_IDS_MS: i64 = 15 * 60 * 1000;

pub const OPERATION_EVENTS: &str = "/control-plane/v1/operations/{operation_id}/events";
pub const INSTANCE_EVENTS: &str = "/control-plane/v1/instances/{instance_id}/events";

/// Whether `path` is one of these routes (the cross-site guard lets them through).
pub fn is_callback(path: &str) -> bool {
    path.starts_with(CALLBACK_PREFIX) && path[CALLBACK_PREFIX.len()..].starts_with('/')
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let refusal = Refusal {
        message: message.to_owned(),
    };
    (status, Json(refusal)).into_response()
}

/// Checks the signature and that the message is new (remembering its id); the refusal to send
/// otherwise. Returns the message's `webhook-id`.
async fn verified(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<String, Response> {
    let Some(keys) = &state.callback_keys else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "this portal has no callback secret configured: it accepts no callbacks",
        ));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = now_millis();
    if let Err(why) = keys.verify(
        header(ID_HEADER),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        body,
        now / 1000,
    ) {
        tracing::warn!(%why, "control plane callback refused");
        return Err(refuse(StatusCode::UNAUTHORIZED, &why.to_string()));
    }
    let id = header(ID_HEADER).unwrap_or_default();
    match state
        .store
        .accept_message_id(id, now, REMEMBER_IDS_MS)
        .await
    {
        Ok(true) => Ok(id.to_owned()),
        Ok(false) => {
            tracing::warn!(webhook_id = id, "control plane callback replayed");
            Err(refuse(
                StatusCode::UNAUTHORIZED,
                "this webhook-id was already received",
            ))
        }
        Err(e) => {
            tracing::error!(error = ?e, "cannot record a callback's id");
            Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later"))
        }
    }
}

/// Reports an operation's progress or result.
///
/// Only a `seq` above the last one applied for the operation changes anything; a final
/// report (`succeeded` or `failed`) settles the operation and its instance.
#[utoipa::path(
    post,
    path = OPERATION_EVENTS,
    tag = super::control_plane::openapi::PORTICO_IMPLEMENTS,
    operation_id = "operation_event",
    params(
        ("operation_id" = String, Path, description = "The `operation_id` of the command."),
        super::control_plane::openapi::Signed,
    ),
    request_body = OperationEvent,
    responses(
        (status = 200, description = "Received; `applied` is false when a later report was \
            already applied.", body = CallbackAnswer),
        (status = 401, description = "A missing or wrong signature, a stale timestamp or a \
            replayed `webhook-id` (or no callback secret configured).", body = Refusal),
        (status = 404, description = "No such operation.", body = Refusal),
        (status = 422, description = "The body is not an operation event.", body = Refusal),
        (status = 503, description = "Portico cannot take it now: send it again later.",
            body = Refusal),
    )
)]
pub async fn operation_event(
    State(state): State<AppState>,
    Path(operation_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = match verified(&state, &headers, &body).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let event: OperationEvent = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return unreadable("an operation event", e),
    };
    let result = service::control_plane::operation_event(&state, &operation_id, event).await;
    answer(&state, &id, result, "operation").await
}

/// Reports a change made outside the portal.
///
/// The provider's console stopped the instance, it failed, its endpoints changed, it was
/// deleted. Ordered by `seq` when given, else by `observed_at`; an older report changes
/// nothing.
#[utoipa::path(
    post,
    path = INSTANCE_EVENTS,
    tag = super::control_plane::openapi::PORTICO_IMPLEMENTS,
    operation_id = "instance_event",
    params(
        ("instance_id" = String, Path, description = "Portico's id of the instance."),
        super::control_plane::openapi::Signed,
    ),
    request_body = InstanceEvent,
    responses(
        (status = 200, description = "Received; `applied` is false when a later report was \
            already applied (by `seq`, else `observed_at`).", body = CallbackAnswer),
        (status = 401, description = "A missing or wrong signature, a stale timestamp or a \
            replayed `webhook-id`.", body = Refusal),
        (status = 404, description = "No such instance.", body = Refusal),
        (status = 422, description = "The body is not an instance event.", body = Refusal),
        (status = 503, description = "Portico cannot take it now: send it again later.",
            body = Refusal),
    )
)]
pub async fn instance_event(
    State(state): State<AppState>,
    Path(instance_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = match verified(&state, &headers, &body).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let event: InstanceEvent = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => return unreadable("an instance event", e),
    };
    let result = service::control_plane::instance_event(&state, &instance_id, event).await;
    answer(&state, &id, result, "instance").await
}

fn unreadable(what: &str, e: serde_json::Error) -> Response {
    refuse(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("not {what}: {e}"),
    )
}

/// The answer to a verified message. When it could not be applied for a reason of ours, its id
/// is forgotten again, so the control plane's retry of the same message is not a replay.
async fn answer(
    state: &AppState,
    id: &str,
    result: Result<EventApplied, ServiceError>,
    what: &str,
) -> Response {
    match result {
        Ok(applied) => Json(CallbackAnswer {
            applied: applied != EventApplied::Stale,
        })
        .into_response(),
        Err(ServiceError::NotFound) => refuse(StatusCode::NOT_FOUND, &format!("no such {what}")),
        Err(ServiceError::Invalid { field, why }) => {
            refuse(StatusCode::UNPROCESSABLE_ENTITY, &format!("{field} {why}"))
        }
        Err(e) => {
            tracing::error!(error = ?e, "control plane callback failed");
            if let Err(e) = state.store.forget_message_id(id).await {
                tracing::error!(error = ?e, "cannot forget a failed callback's id");
            }
            refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}
