//! The HTTP router: pages, server functions, static files, health probes.

use super::security;
use super::state::AppState;
use crate::ui::{shell, App};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::trace::TraceLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static(security::REQUEST_ID);

/// The routes outside Leptos, with their methods (pages and server functions are enumerable
/// from Leptos itself).
/// The authorization matrix test requires a row for each, so add new ones here.
pub const PLAIN_ROUTES: [(&str, &str); 11] = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/audit/export"),
    ("GET", "/embed"),
    ("GET", "/brand.css"),
    ("GET", "/sso/{issuer}/start"),
    ("GET", "/sso/{issuer}/callback"),
    ("POST", super::callbacks::OPERATION_EVENTS),
    ("POST", super::callbacks::INSTANCE_EVENTS),
    ("GET", super::control_plane::openapi::DOCUMENT_PATH),
    ("GET", super::live::STREAM_PATH),
];

pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let ctx = state.clone();
    let ctx2 = state.clone();
    let (bundle_path, bundle) = super::assets::bundle(&state);
    let app = Router::new()
        .route(PLAIN_ROUTES[0].1, get(|| async { "ok" }))
        .route(PLAIN_ROUTES[1].1, get(readyz))
        .route(PLAIN_ROUTES[2].1, get(export_audit))
        .route(PLAIN_ROUTES[3].1, get(super::embed::sign_in))
        .route(PLAIN_ROUTES[4].1, get(super::assets::brand_css))
        .route(PLAIN_ROUTES[5].1, get(super::sso::start))
        .route(PLAIN_ROUTES[6].1, get(super::sso::callback))
        .route(PLAIN_ROUTES[7].1, post(super::callbacks::operation_event))
        .route(PLAIN_ROUTES[8].1, post(super::callbacks::instance_event))
        .route(PLAIN_ROUTES[9].1, get(super::control_plane::openapi::serve))
        .route(PLAIN_ROUTES[10].1, get(super::live::stream))
        // Server functions are routed by leptos_routes_with_context below, each with its
        // own method (all POST: no mutating one is reachable by a GET a link could send).
        .route("/api/{*fn_name}", any(no_such_function))
        .merge(super::rest::router(&state))
        .nest_service(&bundle_path, bundle)
        .leptos_routes_with_context(&state, routes, move || page_context(&ctx), {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(move || page_context(&ctx2), shell));
    harden(app, state)
}

/// What every page render gets: the state, and its Content-Security-Policy with this
/// response's nonce.
fn page_context(state: &AppState) {
    provide_context(state.clone());
    security::provide_page_policy(state);
}

/// The layers every route sits behind, innermost first: the body size limit, panic
/// containment, cross-site refusal and security headers, request id propagation,
/// compression, tracing, the request id itself, and counting for metrics.
pub fn harden(app: Router<AppState>, state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    app.layer(axum::middleware::from_fn(
        security::refuse_control_characters,
    ))
    .layer(RequestBodyLimitLayer::new(limit))
    .layer(axum::middleware::from_fn(undecodable_is_bad_request))
    .layer(axum::middleware::from_fn(security::contain_panics))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        security::guard,
    ))
    .layer(PropagateRequestIdLayer::new(REQUEST_ID))
    .layer(super::assets::compression())
    .layer(
        TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
            let id = security::request_id(req.headers());
            // tenant and user are filled in once the session is known.
            tracing::info_span!(
                "request",
                method = %req.method(),
                path = %security::loggable_path(req.uri().path()),
                request_id = %id,
                tenant = tracing::field::Empty,
                user = tracing::field::Empty,
            )
        }),
    )
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        security::assign_request_id,
    ))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        super::metrics::count,
    ))
    .with_state(state)
}

/// leptos_axum routes each server function itself; this answers any other `/api/` path.
async fn no_such_function() -> Response {
    (StatusCode::NOT_FOUND, "No such function.").into_response()
}

