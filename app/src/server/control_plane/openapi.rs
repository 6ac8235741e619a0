//! Control-plane API v1 as an OpenAPI 3.1 document, generated from the contract's own types
//! ([`super::contract`]) and served by Portico at [`DOCUMENT_PATH`].
//!
//! The API has two sides. The provider's control plane implements `POST /operations`,
//! `GET /operations/{operation_id}` and `GET /instances` under its base URL, and Portico calls
//! them (tag [`PROVIDER_IMPLEMENTS`]; the functions below that carry them only document them).
//! Portico implements the callbacks under `/control-plane/v1` that the control plane calls
//! (tag [`PORTICO_IMPLEMENTS`]; the operation callback is annotated on its real handler in
//! `server::callbacks`). Each path names the server it lives on: `{base_url}` or
//! `{public_url}`.

use super::contract::{
    CallbackAnswer, CommandInstance, InstanceEvent, InstancePage, ListedInstance, OperationCommand,
    OperationEvent, OperationReport, OperationType, Refusal, ReportedState, RequestedBy, TenantRef,
    CALLBACK_PREFIX,
};
use crate::domain::lifecycle::Observed;
use crate::domain::{Endpoint, ParamValue, Resources, Role, Status};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::server::{Server, ServerVariableBuilder};
use utoipa::{IntoParams, OpenApi};

/// Where Portico serves the document.
pub const DOCUMENT_PATH: &str = "/control-plane/v1/openapi.json";
/// The tag of the endpoints the provider's control plane implements and Portico calls.
pub const PROVIDER_IMPLEMENTS: &str = "provider implements";
/// The tag of the endpoints Portico implements and the control plane calls.
pub const PORTICO_IMPLEMENTS: &str = "Portico implements";

const DESCRIPTION: &str = "\
The contract between Portico, the customer portal, and a provider's control plane.

Portico sends commands to the control plane (`POST {base_url}/operations`), which answers with \
the result (200), accepts the command and reports later (202), refuses it (4xx, with a message \
the customer reads) or fails for now (429, 5xx: Portico retries, not before `Retry-After`). \
Portico asks where an accepted operation stands (`GET {base_url}/operations/{operation_id}`) \
when no callback comes, and reads the control plane's instances for reconciliation \
(`GET {base_url}/instances`). The control plane reports progress and results to Portico \
(`POST {public_url}/control-plane/v1/operations/{operation_id}/events`) and changes made \
outside the portal (`POST {public_url}/control-plane/v1/instances/{instance_id}/events`).

## Signatures

Every request, in both directions, is signed as the Standard Webhooks specification \
(standardwebhooks.com) defines, so either side can use its libraries:

* `webhook-id`: a unique id of the message; a receiver refuses an id it has already seen.
* `webhook-timestamp`: when it was sent, in seconds since the Unix epoch; a receiver refuses \
one more than 5 minutes from its own clock, either way.
* `webhook-signature`: `v1,` followed by the base64 of HMAC-SHA256 over \
`{webhook-id}.{webhook-timestamp}.{body}` (the body exactly as sent; empty for a GET), keyed \
with the secret. A secret is written `whsec_` followed by the base64 of the key; the key is \
the decoded bytes. Several signatures may be given, separated by spaces: while a secret is \
being rotated the sender signs with both the new and the old, and the receiver accepts the \
message when any `v1` signature matches one of its secrets (other versions are ignored).

Commands also carry `Idempotency-Key`, equal to the command's `operation_id`: Portico sends a \
command again, unchanged, until it gets an answer, and a repeat must not act twice.

A missing or wrong signature, a stale timestamp or a replayed `webhook-id` gets 401 and \
changes nothing.";

/// The Standard Webhooks headers every request carries, in either direction.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct Signed {
    /// A unique id of this message (Portico sends `msg_` and 32 hex digits). A receiver
    /// refuses an id it has already received.
    #[param(rename = "webhook-id")]
    webhook_id: String,
    /// When the message was sent, in seconds since the Unix epoch; refused when more than
    /// 5 minutes from the receiver's clock.
    #[param(rename = "webhook-timestamp")]
    webhook_timestamp: i64,
    /// One or more signatures separated by spaces, each `v1,` + base64 of
    /// HMAC-SHA256(key, `{webhook-id}.{webhook-timestamp}.{body}`).
    #[param(rename = "webhook-signature")]
    webhook_signature: String,
}

