//! The routes: control-plane API v1 (signed) and the `/_admin` routes tests drive (unsigned;
//! the server only listens on loopback).

use crate::callbacks::now_millis;
use crate::faults::{Fault, FaultRequest};
use crate::model::{ConsoleChange, Decision};
use crate::runner::{self, Cp, Mode};
use app::server::control_plane::contract::{rfc3339, OperationCommand, Refusal, ReportedState};
use app::server::control_plane::signature::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::{LOCATION, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Where a simulated redirect points.
const REDIRECT_TO: &str = "https://control-plane.example.test/elsewhere";

pub fn router(cp: Cp) -> Router {
    Router::new()
        .route("/operations", post(post_operation))
        .route("/operations/{operation_id}", get(get_operation))
        .route("/instances", get(list_instances))
        .route("/_admin/commands", get(admin_commands))
        .route("/_admin/faults", post(admin_faults))
        .route(
            "/_admin/instances",
            get(admin_instances).post(admin_create_instance),
        )
        .route(
            "/_admin/instances/{instance_id}",
            post(admin_change_instance).delete(admin_remove_instance),
        )
        .fallback(|| async { message(StatusCode::NOT_FOUND, "no such route") })
        .with_state(cp)
}

fn message(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        Json(Refusal {
            message: text.into(),
        }),
    )
        .into_response()
}

fn with_retry_after(mut res: Response, secs: u64) -> Response {
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    res
}

/// Checks the Standard Webhooks signature Portico puts on every request; the 401 otherwise.
fn unsigned(cp: Cp, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    cp.keys
        .verify(
            header(ID_HEADER),
            header(TIMESTAMP_HEADER),
            header(SIGNATURE_HEADER),
            body,
            now_millis() / 1000,
        )
        .err()
        .map(|why| {
            tracing::warn!(%why, "unsigned or badly signed request refused");
            message(StatusCode::UNAUTHORIZED, why.to_string())
        })
}

/// The JSON body, or why it is not `what`.
fn parse<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("not {what}: {e}"))
}

fn fault_response(fault: &Fault, status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = message(status, fault.message());
    if status.is_redirection() {
        res.headers_mut()
            .insert(LOCATION, HeaderValue::from_static(REDIRECT_TO));
    }
    match fault.retry_after {
        Some(secs) => with_retry_after(res, secs),
        None => res,
    }
}

/// `POST /operations`.
async fn post_operation(State(cp): State<Cp>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refused) = unsigned(cp, &headers, &body) {
        return refused;
    }
    let cmd: OperationCommand = match parse(&body, "an operation command") {
        Ok(c) => c,
        Err(why) => return message(StatusCode::UNPROCESSABLE_ENTITY, why),
    };
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    cp.change(|s| s.log(&cmd, key.as_deref(), now_millis()));
    tracing::info!(operation_id = %cmd.operation_id, kind = ?cmd.kind, "command received");

    let fault = cp.faults().next();
    if let Some(fault) = fault {
        tracing::info!(operation_id = %cmd.operation_id, ?fault, "simulating a fault");
        if let Some(ms) = fault.hang_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some(status) = fault.status {
            return fault_response(&fault, status);
        }
    }

    let decision = cp.change(|s| s.command(&cmd, key.as_deref(), now_millis(), cp.settings));
    match decision {
        Decision::Refused(status, why) => {
            tracing::info!(operation_id = %cmd.operation_id, %why, "command refused");
            message(
                StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY),
                why,
            )
        }
        Decision::Known(report) if report.state != ReportedState::InProgress => {
            (StatusCode::OK, Json(report)).into_response()
        }
        Decision::Known(report) => with_retry_after(
            (StatusCode::ACCEPTED, Json(report)).into_response(),
            cp.retry_after_secs(),
        ),
        Decision::Accepted => match cp.mode {
            Mode::Sync => {
                // Run apart from this request, so a client that gives up does not stop it.
                let run = tokio::spawn(runner::run_sync(cp, cmd.operation_id.clone()));
                match run.await {
                    Ok(Some(report)) => (StatusCode::OK, Json(report)).into_response(),
                    _ => message(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the operation could not be completed",
                    ),
                }
            }
            Mode::Async => {
                tokio::spawn(runner::run_async(cp, cmd.operation_id.clone()));
                with_retry_after(
                    (
                        StatusCode::ACCEPTED,
                        Json(json!({ "state": "in_progress" })),
                    )
                        .into_response(),
                    cp.retry_after_secs(),
                )
            }
        },
    }
}

