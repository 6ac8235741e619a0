//! The portal against the reference control plane, a separate process: every operation type
//! synchronously and asynchronously, and the faults a real control plane has.

use super::harness::*;
use crate::common::{Engine, TestApp};
use app::domain::Status;
use app::server::store::OpState;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// `portico-control-plane`, killed when dropped.
pub struct ReferenceCp {
    child: tokio::process::Child,
    pub url: String,
}

impl ReferenceCp {
    /// Starts it on a free loopback port (or `listen`), calling back to `portal`.
    pub async fn start(portal: &str, secrets: &Secrets, args: &[&str]) -> ReferenceCp {
        Self::start_on("127.0.0.1:0", portal, secrets, args).await
    }

    pub async fn start_on(
        listen: &str,
        portal: &str,
        secrets: &Secrets,
        args: &[&str],
    ) -> ReferenceCp {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_portico-control-plane"))
            .args(["--listen", listen, "--portal-url", portal])
            .args(["--secret-env", &secrets.commands_env])
            .args(["--callback-secret-env", &secrets.callbacks_env])
            .args(args)
            .env(&secrets.commands_env, &secrets.commands)
            .env(&secrets.callbacks_env, &secrets.callbacks)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start portico-control-plane");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("the reference control plane exited before it listened (see above)")
        })
        .await
        .expect("the reference control plane starts within 30 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ReferenceCp { child, url }
    }

    /// Every command it received: operation id, key, type and how often it executed it.
    pub async fn commands(&self) -> Vec<Value> {
        reqwest::get(format!("{}/_admin/commands", self.url))
            .await
            .expect("GET /_admin/commands")
            .json()
            .await
            .expect("JSON")
    }

    /// The command log's entry for one operation: (times received, times executed).
    pub async fn seen(&self, op_id: &str) -> (usize, u64) {
        let all = self.commands().await;
        let mine: Vec<&Value> = all.iter().filter(|c| c["operation_id"] == op_id).collect();
        let executions = mine
            .iter()
            .map(|c| c["executions"].as_u64().unwrap_or(0))
            .max()
            .unwrap_or(0);
        (mine.len(), executions)
    }

    pub async fn admin(&self, path: &str, body: Value) {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("admin call");
        assert!(res.status().is_success(), "{path}: {}", res.status());
    }

    /// SIGKILL: nothing is flushed, nothing is said goodbye.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill the control plane");
    }
}

/// A portal whose operations go to a fresh reference control plane started with `args`.
pub async fn portal(engine: Engine, args: &[&str]) -> (TestApp, ReferenceCp, Secrets, String) {
    let secrets = Secrets::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let portal_url = format!("http://{}", listener.local_addr().unwrap());
    let cp = ReferenceCp::start(&portal_url, &secrets, args).await;
    let app = TestApp::spawn_custom(engine, Default::default(), config(&cp.url, &secrets)).await;
    assert_eq!(app.serve_on(listener), portal_url);
    (app, cp, secrets, portal_url)
}