/// Sends a command about an instance.
///
/// Portico sends it again, unchanged, whenever it did not record an answer: the control plane
/// must act on an `operation_id` once.
#[utoipa::path(
    post,
    path = "/operations",
    tag = PROVIDER_IMPLEMENTS,
    operation_id = "execute_command",
    params(
        Signed,
        ("Idempotency-Key" = String, Header, description = "The command's `operation_id`."),
    ),
    request_body = OperationCommand,
    responses(
        (status = 200, description = "Done: the operation's result (`state` is `succeeded` or \
            `failed`; `in_progress` is taken as 202).", body = OperationReport),
        (status = 202, description = "Accepted: the control plane reports later by callback; \
            Portico polls after `Retry-After` when none comes. The body, a first progress \
            report, is optional.",
            headers(("Retry-After" = u64, description = "Seconds before Portico polls; at most \
                an hour is honoured.")),
            body = OperationReport),
        (status = 429, description = "Busy: Portico retries, not before `Retry-After`.",
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
        (status = "4XX", description = "Refused (409, 422 or any other 4xx): Portico fails the \
            operation and shows `message` to the customer. A redirect is refused too.",
            body = Refusal),
        (status = "5XX", description = "Failed for now: Portico retries, not before \
            `Retry-After`.",
            headers(("Retry-After" = u64, description = "Seconds to wait."))),
    )
)]
#[allow(dead_code)]
fn execute_command() {}

/// Where an operation stands: what Portico asks when no callback came.
#[utoipa::path(
    get,
    path = "/operations/{operation_id}",
    tag = PROVIDER_IMPLEMENTS,
    operation_id = "get_operation",
    params(
        ("operation_id" = String, Path, description = "The `operation_id` of a command."),
        Signed,
    ),
    responses(
        (status = 200, description = "The operation's state.", body = OperationReport),
        (status = 404, description = "The control plane never received this command: Portico \
            sends it again.", body = Refusal),
        (status = 429, description = "Busy: Portico asks again later."),
        (status = "5XX", description = "Failed for now: Portico asks again later."),
    )
)]
#[allow(dead_code)]
fn get_operation() {}

/// The control plane's instances, a page at a time, for reconciliation.
#[utoipa::path(
    get,
    path = "/instances",
    tag = PROVIDER_IMPLEMENTS,
    operation_id = "list_instances",
    params(
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous \
            page; absent for the first."),
        ("limit" = Option<u32>, Query, description = "The most instances wanted on one page."),
        Signed,
    ),
    responses(
        (status = 200, description = "One page of instances.", body = InstancePage),
    )
)]
#[allow(dead_code)]
fn list_instances() {}

#[derive(OpenApi)]
#[openapi(
    info(title = "Portico control-plane API", version = "1", description = DESCRIPTION),
    paths(
        execute_command,
        get_operation,
        list_instances,
        crate::server::callbacks::operation_event,
        crate::server::callbacks::instance_event,
    ),
    components(schemas(
        OperationCommand,
        OperationType,
        CommandInstance,
        TenantRef,
        RequestedBy,
        Role,
        ParamValue,
        Resources,
        OperationReport,
        ReportedState,
        Observed,
        Status,
        Endpoint,
        OperationEvent,
        InstanceEvent,
        InstancePage,
        ListedInstance,
        Refusal,
        CallbackAnswer,
    )),
    tags(
        (name = PROVIDER_IMPLEMENTS, description = "Implemented by the provider's control plane \
            under its base URL; Portico calls them."),
        (name = PORTICO_IMPLEMENTS, description = "Implemented by Portico under its public URL; \
            the provider's control plane calls them."),
    )
)]
struct ControlPlaneApi;

