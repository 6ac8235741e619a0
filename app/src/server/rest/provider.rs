//! `/provider/v1`: the provider's API, for provider keys only. Tenants (create, rename,
//! change plan, suspend, resume), people (add, invite), instances the provider already runs
//! (import), and read access to any tenant's instances, operations and audit log for support
//! staff. Each route names its tenant; the handler acts in it as the provider
//! ([`Principal::Provider`]), so on PostgreSQL every query runs under that tenant's row-level
//! security, and every change is audited with the key's name.

use super::problem::{JsonBody, Problem, ProblemResponse, QueryArgs};
use super::types::{
    AuditPage, InstanceDetails, InstancePage, InvitationCreated, InviteBody, OperationView,
};
use super::v1::{audit_page, fail, instance_page, AuditQuery, ListInstances};
use crate::domain::{ParamValue, Resources, Role, Status};
use crate::server::control_plane::contract::rfc3339;
use crate::server::service::provider::{self, Import, ProviderCaller};
use crate::server::service::{instances, members, operations, Principal};
use crate::server::state::AppState;
use crate::server::store::{TenantChange, TenantRecord};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Where Portico serves this API's document.
pub const DOCUMENT_PATH: &str = "/provider/v1/openapi.json";

type Answer = Result<Response, ProblemResponse>;

/// Every `/provider/v1` route that needs a provider key, with its method.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<AppState>)> {
    vec![
        ("GET", "/provider/v1/tenants", get(list_tenants)),
        ("POST", "/provider/v1/tenants", post(create_tenant)),
        ("GET", "/provider/v1/tenants/{tenant}", get(get_tenant)),
        (
            "PATCH",
            "/provider/v1/tenants/{tenant}",
            axum::routing::patch(update_tenant),
        ),
        (
            "POST",
            "/provider/v1/tenants/{tenant}/members",
            post(add_member),
        ),
        (
            "POST",
            "/provider/v1/tenants/{tenant}/invitations",
            post(invite),
        ),
        (
            "GET",
            "/provider/v1/tenants/{tenant}/instances",
            get(list_instances),
        ),
        (
            "POST",
            "/provider/v1/tenants/{tenant}/instances",
            post(import_instance),
        ),
        (
            "GET",
            "/provider/v1/tenants/{tenant}/operations/{id}",
            get(get_operation),
        ),
        (
            "GET",
            "/provider/v1/tenants/{tenant}/audit",
            get(read_audit),
        ),
    ]
}