/// `GET /operations/{operation_id}`.
async fn get_operation(
    State(cp): State<Cp>,
    Path(operation_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = unsigned(cp, &headers, &body) {
        return refused;
    }
    match cp.read(|s| s.operations.get(&operation_id).map(|o| o.report())) {
        Some(report) if report.state == ReportedState::InProgress => {
            with_retry_after(Json(report).into_response(), cp.retry_after_secs())
        }
        Some(report) => Json(report).into_response(),
        None => message(
            StatusCode::NOT_FOUND,
            format!("unknown operation {operation_id}"),
        ),
    }
}

/// `GET /instances?cursor=&limit=`.
async fn list_instances(
    State(cp): State<Cp>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = unsigned(cp, &headers, &body) {
        return refused;
    }
    let limit = match query.get("limit").filter(|l| !l.is_empty()) {
        None => None,
        Some(l) => match l.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => {
                return message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("limit {l} is not a number"),
                )
            }
        },
    };
    match cp.read(|s| s.page(query.get("cursor").map(String::as_str), limit)) {
        Ok(page) => Json(page).into_response(),
        Err(why) => message(StatusCode::UNPROCESSABLE_ENTITY, why),
    }
}

/// `GET /_admin/commands`.
async fn admin_commands(State(cp): State<Cp>) -> Response {
    Json(cp.read(|s| s.command_log())).into_response()
}

/// `POST /_admin/faults`.
async fn admin_faults(State(cp): State<Cp>, body: Bytes) -> Response {
    let req: FaultRequest = match parse(&body, "a fault") {
        Ok(r) => r,
        Err(why) => return message(StatusCode::UNPROCESSABLE_ENTITY, why),
    };
    if let Some(drop) = req.drop_callbacks {
        cp.notifier.set_dropping(drop);
        tracing::info!(drop_callbacks = drop, "callbacks switched");
    }
    let mut faults = cp.faults();
    if req.clear == Some(true) {
        faults.clear();
    }
    match faults.push(&req) {
        Ok(queued) => Json(json!({ "queued": queued })).into_response(),
        Err(why) => message(StatusCode::UNPROCESSABLE_ENTITY, why),
    }
}

/// `GET /_admin/instances`.
async fn admin_instances(State(cp): State<Cp>) -> Response {
    Json(cp.read(|s| s.instances.clone())).into_response()
}

/// `POST /_admin/instances/{instance_id}`: a change made in the provider's console.
async fn admin_change_instance(
    State(cp): State<Cp>,
    Path(instance_id): Path<String>,
    body: Bytes,
) -> Response {
    let change: ConsoleChange = match parse(&body, "an instance change") {
        Ok(c) => c,
        Err(why) => return message(StatusCode::UNPROCESSABLE_ENTITY, why),
    };
    let changed = cp.change(|s| {
        s.console_change(&instance_id, &change, rfc3339(now_millis()))
            .map(|(id, event)| (id.clone(), event, s.instance(&id).cloned()))
    });
    match changed {
        Some((id, event, instance)) => {
            tracing::info!(instance_id = %id, seq = ?event.seq, "instance changed in the console");
            if change.notify != Some(false) {
                cp.notifier.instance_event(&id, event);
            }
            Json(instance).into_response()
        }
        None => message(
            StatusCode::NOT_FOUND,
            format!("unknown instance {instance_id}"),
        ),
    }
}

/// `POST /_admin/instances`: an instance made in the provider's console, which Portico learns
/// of only by reconciliation.
async fn admin_create_instance(State(cp): State<Cp>, body: Bytes) -> Response {
    let create: crate::model::ConsoleCreate = match parse(&body, "an instance") {
        Ok(c) => c,
        Err(why) => return message(StatusCode::UNPROCESSABLE_ENTITY, why),
    };
    let external_id = cp.change(|s| s.console_create(&create));
    Json(serde_json::json!({ "external_id": external_id })).into_response()
}

/// `DELETE /_admin/instances/{instance_id}`: the control plane no longer has it.
async fn admin_remove_instance(State(cp): State<Cp>, Path(instance_id): Path<String>) -> Response {
    if cp.change(|s| s.console_remove(&instance_id)) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        message(
            StatusCode::NOT_FOUND,
            format!("unknown instance {instance_id}"),
        )
    }
}
