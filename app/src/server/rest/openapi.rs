//! The tenant API's OpenAPI 3.1 document, generated from the handlers' annotations and the
//! wire types (utoipa, as the control-plane contract is: the annotation sits on the handler it
//! describes, and no second description can drift from it). Served at [`DOCUMENT_PATH`].

use super::problem::Problem;
use super::types::*;
use super::{v1, webhooks};
use crate::domain::policy::{CreateRequest, Request};
use crate::domain::webhooks::WebhookEvent;
use crate::domain::{
    EmailDelivery, Endpoint, Operation, OperationState, ParamValue, Resources, Role, Status,
};
use axum::response::Response;
use std::sync::OnceLock;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Where Portico serves the document (public, like the API it describes).
pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";

const DESCRIPTION: &str = "\
The tenant API of Portico, the customer portal: what a tenant's people do in the portal, for \
their scripts. Every route acts with an API token's role in the token's tenant, through the \
same policy as the portal: a token can do exactly what a member with that role can, and \
nothing the tenant's plan does not enable.

## Authentication

Send `Authorization: Bearer ptk_…`. Tenant admins create tokens in the portal (API tokens) or \
with `POST /api/v1/tokens`; the secret is shown once. A revoked or expired token gets 401. The \
portal's session cookie authorises nothing here, and a token never signs anyone in to the portal.

## Errors

Every error is `application/problem+json` (RFC 9457) with a stable `type` \
(`urn:portico:problem:<kind>`), `detail` for people, `field` when one request field is at fault, \
and `request_id`, which the audit log and the provider's logs quote.

## Limits

Each token may make a number of requests a minute (600 unless the provider set another). Every \
answer says where the token stands: `RateLimit-Policy: \"per-token\";q=600;w=60` and \
`RateLimit: \"per-token\";r=<left>;t=<seconds to reset>`. Past the limit the answer is 429 with \
`Retry-After`.

## Pages

Lists answer a page at a time with `next_cursor`; pass it back as `cursor`. Cursors are keys, \
not offsets: instances added or removed meanwhile neither repeat nor skip the rest.

## Retries

`POST` an operation with an `Idempotency-Key` header: the same key with the same request \
answers what the first did and queues nothing more; with another request it is a 409.";

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Portico tenant API", version = "1", description = DESCRIPTION),
    paths(
        v1::list_instances,
        v1::create_instance,
        v1::get_instance,
        v1::list_actions,
        v1::list_operations,
        v1::request_operation,
        v1::get_operation,
        v1::read_audit,
        v1::list_members,
        v1::invite_member,
        v1::change_member_role,
        v1::remove_member,
        v1::list_tokens,
        v1::create_token,
        v1::revoke_token,
        webhooks::list_webhooks,
        webhooks::create_webhook,
        webhooks::get_webhook,
        webhooks::update_webhook,
        webhooks::delete_webhook,
        webhooks::rotate_webhook,
        webhooks::test_webhook,
        webhooks::list_attempts,
        webhooks::redeliver,
    ),
    components(schemas(
        Problem, Instance, InstanceDetails, InstancePage, Action, ActionList, OperationView,
        OperationPage, AuditLine, AuditPage, MemberView, InvitationView, MemberList, InviteBody,
        InvitationCreated, RoleBody, TokenView, TokenBody, TokenCreated, Parameter, Request,
        CreateRequest, Resources, ParamValue, Endpoint, Operation, OperationState, Status, Role,
        EmailDelivery, WebhookView, WebhookDetail, WebhookBody, WebhookPatch, WebhookCreated,
        WebhookSecret, WebhookQueued, WebhookAttempt, DeliveryState, WebhookEvent,
    )),
    modifiers(&BearerToken),
    security(("token" = [])),
    tags(
        (name = "instances", description = "The tenant's instances and what may be done to them"),
        (name = "operations", description = "Lifecycle operations: request and follow them"),
        (name = "audit", description = "The tenant's audit log"),
        (name = "members", description = "Members and invitations (admin tokens)"),
        (name = "tokens", description = "API tokens (admin tokens)"),
        (name = "webhooks", description = "Webhook endpoints and their delivery logs (admin tokens)"),
    )
)]
struct TenantApi;

pub fn document() -> utoipa::openapi::OpenApi {
    TenantApi::openapi()
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    crate::server::control_plane::openapi::served(&JSON, document)
}