/// Each lifecycle operation in turn on a new instance, and the status it must leave.
async fn every_operation_type(engine: Engine, mode: &str) {
    let (app, cp, _s, _) = portal(engine, &["--mode", mode, "--delay-ms", "150"]).await;
    let cookie = app.sign_in("admin@umbrella.test", PW).await;
    let w = worker(&app, quick());
    let create = json!({
        "request": {
            "name": "umbrella-cp", "environment": "staging", "region": "eu-west",
            "resources": {"replicas": 2, "cpu_millicores": 1000, "memory_mib": 2048, "storage_gib": 50},
            "parameters": {"log_level": "debug"}
        },
        "idempotency_key": format!("create-{mode}")
    });
    let r = app
        .call_json(Some(&cookie), "create_instance", create)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let create_id = r.json()["operation_id"].as_str().unwrap().to_owned();
    let done = drive(&app, &w, "umbrella", &create_id).await;
    assert_eq!(done.state, OpState::Succeeded, "{done:?}");
    let inst = instance_named(&app, "umbrella", "umbrella-cp").await;
    assert_eq!(inst.status, Status::Running);
    assert!(
        inst.external_id.as_deref().unwrap_or("").starts_with("cp-"),
        "{inst:?}"
    );
    assert_eq!(
        inst.endpoints[0].url,
        "https://umbrella-cp.eu-west.example.test"
    );
    assert!(inst.observed_at.is_some());
    assert_eq!(cp.seen(&create_id).await.1, 1, "created once");

    let id = inst.id.to_string();
    let steps = [
        (json!({"operation": "stop"}), Status::Stopped),
        (json!({"operation": "start"}), Status::Running),
        (json!({"operation": "restart"}), Status::Running),
        (
            json!({"operation": "scale", "resources":
                {"replicas": 3, "cpu_millicores": 1000, "memory_mib": 2048, "storage_gib": 50}}),
            Status::Running,
        ),
        (
            json!({"operation": "update-config", "changes": {"log_level": "warn"}}),
            Status::Running,
        ),
        (
            json!({"operation": "delete", "confirm_name": "umbrella-cp"}),
            Status::Deleted,
        ),
    ];
    for (i, (req, expected)) in steps.into_iter().enumerate() {
        let what = req["operation"].as_str().unwrap().to_owned();
        let op_id = request_with(&app, &cookie, &id, req, &format!("{mode}-{i}")).await;
        let done = drive(&app, &w, "umbrella", &op_id).await;
        assert_eq!(done.state, OpState::Succeeded, "{what}: {done:?}");
        if mode == "async" {
            assert!(done.dispatched_at.is_some(), "{what} was accepted with 202");
        }
        let inst = app
            .db
            .store
            .get_instance(&scope("umbrella"), &inst.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(inst.status, expected, "after {what}");
        let (received, executed) = cp.seen(&op_id).await;
        assert_eq!(
            executed, 1,
            "{what} executed once (received {received} times)"
        );
        if what == "scale" {
            assert_eq!(inst.resources.replicas, 3);
        }
    }
}

async fn every_operation_type_synchronously(engine: Engine) {
    every_operation_type(engine, "sync").await
}

async fn every_operation_type_asynchronously(engine: Engine) {
    every_operation_type(engine, "async").await
}

/// Progress callbacks reach the operation's status while it runs.
async fn progress_is_reported_while_it_runs(engine: Engine) {
    let (app, _cp, _s, _) = portal(
        engine,
        &[
            "--mode",
            "async",
            "--delay-ms",
            "1500",
            "--progress-steps",
            "3",
        ],
    )
    .await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let op_id = request(&app, &cookie, web.id.as_str(), "restart", "progress-1").await;
    let w = worker(&app, quick());
    assert!(w.run_once().await.unwrap());
    let mut lines = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let s = app
                .call(
                    Some(&cookie),
                    "operation_status",
                    &[("operation_id", &op_id)],
                )
                .await
                .json();
            if s["state"] == "succeeded" {
                return;
            }
            if let Some(m) = s["progress_message"].as_str() {
                if lines.last().map(String::as_str) != Some(m) {
                    lines.push(m.to_owned());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the restart finishes by callback");
    assert!(!lines.is_empty(), "no progress was seen");
    let op = operation(&app, "globex", &op_id).await;
    assert_eq!(op.last_seq, 4, "three progress callbacks and the final one");
}

/// The control plane is not there: retried, then a failure the customer can read, and the
/// instance back where it was.
async fn control_plane_down_fails_cleanly(engine: Engine) {
    let secrets = Secrets::new();
    let url = format!("http://127.0.0.1:{}", crate::common::unused_port());
    let app = TestApp::spawn_custom(engine, Default::default(), config(&url, &secrets)).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let op_id = request(&app, &cookie, web.id.as_str(), "stop", "down-1").await;
    let done = drive(&app, &worker(&app, quick()), "globex", &op_id).await;
    assert_eq!(done.state, OpState::Failed);
    let error = done.last_error.unwrap();
    assert!(
        error.contains("could not be reached") && error.contains("gave up after 3 attempts"),
        "{error}"
    );
    assert!(
        !error.contains("127.0.0.1"),
        "no address shown to customers: {error}"
    );
    let web = instance_named(&app, "globex", "globex-web").await;
    assert_eq!(
        web.status,
        Status::Running,
        "back to its status before the stop"
    );
}

/// A refusal's message is what the customer reads and the audit log records.
async fn a_refusal_is_shown_to_the_customer(engine: Engine) {
    let (app, cp, _s, _) = portal(engine, &["--mode", "sync", "--delay-ms", "0"]).await;
    cp.admin(
        "/_admin/faults",
        json!({"status": 422, "count": 1, "message": "Quota exceeded\nin eu-west <b>now</b>"}),
    )
    .await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let op_id = request(&app, &cookie, web.id.as_str(), "stop", "refused-1").await;
    let done = drive(&app, &worker(&app, quick()), "globex", &op_id).await;
    assert_eq!(done.state, OpState::Failed);
    assert_eq!(done.attempts, 1, "a refusal is not retried");
    let shown = app
        .call(
            Some(&cookie),
            "operation_status",
            &[("operation_id", &op_id)],
        )
        .await
        .json();
    assert_eq!(shown["last_error"], "Quota exceeded in eu-west <b>now</b>");
    let page = app
        .page(Some(&cookie), &format!("/instances/{}", web.id))
        .await;
    assert!(!page.body.contains("<b>now</b>"), "escaped on the page");
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Running
    );
}

/// 500s come and go: retried with the same key, executed once.
async fn flapping_errors_are_retried_and_run_once(engine: Engine) {
    let (app, cp, _s, _) = portal(engine, &["--mode", "sync", "--delay-ms", "0"]).await;
    cp.admin("/_admin/faults", json!({"status": 500, "count": 2}))
        .await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let op_id = request(&app, &cookie, web.id.as_str(), "stop", "flap-1").await;
    let done = drive(&app, &worker(&app, quick()), "globex", &op_id).await;
    assert_eq!(done.state, OpState::Succeeded, "{done:?}");
    assert_eq!(done.attempts, 3);
    let (received, executed) = cp.seen(&op_id).await;
    assert_eq!((received, executed), (3, 1));
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Stopped
    );
}

/// A 429's Retry-After is waited out before the next attempt.
async fn retry_after_is_honoured(engine: Engine) {
    let (app, cp, _s, _) = portal(engine, &["--mode", "sync", "--delay-ms", "0"]).await;
    cp.admin(
        "/_admin/faults",
        json!({"status": 429, "count": 1, "retry_after": 2}),
    )
    .await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let op_id = request(&app, &cookie, web.id.as_str(), "stop", "busy-1").await;
    let w = worker(&app, quick());
    let started = std::time::Instant::now();
    let done = drive(&app, &w, "globex", &op_id).await;
    assert_eq!(done.state, OpState::Succeeded);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// Slower than the timeout: a transient failure, retried; the control plane still runs it
/// once, since the repeat carries the same key.
async fn a_slow_answer_times_out_and_is_retried(engine: Engine) {
    let (app, cp, _s, _) = portal(engine, &["--mode", "sync", "--delay-ms", "0"]).await;
    cp.admin("/_admin/faults", json!({"hang_ms": 8000, "count": 1}))
        .await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let op_id = request(&app, &cookie, web.id.as_str(), "stop", "slow-1").await;
    // The configuration's request timeout is 5 s.
    let done = drive(&app, &worker(&app, quick()), "globex", &op_id).await;
    assert_eq!(done.state, OpState::Succeeded, "{done:?}");
    assert!(done.attempts >= 2, "{done:?}");
    assert_eq!(cp.seen(&op_id).await.1, 1);
}

/// No callbacks come: the portal asks after Retry-After and finishes by polling.
async fn without_callbacks_polling_finishes_it(engine: Engine) {
    let (app, cp, _s, _) = portal(engine, &["--mode", "async", "--delay-ms", "300"]).await;
    cp.admin("/_admin/faults", json!({"drop_callbacks": true}))
        .await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let op_id = request(&app, &cookie, web.id.as_str(), "stop", "poll-1").await;
    let done = drive(&app, &worker(&app, quick()), "globex", &op_id).await;
    assert_eq!(done.state, OpState::Succeeded, "{done:?}");
    assert_eq!(done.last_seq, 0, "no callback was applied");
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Stopped
    );
}

/// The control plane dies mid-operation and comes back on the same port with its state:
/// polling brings the operation to its end.
async fn the_control_plane_restarted_mid_operation_is_polled_to_the_end(engine: Engine) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("cp.json");
    let state_arg = state.to_string_lossy().into_owned();
    let args = [
        "--mode",
        "async",
        "--delay-ms",
        "1500",
        "--state-file",
        &state_arg,
    ];
    let (app, mut cp, secrets, portal_url) = portal(engine, &args).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let op_id = request(&app, &cookie, web.id.as_str(), "stop", "cp-restart-1").await;
    let w = worker(&app, quick());
    assert!(w.run_once().await.unwrap(), "sent and accepted");
    cp.kill().await;
    let listen = cp.url.trim_start_matches("http://").to_owned();
    let _cp = ReferenceCp::start_on(&listen, &portal_url, &secrets, &args).await;
    let done = drive(&app, &w, "globex", &op_id).await;
    assert_eq!(done.state, OpState::Succeeded, "{done:?}");
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Stopped
    );
}

