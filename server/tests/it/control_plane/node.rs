//! Control-plane API v1 without Rust: a provider's control plane written in Node
//! (`end2end/fixtures/control-plane.mjs`), which verifies Portico's commands and signs its
//! callbacks with the `standardwebhooks` npm package, runs an operation against the real
//! portal. The fixtures' packages come from `cd end2end && npm ci`; without node (or them) these
//! tests fail, they never skip.

use super::harness::{config, fixture, instance_named, operation, request, Secrets, PW};
use crate::common::{Engine, TestApp};
use app::domain::Status;
use app::server::control_plane::signature::Secret;
use app::server::store::OpState;
use app::server::worker::{Worker, WorkerSettings};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The Node control plane, killed when dropped.
struct NodeControlPlane {
    _child: tokio::process::Child,
    url: String,
}

impl NodeControlPlane {
    /// Starts it on a free port, calling back to `portal_url`.
    async fn start(portal_url: &str, secrets: &Secrets) -> NodeControlPlane {
        let mut child = tokio::process::Command::new("node")
            .arg(fixture("control-plane.mjs"))
            .env("PORT", "0")
            .env("PORTAL_URL", portal_url)
            .env("PORTICO_CP_SECRET", &secrets.commands)
            .env("PORTICO_CP_CALLBACK_SECRET", &secrets.callbacks)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run end2end/fixtures/control-plane.mjs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!(
                "the Node control plane exited before it listened (its packages come from \
                 `cd end2end && npm ci`; its error is above)"
            )
        })
        .await
        .expect("the Node control plane starts within 30 s");
        // Keep reading its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        NodeControlPlane { _child: child, url }
    }

    /// What it received: one entry per operation, with how often it was sent and executed.
    async fn log(&self) -> Vec<serde_json::Value> {
        let log: serde_json::Value = reqwest::get(format!("{}/_log", self.url))
            .await
            .expect("GET /_log")
            .json()
            .await
            .expect("the log is JSON");
        log["operations"].as_array().unwrap().clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_runs_through_the_node_control_plane_and_its_callbacks() {
    let secrets = Secrets::new();
    // Each side needs the other's URL: the portal's port is bound first, the Node control
    // plane started with it, and the portal then configured with the Node port and served on
    // the port it already holds.
    let portal = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let portal_url = format!("http://{}", portal.local_addr().unwrap());
    let node = NodeControlPlane::start(&portal_url, &secrets).await;
    let app = TestApp::spawn_custom(
        Engine::Sqlite,
        Default::default(),
        config(&node.url, &secrets),
    )
    .await;
    assert_eq!(app.serve_on(portal), portal_url);

    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    assert_eq!(web.status, Status::Running);
    let op_id = request(&app, &cookie, web.id.as_str(), "stop", "node-stop-1").await;

    // The worker sends the command once; the Node control plane accepts it (202).
    let worker = Worker::new(
        app.db.store.clone(),
        app.state.provider.clone(),
        app.state.control_plane.clone().unwrap(),
        WorkerSettings {
            base_backoff: Duration::ZERO,
            max_attempts: 2,
            command_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            ..WorkerSettings::default()
        },
    );
    assert!(worker.run_once().await.unwrap(), "the stop was due");
    let sent = operation(&app, "globex", &op_id).await;
    assert!(
        sent.dispatched_at.is_some(),
        "the 202 was recorded: {sent:?}"
    );

    // Nothing more runs here: only the Node control plane's signed callbacks finish it.
    let finished = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let op = operation(&app, "globex", &op_id).await;
            if op.state.is_finished() {
                return op;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the Node control plane's callbacks finish the stop within 10 s");
    assert_eq!(finished.state, OpState::Succeeded, "{finished:?}");
    assert_eq!(finished.last_seq, 2, "both callbacks were applied");
    assert_eq!(finished.attempts, 1, "sent once: {finished:?}");

    let status = app
        .call(
            Some(&cookie),
            "operation_status",
            &[("operation_id", &op_id)],
        )
        .await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.json()["state"], "succeeded");
    assert_eq!(status.json()["instance_status"], "stopped");
    let web = instance_named(&app, "globex", "globex-web").await;
    assert_eq!(web.status, Status::Stopped);
    let external = web.external_id.clone().unwrap_or_default();
    assert!(external.starts_with("node-"), "external id {external:?}");

    // The Node side received the command once and executed it once.
    let log = node.log().await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["operation_id"], op_id.as_str());
    assert_eq!(log[0]["type"], "stop");
    assert_eq!(log[0]["instance_id"], web.id.as_str());
    assert_eq!(log[0]["received"], 1, "{log:?}");
    assert_eq!(log[0]["executions"], 1, "{log:?}");
    // And nothing is left for a worker to send or poll.
    assert!(!worker.run_once().await.unwrap());
}

/// Signs `body` with `secret` through the npm package and posts it to `url`: (status, body).
async fn node_callback(url: &str, secret: &str, body: &serde_json::Value) -> (u16, String) {
    let out = tokio::process::Command::new("node")
        .arg(fixture("sign-callback.mjs"))
        .arg(url)
        .arg(body.to_string())
        .env("CALLBACK_SECRET", secret)
        .stderr(Stdio::inherit())
        .output()
        .await
        .expect("node must be installed to run end2end/fixtures/sign-callback.mjs");
    assert!(out.status.success(), "sign-callback.mjs failed: {out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    let (status, body) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
    (status.parse().expect("a status"), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_signed_by_the_npm_package_are_accepted_only_with_the_right_secret() {
    let secrets = Secrets::new();
    // No command is sent in this test: the control plane's address is never called.
    let app = TestApp::spawn_custom(
        Engine::Sqlite,
        Default::default(),
        config("http://127.0.0.1:9", &secrets),
    )
    .await;
    let portal = app.serve().await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let op_id = request(&app, &cookie, web.id.as_str(), "stop", "node-sign-1").await;
    let before = operation(&app, "globex", &op_id).await;
    let url = format!("{portal}/control-plane/v1/operations/{op_id}/events");
    let progress =
        json!({"seq": 1, "state": "in_progress", "message": "Working on stop", "percent": 50});

    // Signed with a secret Portico does not hold (the command secret, then a fresh one).
    for wrong in [secrets.commands.clone(), Secret::generate()] {
        let (status, body) = node_callback(&url, &wrong, &progress).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("no signature matches"), "{body}");
    }
    let after = operation(&app, "globex", &op_id).await;
    assert_eq!(after.state, before.state);
    assert_eq!(after.last_seq, 0);
    assert_eq!(after.progress_message, None);
    assert_eq!(after.progress_percent, None);

    // Signed with the callback secret: accepted and applied.
    let (status, body) = node_callback(&url, &secrets.callbacks, &progress).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["applied"],
        true
    );
    let after = operation(&app, "globex", &op_id).await;
    assert_eq!(after.last_seq, 1);
    assert_eq!(after.progress_message.as_deref(), Some("Working on stop"));
    assert_eq!(after.progress_percent, Some(50));
}
