//! What the control-plane tests share: secrets in environment variables, the portal's
//! configuration with the `http` driver, and reading the store.

pub use crate::common::instance_named;
use crate::common::TestApp;
use app::domain::TenantId;
use app::server::control_plane::signature::{Keyring, Secret};
use app::server::store::{now_millis, OperationRecord, TenantScope};
use app::server::worker::{Worker, WorkerSettings};
use serde_json::json;
use std::time::Duration;

pub const PW: &str = "portico-demo";

pub fn fixture(name: &str) -> String {
    format!("{}/../end2end/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn scope(t: &str) -> TenantScope {
    TenantScope::for_tests(TenantId::parse(t).unwrap())
}

pub async fn operation(app: &TestApp, tenant: &str, id: &str) -> OperationRecord {
    app.db
        .store
        .get_operation(&scope(tenant), id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no operation {id}"))
}

/// The two secrets of one portal, each in an environment variable of its own (tests run in
/// parallel in one process, so the names are unique).
pub struct Secrets {
    pub commands: String,
    pub callbacks: String,
    pub commands_env: String,
    pub callbacks_env: String,
}

impl Secrets {
    pub fn new() -> Secrets {
        let unique = app::server::store::new_id().replace('-', "").to_uppercase();
        let s = Secrets {
            commands: Secret::generate(),
            callbacks: Secret::generate(),
            commands_env: format!("PORTICO_TEST_CP_SECRET_{unique}"),
            callbacks_env: format!("PORTICO_TEST_CP_CALLBACK_SECRET_{unique}"),
        };
        std::env::set_var(&s.commands_env, &s.commands);
        std::env::set_var(&s.callbacks_env, &s.callbacks);
        s
    }
}

/// The demo provider, its operations sent to the control plane at `base_url`.
pub fn config(base_url: &str, secrets: &Secrets) -> app::domain::ProviderConfig {
    let toml = format!(
        "{}\n[control_plane]\ndriver = \"http\"\nbase_url = \"{base_url}\"\n\
         secret_env = \"{}\"\ncallback_secret_env = \"{}\"\ntimeout_seconds = 5\n\
         poll_interval_seconds = 1\n",
        app::server::config::DEMO_CONFIG,
        secrets.commands_env,
        secrets.callbacks_env,
    );
    app::server::config::parse("control-plane-node.toml", &toml).unwrap()
}

/// Requests an operation as the signed-in `cookie`; returns the operation's id.
pub async fn request(app: &TestApp, cookie: &str, instance: &str, op: &str, key: &str) -> String {
    request_with(app, cookie, instance, json!({ "operation": op }), key).await
}

/// Requests the operation `req` (e.g. `{"operation": "scale", "resources": {...}}`).
pub async fn request_with(
    app: &TestApp,
    cookie: &str,
    instance: &str,
    req: serde_json::Value,
    key: &str,
) -> String {
    let res = app
        .call_json(
            Some(cookie),
            "request_operation",
            json!({ "instance_id": instance, "request": req, "idempotency_key": key }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.json()["operation_id"].as_str().unwrap().to_owned()
}

/// A worker on the portal's configured control plane, quick to retry.
pub fn worker(app: &TestApp, settings: WorkerSettings) -> Worker {
    Worker::new(
        app.db.store.clone(),
        app.state.provider.clone(),
        app.state
            .control_plane
            .clone()
            .expect("the portal is configured with the http driver"),
        settings,
    )
}

pub fn quick() -> WorkerSettings {
    WorkerSettings {
        base_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        max_attempts: 3,
        command_timeout: Duration::from_secs(10),
        poll_interval: Duration::from_secs(1),
        ..WorkerSettings::default()
    }
}

/// Runs `w` until the operation has finished (callbacks may finish it meanwhile), up to 20 s.
pub async fn drive(app: &TestApp, w: &Worker, tenant: &str, op_id: &str) -> OperationRecord {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let op = operation(app, tenant, op_id).await;
            if op.state.is_finished() {
                return op;
            }
            if !w.run_once().await.unwrap() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("operation {op_id} did not finish within 20 s"))
}

/// Posts `body` to `path` on the portal signed with `secret` as the control plane would, with
/// the given webhook-id and timestamp (seconds); returns (status, body).
pub async fn signed_post(
    portal: &str,
    path: &str,
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &serde_json::Value,
) -> (u16, String) {
    let body = body.to_string();
    let signature = Keyring::parse(secret)
        .unwrap()
        .sign(id, timestamp, body.as_bytes());
    let res = reqwest::Client::new()
        .post(format!("{portal}{path}"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await
        .expect("the portal answers");
    let status = res.status().as_u16();
    (status, res.text().await.unwrap_or_default())
}

/// A fresh webhook-id and the current time, for [`signed_post`].
pub fn fresh() -> (String, i64) {
    (
        format!("msg_{}", app::server::store::new_id().replace('-', "")),
        now_millis() / 1000,
    )
}

pub fn new_secret() -> String {
    Secret::generate()
}
