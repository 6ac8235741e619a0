//! The control-plane API's OpenAPI document as Portico serves it: valid OpenAPI 3.1 by an
//! independent validator (`@readme/openapi-parser`, run by `end2end/fixtures/validate-openapi.mjs`
//! in node), covering every control-plane route the router has, and true to the JSON Portico
//! really sends. Fails, never skips, when node or its packages are missing (`scripts/test`
//! installs them; by hand: `cd end2end && npm ci`).

use crate::common::{Engine, TestApp};
use app::domain::{ParamValue, Resources, Role};
use app::server::control_plane::contract::{
    rfc3339, CommandInstance, OperationCommand, OperationEvent, OperationReport, OperationType,
    ReportedState, RequestedBy, TenantRef, CALLBACK_PREFIX,
};
use app::server::control_plane::openapi::DOCUMENT_PATH;
use app::server::routes;
use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../end2end/fixtures/validate-openapi.mjs"
);

/// Runs the validator; its success and what it printed.
pub(crate) fn validator(doc: &Path, instances: &[(&str, &Path)]) -> (bool, String) {
    let mut cmd = Command::new("node");
    cmd.arg(SCRIPT).arg(doc);
    for (schema, file) in instances {
        cmd.arg("--instance").arg(schema).arg(file);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("node must run end2end/fixtures/validate-openapi.mjs (install node): {e}")
    });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub(crate) fn write(dir: &Path, name: &str, json: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(json).unwrap()).unwrap();
    path
}

/// A command as the worker builds it, with every kind of parameter value.
fn command() -> OperationCommand {
    let parameters = BTreeMap::from([
        ("backups".to_owned(), ParamValue::Bool(true)),
        ("max_connections".to_owned(), ParamValue::Int(200)),
        ("version".to_owned(), ParamValue::Text("16".into())),
    ]);
    OperationCommand {
        operation_id: "op-7f3c".into(),
        kind: OperationType::Scale,
        instance: CommandInstance {
            id: "inst-1".into(),
            external_id: None,
            tenant: TenantRef {
                id: "globex".into(),
                name: "Globex".into(),
            },
            name: "globex-web".into(),
            plan: "pro".into(),
            environment: "production".into(),
            region: "eu-west".into(),
            resources: Resources {
                replicas: 3,
                cpu_millicores: 2000,
                memory_mib: 4096,
                storage_gib: 100,
            },
            parameters,
        },
        requested_by: RequestedBy::User {
            user_id: "u-1".into(),
            email: "ops@globex.test".into(),
            role: Role::Operator,
        },
        requested_at: rfc3339(1_764_166_205_123),
        deadline: rfc3339(1_764_169_805_123),
    }
}

#[tokio::test]
async fn the_served_document_is_valid_openapi_and_matches_what_portico_sends() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let req = Request::get(DOCUMENT_PATH)
        .header("accept", "application/json")
        .body(Body::empty())
        .unwrap();
    let res = app.send(req).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{:?}",
        res.header("content-type")
    );
    let doc = res.json();
    assert_eq!(doc["openapi"], "3.1.0");

    // Every control-plane route Portico serves (but the document itself) is documented.
    for (method, route) in routes::PLAIN_ROUTES {
        if route.starts_with(CALLBACK_PREFIX) && route != DOCUMENT_PATH {
            let method = method.to_lowercase();
            assert!(
                doc["paths"][route][&method].is_object(),
                "{method} {route} is routed but not in the document"
            );
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let doc_file = dir.path().join("openapi.json");
    std::fs::write(&doc_file, &res.body).unwrap();

    let user_command = write(
        dir.path(),
        "command.json",
        &serde_json::to_value(command()).unwrap(),
    );
    let mut provider_command = command();
    provider_command.kind = OperationType::UpdateConfig;
    provider_command.requested_by = RequestedBy::Provider;
    provider_command.instance.external_id = Some("cp-9".into());
    let provider_command = write(
        dir.path(),
        "provider-command.json",
        &serde_json::to_value(provider_command).unwrap(),
    );
    let mut token_command = command();
    token_command.requested_by = RequestedBy::ApiToken {
        token_id: "3f1c".into(),
        name: "nightly stop".into(),
        role: Role::Operator,
    };
    let token_command = write(
        dir.path(),
        "token-command.json",
        &serde_json::to_value(token_command).unwrap(),
    );
    let event = OperationEvent {
        seq: 2,
        report: OperationReport {
            state: ReportedState::InProgress,
            message: Some("copying data".into()),
            percent: Some(40),
            instance: None,
        },
    };
    let event = write(
        dir.path(),
        "event.json",
        &serde_json::to_value(event).unwrap(),
    );

    let (ok, out) = validator(
        &doc_file,
        &[
            ("OperationCommand", &user_command),
            ("OperationCommand", &provider_command),
            ("OperationCommand", &token_command),
            ("OperationEvent", &event),
        ],
    );
    assert!(ok, "the document or a real body does not validate:\n{out}");
    assert!(out.contains("valid OpenAPI 3.1.0"), "{out}");
}

/// The checks above would pass vacuously if the validator accepted anything.
#[tokio::test]
async fn the_validator_refuses_a_broken_document_and_a_wrong_body() {
    let doc = serde_json::to_value(app::server::control_plane::openapi::document()).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut broken = doc.clone();
    broken["paths"]["/operations"]["post"]["responses"] = Value::String("none".into());
    let broken = write(dir.path(), "broken.json", &broken);
    let (ok, out) = validator(&broken, &[]);
    assert!(!ok, "a document with malformed responses passed:\n{out}");

    let doc_file = write(dir.path(), "openapi.json", &doc);
    let mut no_deadline = serde_json::to_value(command()).unwrap();
    no_deadline.as_object_mut().unwrap().remove("deadline");
    let no_deadline = write(dir.path(), "no-deadline.json", &no_deadline);
    let (ok, out) = validator(&doc_file, &[("OperationCommand", &no_deadline)]);
    assert!(!ok, "a command without a deadline passed:\n{out}");
    assert!(out.contains("deadline"), "{out}");

    let mut bad_param = serde_json::to_value(command()).unwrap();
    bad_param["instance"]["parameters"]["version"] = serde_json::json!(1.5);
    bad_param["instance"]["resources"]["replicas"] = serde_json::json!("three");
    let bad_param = write(dir.path(), "bad.json", &bad_param);
    let (ok, out) = validator(&doc_file, &[("OperationCommand", &bad_param)]);
    assert!(!ok, "a command with wrongly typed values passed:\n{out}");
    assert!(out.contains("replicas"), "{out}");
    assert!(out.contains("version"), "{out}");
}
