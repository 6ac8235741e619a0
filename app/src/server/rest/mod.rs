//! The REST APIs: `/api/v1` for customers' scripts and the CLI, authorised by a tenant's API
//! tokens only (never by the portal's session), and `/provider/v1` for the provider's systems,
//! authorised by provider keys only. Errors are problem+json, each credential has a request
//! budget, and each API's OpenAPI document is generated from its handlers.

pub mod openapi;
pub mod problem;
pub mod provider;
pub mod types;
pub mod v1;
pub mod webhooks;

use super::auth;
use super::security;
use super::service::{tokens, Principal};
use super::state::AppState;
use super::store::now_millis;
use crate::domain::api_token::{kind_of, SecretKind};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, patch, post, MethodRouter};
use axum::Router;
use problem::ProblemResponse;

/// Where the tenant API lives.
pub const PREFIX: &str = "/api/v1";

/// How long a request budget window lasts.
const WINDOW_MS: i64 = 60_000;

/// Every `/api/v1` route that needs a token, with its method: the router is built from this
/// list, the OpenAPI test checks the document against it, and the authorization matrix needs
/// a row for each.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        ("GET", "/api/v1/instances", get(v1::list_instances)),
        ("POST", "/api/v1/instances", post(v1::create_instance)),
        ("GET", "/api/v1/instances/{id}", get(v1::get_instance)),
        (
            "GET",
            "/api/v1/instances/{id}/actions",
            get(v1::list_actions),
        ),
        (
            "GET",
            "/api/v1/instances/{id}/operations",
            get(v1::list_operations),
        ),
        (
            "POST",
            "/api/v1/instances/{id}/operations",
            post(v1::request_operation),
        ),
        ("GET", "/api/v1/operations/{id}", get(v1::get_operation)),
        ("GET", "/api/v1/audit", get(v1::read_audit)),
        ("GET", "/api/v1/members", get(v1::list_members)),
        ("POST", "/api/v1/invitations", post(v1::invite_member)),
        (
            "PATCH",
            "/api/v1/members/{user_id}",
            patch(v1::change_member_role),
        ),
        (
            "DELETE",
            "/api/v1/members/{user_id}",
            delete(v1::remove_member),
        ),
        ("GET", "/api/v1/tokens", get(v1::list_tokens)),
        ("POST", "/api/v1/tokens", post(v1::create_token)),
        ("DELETE", "/api/v1/tokens/{id}", delete(v1::revoke_token)),
        ("GET", "/api/v1/webhooks", get(webhooks::list_webhooks)),
        ("POST", "/api/v1/webhooks", post(webhooks::create_webhook)),
        ("GET", "/api/v1/webhooks/{id}", get(webhooks::get_webhook)),
        (
            "PATCH",
            "/api/v1/webhooks/{id}",
            patch(webhooks::update_webhook),
        ),
        (
            "DELETE",
            "/api/v1/webhooks/{id}",
            delete(webhooks::delete_webhook),
        ),
        (
            "POST",
            "/api/v1/webhooks/{id}/rotate",
            post(webhooks::rotate_webhook),
        ),
        (
            "POST",
            "/api/v1/webhooks/{id}/test",
            post(webhooks::test_webhook),
        ),
        (
            "GET",
            "/api/v1/webhooks/{id}/attempts",
            get(webhooks::list_attempts),
        ),
        (
            "POST",
            "/api/v1/webhooks/{id}/messages/{message_id}/redeliver",
            post(webhooks::redeliver),
        ),
    ]
}

/// The method and path of every route [`router`] serves, both APIs and their documents.
pub fn route_list() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<_> = routes()
        .into_iter()
        .chain(provider::routes())
        .map(|(m, p, _)| (m, p))
        .collect();
    out.push(("GET", openapi::DOCUMENT_PATH));
    out.push(("GET", provider::DOCUMENT_PATH));
    out
}

/// `/api/v1`: the token routes behind [`authenticate`], the document and a problem+json 404
/// for any other path under the prefix.
pub fn router(state: &AppState) -> Router<AppState> {
    let mut api = Router::new();
    for (_, path, method) in routes() {
        api = api.route(path, method);
    }
    let api = api
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .route(openapi::DOCUMENT_PATH, get(openapi::serve))
        .route("/api/v1/{*rest}", any(no_such_route));
    let mut prov = Router::new();
    for (_, path, method) in provider::routes() {
        prov = prov.route(path, method);
    }
    let prov = prov
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate_provider,
        ))
        .route(provider::DOCUMENT_PATH, get(provider::serve))
        .route("/provider/v1/{*rest}", any(no_such_route));
    api.merge(prov)
}

async fn no_such_route(headers: HeaderMap) -> Response {
    ProblemResponse::new(
        problem::Kind::NotFound,
        axum::http::StatusCode::NOT_FOUND,
        "There is no such API route; see /api/v1/openapi.json and /provider/v1/openapi.json.",
    )
    .request_id(security::request_id(&headers))
    .into_response()
}

