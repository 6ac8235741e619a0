//! `/api/v1`: the tenant API. Each handler is an adapter: the middleware in `super` has
//! authenticated the token and built its [`Principal`]; the handler parses the request, calls
//! one service function (the same the portal's server functions call) and maps the answer.

use super::problem::{JsonBody, Problem, ProblemResponse, QueryArgs};
use super::types::*;
use crate::domain::policy::{CreateRequest, Request};
use crate::domain::InstanceFilter;
use crate::server::security;
use crate::server::service::{audit, instances, members, operations, page, tokens, Principal};
use crate::server::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;

type Answer = Result<Response, ProblemResponse>;

/// Maps a service error, quoting the request id.
pub(super) fn fail(
    headers: &HeaderMap,
) -> impl Fn(crate::server::service::ServiceError) -> ProblemResponse + '_ {
    move |e| ProblemResponse::from_service(e, security::request_id(headers))
}

/// The `Idempotency-Key` header; a request without one is never treated as a repeat.
fn idempotency_key(headers: &HeaderMap) -> Result<String, ProblemResponse> {
    match headers.get("idempotency-key") {
        None => Ok(crate::server::store::new_id()),
        Some(v) => match v.to_str() {
            Ok(k) if !k.trim().is_empty() && k.len() <= 128 => Ok(k.trim().to_owned()),
            _ => Err(ProblemResponse::new(
                super::problem::Kind::Invalid,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Idempotency-Key must be 1 to 128 visible ASCII characters.",
            )
            .field(Some("Idempotency-Key".into()))
            .request_id(security::request_id(headers))),
        },
    }
}

pub(super) fn blank(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListInstances {
    /// Only instances in this environment (its id, e.g. `production`).
    pub(super) environment: Option<String>,
    /// Only instances in this status (e.g. `running`).
    pub(super) status: Option<String>,
    /// Only instances whose name contains this, ignoring case.
    pub(super) name: Option<String>,
    /// The `next_cursor` of the previous page.
    pub(super) cursor: Option<String>,
    /// Instances per page: 1 to 200, 50 when absent.
    pub(super) limit: Option<usize>,
}

/// List the tenant's instances, by name, with what the caller may do to each.
#[utoipa::path(get, path = "/api/v1/instances", tag = "instances", params(ListInstances),
    responses(
        (status = 200, description = "A page of instances", body = InstancePage),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_instances(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    QueryArgs(q): QueryArgs<ListInstances>,
) -> Answer {
    instance_page(&state, &who, &headers, &q).await
}

/// A page of `who`'s tenant's instances as `q` asks.
pub(super) async fn instance_page(
    state: &AppState,
    who: &Principal,
    headers: &HeaderMap,
    q: &ListInstances,
) -> Answer {
    let filter = InstanceFilter::from_query(blank(&q.environment), "", blank(&q.name));
    let filter = match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => filter,
        Some(s) => match crate::domain::Status::parse(s) {
            Some(status) => InstanceFilter {
                status: Some(status),
                ..filter
            },
            None => {
                return Err(fail(headers)(
                    crate::server::service::ServiceError::invalid("status", "is not a status"),
                ))
            }
        },
    };
    let at = page::seek(blank(&q.cursor), "").map_err(fail(headers))?;
    let size = q.limit.unwrap_or(instances::PAGE_SIZE);
    let p = instances::list(state, who, &filter, &at, size)
        .await
        .map_err(fail(headers))?;
    Ok(Json(InstancePage {
        items: p.items.into_iter().map(Instance::from).collect(),
        next_cursor: p.next,
        total: p.total.unwrap_or_default(),
    })
    .into_response())
}

/// Get one of the tenant's instances. Another tenant's id is not found.
#[utoipa::path(get, path = "/api/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "The instance", body = InstanceDetails),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_instance(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let i = instances::get(&state, &who, &id)
        .await
        .map_err(fail(&headers))?;
    Ok(Json(InstanceDetails::from(i)).into_response())
}

