//! The tenant REST API (`/api/v1`) over HTTP, on both stores: tokens act exactly as members
//! of their role, through the same policy; errors are problem+json; lists page by cursor;
//! retries are idempotent; each token has a request budget.

use crate::common;

use app::domain::{Role, Status, TenantId};
use app::server::control_plane::{Simulated, SimulatedSettings};
use app::server::state::Settings;
use app::server::store::{now_millis, TenantScope};
use app::server::worker::{Worker, WorkerSettings};
use common::{instance_named, Engine, Reply, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const PW: &str = app::server::demo::DEMO_PASSWORD;

fn scope(t: &str) -> TenantScope {
    TenantScope::for_tests(TenantId::parse(t).unwrap())
}

/// Runs every queued operation to its end with the simulator.
async fn run_queue(app: &TestApp) {
    let w = Worker::new(
        app.db.store.clone(),
        app.state.provider.clone(),
        Simulated::new(SimulatedSettings {
            step: Duration::ZERO,
            failure_rate: 0.0,
            hang: false,
        }),
        WorkerSettings {
            base_backoff: Duration::ZERO,
            ..WorkerSettings::default()
        },
    );
    for _ in 0..50 {
        if !w.run_once().await.unwrap() {
            return;
        }
    }
    panic!("queue did not drain");
}

/// Asserts `res` is a problem+json with `status` and `kind`; returns its body.
fn problem(res: &Reply, status: u16, kind: &str) -> Value {
    assert_eq!(res.status, status, "{}", res.body);
    assert_eq!(
        res.header("content-type"),
        Some("application/problem+json"),
        "{}",
        res.body
    );
    let p = res.json();
    assert_eq!(p["type"], format!("urn:portico:problem:{kind}"), "{p}");
    assert_eq!(p["status"], status);
    assert!(
        p["request_id"].as_str().is_some_and(|id| id.len() > 8),
        "a problem quotes the request id: {p}"
    );
    p
}

async fn an_operator_token_stops_an_instance_and_the_audit_names_the_token(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let res = app
        .call(
            Some(&admin),
            "create_api_token",
            &[("name", "nightly stop"), ("role", "operator")],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let secret = res.json()["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ptk_"), "{secret}");
    let web = instance_named(&app, "globex", "globex-web").await;
    let path = format!("/api/v1/instances/{}/operations", web.id);

    let res = app
        .api(
            Some(&secret),
            "POST",
            &path,
            Some(json!({"operation": "stop"})),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    let op = res.json();
    assert_eq!(op["operation"], "stop");
    assert_eq!(op["state"], "queued");
    assert_eq!(op["instance_status"], "stopping");
    assert_eq!(op["finished"], false);

    run_queue(&app).await;
    let res = app
        .api(
            Some(&secret),
            "GET",
            &format!("/api/v1/operations/{}", op["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let done = res.json();
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["instance_status"], "stopped");
    assert!(done["finished_at"].as_str().is_some(), "{done}");
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Stopped
    );

    let res = app.api(Some(&secret), "GET", &path, None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let history = res.json();
    assert_eq!(history["items"][0]["id"], op["id"], "{history}");

    // The audit log names the token, not the admin who made it.
    let res = app
        .api(
            Some(&secret),
            "GET",
            &format!("/api/v1/audit?instance_id={}", web.id),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let lines = res.json()["items"].as_array().unwrap().clone();
    let actors: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["actor"].as_str().unwrap(), l["outcome"].as_str().unwrap()))
        .collect();
    assert!(
        actors.contains(&("token:nightly stop", "requested")),
        "{actors:?}"
    );
    assert!(lines
        .iter()
        .all(|l| l["time"].as_str().unwrap().contains('T')));
}

async fn a_viewer_token_is_refused_with_the_policys_reason(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let viewer = app.api_token("globex", "viewer").await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let res = app
        .api(
            Some(&viewer),
            "POST",
            &format!("/api/v1/instances/{}/operations", web.id),
            Some(json!({"operation": "stop"})),
        )
        .await;
    let p = problem(&res, 403, "forbidden");
    // The same words the portal shows on the disabled Stop button.
    let res = app
        .api(
            Some(&viewer),
            "GET",
            &format!("/api/v1/instances/{}/actions", web.id),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let actions = res.json()["actions"].as_array().unwrap().clone();
    let stop = actions.iter().find(|a| a["operation"] == "stop").unwrap();
    assert_eq!(stop["allowed"], false);
    assert_eq!(stop["reason"], p["detail"], "{actions:?}");
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Running
    );
}

async fn another_tenants_ids_are_not_found(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let umbrella = app.api_token("umbrella", "admin").await;
    let web = instance_named(&app, "globex", "globex-web").await;
    for (method, path, body) in [
        ("GET", format!("/api/v1/instances/{}", web.id), None),
        ("GET", format!("/api/v1/instances/{}/actions", web.id), None),
        (
            "POST",
            format!("/api/v1/instances/{}/operations", web.id),
            Some(json!({"operation": "restart"})),
        ),
    ] {
        let res = app.api(Some(&umbrella), method, &path, body).await;
        let p = problem(&res, 404, "not-found");
        assert!(!res.body.contains("globex"), "{p}");
    }
    let res = app
        .api(Some(&umbrella), "GET", "/api/v1/instances", None)
        .await;
    assert_eq!(res.status, 200);
    assert!(!res.body.contains("globex"), "{}", res.body);
}

async fn bad_input_gets_a_problem_naming_the_field(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ops = app.api_token("globex", "operator").await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let path = format!("/api/v1/instances/{}/operations", web.id);
    // Out of the plan's bounds: the policy names the field.
    let res = app
        .api(
            Some(&ops),
            "POST",
            &path,
            Some(json!({"operation": "scale", "resources": {
                "replicas": 999, "cpu_millicores": 2000, "memory_mib": 2048, "storage_gib": 200}})),
        )
        .await;
    let p = problem(&res, 422, "invalid");
    assert_eq!(p["field"], "replicas", "{p}");
    // Not JSON, and JSON of the wrong shape.
    let req = axum::http::Request::post(&path)
        .header("authorization", format!("Bearer {ops}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    problem(&app.send(req).await, 400, "malformed-request");
    let res = app
        .api(
            Some(&ops),
            "POST",
            &path,
            Some(json!({"operation": "explode"})),
        )
        .await;
    problem(&res, 400, "malformed-request");
    // A cursor this server did not make, a limit out of range, an unknown status.
    for (query, field) in [
        ("cursor=%25%25", "cursor"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("status=exploded", "status"),
    ] {
        let res = app
            .api(
                Some(&ops),
                "GET",
                &format!("/api/v1/instances?{query}"),
                None,
            )
            .await;
        assert!(
            res.status == 400 || res.status == 422,
            "{query}: {}",
            res.body
        );
        assert_eq!(res.json()["field"], field, "{query}: {}", res.body);
    }
    let res = app
        .api(Some(&ops), "GET", "/api/v1/nothing-here", None)
        .await;
    problem(&res, 404, "not-found");
}

async fn a_cursor_survives_instances_added_between_pages(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = app.api_token("umbrella", "viewer").await;
    let all = app::server::store::Store::list_instances(&app.db.store, &scope("umbrella"))
        .await
        .unwrap();
    assert!(all.len() >= 3, "umbrella's demo data has a few instances");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut added = false;
    loop {
        let path = match &cursor {
            None => "/api/v1/instances?limit=1".to_owned(),
            Some(c) => format!("/api/v1/instances?limit=1&cursor={c}"),
        };
        let res = app.api(Some(&token), "GET", &path, None).await;
        assert_eq!(res.status, 200, "{}", res.body);
        let page = res.json();
        for i in page["items"].as_array().unwrap() {
            seen.push(i["name"].as_str().unwrap().to_owned());
        }
        if !added {
            // Added before the cursor's position: it must not shift the pages after it.
            let mut first = all[0].clone();
            first.id = app::domain::InstanceId::parse(&app::server::store::new_id()).unwrap();
            first.name = "aaa-added-meanwhile".into();
            app.db
                .store
                .insert_instance(&scope("umbrella"), &first)
                .await
                .unwrap();
            added = true;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut want: Vec<String> = all.iter().map(|i| i.name.clone()).collect();
    want.sort();
    assert_eq!(seen, want, "every instance once, in order, none repeated");
}

async fn the_same_idempotency_key_answers_the_first_request(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ops = app.api_token("globex", "operator").await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let path = format!("/api/v1/instances/{}/operations", web.id);
    let send = |body: Value| {
        let req = axum::http::Request::post(&path)
            .header("authorization", format!("Bearer {ops}"))
            .header("content-type", "application/json")
            .header("idempotency-key", "nightly-2026-12-08")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        app.send(req)
    };
    let first = send(json!({"operation": "restart"})).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let again = send(json!({"operation": "restart"})).await;
    assert_eq!(again.status, 202, "{}", again.body);
    assert_eq!(first.json()["id"], again.json()["id"]);
    let changed = send(json!({"operation": "stop"})).await;
    problem(&changed, 409, "idempotency-key-reused");
}

async fn revoked_and_expired_tokens_are_refused_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let res = app
        .call(
            Some(&admin),
            "create_api_token",
            &[
                ("name", "ci"),
                ("role", "viewer"),
                ("expires_in_days", "30"),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let created = res.json();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let id = created["token"]["id"].as_str().unwrap().to_owned();
    assert!(created["token"]["expires_at"].as_str().is_some());
    let ok = app
        .api(Some(&secret), "GET", "/api/v1/instances", None)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.header("ratelimit").is_some());

    // Revoked through the API by an admin token, then refused on its very next request.
    let admin_token = app.api_token("globex", "admin").await;
    let res = app
        .api(
            Some(&admin_token),
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.body);
    let res = app
        .api(Some(&secret), "GET", "/api/v1/instances", None)
        .await;
    problem(&res, 401, "unauthenticated");
    assert!(res.header("www-authenticate").is_some());

    // Listed as ended, with who made it; its secret is nowhere.
    let res = app
        .api(Some(&admin_token), "GET", "/api/v1/tokens", None)
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(!res.body.contains(&secret));
    let list = res.json();
    let ci = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap();
    assert!(ci["revoked_at"].as_str().is_some(), "{ci}");
    assert_eq!(ci["created_by"], "admin@globex.test");

    // Expired: stored with an expiry just past.
    let actor = app::server::store::Actor {
        user_id: app::domain::UserId::parse("tester").unwrap(),
        email: "tester@globex.test".into(),
        role: Role::Admin,
        request_id: None,
    };
    let secret2 =
        app::server::service::tokens::new_secret(app::domain::api_token::SecretKind::TenantToken);
    let gone = app::server::store::NewApiToken {
        id: app::server::store::new_id(),
        name: "gone".into(),
        role: Role::Viewer,
        token_hash: app::server::auth::token_hash(&secret2),
        expires_at: Some(now_millis() - 1),
    };
    app.db
        .store
        .create_api_token(&scope("globex"), &actor, &gone, now_millis() - 10)
        .await
        .unwrap();
    let res = app
        .api(Some(&secret2), "GET", "/api/v1/instances", None)
        .await;
    problem(&res, 401, "unauthenticated");

    // Token management is audited with who did it.
    let res = app
        .api(Some(&admin_token), "GET", "/api/v1/audit", None)
        .await;
    let lines = res.json()["items"].as_array().unwrap().clone();
    let ops: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["operation"].as_str().unwrap(),
                l["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        ops.contains(&("token-create", "admin@globex.test")),
        "{ops:?}"
    );
    assert!(
        ops.iter()
            .any(|(op, actor)| *op == "token-revoke" && actor.starts_with("token:")),
        "{ops:?}"
    );
}

async fn a_session_is_no_token_and_a_token_no_session(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let req = axum::http::Request::get("/api/v1/instances")
        .header("cookie", &admin)
        .body(axum::body::Body::empty())
        .unwrap();
    let p = problem(&app.send(req).await, 401, "unauthenticated");
    assert!(p["detail"].as_str().unwrap().contains("session"), "{p}");

    let secret = app.api_token("globex", "admin").await;
    // As the session cookie, as the embedded pages' session header, and as a bearer on a
    // server function: none of them signs anyone in.
    let as_cookie = app
        .call(
            Some(&format!("__Host-portico_session={secret}")),
            "current_user",
            &[],
        )
        .await;
    assert_eq!(as_cookie.status, 401, "{}", as_cookie.body);
    for (name, value) in [
        (app::server::auth::SESSION_HEADER, secret.clone()),
        ("authorization", format!("Bearer {secret}")),
    ] {
        let req = axum::http::Request::post("/api/current_user")
            .header(name, value)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(app.send(req).await.status, 401, "{name}");
    }
    let page = app
        .page(
            Some(&format!("__Host-portico_session={secret}")),
            "/instances",
        )
        .await;
    assert_eq!(page.status, 302, "{}", page.body);

    // A provider key is refused here by its prefix alone.
    let key =
        app::server::service::tokens::new_secret(app::domain::api_token::SecretKind::ProviderKey);
    let res = app.api(Some(&key), "GET", "/api/v1/instances", None).await;
    let p = problem(&res, 401, "unauthenticated");
    assert!(
        p["detail"].as_str().unwrap().contains("/provider/v1"),
        "{p}"
    );
}

async fn a_token_may_not_outrank_its_creator(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.api_token("globex", "admin").await;
    let res = app
        .api(
            Some(&admin),
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "deploys", "role": "operator", "expires_in_days": 7})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let created = res.json();
    let operator = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(created["token"]["role"], "operator");
    // Duplicate names among live tokens are refused, naming the field.
    let res = app
        .api(
            Some(&admin),
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "deploys", "role": "viewer"})),
        )
        .await;
    assert_eq!(problem(&res, 422, "invalid")["field"], "name");
    // An operator token manages no tokens at all, let alone an admin one.
    let res = app
        .api(
            Some(&operator),
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "escalate", "role": "admin"})),
        )
        .await;
    problem(&res, 403, "forbidden");
    let res = app
        .api(
            Some(&admin),
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "forever", "role": "viewer", "expires_in_days": 0})),
        )
        .await;
    assert_eq!(problem(&res, 422, "invalid")["field"], "expires_in_days");
}

