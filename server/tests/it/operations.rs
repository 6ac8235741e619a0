//! Lifecycle operations end to end: server function -> store -> worker -> control plane.

use crate::common;

use app::domain::{Role, Status, TenantId};
use app::server::control_plane::{Simulated, SimulatedSettings};
use app::server::store::AuditFilter;
use app::server::store::{now_millis, TenantScope};
use app::server::worker::{Worker, WorkerSettings};
use common::{instance_named, Engine, TestApp};
use serde_json::json;
use std::time::Duration;

const PW: &str = "portico-demo";

fn scope(t: &str) -> TenantScope {
    TenantScope::for_tests(TenantId::parse(t).unwrap())
}

fn worker(app: &TestApp, failure_rate: f64, settings: WorkerSettings) -> Worker {
    let driver = Simulated::new(SimulatedSettings {
        step: Duration::ZERO,
        failure_rate,
        hang: false,
    });
    Worker::new(
        app.db.store.clone(),
        app.state.provider.clone(),
        driver,
        settings,
    )
}

fn quick() -> WorkerSettings {
    WorkerSettings {
        base_backoff: Duration::ZERO,
        max_attempts: 3,
        ..WorkerSettings::default()
    }
}

/// Drains the queue with one worker.
async fn run_all(w: &Worker) {
    for _ in 0..50 {
        if !w.run_once().await.unwrap() {
            return;
        }
    }
    panic!("queue did not drain");
}

async fn request(
    app: &TestApp,
    cookie: &str,
    instance: &str,
    req: serde_json::Value,
    key: &str,
) -> common::Reply {
    app.call_json(
        Some(cookie),
        "request_operation",
        json!({ "instance_id": instance, "request": req, "idempotency_key": key }),
    )
    .await
}

async fn outcomes(app: &TestApp, tenant: &str, instance: &str) -> Vec<String> {
    let f = AuditFilter {
        instance_id: Some(instance.into()),
        ..Default::default()
    };
    let mut events = app
        .db
        .store
        .list_audit(&scope(tenant), &f, 100)
        .await
        .unwrap();
    events.reverse();
    events
        .into_iter()
        .map(|e| format!("{}:{}", e.operation.unwrap_or_default(), e.outcome))
        .collect()
}

async fn stop_runs_end_to_end(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let res = request(
        &app,
        &cookie,
        web.id.as_str(),
        json!({"operation": "stop"}),
        "k1",
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let status = res.json();
    assert_eq!(status["state"], "queued");
    assert_eq!(status["instance_status"], "stopping");

    run_all(&worker(&app, 0.0, quick())).await;
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Stopped
    );
    let op = app
        .call(
            Some(&cookie),
            "operation_status",
            &[("operation_id", status["operation_id"].as_str().unwrap())],
        )
        .await;
    assert_eq!(op.json()["state"], "succeeded");
    assert_eq!(
        outcomes(&app, "globex", web.id.as_str()).await,
        ["stop:requested", "stop:succeeded"]
    );
}