/// The whole document: each path on its side's server.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ControlPlaneApi::openapi();
    let provider = Server::builder()
        .url("{base_url}")
        .description(Some(
            "The provider's control plane (its configured base URL).",
        ))
        .parameter(
            "base_url",
            ServerVariableBuilder::new()
                .default_value("https://control-plane.example.com/portico/v1")
                .description(Some(
                    "The control plane's base URL, as Portico is configured.",
                )),
        )
        .build();
    let portal = Server::builder()
        .url("{public_url}")
        .description(Some("Portico (the portal's public URL)."))
        .parameter(
            "public_url",
            ServerVariableBuilder::new()
                .default_value("https://portal.example.com")
                .description(Some("The portal's public URL.")),
        )
        .build();
    for (path, item) in doc.paths.paths.iter_mut() {
        let server = if path.starts_with(CALLBACK_PREFIX) {
            portal.clone()
        } else {
            provider.clone()
        };
        item.servers = Some(vec![server]);
    }
    doc
}

/// `GET /control-plane/v1/openapi.json`: public, like the contract it describes.
pub async fn serve() -> Response {
    static JSON: OnceLock<String> = OnceLock::new();
    served(&JSON, document)
}

/// An OpenAPI document as Portico serves each of its contracts: the JSON made once (in
/// `cell`), public and cacheable for five minutes.
pub fn served(
    cell: &'static OnceLock<String>,
    document: fn() -> utoipa::openapi::OpenApi,
) -> Response {
    let json = cell.get_or_init(|| {
        document()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    });
    (
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        json.clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    #[test]
    fn every_endpoint_of_the_contract_is_in_the_document() {
        let doc = doc();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "Portico control-plane API");
        assert_eq!(doc["info"]["version"], "1");
        let want = [
            ("/operations", "post", PROVIDER_IMPLEMENTS),
            ("/operations/{operation_id}", "get", PROVIDER_IMPLEMENTS),
            ("/instances", "get", PROVIDER_IMPLEMENTS),
            (
                crate::server::callbacks::OPERATION_EVENTS,
                "post",
                PORTICO_IMPLEMENTS,
            ),
            (
                crate::server::callbacks::INSTANCE_EVENTS,
                "post",
                PORTICO_IMPLEMENTS,
            ),
        ];
        let paths = doc["paths"].as_object().expect("paths");
        assert_eq!(paths.len(), want.len(), "{:?}", paths.keys());
        for (path, method, tag) in want {
            let op = &doc["paths"][path][method];
            assert!(op.is_object(), "{method} {path} is missing");
            assert_eq!(op["tags"], serde_json::json!([tag]), "{method} {path}");
            let headers: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "header" && p["required"] == true)
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            for h in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
                assert!(
                    headers.contains(&h),
                    "{method} {path} lacks {h}: {headers:?}"
                );
            }
            let server = doc["paths"][path]["servers"][0]["url"].as_str().unwrap();
            let side = if tag == PORTICO_IMPLEMENTS {
                "{public_url}"
            } else {
                "{base_url}"
            };
            assert_eq!(server, side, "{path}");
        }
        let command = &doc["paths"]["/operations"]["post"];
        assert!(command["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"));
        assert!(command["responses"]["202"]["headers"]["Retry-After"].is_object());
    }

    #[test]
    fn a_command_requires_what_portico_always_sends() {
        let doc = doc();
        let schemas = &doc["components"]["schemas"];
        let required: Vec<&str> = schemas["OperationCommand"]["required"]
            .as_array()
            .expect("OperationCommand has required fields")
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for field in [
            "operation_id",
            "type",
            "instance",
            "requested_by",
            "requested_at",
            "deadline",
        ] {
            assert!(
                required.contains(&field),
                "{field} not required: {required:?}"
            );
        }
        let kinds: Vec<&str> = schemas["ParamValue"]["oneOf"]
            .as_array()
            .expect("ParamValue is oneOf")
            .iter()
            .map(|s| s["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["boolean", "integer", "string"]);
    }

    #[test]
    fn the_signing_scheme_is_described() {
        let doc = doc();
        let text = doc["info"]["description"].as_str().unwrap();
        for needle in [
            "v1,",
            "HMAC-SHA256",
            "{webhook-id}.{webhook-timestamp}.{body}",
            "whsec_",
            "separated by spaces",
            "5 minutes",
        ] {
            assert!(text.contains(needle), "the description lacks {needle}");
        }
    }
}
