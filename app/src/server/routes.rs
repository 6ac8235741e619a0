//! The HTTP router: pages, server functions, static files, health probes.

use super::state::AppState;
use crate::ui::{shell, App};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, handle_server_fns_with_context, LeptosRoutes};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let ctx = state.clone();
    let ctx2 = state.clone();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/audit/export", get(export_audit))
        .route(
            "/api/{*fn_name}",
            get(server_fn_handler).post(server_fn_handler),
        )
        .leptos_routes_with_context(&state, routes, move || provide_context(ctx.clone()), {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(move || provide_context(ctx2.clone()), shell))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                let id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // tenant and user are filled in once the session is known.
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id = %id,
                    tenant = tracing::field::Empty,
                    user = tracing::field::Empty,
                )
            }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

async fn server_fn_handler(State(state): State<AppState>, req: Request<Body>) -> impl IntoResponse {
    handle_server_fns_with_context(move || provide_context(state.clone()), req).await
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = ?e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct ExportQuery {
    #[serde(default)]
    format: String,
    #[serde(default)]
    instance_id: String,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    outcome: String,
}

/// The filtered audit log as a download: `?format=csv` (default) or `?format=json`.
async fn export_audit(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<ExportQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    use crate::api::imp::{audit_filter, read_audit};
    use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
    let session = match super::auth::current_session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return (StatusCode::UNAUTHORIZED, "Please sign in to continue.").into_response()
        }
        Err(e) => {
            let id = crate::server::store::new_id();
            tracing::error!(request_id = %id, error = ?e, "audit export failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Something went wrong (request id {id})."),
            )
                .into_response();
        }
    };
    let filter = audit_filter(&q.instance_id, &q.operation, &q.user, &q.outcome);
    let entries = match read_audit(&state, &session, &filter).await {
        Ok(e) => e,
        Err(e) => {
            let code =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (code, e.to_string()).into_response();
        }
    };
    if q.format == "json" {
        let body = serde_json::to_string_pretty(&entries).unwrap_or_else(|_| "[]".into());
        return (
            [
                (CONTENT_TYPE, "application/json"),
                (
                    CONTENT_DISPOSITION,
                    "attachment; filename=\"portico-audit.json\"",
                ),
            ],
            body,
        )
            .into_response();
    }
    let mut csv = String::from(
        "time,actor,role,instance,instance_id,operation,parameters,outcome,reason,request_id\r\n",
    );
    for e in &entries {
        let fields = [
            &e.time,
            &e.actor,
            &e.role,
            &e.instance,
            &e.instance_id,
            &e.operation,
            &e.parameters,
            &e.outcome,
            &e.reason,
            &e.request_id,
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        csv.push_str(&line.join(","));
        csv.push_str("\r\n");
    }
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                CONTENT_DISPOSITION,
                "attachment; filename=\"portico-audit.csv\"",
            ),
        ],
        csv,
    )
        .into_response()
}

/// One CSV field: quoted when needed, and never read as a formula by a spreadsheet.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }
}