/// A tenant as the provider sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub plan: String,
    /// Its people can sign in and see, but change nothing.
    pub suspended: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub suspended_at: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<TenantRecord> for Tenant {
    fn from(t: TenantRecord) -> Self {
        Tenant {
            id: t.id.to_string(),
            name: t.name,
            plan: t.plan_id,
            suspended: t.suspended_at.is_some(),
            suspended_at: t.suspended_at.map(rfc3339),
            created_at: rfc3339(t.created_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Lowercase letters, digits and '-', 1 to 64: how the tenant is named in URLs and logs.
    pub id: String,
    pub name: String,
    /// A plan of the provider configuration.
    pub plan: String,
}

/// What to change; absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub plan: Option<String>,
    /// true suspends, false resumes.
    #[serde(default)]
    pub suspended: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    pub email: String,
    pub role: Role,
    /// For an account created now; an existing account keeps its name.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// An instance the provider's systems already run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportBody {
    pub name: String,
    /// The control plane's own id for it.
    pub external_id: String,
    /// The tenant's plan when absent.
    #[serde(default)]
    pub plan: Option<String>,
    pub environment: String,
    pub region: String,
    /// Running when absent.
    #[serde(default)]
    pub status: Option<Status>,
    pub resources: Resources,
    #[serde(default)]
    pub parameters: BTreeMap<String, ParamValue>,
}

/// Acts in the path's tenant: not found when there is none.
async fn acting(
    state: &AppState,
    caller: &ProviderCaller,
    headers: &HeaderMap,
    tenant: &str,
) -> Result<Principal, ProblemResponse> {
    caller.acting_in(state, tenant).await.map_err(fail(headers))
}

/// Every tenant, by id.
#[utoipa::path(get, path = "/provider/v1/tenants", tag = "tenants",
    responses(
        (status = 200, description = "The tenants", body = Vec<Tenant>),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_tenants(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    let list = provider::tenants(&state).await.map_err(fail(&headers))?;
    Ok(Json(list.into_iter().map(Tenant::from).collect::<Vec<_>>()).into_response())
}

/// Create a tenant on a plan.
#[utoipa::path(post, path = "/provider/v1/tenants", tag = "tenants", request_body = NewTenant,
    responses(
        (status = 201, description = "Created", body = Tenant),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_tenant(
    State(state): State<AppState>,
    Extension(caller): Extension<ProviderCaller>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewTenant>,
) -> Answer {
    let t = provider::create_tenant(&state, &caller, &body.id, &body.name, &body.plan)
        .await
        .map_err(fail(&headers))?;
    Ok((StatusCode::CREATED, Json(Tenant::from(t))).into_response())
}

#[utoipa::path(get, path = "/provider/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's id")),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
) -> Answer {
    let t = provider::tenant(&state, &tenant)
        .await
        .map_err(fail(&headers))?;
    Ok(Json(Tenant::from(t)).into_response())
}

/// Rename a tenant, move it to another plan, suspend or resume it.
#[utoipa::path(patch, path = "/provider/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body = TenantPatch,
    responses(
        (status = 200, description = "The tenant as it now is", body = Tenant),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_tenant(
    State(state): State<AppState>,
    Extension(caller): Extension<ProviderCaller>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<TenantPatch>,
) -> Answer {
    let who = acting(&state, &caller, &headers, &tenant).await?;
    let change = TenantChange {
        name: body.name.map(|n| n.trim().to_owned()),
        plan_id: body.plan,
        suspended: body.suspended,
    };
    let t = provider::update_tenant(&state, &who, change)
        .await
        .map_err(fail(&headers))?;
    Ok(Json(Tenant::from(t)).into_response())
}

/// Add a person to a tenant with a role, creating their account (without a password) if
/// needed.
#[utoipa::path(post, path = "/provider/v1/tenants/{tenant}/members", tag = "people",
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body = NewMember,
    responses(
        (status = 204, description = "Added"),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_member(
    State(state): State<AppState>,
    Extension(caller): Extension<ProviderCaller>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<NewMember>,
) -> Answer {
    let who = acting(&state, &caller, &headers, &tenant).await?;
    provider::add_member(
        &state,
        &who,
        &body.email,
        body.role,
        body.display_name.as_deref(),
    )
    .await
    .map_err(fail(&headers))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Invite someone to a tenant with a role: the link lets them set a password and join.
#[utoipa::path(post, path = "/provider/v1/tenants/{tenant}/invitations", tag = "people",
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body = InviteBody,
    responses(
        (status = 201, description = "Invited", body = InvitationCreated),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn invite(
    State(state): State<AppState>,
    Extension(caller): Extension<ProviderCaller>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<InviteBody>,
) -> Answer {
    let who = acting(&state, &caller, &headers, &tenant).await?;
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

/// A tenant's instances, by name.
#[utoipa::path(get, path = "/provider/v1/tenants/{tenant}/instances", tag = "instances",
    params(("tenant" = String, Path, description = "The tenant's id"), ListInstances),
    responses(
        (status = 200, description = "A page of instances", body = InstancePage),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_instances(
    State(state): State<AppState>,
    Extension(caller): Extension<ProviderCaller>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    QueryArgs(q): QueryArgs<ListInstances>,
) -> Answer {
    let who = acting(&state, &caller, &headers, &tenant).await?;
    instance_page(&state, &who, &headers, &q).await
}

/// Record an instance the provider's systems already run under a tenant, with its external
/// id. No operation runs.
#[utoipa::path(post, path = "/provider/v1/tenants/{tenant}/instances", tag = "instances",
    params(("tenant" = String, Path, description = "The tenant's id")),
    request_body = ImportBody,
    responses(
        (status = 201, description = "Imported", body = InstanceDetails),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import_instance(
    State(state): State<AppState>,
    Extension(caller): Extension<ProviderCaller>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    JsonBody(body): JsonBody<ImportBody>,
) -> Answer {
    let who = acting(&state, &caller, &headers, &tenant).await?;
    let import = Import {
        name: body.name,
        external_id: body.external_id,
        plan: body.plan,
        environment: body.environment,
        region: body.region,
        status: body.status.unwrap_or(Status::Running),
        resources: body.resources,
        parameters: body.parameters,
    };
    let id = provider::import_instance(&state, &who, import)
        .await
        .map_err(fail(&headers))?;
    let detail = instances::get(&state, &who, &id)
        .await
        .map_err(fail(&headers))?;
    Ok((StatusCode::CREATED, Json(InstanceDetails::from(detail))).into_response())
}

/// Where one of a tenant's operations stands.
#[utoipa::path(get, path = "/provider/v1/tenants/{tenant}/operations/{id}", tag = "instances",
    params(("tenant" = String, Path, description = "The tenant's id"),
        ("id" = String, Path, description = "The operation's id")),
    responses(
        (status = 200, description = "The operation", body = OperationView),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_operation(
    State(state): State<AppState>,
    Extension(caller): Extension<ProviderCaller>,
    headers: HeaderMap,
    Path((tenant, id)): Path<(String, String)>,
) -> Answer {
    let who = acting(&state, &caller, &headers, &tenant).await?;
    let op = operations::status(&state, &who, &id)
        .await
        .map_err(fail(&headers))?;
    Ok(Json(OperationView::from(op)).into_response())
}

/// A tenant's audit log, newest first, with the portal's filters.
#[utoipa::path(get, path = "/provider/v1/tenants/{tenant}/audit", tag = "instances",
    params(("tenant" = String, Path, description = "The tenant's id"), AuditQuery),
    responses(
        (status = 200, description = "A page of the log", body = AuditPage),
        (status = "4XX", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn read_audit(
    State(state): State<AppState>,
    Extension(caller): Extension<ProviderCaller>,
    headers: HeaderMap,
    Path(tenant): Path<String>,
    QueryArgs(q): QueryArgs<AuditQuery>,
) -> Answer {
    let who = acting(&state, &caller, &headers, &tenant).await?;
    audit_page(&state, &who, &headers, &q).await
}

const DESCRIPTION: &str = "\
The provider API of Portico, the customer portal: the provider's own systems manage tenants, \
their people and the instances they already run, and its support staff read any tenant's \
instances, operations and audit log.

Send `Authorization: Bearer ppk_…`, a provider key made with `portico provider-key create \
--name <name>` (printed once, stored hashed) or given in an environment variable the server \
names with `--provider-key-env`. A tenant's API token, or the portal's session, gets 401 here. \
Every change is audited in the tenant's log with the key's name (`provider-key:<name>`). \
Errors are `application/problem+json` (RFC 9457), as on `/api/v1`, and each key has the same \
request budget a tenant token has.";

struct ProviderKey;

impl Modify for ProviderKey {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "provider_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Portico provider API", version = "1", description = DESCRIPTION),
    paths(
        list_tenants, create_tenant, get_tenant, update_tenant, add_member, invite,
        list_instances, import_instance, get_operation, read_audit,
    ),
    components(schemas(
        Problem, Tenant, NewTenant, TenantPatch, NewMember, ImportBody, InviteBody,
        InvitationCreated, InstancePage, InstanceDetails, OperationView, AuditPage,
    )),
    modifiers(&ProviderKey),
    security(("provider_key" = [])),
    tags(
        (name = "tenants", description = "Tenants and their plans"),
        (name = "people", description = "Adding and inviting a tenant's people"),
        (name = "instances", description = "Importing instances and reading any tenant's"),
    )
)]
struct ProviderApi;

pub fn document() -> utoipa::openapi::OpenApi {
    ProviderApi::openapi()
}

/// `GET /provider/v1/openapi.json`.
pub async fn serve() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    crate::server::control_plane::openapi::served(&JSON, document)
}