/// The secret in `Authorization: Bearer <secret>`, if the header holds one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|s| !s.is_empty())
}

fn refuse(detail: &str, request_id: &str) -> Response {
    let mut res = ProblemResponse::unauthenticated(detail)
        .request_id(request_id)
        .into_response();
    res.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"portico\""),
    );
    res
}

/// Authenticates the request's API token, counts it against the token's budget, and hands the
/// handler its [`Principal`]. A session cookie or header authorises nothing here: a page's
/// script could otherwise be made to call the API with a signed-in person's rights.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let request_id = security::request_id(req.headers()).to_owned();
    let Some(secret) = bearer(req.headers()) else {
        let detail = if auth::session_token(req.headers()).is_some() {
            "The API does not accept the portal's session: send an API token as \
             Authorization: Bearer ptk_…"
        } else {
            "Send an API token as Authorization: Bearer ptk_…"
        };
        return refuse(detail, &request_id);
    };
    if kind_of(secret) == Some(SecretKind::ProviderKey) {
        return refuse(
            "A provider key works only on /provider/v1; /api/v1 takes a tenant's API token.",
            &request_id,
        );
    }
    let who = match tokens::authenticate(&state, secret, request_id.clone()).await {
        Ok(Some(who)) => who,
        Ok(None) => {
            return refuse(
                "The API token is not valid: mistyped, unknown, revoked or expired.",
                &request_id,
            )
        }
        Err(e) => return ProblemResponse::from_service(e, &request_id).into_response(),
    };
    let Principal::Token { token, .. } = &who else {
        return ProblemResponse::internal()
            .request_id(&request_id)
            .into_response();
    };
    tracing::Span::current().record("tenant", token.tenant_id.as_str());
    tracing::Span::current().record("user", format!("token:{}", token.name));
    let budget = format!("api-requests:{}", token.id);
    within_budget(&state, &budget, &request_id, req, next, |req| {
        req.extensions_mut().insert(who);
    })
    .await
}

/// Authenticates the request's provider key and hands the handler a
/// [`provider::ProviderCaller`]; tenant tokens and sessions are refused.
pub async fn authenticate_provider(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let request_id = security::request_id(req.headers()).to_owned();
    let Some(secret) = bearer(req.headers()) else {
        return refuse(
            "Send a provider key as Authorization: Bearer ppk_… (made with `portico \
             provider-key create`).",
            &request_id,
        );
    };
    if kind_of(secret) != Some(SecretKind::ProviderKey) {
        return refuse(
            "/provider/v1 takes only a provider key (ppk_…); a tenant's API token works on /api/v1.",
            &request_id,
        );
    }
    let caller =
        match super::service::provider::authenticate(&state, secret, request_id.clone()).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return refuse(
                    "The provider key is not valid: mistyped, unknown or revoked.",
                    &request_id,
                )
            }
            Err(e) => return ProblemResponse::from_service(e, &request_id).into_response(),
        };
    tracing::Span::current().record("user", format!("provider-key:{}", caller.key_name));
    let budget = format!("provider-requests:{}", caller.key_id);
    within_budget(&state, &budget, &request_id, req, next, |req| {
        req.extensions_mut().insert(caller);
    })
    .await
}

/// Counts the request against `budget`'s window and, while it is within the limit, lets
/// `admit` prepare it and runs it; either way the answer says where the budget stands.
async fn within_budget(
    state: &AppState,
    budget: &str,
    request_id: &str,
    mut req: Request,
    next: Next,
    admit: impl FnOnce(&mut Request),
) -> Response {
    let limit = state.settings.api_requests_per_minute;
    let now = now_millis();
    let key = auth::token_hash(budget);
    let (used, ends_at) = match state.store.count_request(&key, WINDOW_MS, now).await {
        Ok(counted) => counted,
        Err(e) => {
            return ProblemResponse::from_service(e.into(), request_id).into_response();
        }
    };
    let reset_secs = ((ends_at - now).max(0) + 999) / 1000;
    let mut res = if used > limit {
        ProblemResponse::rate_limited(std::time::Duration::from_millis(
            u64::try_from(ends_at - now).unwrap_or(0),
        ))
        .request_id(request_id)
        .into_response()
    } else {
        admit(&mut req);
        next.run(req).await
    };
    let headers = res.headers_mut();
    let policy = format!("\"per-token\";q={limit};w={}", WINDOW_MS / 1000);
    let left = format!(
        "\"per-token\";r={};t={reset_secs}",
        limit.saturating_sub(used)
    );
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", left)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bearer_authorization_carries_a_secret() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer ptk_abc"));
        assert_eq!(bearer(&h), Some("ptk_abc"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer  ptk_abc "));
        assert_eq!(bearer(&h), Some("ptk_abc"));
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwdw=="),
        );
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }
}