async fn the_worker_refuses_an_operation_whose_token_was_revoked(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let res = app
        .call(
            Some(&admin),
            "create_api_token",
            &[("name", "short-lived"), ("role", "operator")],
        )
        .await;
    let created = res.json();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let web = instance_named(&app, "globex", "globex-web").await;
    let res = app
        .api(
            Some(&secret),
            "POST",
            &format!("/api/v1/instances/{}/operations", web.id),
            Some(json!({"operation": "stop"})),
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    let res = app
        .call(
            Some(&admin),
            "revoke_api_token",
            &[("id", created["token"]["id"].as_str().unwrap())],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    run_queue(&app).await;
    assert_eq!(
        instance_named(&app, "globex", "globex-web").await.status,
        Status::Running,
        "a revoked token's queued operation must not run"
    );
}

async fn each_token_has_a_request_budget(engine: Engine) {
    let settings = Settings {
        api_requests_per_minute: 3,
        ..Settings::default()
    };
    let app = TestApp::spawn_with(engine, settings).await;
    let token = app.api_token("globex", "viewer").await;
    for left in [2, 1, 0] {
        let res = app
            .api(Some(&token), "GET", "/api/v1/instances", None)
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(
            res.header("ratelimit-policy"),
            Some("\"per-token\";q=3;w=60")
        );
        let rl = res.header("ratelimit").unwrap();
        assert!(
            rl.starts_with(&format!("\"per-token\";r={left};t=")),
            "{rl}"
        );
    }
    let res = app
        .api(Some(&token), "GET", "/api/v1/instances", None)
        .await;
    let p = problem(&res, 429, "rate-limited");
    let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(p["retry_after"], retry);
    // Another token's budget is its own.
    let other = app.api_token("globex", "viewer").await;
    let res = app
        .api(Some(&other), "GET", "/api/v1/instances", None)
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
}

on_both_engines!(
    an_operator_token_stops_an_instance_and_the_audit_names_the_token,
    a_viewer_token_is_refused_with_the_policys_reason,
    another_tenants_ids_are_not_found,
    bad_input_gets_a_problem_naming_the_field,
    a_cursor_survives_instances_added_between_pages,
    the_same_idempotency_key_answers_the_first_request,
    revoked_and_expired_tokens_are_refused_at_once,
    a_session_is_no_token_and_a_token_no_session,
    a_token_may_not_outrank_its_creator,
    the_worker_refuses_an_operation_whose_token_was_revoked,
    each_token_has_a_request_budget,
);

/// The document at `/api/v1/openapi.json` is valid OpenAPI by an independent validator
/// (`@readme/openapi-parser`), documents every route the API serves and no other, and the JSON
/// the API really sends matches the schemas it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_document_is_valid_complete_and_true_to_the_answers() {
    use crate::control_plane::openapi::{validator, write};
    let app = TestApp::spawn(Engine::Sqlite).await;
    let res = app.api(None, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let doc = res.json();
    assert_eq!(doc["openapi"], "3.1.0");

    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let served: std::collections::BTreeSet<String> = app::server::rest::routes()
        .into_iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert_eq!(
        served, documented,
        "the routes served and the routes documented differ"
    );

    // Real answers of each kind, checked against the schemas they claim.
    let admin = app.api_token("globex", "admin").await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let dir = tempfile::tempdir().unwrap();
    let mut bodies = Vec::new();
    let mut keep = |schema: &'static str, name: &str, res: Reply| {
        assert!(
            res.status < 300 || schema == "Problem",
            "{name}: {}",
            res.body
        );
        bodies.push((schema, write(dir.path(), name, &res.json())));
    };
    keep(
        "InstancePage",
        "page.json",
        app.api(Some(&admin), "GET", "/api/v1/instances", None)
            .await,
    );
    keep(
        "InstanceDetails",
        "detail.json",
        app.api(
            Some(&admin),
            "GET",
            &format!("/api/v1/instances/{}", web.id),
            None,
        )
        .await,
    );
    keep(
        "ActionList",
        "actions.json",
        app.api(
            Some(&admin),
            "GET",
            &format!("/api/v1/instances/{}/actions", web.id),
            None,
        )
        .await,
    );
    keep(
        "OperationView",
        "operation.json",
        app.api(
            Some(&admin),
            "POST",
            &format!("/api/v1/instances/{}/operations", web.id),
            Some(json!({"operation": "scale", "resources": {
                "replicas": 3, "cpu_millicores": 2000, "memory_mib": 2048, "storage_gib": 200}})),
        )
        .await,
    );
    keep(
        "OperationPage",
        "history.json",
        app.api(
            Some(&admin),
            "GET",
            &format!("/api/v1/instances/{}/operations", web.id),
            None,
        )
        .await,
    );
    keep(
        "AuditPage",
        "audit.json",
        app.api(Some(&admin), "GET", "/api/v1/audit", None).await,
    );
    keep(
        "MemberList",
        "members.json",
        app.api(Some(&admin), "GET", "/api/v1/members", None).await,
    );
    keep(
        "InvitationCreated",
        "invitation.json",
        app.api(
            Some(&admin),
            "POST",
            "/api/v1/invitations",
            Some(json!({"email": "someone@partner.test", "role": "viewer"})),
        )
        .await,
    );
    keep(
        "TokenCreated",
        "token.json",
        app.api(
            Some(&admin),
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "schema", "role": "viewer", "expires_in_days": 1})),
        )
        .await,
    );
    keep(
        "Problem",
        "problem.json",
        app.api(Some(&admin), "GET", "/api/v1/instances/nope", None)
            .await,
    );
    let doc_file = dir.path().join("openapi.json");
    std::fs::write(&doc_file, &res.body).unwrap();
    let checks: Vec<(&str, &std::path::Path)> =
        bodies.iter().map(|(s, p)| (*s, p.as_path())).collect();
    let (ok, out) = validator(&doc_file, &checks);
    assert!(
        ok,
        "the document or a real answer does not validate:\n{out}"
    );
}