/// A change made in the provider's console reaches the portal and its audit log.
async fn a_change_made_by_the_provider_shows_in_the_portal(engine: Engine) {
    let (app, cp, _s, _) = portal(engine, &["--mode", "sync", "--delay-ms", "0"]).await;
    let cookie = app.sign_in("admin@umbrella.test", PW).await;
    let r = app
        .call_json(
            Some(&cookie),
            "create_instance",
            json!({
                "request": {
                    "name": "umbrella-console", "environment": "staging", "region": "eu-west",
                    "resources": {"replicas": 1, "cpu_millicores": 500, "memory_mib": 1024, "storage_gib": 20},
                    "parameters": {}
                },
                "idempotency_key": "console-1"
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let op_id = r.json()["operation_id"].as_str().unwrap().to_owned();
    drive(&app, &worker(&app, quick()), "umbrella", &op_id).await;
    let inst = instance_named(&app, "umbrella", "umbrella-console").await;
    cp.admin(
        &format!("/_admin/instances/{}", inst.id),
        json!({"status": "stopped", "message": "Stopped for maintenance"}),
    )
    .await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while instance_named(&app, "umbrella", "umbrella-console")
            .await
            .status
            != Status::Stopped
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the provider's change arrives");
    let audit = app
        .db
        .store
        .list_audit(&scope("umbrella"), &Default::default(), 10)
        .await
        .unwrap();
    let change = audit
        .iter()
        .find(|e| e.operation.as_deref() == Some("provider-change"))
        .expect("audited");
    assert_eq!(change.actor_email.as_deref(), Some("provider"));
    assert!(change
        .reason
        .as_deref()
        .unwrap()
        .contains("Stopped for maintenance"));
}

/// Past its deadline an operation fails with a reason the customer understands, and leaves no
/// transitional status behind.
async fn an_operation_past_its_deadline_fails_readably(engine: Engine) {
    let (app, cp, _s, _) = portal(engine, &["--mode", "async", "--delay-ms", "60000"]).await;
    cp.admin("/_admin/faults", json!({"drop_callbacks": true}))
        .await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let op_id = request(&app, &cookie, web.id.as_str(), "stop", "deadline-1").await;
    let w = worker(
        &app,
        app::server::worker::WorkerSettings {
            deadline: Duration::from_secs(2),
            ..quick()
        },
    );
    let done = drive(&app, &w, "globex", &op_id).await;
    assert_eq!(done.state, OpState::Failed, "{done:?}");
    let error = done.last_error.unwrap_or_default();
    assert!(
        error.contains("did not finish this stop in time"),
        "{error}"
    );
    let web = instance_named(&app, "globex", "globex-web").await;
    assert!(!web.status.is_transitional(), "{:?}", web.status);
}

/// A pass over the control plane's list repairs drift, imports what the portal lacked and
/// marks what the control plane no longer has; a second pass finds nothing more to do.
async fn reconciliation_repairs_imports_and_marks_missing(engine: Engine) {
    use app::server::reconcile::{Pass, Reconciler};
    let (app, cp, _s, _) = portal(engine, &["--mode", "sync", "--delay-ms", "0"]).await;
    let cookie = app.sign_in("admin@umbrella.test", PW).await;
    let w = worker(&app, quick());
    let mut ids = Vec::new();
    for name in ["umbrella-drift", "umbrella-gone"] {
        let r = app
            .call_json(
                Some(&cookie),
                "create_instance",
                json!({
                    "request": {
                        "name": name, "environment": "staging", "region": "eu-west",
                        "resources": {"replicas": 1, "cpu_millicores": 500, "memory_mib": 1024, "storage_gib": 20},
                        "parameters": {}
                    },
                    "idempotency_key": name
                }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        drive(
            &app,
            &w,
            "umbrella",
            r.json()["operation_id"].as_str().unwrap(),
        )
        .await;
        ids.push(instance_named(&app, "umbrella", name).await.id);
    }
    // Behind the portal's back: one stopped, one removed, one made in the console, and one
    // for a tenant the portal does not have.
    cp.admin(
        &format!("/_admin/instances/{}", ids[0]),
        json!({"status": "stopped", "notify": false}),
    )
    .await;
    let gone = reqwest::Client::new()
        .delete(format!("{}/_admin/instances/{}", cp.url, ids[1]))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    let legacy = json!({"tenant_id": "umbrella", "name": "umbrella-legacy", "plan": "enterprise",
                        "environment": "production", "region": "us-east"});
    cp.admin("/_admin/instances", legacy).await;
    let stranger = json!({"tenant_id": "nobody", "name": "x", "plan": "enterprise",
                          "environment": "dev", "region": "eu-west"});
    cp.admin("/_admin/instances", stranger).await;

    let reconciler = Reconciler::new(
        app.db.store.clone(),
        app.state.provider.clone(),
        app.state.control_plane.clone().unwrap(),
    );
    let pass = reconciler.run_once().await.unwrap();
    assert_eq!(
        pass,
        Pass {
            listed: 3,
            repaired: 1,
            imported: 1,
            missing: 1,
            skipped: 1
        },
        "{pass:?}"
    );
    assert_eq!(
        instance_named(&app, "umbrella", "umbrella-drift")
            .await
            .status,
        Status::Stopped
    );
    let legacy = instance_named(&app, "umbrella", "umbrella-legacy").await;
    assert_eq!(legacy.status, Status::Running);
    assert!(legacy.external_id.is_some());
    // The customer sees the imported instance, and why the removed one is in doubt.
    let list = app
        .call(
            Some(&cookie),
            "list_instances",
            &[("environment", ""), ("status", ""), ("q", "")],
        )
        .await;
    assert!(list.body.contains("umbrella-legacy"), "{}", list.body);
    let gone = app
        .call(Some(&cookie), "get_instance", &[("id", ids[1].as_str())])
        .await
        .json();
    let note = gone["status_note"].as_str().unwrap_or_default();
    assert!(note.contains("no longer list"), "{gone}");
    let fresh = app
        .call(Some(&cookie), "get_instance", &[("id", ids[0].as_str())])
        .await
        .json();
    assert_eq!(
        fresh["status_note"],
        serde_json::Value::Null,
        "just confirmed"
    );
    // A demo instance the control plane never confirmed says how old its status is.
    let core = instance_named(&app, "umbrella", "umbrella-core").await;
    let core = app
        .call(Some(&cookie), "get_instance", &[("id", core.id.as_str())])
        .await
        .json();
    assert!(
        core["status_note"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Status as of"),
        "{core}"
    );
    let audit = app
        .db
        .store
        .list_audit(&scope("umbrella"), &Default::default(), 50)
        .await
        .unwrap();
    for what in ["provider-reconcile", "provider-import", "provider-missing"] {
        assert_eq!(
            audit
                .iter()
                .filter(|e| e.operation.as_deref() == Some(what))
                .count(),
            1,
            "{what}"
        );
    }
    let again = reconciler.run_once().await.unwrap();
    assert_eq!(
        again,
        Pass {
            listed: 3,
            repaired: 0,
            imported: 0,
            missing: 0,
            skipped: 1
        },
        "nothing left to do"
    );
}

on_both_engines!(
    every_operation_type_synchronously,
    every_operation_type_asynchronously,
    progress_is_reported_while_it_runs,
    control_plane_down_fails_cleanly,
    a_refusal_is_shown_to_the_customer,
    flapping_errors_are_retried_and_run_once,
    retry_after_is_honoured,
    a_slow_answer_times_out_and_is_retried,
    without_callbacks_polling_finishes_it,
    the_control_plane_restarted_mid_operation_is_polled_to_the_end,
    a_change_made_by_the_provider_shows_in_the_portal,
    reconciliation_repairs_imports_and_marks_missing,
    an_operation_past_its_deadline_fails_readably,
);