/// A server-function body that cannot be decoded never reaches the function (which sets its
/// own status), so server_fn answers 500; it is the client's mistake: 400.
async fn undecodable_is_bad_request(req: Request<Body>, next: axum::middleware::Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let request_id = security::request_id(req.headers()).to_owned();
    let res = next.run(req).await;
    if !api || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let mut bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    if let Ok(crate::api::AppError::Transport(why)) = serde_json::from_slice(&bytes) {
        parts.status = StatusCode::BAD_REQUEST;
        // Quote the id the cause was logged with, as every other failure does.
        let quoted = crate::api::AppError::Transport(format!("{why} (request id {request_id})"));
        if let Ok(b) = serde_json::to_vec(&quoted) {
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            bytes = b.into();
        }
    }
    Response::from_parts(parts, Body::from(bytes))
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
    query: Result<axum::extract::Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
    headers: axum::http::HeaderMap,
) -> Response {
    use super::service::{audit, Principal};
    use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
    use futures::StreamExt;
    let request_id = security::request_id(&headers);
    // The extractor's own message names the failing field and Rust types; say less.
    let Ok(axum::extract::Query(q)) = query else {
        tracing::info!(%request_id, "malformed audit export query");
        return (
            StatusCode::BAD_REQUEST,
            format!("The query string is malformed (request id {request_id})."),
        )
            .into_response();
    };
    let session = match super::auth::current_session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return (StatusCode::UNAUTHORIZED, "Please sign in to continue.").into_response()
        }
        Err(e) => {
            tracing::error!(%request_id, error = ?e, "audit export failed");
            return security::internal_error_response(request_id);
        }
    };
    let who = Principal::member(&session, request_id.to_owned());
    if let Err(denied) = audit::may_read(&state, &who) {
        return (StatusCode::FORBIDDEN, denied.to_string()).into_response();
    }
    let filter = audit::filter(&q.instance_id, &q.operation, &q.user, &q.outcome);
    let json = q.format == "json";
    let (content_type, disposition, head, tail) = if json {
        (
            "application/json",
            "attachment; filename=\"portico-audit.json\"",
            "[",
            "\n]\n",
        )
    } else {
        (
            "text/csv; charset=utf-8",
            "attachment; filename=\"portico-audit.csv\"",
            "time,actor,role,instance,instance_id,operation,parameters,outcome,reason,request_id\r\n",
            "",
        )
    };
    // The whole log, a page at a time: memory stays bounded however long it is.
    let request_id = request_id.to_owned();
    // The state is the next page's `before`: `Some(None)` for the first page, `None` when done.
    let pages = futures::stream::try_unfold(Some(None), move |cursor| {
        let (state, who, filter, request_id) = (
            state.clone(),
            who.clone(),
            filter.clone(),
            request_id.clone(),
        );
        async move {
            let Some(before) = cursor else {
                return Ok(None);
            };
            let page = audit::page(&state, &who, &filter, before, EXPORT_PAGE)
                .await
                .map_err(|e| {
                    tracing::error!(%request_id, error = ?e, "audit export failed part way");
                    std::io::Error::other("audit export failed")
                })?;
            let next = page.last().map(|(seq, _)| *seq);
            let full = page.len() == usize::try_from(EXPORT_PAGE).unwrap_or(usize::MAX);
            let mut chunk = String::new();
            for (i, (_, e)) in page.into_iter().enumerate() {
                if json {
                    chunk.push_str(if before.is_none() && i == 0 {
                        "\n"
                    } else {
                        ",\n"
                    });
                    chunk.push_str(&serde_json::to_string(&e).unwrap_or_else(|_| "{}".into()));
                } else {
                    csv_line(&mut chunk, &e);
                }
            }
            let after = if full { next.map(Some) } else { None };
            Ok::<_, std::io::Error>(Some((chunk, after)))
        }
    });
    let body = futures::stream::once(async move { Ok(head.to_owned()) })
        .chain(pages)
        .chain(futures::stream::once(async move { Ok(tail.to_owned()) }));
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_DISPOSITION, disposition),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

/// Audit events read per query while exporting.
const EXPORT_PAGE: i64 = 500;

fn csv_line(out: &mut String, e: &crate::domain::AuditEntry) {
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
    out.push_str(&line.join(","));
    out.push_str("\r\n");
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
