//! The reference control plane (`portico-control-plane`), run as its own process: signed
//! commands only, a sync create answered with its result, and a resend that is not run again.

use app::domain::{Resources, Status};
use app::server::control_plane::contract::{
    CommandInstance, InstancePage, OperationCommand, OperationReport, OperationType, ReportedState,
    RequestedBy, TenantRef,
};
use app::server::control_plane::signature::{
    Keyring, Secret, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The control plane's process, stopped when the test ends.
struct ControlPlane {
    child: Child,
    base: String,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(secret: &str, args: &[&str]) -> ControlPlane {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portico-control-plane"))
        .args(args)
        .env("PORTICO_CP_SECRET", secret)
        .env_remove("PORTICO_CP_CALLBACK_SECRET")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start portico-control-plane");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read its first line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    ControlPlane { child, base }
}

fn create_command(operation_id: &str) -> OperationCommand {
    OperationCommand {
        operation_id: operation_id.into(),
        kind: OperationType::Create,
        instance: CommandInstance {
            id: "inst-1".into(),
            external_id: None,
            tenant: TenantRef {
                id: "acme".into(),
                name: "Acme".into(),
            },
            name: "web".into(),
            plan: "pro".into(),
            environment: "production".into(),
            region: "eu-west".into(),
            resources: Resources {
                replicas: 1,
                cpu_millicores: 500,
                memory_mib: 512,
                storage_gib: 5,
            },
            parameters: Default::default(),
        },
        requested_by: RequestedBy::Provider,
        requested_at: "2026-12-07T06:00:00Z".into(),
        deadline: "2026-12-07T07:00:00Z".into(),
    }
}

fn signed(keys: &Keyring, req: reqwest::RequestBuilder, body: &[u8]) -> reqwest::RequestBuilder {
    let id = format!("msg_{}", app::server::store::new_id().replace('-', ""));
    let ts = app::server::store::now_millis() / 1000;
    req.header(ID_HEADER, &id)
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(SIGNATURE_HEADER, keys.sign(&id, ts, body))
}

#[tokio::test]
async fn a_signed_sync_create_is_answered_once_and_a_resend_gets_the_same_answer() {
    let secret = Secret::generate();
    let keys = Keyring::parse(&secret).unwrap();
    let cp = start(&secret, &["--mode", "sync", "--delay-ms", "0"]);
    let http = reqwest::Client::new();
    let cmd = create_command("op-1");
    let body = serde_json::to_vec(&cmd).unwrap();
    let send = || {
        let req = http
            .post(format!("{}/operations", cp.base))
            .header("content-type", "application/json")
            .header("idempotency-key", "op-1");
        signed(&keys, req, &body).body(body.clone()).send()
    };

    let first = send().await.unwrap();
    assert_eq!(first.status(), 200);
    let report: OperationReport = first.json().await.unwrap();
    assert_eq!(report.state, ReportedState::Succeeded);
    let instance = report.instance.clone().unwrap();
    assert_eq!(instance.status, Some(Status::Running));
    assert_eq!(instance.external_id.as_deref(), Some("cp-1"));
    assert_eq!(
        instance.endpoints.unwrap()[0].url,
        "https://web.eu-west.example.test"
    );

    let unsigned = http
        .post(format!("{}/operations", cp.base))
        .header("content-type", "application/json")
        .header("idempotency-key", "op-1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let why: serde_json::Value = unsigned.json().await.unwrap();
    assert!(why["message"].is_string(), "{why}");

    let again = send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<OperationReport>().await.unwrap(), report);

    let polled = signed(&keys, http.get(format!("{}/operations/op-1", cp.base)), b"")
        .send()
        .await
        .unwrap();
    assert_eq!(polled.status(), 200);
    assert_eq!(polled.json::<OperationReport>().await.unwrap(), report);

    let listed: InstancePage = signed(&keys, http.get(format!("{}/instances", cp.base)), b"")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.instances.len(), 1);
    assert_eq!(listed.instances[0].id.as_deref(), Some("inst-1"));

    let log: Vec<serde_json::Value> = http
        .get(format!("{}/_admin/commands", cp.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.len(), 2, "the unsigned one is not logged: {log:?}");
    for entry in &log {
        assert_eq!(entry["operation_id"], "op-1");
        assert_eq!(entry["idempotency_key"], "op-1");
        assert_eq!(entry["type"], "create");
        assert_eq!(entry["executions"], 1);
        assert!(entry["received_at_ms"].is_i64());
    }
}
