//! The callback routes: only signed, fresh, new messages change anything, in `seq` order.

use super::harness::*;
use crate::common::{Engine, TestApp};
use app::domain::Status;
use app::server::store::OpState;
use serde_json::json;

/// A portal whose control plane is never called (no worker runs), with one stop requested.
async fn portal_with_a_stop(engine: Engine) -> (TestApp, Secrets, String, String) {
    let secrets = Secrets::new();
    let app = TestApp::spawn_custom(
        engine,
        Default::default(),
        config("http://127.0.0.1:9", &secrets),
    )
    .await;
    let portal = app.serve().await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let op_id = request(&app, &cookie, web.id.as_str(), "stop", "cb-1").await;
    (app, secrets, portal, op_id)
}

fn events(op_id: &str) -> String {
    format!("/control-plane/v1/operations/{op_id}/events")
}

async fn unsigned_stale_forged_and_replayed_callbacks_change_nothing(engine: Engine) {
    let (app, secrets, portal, op_id) = portal_with_a_stop(engine).await;
    let path = events(&op_id);
    let done = json!({"seq": 1, "state": "succeeded", "instance": {"status": "stopped"}});

    // Unsigned.
    let res = reqwest::Client::new()
        .post(format!("{portal}{path}"))
        .json(&done)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Signed with another secret.
    let (id, now) = fresh();
    let (status, body) = signed_post(&portal, &path, &new_secret(), &id, now, &done).await;
    assert_eq!(status, 401, "{body}");
    // Six minutes old, and six minutes ahead.
    for skew in [-360, 360] {
        let (id, now) = fresh();
        let (status, body) =
            signed_post(&portal, &path, &secrets.callbacks, &id, now + skew, &done).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("five minutes"), "{body}");
    }
    let op = operation(&app, "globex", &op_id).await;
    assert_eq!(op.state, OpState::Queued, "nothing changed: {op:?}");

    // A good one is applied; the same message again is a replay.
    let progress = json!({"seq": 1, "state": "in_progress", "message": "Draining"});
    let (id, now) = fresh();
    let (status, body) = signed_post(&portal, &path, &secrets.callbacks, &id, now, &progress).await;
    assert_eq!(status, 200, "{body}");
    let later = json!({"seq": 2, "state": "in_progress", "message": "Replayed"});
    let (status, body) = signed_post(&portal, &path, &secrets.callbacks, &id, now, &later).await;
    assert_eq!(status, 401, "a replayed webhook-id: {body}");
    let op = operation(&app, "globex", &op_id).await;
    assert_eq!(op.last_seq, 1);
    assert_eq!(op.progress_message.as_deref(), Some("Draining"));
}

async fn duplicates_and_out_of_order_callbacks_change_nothing(engine: Engine) {
    let (app, secrets, portal, op_id) = portal_with_a_stop(engine).await;
    let path = events(&op_id);
    let post = |body: serde_json::Value| {
        let (portal, path, secret) = (portal.clone(), path.clone(), secrets.callbacks.clone());
        async move {
            let (id, now) = fresh();
            signed_post(&portal, &path, &secret, &id, now, &body).await
        }
    };
    let (s, b) =
        post(json!({"seq": 2, "state": "in_progress", "message": "Second", "percent": 60})).await;
    assert_eq!((s, b.as_str()), (200, r#"{"applied":true}"#));
    // Older than what was applied, then the same seq again: both ignored.
    let (s, b) = post(json!({"seq": 1, "state": "in_progress", "message": "First"})).await;
    assert_eq!((s, b.as_str()), (200, r#"{"applied":false}"#));
    let (s, b) = post(json!({"seq": 2, "state": "failed", "message": "Late"})).await;
    assert_eq!((s, b.as_str()), (200, r#"{"applied":false}"#));
    let op = operation(&app, "globex", &op_id).await;
    assert_eq!(op.progress_message.as_deref(), Some("Second"));
    assert_eq!(op.state, OpState::Queued);

    let (s, _) = post(json!({"seq": 3, "state": "succeeded",
        "instance": {"status": "stopped", "external_id": "ext-7"}}))
    .await;
    assert_eq!(s, 200);
    // After the end, nothing more changes it, whatever its seq.
    let (s, b) = post(json!({"seq": 9, "state": "failed", "message": "Too late"})).await;
    assert_eq!((s, b.as_str()), (200, r#"{"applied":false}"#));
    let op = operation(&app, "globex", &op_id).await;
    assert_eq!(op.state, OpState::Succeeded);
    let web = instance_named(&app, "globex", "globex-web").await;
    assert_eq!(web.status, Status::Stopped);
    assert_eq!(web.external_id.as_deref(), Some("ext-7"));
    let succeeded = app
        .db
        .store
        .list_audit(&scope("globex"), &Default::default(), 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.operation_id.as_deref() == Some(op_id.as_str()) && e.outcome == "succeeded")
        .count();
    assert_eq!(succeeded, 1, "the end is audited once");
}

async fn unknown_operations_and_instances_are_not_found(engine: Engine) {
    let (_app, secrets, portal, _op) = portal_with_a_stop(engine).await;
    let (id, now) = fresh();
    let body = json!({"seq": 1, "state": "succeeded"});
    let (status, _) = signed_post(
        &portal,
        &events("no-such-op"),
        &secrets.callbacks,
        &id,
        now,
        &body,
    )
    .await;
    assert_eq!(status, 404);
    let (id, now) = fresh();
    let report = json!({"seq": 1, "instance": {"status": "stopped"}});
    let (status, _) = signed_post(
        &portal,
        "/control-plane/v1/instances/i-nope/events",
        &secrets.callbacks,
        &id,
        now,
        &report,
    )
    .await;
    assert_eq!(status, 404);
}

/// An instance report needs an order, and an older one changes nothing.
async fn instance_reports_apply_in_order(engine: Engine) {
    let (app, secrets, portal, _op) = portal_with_a_stop(engine).await;
    let api = instance_named(&app, "globex", "globex-api").await;
    let path = format!("/control-plane/v1/instances/{}/events", api.id);
    let send = |body: serde_json::Value| {
        let (portal, path, secret) = (portal.clone(), path.clone(), secrets.callbacks.clone());
        async move {
            let (id, now) = fresh();
            signed_post(&portal, &path, &secret, &id, now, &body).await
        }
    };
    let (s, b) = send(json!({"instance": {"status": "failed"}})).await;
    assert_eq!(s, 422, "no seq nor observed_at: {b}");
    let (s, _) =
        send(json!({"seq": 5, "message": "Disk full", "instance": {"status": "failed"}})).await;
    assert_eq!(s, 200);
    let (s, b) = send(json!({"seq": 4, "instance": {"status": "running"}})).await;
    assert_eq!((s, b.as_str()), (200, r#"{"applied":false}"#));
    let api = instance_named(&app, "globex", "globex-api").await;
    assert_eq!(api.status, Status::Failed);
    assert_eq!(api.status_reason.as_deref(), Some("Disk full"));
}

on_both_engines!(
    unsigned_stale_forged_and_replayed_callbacks_change_nothing,
    duplicates_and_out_of_order_callbacks_change_nothing,
    unknown_operations_and_instances_are_not_found,
    instance_reports_apply_in_order,
);