/// The lifecycle actions on an instance: each allowed for the caller now, or why not.
#[utoipa::path(get, path = "/api/v1/instances/{id}/actions", tag = "instances",
    params(("id" = String, Path, description = "The instance's id")),
    responses(
        (status = 200, description = "The actions", body = ActionList),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_actions(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let i = instances::get(&state, &who, &id)
        .await
        .map_err(fail(&headers))?;
    Ok(Json(ActionList {
        actions: InstanceDetails::from(i.clone()).actions,
        instance_id: i.id,
    })
    .into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// The `next_cursor` of the previous page.
    pub(super) cursor: Option<String>,
}

/// An instance's operations, newest first.
#[utoipa::path(get, path = "/api/v1/instances/{id}/operations", tag = "operations",
    params(("id" = String, Path, description = "The instance's id"), Cursor),
    responses(
        (status = 200, description = "A page of operations", body = OperationPage),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_operations(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
    QueryArgs(q): QueryArgs<Cursor>,
) -> Answer {
    let p = operations::history(&state, &who, &id, blank(&q.cursor))
        .await
        .map_err(fail(&headers))?;
    Ok(Json(OperationPage {
        items: p.items.into_iter().map(OperationView::from).collect(),
        next_cursor: p.next,
    })
    .into_response())
}

/// Request a lifecycle operation on an instance. The plan and the caller's role decide, as in
/// the portal; a refusal is a 403 problem with the policy's reason. The same `Idempotency-Key`
/// with the same request answers what the first request answered.
#[utoipa::path(post, path = "/api/v1/instances/{id}/operations", tag = "operations",
    params(("id" = String, Path, description = "The instance's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: 1 to 128 characters")),
    request_body = Request,
    responses(
        (status = 202, description = "Accepted: the operation is queued (or was, for a repeated key)", body = OperationView),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn request_operation(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<Request>,
) -> Answer {
    let key = idempotency_key(&headers)?;
    let op = operations::request(&state, &who, &id, request, &key)
        .await
        .map_err(fail(&headers))?;
    Ok((StatusCode::ACCEPTED, Json(OperationView::from(op))).into_response())
}

/// Request a new instance on the tenant's plan.
#[utoipa::path(post, path = "/api/v1/instances", tag = "operations",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: 1 to 128 characters")),
    request_body = CreateRequest,
    responses(
        (status = 202, description = "Accepted: the create operation is queued", body = OperationView),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_instance(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CreateRequest>,
) -> Answer {
    let key = idempotency_key(&headers)?;
    let op = operations::create(&state, &who, request, &key)
        .await
        .map_err(fail(&headers))?;
    Ok((StatusCode::ACCEPTED, Json(OperationView::from(op))).into_response())
}

/// Where one of the tenant's operations stands.
#[utoipa::path(get, path = "/api/v1/operations/{id}", tag = "operations",
    params(("id" = String, Path, description = "The operation's id")),
    responses(
        (status = 200, description = "The operation", body = OperationView),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_operation(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let op = operations::status(&state, &who, &id)
        .await
        .map_err(fail(&headers))?;
    Ok(Json(OperationView::from(op)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only lines about this instance (its id).
    pub(super) instance_id: Option<String>,
    /// Only this operation (e.g. `stop`, `member-invite`, `token-create`).
    pub(super) operation: Option<String>,
    /// Only this actor (an email, or `token:<name>`).
    pub(super) user: Option<String>,
    /// requested, denied, succeeded or failed.
    pub(super) outcome: Option<String>,
    /// The `next_cursor` of the previous page.
    pub(super) cursor: Option<String>,
}

/// The tenant's audit log, newest first, with the portal's filters.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, description = "A page of the log", body = AuditPage),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn read_audit(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    QueryArgs(q): QueryArgs<AuditQuery>,
) -> Answer {
    audit_page(&state, &who, &headers, &q).await
}

/// A page of `who`'s tenant's audit log as `q` asks.
pub(super) async fn audit_page(
    state: &AppState,
    who: &Principal,
    headers: &HeaderMap,
    q: &AuditQuery,
) -> Answer {
    let filter = audit::filter(
        blank(&q.instance_id),
        blank(&q.operation),
        blank(&q.user),
        blank(&q.outcome),
    );
    let at = page::seek(blank(&q.cursor), "").map_err(fail(headers))?;
    let p = audit::read(state, who, &filter, &at)
        .await
        .map_err(fail(headers))?;
    Ok(Json(AuditPage {
        items: p.items.into_iter().map(AuditLine::from).collect(),
        next_cursor: p.next,
    })
    .into_response())
}

/// The tenant's members and pending invitations (admin tokens).
#[utoipa::path(get, path = "/api/v1/members", tag = "members",
    responses(
        (status = 200, description = "Members and invitations", body = MemberList),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_members(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
) -> Answer {
    let m = members::list(&state, &who).await.map_err(fail(&headers))?;
    Ok(Json(MemberList {
        members: m.members.into_iter().map(MemberView::from).collect(),
        invitations: m
            .invitations
            .into_iter()
            .map(InvitationView::from)
            .collect(),
    })
    .into_response())
}

/// Invite someone to the tenant with a role (admin tokens). The link is emailed when the
/// portal has SMTP; it is answered either way.
#[utoipa::path(post, path = "/api/v1/invitations", tag = "members", request_body = InviteBody,
    responses(
        (status = 201, description = "Invited", body = InvitationCreated),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn invite_member(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<InviteBody>,
) -> Answer {
    let inv = members::invite(&state, &who, &body.email, body.role.as_str())
        .await
        .map_err(fail(&headers))?;
    Ok((
        StatusCode::CREATED,
        Json(InvitationCreated {
            path: inv.path,
            email: inv.email,
        }),
    )
        .into_response())
}

/// Give a member another role (admin tokens); the last admin keeps theirs.
#[utoipa::path(patch, path = "/api/v1/members/{user_id}", tag = "members",
    params(("user_id" = String, Path, description = "The member's user id")),
    request_body = RoleBody,
    responses(
        (status = 204, description = "Changed"),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn change_member_role(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<RoleBody>,
) -> Answer {
    members::change_role(&state, &who, &user_id, body.role.as_str())
        .await
        .map_err(fail(&headers))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Remove a member and end their sessions (admin tokens); the last admin stays.
#[utoipa::path(delete, path = "/api/v1/members/{user_id}", tag = "members",
    params(("user_id" = String, Path, description = "The member's user id")),
    responses(
        (status = 204, description = "Removed"),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_member(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Answer {
    members::remove(&state, &who, &user_id)
        .await
        .map_err(fail(&headers))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The tenant's API tokens, revoked ones included, newest first (admin tokens).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses(
        (status = 200, description = "The tokens", body = Vec<TokenView>),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
) -> Answer {
    let list = tokens::list(&state, &who).await.map_err(fail(&headers))?;
    Ok(Json(list.into_iter().map(TokenView::from).collect::<Vec<_>>()).into_response())
}

/// Create an API token (admin tokens), with a role no higher than the caller's. Its secret is
/// in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenBody,
    responses(
        (status = 201, description = "Created", body = TokenCreated),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_token(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<TokenBody>,
) -> Answer {
    let (token, secret) = tokens::create(
        &state,
        &who,
        &body.name,
        body.role.as_str(),
        body.expires_in_days,
    )
    .await
    .map_err(fail(&headers))?;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            token: token.into(),
            secret,
        }),
    )
        .into_response())
}

/// Revoke an API token (admin tokens): refused from its next request on.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    tokens::revoke(&state, &who, &id)
        .await
        .map_err(fail(&headers))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