async fn scale_and_update_config_apply_their_changes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let api = instance_named(&app, "globex", "globex-api").await;
    let mut res = api.resources;
    res.replicas = 5;
    res.storage_gib += 10;
    let r = request(
        &app,
        &cookie,
        api.id.as_str(),
        json!({"operation": "scale", "resources": res}),
        "s1",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    run_all(&worker(&app, 0.0, quick())).await;
    let r = request(
        &app,
        &cookie,
        api.id.as_str(),
        json!({"operation": "update-config", "changes": {"max_connections": 750}}),
        "u1",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    run_all(&worker(&app, 0.0, quick())).await;
    let after = instance_named(&app, "globex", "globex-api").await;
    assert_eq!(after.resources, res);
    assert_eq!(
        after.parameters["max_connections"],
        app::domain::ParamValue::Int(750)
    );
    assert_eq!(after.status, Status::Running);
}

async fn denials_change_nothing_and_are_audited(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let viewer = app.sign_in("viewer@globex.test", PW).await;
    let ops = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let staging = instance_named(&app, "globex", "globex-staging").await;

    let cases = [
        (
            &viewer,
            &web,
            json!({"operation": "stop"}),
            403,
            "Your role (viewer) may not stop.",
        ),
        (
            &ops,
            &staging,
            json!({"operation": "stop"}),
            403,
            "Cannot stop while the instance is stopped.",
        ),
        (
            &ops,
            &web,
            json!({"operation": "delete", "confirm_name": "globex-web"}),
            403,
            "The Pro plan does not include delete.",
        ),
        (
            &ops,
            &web,
            json!({"operation": "scale", "resources": {"replicas": 6, "cpu_millicores": 1000, "memory_mib": 1024, "storage_gib": 20}}),
            422,
            "Replicas must be between 1 and 5 on this plan.",
        ),
        (
            &ops,
            &web,
            json!({"operation": "scale", "resources": {"replicas": 2, "cpu_millicores": 1000, "memory_mib": 1024, "storage_gib": 10}}),
            422,
            "Storage cannot shrink below its current 20 GiB.",
        ),
        (
            &ops,
            &web,
            json!({"operation": "update-config", "changes": {"api_key": "mine"}}),
            422,
            "api_key is managed by your provider and cannot be changed.",
        ),
        (
            &ops,
            &web,
            json!({"operation": "update-config", "changes": {"log_level": "trace"}}),
            422,
            "log_level must be one of: error, warn, info, debug.",
        ),
    ];
    for (i, (cookie, inst, req, code, reason)) in cases.into_iter().enumerate() {
        let r = request(
            &app,
            cookie,
            inst.id.as_str(),
            req.clone(),
            &format!("d{i}"),
        )
        .await;
        assert_eq!(r.status, code, "{req}: {}", r.body);
        assert_eq!(r.json()["Denied"]["reason"], reason, "{req}");
        assert!(!r.body.contains("mine"));
    }
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await,
        web,
        "a denied request changed the instance"
    );
    let denied = app
        .db
        .store
        .list_audit(
            &scope("globex"),
            &AuditFilter {
                outcome: Some("denied".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .unwrap();
    assert_eq!(denied.len(), 7);
    assert!(
        denied.iter().all(|e| !e.parameters.contains("mine")),
        "secrets reach the audit log"
    );
    assert!(denied
        .iter()
        .any(|e| e.reason.as_deref() == Some("Your role (viewer) may not stop.")));
}

async fn other_tenants_instance_cannot_be_operated(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("admin@umbrella.test", PW).await;
    let foreign = instance_named(&app, "globex", "globex-web").await;
    let r = request(
        &app,
        &cookie,
        foreign.id.as_str(),
        json!({"operation": "stop"}),
        "x",
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Running
    );
}

async fn same_key_gives_one_operation_and_a_changed_payload_is_refused(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let a = request(
        &app,
        &cookie,
        web.id.as_str(),
        json!({"operation": "restart"}),
        "same",
    )
    .await;
    let b = request(
        &app,
        &cookie,
        web.id.as_str(),
        json!({"operation": "restart"}),
        "same",
    )
    .await;
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    assert_eq!(a.json()["operation_id"], b.json()["operation_id"]);
    let c = request(
        &app,
        &cookie,
        web.id.as_str(),
        json!({"operation": "stop"}),
        "same",
    )
    .await;
    assert_eq!(c.status, 409, "{}", c.body);
    // One operation; the refused reuse is audited like any other refusal.
    assert_eq!(
        outcomes(&app, "globex", web.id.as_str()).await,
        ["restart:requested", "stop:denied"]
    );
}

async fn concurrent_requests_give_one_operation_and_one_refusal(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let id = web.id.to_string();
    let (a, b) = tokio::join!(
        request(&app, &cookie, &id, json!({"operation": "restart"}), "c1"),
        request(&app, &cookie, &id, json!({"operation": "stop"}), "c2"),
    );
    let mut codes = [a.status, b.status];
    codes.sort();
    assert_eq!(codes, [200, 403], "{} / {}", a.body, b.body);
    let refused = if a.status == 403 { &a } else { &b };
    assert_eq!(
        refused.json()["Denied"]["reason"],
        "Another operation is in progress on this instance."
    );
}

async fn lease_expiry_hands_the_operation_to_another_worker_exactly_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    request(
        &app,
        &cookie,
        web.id.as_str(),
        json!({"operation": "stop"}),
        "l1",
    )
    .await;

    // A worker claims the operation and dies before finishing it.
    let dead = app
        .db
        .store
        .claim_operation("dead-worker", now_millis(), 200)
        .await
        .unwrap()
        .expect("claimed");
    assert!(
        app.db
            .store
            .claim_operation("other", now_millis(), 200)
            .await
            .unwrap()
            .is_none(),
        "claimed twice"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let live = worker(&app, 0.0, quick());
    assert!(
        live.run_once().await.unwrap(),
        "the expired lease is picked up"
    );
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Stopped
    );
    // The dead worker wakes up: its late result is refused.
    let late = app
        .db
        .store
        .finish_operation(
            &dead,
            "dead-worker",
            &app::server::store::Finish::Failed {
                error: "late".into(),
                observed: Default::default(),
            },
            now_millis(),
        )
        .await
        .unwrap();
    assert!(!late);
    assert_eq!(
        outcomes(&app, "globex", web.id.as_str()).await,
        ["stop:requested", "stop:succeeded"]
    );
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Stopped
    );
}

async fn failing_control_plane_is_retried_then_fails_cleanly(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let r = request(
        &app,
        &cookie,
        web.id.as_str(),
        json!({"operation": "stop"}),
        "f1",
    )
    .await;
    let op_id = r.json()["operation_id"].as_str().unwrap().to_owned();
    let w = worker(&app, 1.0, quick());
    for attempt in 1..=3 {
        assert!(w.run_once().await.unwrap(), "attempt {attempt} ran");
    }
    assert!(!w.run_once().await.unwrap(), "no attempts after the last");
    let op = app
        .db
        .store
        .get_operation(&scope("globex"), &op_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((op.state.as_str(), op.attempts), ("failed", 3));
    assert!(op.last_error.unwrap().contains("gave up after 3 attempts"));
    let after = instance_named(&app, "globex", "globex-web").await;
    assert_eq!(
        after.status,
        Status::Running,
        "back to where it was, not stuck in stopping"
    );
    assert!(after.status_reason.unwrap().starts_with("stop failed"));
    assert_eq!(
        outcomes(&app, "globex", web.id.as_str()).await,
        ["stop:requested", "stop:failed"]
    );
}

async fn worker_rechecks_policy_when_the_role_changed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    request(
        &app,
        &cookie,
        web.id.as_str(),
        json!({"operation": "stop"}),
        "r1",
    )
    .await;
    let ops_user = app
        .db
        .store
        .user_credentials(&app::domain::Email::parse("ops@globex.test").unwrap())
        .await
        .unwrap()
        .unwrap()
        .user_id;
    app.db
        .store
        .set_membership(&scope("globex"), &ops_user, Role::Viewer, now_millis())
        .await
        .unwrap();

    run_all(&worker(&app, 0.0, quick())).await;
    let after = instance_named(&app, "globex", "globex-web").await;
    assert_eq!(after.status, Status::Running);
    assert_eq!(
        outcomes(&app, "globex", web.id.as_str()).await,
        ["stop:requested", "stop:denied"]
    );
}

async fn admin_creates_then_deletes_an_instance(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("admin@umbrella.test", PW).await;
    let create = json!({
        "request": {
            "name": "umbrella-new", "environment": "staging", "region": "eu-west",
            "resources": {"replicas": 2, "cpu_millicores": 1000, "memory_mib": 2048, "storage_gib": 50},
            "parameters": {"log_level": "debug"}
        },
        "idempotency_key": "create-1"
    });
    let r = app
        .call_json(Some(&cookie), "create_instance", create)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["instance_status"], "deploying");
    run_all(&worker(&app, 0.0, quick())).await;
    let created = instance_named(&app, "umbrella", "umbrella-new").await;
    assert_eq!(created.status, Status::Running);
    assert_eq!(
        created.endpoints[0].url,
        "https://umbrella-new.eu-west.acme.example"
    );
    assert_eq!(
        created.parameters["log_level"],
        app::domain::ParamValue::Text("debug".into())
    );

    let wrong = request(
        &app,
        &cookie,
        created.id.as_str(),
        json!({"operation": "delete", "confirm_name": "umbrella"}),
        "d1",
    )
    .await;
    assert_eq!(wrong.status, 422);
    let ok = request(
        &app,
        &cookie,
        created.id.as_str(),
        json!({"operation": "delete", "confirm_name": "umbrella-new"}),
        "d2",
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    run_all(&worker(&app, 0.0, quick())).await;
    assert!(app
        .db
        .store
        .list_instances(&scope("umbrella"))
        .await
        .unwrap()
        .iter()
        .all(|i| i.name != "umbrella-new"));
}

async fn create_is_refused_outside_the_plan(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let globex = app.sign_in("admin@globex.test", PW).await;
    let body = |name: &str, env: &str| {
        json!({
            "request": {"name": name, "environment": env, "region": "eu-west",
                "resources": {"replicas": 1, "cpu_millicores": 1000, "memory_mib": 2048, "storage_gib": 50}, "parameters": {}},
            "idempotency_key": name
        })
    };
    let r = app
        .call_json(Some(&globex), "create_instance", body("globex-new", "dev"))
        .await;
    assert_eq!(r.status, 403, "the Pro plan has no create: {}", r.body);
    let umbrella = app.sign_in("admin@umbrella.test", PW).await;
    let r = app
        .call_json(
            Some(&umbrella),
            "create_instance",
            body("umbrella-x", "moon"),
        )
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["Denied"]["field"], "environment");
}

async fn audit_log_is_readable_filterable_and_exportable(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ops = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let staging = instance_named(&app, "globex", "globex-staging").await;
    request(
        &app,
        &ops,
        web.id.as_str(),
        json!({"operation": "restart"}),
        "a1",
    )
    .await;
    request(
        &app,
        &ops,
        staging.id.as_str(),
        json!({"operation": "start"}),
        "a2",
    )
    .await;
    request(
        &app,
        &ops,
        staging.id.as_str(),
        json!({"operation": "stop"}),
        "a3",
    )
    .await;
    run_all(&worker(&app, 0.0, quick())).await;

    let admin = app.sign_in("admin@globex.test", PW).await;
    let all = app
        .call(
            Some(&admin),
            "audit_log",
            &[
                ("instance_id", ""),
                ("operation", ""),
                ("user", ""),
                ("outcome", ""),
            ],
        )
        .await;
    assert_eq!(all.status, 200, "{}", all.body);
    let rows = all.json();
    let rows = rows["items"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(rows.last().unwrap()["operation"], "restart", "oldest last");
    assert_eq!(rows.last().unwrap()["actor"], "ops@globex.test");

    let denied = app
        .call(
            Some(&admin),
            "audit_log",
            &[
                ("instance_id", staging.id.as_str()),
                ("operation", ""),
                ("user", ""),
                ("outcome", "denied"),
            ],
        )
        .await;
    let denied = &denied.json()["items"];
    assert_eq!(denied.as_array().unwrap().len(), 1);
    assert_eq!(denied[0]["operation"], "stop");

    let csv = app
        .page(Some(&admin), "/audit/export?format=csv&outcome=succeeded")
        .await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "time,actor,role,instance,instance_id,operation,parameters,outcome,reason,request_id"
    );
    assert_eq!(lines.len(), 3, "{}", csv.body);
    let json_export = app
        .page(Some(&admin), "/audit/export?format=json&operation=restart")
        .await;
    let exported: serde_json::Value = serde_json::from_str(&json_export.body).unwrap();
    assert_eq!(exported.as_array().unwrap().len(), 2);

    let viewer = app.sign_in("viewer@globex.test", PW).await;
    let refused = app
        .call(
            Some(&viewer),
            "audit_log",
            &[
                ("instance_id", ""),
                ("operation", ""),
                ("user", ""),
                ("outcome", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.page(Some(&viewer), "/audit/export").await.status, 403);
    assert_eq!(app.page(None, "/audit/export").await.status, 401);
    let other = app.sign_in("admin@umbrella.test", PW).await;
    let theirs = app
        .call(
            Some(&other),
            "audit_log",
            &[
                ("instance_id", ""),
                ("operation", ""),
                ("user", ""),
                ("outcome", ""),
            ],
        )
        .await;
    assert_eq!(
        theirs.json()["items"].as_array().unwrap().len(),
        0,
        "another tenant's audit log is not visible"
    );
}

async fn pages_show_the_operation_in_flight_until_it_ends(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let res = request(
        &app,
        &cookie,
        web.id.as_str(),
        json!({"operation": "stop"}),
        "k",
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);

    let list = app
        .call(
            Some(&cookie),
            "list_instances",
            &[("environment", ""), ("status", ""), ("q", "globex-web")],
        )
        .await
        .json();
    let card = &list["items"][0];
    assert_eq!(card["status"], "stopping");
    assert_eq!(card["in_flight"]["operation"], "stop");
    assert_eq!(card["in_flight"]["state"], "queued");
    for a in card["actions"].as_array().unwrap() {
        let reason = a["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("Another operation is in progress")
                || reason.contains("does not include"),
            "every action waits for the stop: {a}"
        );
    }
    let detail = app
        .call(Some(&cookie), "get_instance", &[("id", web.id.as_str())])
        .await
        .json();
    assert_eq!(
        detail["in_flight"]["operation_id"],
        res.json()["operation_id"]
    );

    run_all(&worker(&app, 0.0, quick())).await;
    let detail = app
        .call(Some(&cookie), "get_instance", &[("id", web.id.as_str())])
        .await
        .json();
    assert_eq!(detail["status"], "stopped");
    assert!(detail["in_flight"].is_null());
    let start = detail["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["operation"] == "start")
        .unwrap()
        .clone();
    assert!(
        start["reason"].is_null(),
        "start is offered once stopped: {start}"
    );
}

async fn detail_carries_the_plan_limits_and_only_editable_parameters(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let api = instance_named(&app, "globex", "globex-api").await;
    let d = app
        .call(Some(&cookie), "get_instance", &[("id", api.id.as_str())])
        .await
        .json();
    assert_eq!(d["bounds"]["replicas"]["min"], 1);
    assert_eq!(d["bounds"]["replicas"]["max"], 5);
    assert_eq!(d["bounds"]["storage_gib"]["max"], 200);
    let editable: Vec<&str> = d["editable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        editable,
        ["log_level", "max_connections"],
        "the provider-managed API key is not offered"
    );
    assert!(
        !d.to_string().contains("demo-secret"),
        "no secret reaches the browser"
    );
}

async fn create_form_offers_only_the_tenants_plan(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let umbrella = app.sign_in("admin@umbrella.test", PW).await;
    let o = app.call(Some(&umbrella), "create_options", &[]).await;
    assert_eq!(o.status, 200, "{}", o.body);
    let o = o.json();
    assert!(o["denied"].is_null());
    assert_eq!(o["plan_name"], "Enterprise");
    assert_eq!(
        o["environments"],
        json!([
            ["dev", "Dev"],
            ["staging", "Staging"],
            ["production", "Production"]
        ])
    );
    assert_eq!(o["regions"][1], json!(["us-east", "US East (Virginia)"]));
    assert_eq!(o["bounds"]["replicas"]["max"], 20);
    assert_eq!(o["parameters"].as_array().unwrap().len(), 3);
    let me = app.call(Some(&umbrella), "current_user", &[]).await.json();
    assert!(me["create"]["reason"].is_null());
    assert_eq!(me["can_read_audit"], true);

    let globex = app.sign_in("admin@globex.test", PW).await;
    let o = app.call(Some(&globex), "create_options", &[]).await.json();
    assert_eq!(
        o["denied"],
        "The Pro plan does not include create instances."
    );
    let me = app.call(Some(&globex), "current_user", &[]).await.json();
    assert_eq!(
        me["create"]["reason"],
        "The Pro plan does not include create instances."
    );

    let viewer = app.sign_in("viewer@globex.test", PW).await;
    let me = app.call(Some(&viewer), "current_user", &[]).await.json();
    assert_eq!(
        me["can_read_audit"], false,
        "viewers read the audit log only when configured"
    );
}

async fn denied(app: &TestApp, tenant: &str) -> Vec<app::server::store::AuditEvent> {
    let f = AuditFilter {
        outcome: Some("denied".into()),
        ..Default::default()
    };
    app.db
        .store
        .list_audit(&scope(tenant), &f, 1000)
        .await
        .unwrap()
}

async fn another_members_idempotency_key_answers_nothing_of_theirs(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ops = app.sign_in("ops@globex.test", PW).await;
    let viewer = app.sign_in("viewer@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let restart = json!({"operation": "restart"});
    let first = request(&app, &ops, web.id.as_str(), restart.clone(), "shared-key").await;
    assert_eq!(first.status, 200, "{}", first.body);
    // The viewer replays the operator's request with the operator's key: the policy answers.
    let replay = request(
        &app,
        &viewer,
        web.id.as_str(),
        restart.clone(),
        "shared-key",
    )
    .await;
    assert_eq!(replay.status, 403, "{}", replay.body);
    assert!(!replay
        .body
        .contains(first.json()["operation_id"].as_str().unwrap()));
    // The operator's own replay still gets the first answer.
    let again = request(&app, &ops, web.id.as_str(), restart, "shared-key").await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["operation_id"], first.json()["operation_id"]);
}

async fn a_denied_requests_payload_is_audited_cut_short(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let viewer = app.sign_in("viewer@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let big = "A".repeat(200_000);
    let r = request(
        &app,
        &viewer,
        web.id.as_str(),
        json!({"operation": "update-config", "changes": {"max_connections": big}}),
        "big",
    )
    .await;
    assert!(r.status == 403 || r.status == 422, "{}", r.status);
    let events = denied(&app, "globex").await;
    assert_eq!(events.len(), 1);
    let stored = &events[0].parameters;
    assert!(stored.len() <= 2048, "{} bytes stored", stored.len());
    let json: serde_json::Value = serde_json::from_str(stored).expect("still JSON");
    assert!(
        json["truncated_from_bytes"].as_u64().unwrap() > 200_000,
        "{json}"
    );
}

async fn a_member_repeating_denied_requests_is_audited_a_few_times_a_minute(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let viewer = app.sign_in("viewer@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    for i in 0..30 {
        let r = request(
            &app,
            &viewer,
            web.id.as_str(),
            json!({"operation": "restart"}),
            &format!("again-{i}"),
        )
        .await;
        assert_eq!(r.status, 403, "every one is refused: {}", r.body);
    }
    let n = denied(&app, "globex").await.len() as i64;
    assert_eq!(n, app::server::store::DENIALS_AUDITED_PER_MINUTE);
    // Another member's denials are still recorded.
    let other = app.sign_in("ops@globex.test", PW).await;
    let r = request(
        &app,
        &other,
        web.id.as_str(),
        json!({"operation": "delete", "confirm_name": "wrong"}),
        "ops-delete",
    )
    .await;
    assert!(r.status >= 400, "{}", r.body);
    assert_eq!(denied(&app, "globex").await.len() as i64, n + 1);
}

async fn the_export_holds_the_whole_log_read_a_page_at_a_time(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let creds = app
        .db
        .store
        .user_credentials(&app::domain::Email::parse("admin@globex.test").unwrap())
        .await
        .unwrap()
        .unwrap();
    let actor = app::server::store::Actor {
        user_id: creds.user_id,
        email: "admin@globex.test".into(),
        role: Role::Admin,
        request_id: None,
    };
    let n = 1_100;
    for i in 0..n {
        let e = app::server::store::AuditEvent::by(
            &scope("globex"),
            &actor,
            None,
            app::domain::Operation::Restart,
            format!("{{\"n\":{i}}}"),
            app::domain::AuditOutcome::Failed,
            Some(format!("fixture {i}")),
            now_millis(),
        );
        app.db.store.record_audit(&e).await.unwrap();
    }
    let csv = app
        .page(Some(&admin), "/audit/export?format=csv&outcome=failed")
        .await;
    assert_eq!(csv.status, 200);
    let rows: Vec<&str> = csv.body.lines().skip(1).collect();
    assert_eq!(
        rows.len(),
        n,
        "every event, beyond one page and the page limit"
    );
    assert!(rows[0].contains("fixture 1099") && rows[n - 1].contains("fixture 0"));
    let json = app
        .page(Some(&admin), "/audit/export?format=json&outcome=failed")
        .await;
    let all: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(all.as_array().unwrap().len(), n);
    let none = app
        .page(Some(&admin), "/audit/export?format=json&outcome=nothing")
        .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&none.body).unwrap(),
        json!([])
    );
}

on_both_engines!(
    another_members_idempotency_key_answers_nothing_of_theirs,
    a_denied_requests_payload_is_audited_cut_short,
    a_member_repeating_denied_requests_is_audited_a_few_times_a_minute,
    the_export_holds_the_whole_log_read_a_page_at_a_time,
    pages_show_the_operation_in_flight_until_it_ends,
    detail_carries_the_plan_limits_and_only_editable_parameters,
    create_form_offers_only_the_tenants_plan,
    audit_log_is_readable_filterable_and_exportable,
    stop_runs_end_to_end,
    scale_and_update_config_apply_their_changes,
    denials_change_nothing_and_are_audited,
    other_tenants_instance_cannot_be_operated,
    same_key_gives_one_operation_and_a_changed_payload_is_refused,
    concurrent_requests_give_one_operation_and_one_refusal,
    lease_expiry_hands_the_operation_to_another_worker_exactly_once,
    failing_control_plane_is_retried_then_fails_cleanly,
    worker_rechecks_policy_when_the_role_changed,
    admin_creates_then_deletes_an_instance,
    create_is_refused_outside_the_plan,
);

#[tokio::test]
async fn each_operations_log_lines_name_that_operation_alone() {
    let logs = common::CapturedLogs::global();
    let app = TestApp::spawn(Engine::Sqlite).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    // Another task logging on the same thread while the worker waits for the control plane.
    let bystander = tokio::spawn(async {
        loop {
            tracing::info!("bystander tick");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let w = Worker::new(
        app.db.store.clone(),
        app.state.provider.clone(),
        Simulated::new(SimulatedSettings {
            step: Duration::from_millis(30),
            failure_rate: 0.0,
            hang: false,
        }),
        quick(),
    );
    let mut ids = Vec::new();
    for (i, op) in ["stop", "start", "restart"].into_iter().enumerate() {
        let key = format!("log-{i}");
        let res = request(
            &app,
            &cookie,
            web.id.as_str(),
            json!({ "operation": op }),
            &key,
        )
        .await;
        assert_eq!(res.status, 200, "{}", res.body);
        ids.push(res.json()["operation_id"].as_str().unwrap().to_owned());
        assert!(w.run_once().await.unwrap());
    }
    bystander.abort();
    let text = logs.text();
    // Other tests of this binary log too: look at this test's operations only.
    let recorded: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("operation step recorded"))
        .filter(|l| ids.iter().any(|id| l.contains(id.as_str())))
        .collect();
    assert_eq!(recorded.len(), 3, "{recorded:?}");
    let third = recorded[2];
    assert_eq!(third.matches("operation_id").count(), 1, "{third}");
    assert!(third.contains(&ids[2]), "{third}");
    assert!(
        !third.contains(&ids[0]) && !third.contains(&ids[1]),
        "{third}"
    );
    let ticks: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("bystander tick"))
        .collect();
    assert!(!ticks.is_empty());
    let inside = ticks.iter().find(|l| l.contains("operation_id"));
    assert!(
        inside.is_none(),
        "another task's lines are outside every operation: {inside:?}"
    );
}
