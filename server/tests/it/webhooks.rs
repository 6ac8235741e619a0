//! Webhooks end to end: endpoints made through `/api/v1`, events from real changes, deliveries
//! through the queue to a receiver written in Node with the `standardwebhooks` package
//! (`end2end/fixtures/webhook-receiver.mjs`, whose packages come from `cd end2end && npm ci`;
//! without node these tests fail, they never skip), and the addresses a delivery must never
//! reach.

use crate::common::{unused_port, Engine, TestApp};
use app::server::config;
use app::server::control_plane::{Simulated, SimulatedSettings};
use app::server::state::Settings;
use app::server::webhooks::{Deliverer, DeliverySettings};
use app::server::worker::{Worker, WorkerSettings};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The Node receiver, killed when dropped.
struct Receiver {
    _child: tokio::process::Child,
    url: String,
}

impl Receiver {
    async fn start(host: &str, port: u16) -> Receiver {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../end2end/fixtures/webhook-receiver.mjs"
        );
        let mut child = tokio::process::Command::new("node")
            .arg(path)
            .env("PORT", port.to_string())
            .env("HOST", host)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run end2end/fixtures/webhook-receiver.mjs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!(
                "the webhook receiver exited before it listened (its packages come from \
                 `cd end2end && npm ci`; its error is above)"
            )
        })
        .await
        .expect("the webhook receiver starts within 30 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Receiver { _child: child, url }
    }

    /// Which secrets `path` verifies with, and how it answers its next requests.
    async fn configure(&self, path: &str, secrets: &[&str], script: Value) {
        let res = reqwest::Client::new()
            .post(format!("{}/_configure", self.url))
            .json(&json!({ "path": path, "secrets": secrets, "script": script }))
            .send()
            .await
            .expect("configure the receiver");
        assert!(res.status().is_success());
    }

    /// Everything `path` received, in order.
    async fn log(&self, path: &str) -> Vec<Value> {
        let log: Value = reqwest::get(format!("{}/_log", self.url))
            .await
            .expect("GET /_log")
            .json()
            .await
            .expect("the log is JSON");
        log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["path"] == path)
            .cloned()
            .collect()
    }
}

/// The demo provider, with deliveries to 127.0.0.1 allowed (as a provider would allow an
/// internal receiver) and the given hourly limit.
fn provider(allow: &[&str], per_hour: u32) -> app::domain::ProviderConfig {
    let mut p = config::demo();
    p.webhooks.allow = allow.iter().map(|s| s.to_string()).collect();
    p.webhooks.deliveries_per_hour = per_hour;
    p
}

async fn spawn(engine: Engine, allow: &[&str]) -> TestApp {
    TestApp::spawn_custom(engine, Settings::default(), provider(allow, 3600)).await
}

/// A deliverer with the app's configuration, retrying every `retry` (instead of Svix's hours).
fn deliverer(app: &TestApp, retry: Duration, timeout: Duration) -> Deliverer {
    let mut s = DeliverySettings::from_config(&app.state.provider.webhooks).unwrap();
    s.schedule = vec![retry; 7];
    s.timeout = timeout;
    s.idle_poll = Duration::from_millis(20);
    Deliverer::new(app.db.store.clone(), s).unwrap()
}

/// Attempts every delivery that is due now, until none is.
async fn drain(d: &Deliverer) -> usize {
    let mut n = 0;
    while d.run_once().await.unwrap() {
        n += 1;
        assert!(n < 500, "the queue does not drain");
    }
    n
}

/// Runs every queued operation to its end with the simulator (failing every command when
/// `fail`, with no retry).
async fn run_operations(app: &TestApp, fail: bool) {
    let w = Worker::new(
        app.db.store.clone(),
        app.state.provider.clone(),
        Simulated::new(SimulatedSettings {
            step: Duration::ZERO,
            failure_rate: if fail { 1.0 } else { 0.0 },
            hang: false,
        }),
        WorkerSettings {
            base_backoff: Duration::ZERO,
            max_attempts: 1,
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

/// Adds an endpoint with the admin token `token`; returns its id and secret.
async fn endpoint(app: &TestApp, token: &str, url: &str, types: &[&str]) -> (String, String) {
    let res = app
        .api(
            Some(token),
            "POST",
            "/api/v1/webhooks",
            Some(json!({ "url": url, "event_types": types, "description": "tests" })),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let j = res.json();
    let secret = j["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (j["endpoint"]["id"].as_str().unwrap().to_owned(), secret)
}

/// A new receiver, and a globex admin token with an endpoint for `webhook.test` at `path` of
/// it, verified with the endpoint's secret and answered with `script` (then 204).
struct Hooked {
    rx: Receiver,
    token: String,
    id: String,
    secret: String,
}

async fn hooked(app: &TestApp, path: &str, script: Value) -> Hooked {
    let rx = Receiver::start("127.0.0.1", 0).await;
    let token = app.api_token("globex", "admin").await;
    let url = format!("{}{path}", rx.url);
    let (id, secret) = endpoint(app, &token, &url, &["webhook.test"]).await;
    rx.configure(path, &[&secret], script).await;
    Hooked {
        rx,
        token,
        id,
        secret,
    }
}

async fn send_test(app: &TestApp, token: &str, id: &str) -> String {
    let res = app
        .api(
            Some(token),
            "POST",
            &format!("/api/v1/webhooks/{id}/test"),
            None,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    res.json()["message_id"].as_str().unwrap().to_owned()
}

async fn attempts(app: &TestApp, token: &str, id: &str) -> Vec<Value> {
    let res = app
        .api(
            Some(token),
            "GET",
            &format!("/api/v1/webhooks/{id}/attempts"),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.json().as_array().unwrap().clone()
}

const ALL_TYPES: [&str; 10] = [
    "operation.requested",
    "operation.succeeded",
    "operation.failed",
    "instance.status_changed",
    "instance.created",
    "instance.deleted",
    "member.added",
    "member.removed",
    "member.role_changed",
    "webhook.test",
];

async fn every_event_type_arrives_once_signed_with_only_its_tenants_data(engine: Engine) {
    let app = spawn(engine, &["127.0.0.1"]).await;
    let rx = Receiver::start("127.0.0.1", 0).await;
    let umbrella = app.api_token("umbrella", "admin").await;
    let globex = app.api_token("globex", "admin").await;
    let (u_id, u_secret) =
        endpoint(&app, &umbrella, &format!("{}/umbrella", rx.url), &ALL_TYPES).await;
    let (g_id, g_secret) = endpoint(&app, &globex, &format!("{}/globex", rx.url), &ALL_TYPES).await;
    rx.configure("/umbrella", &[&u_secret, &g_secret], json!([]))
        .await;
    rx.configure("/globex", &[&g_secret, &u_secret], json!([]))
        .await;

    // Umbrella: an instance created, run, stopped, failed to start, deleted; members changed.
    let created = app
        .api(
            Some(&umbrella),
            "POST",
            "/api/v1/instances",
            Some(json!({
                "name": "hooked", "environment": "dev", "region": "eu-west", "parameters": {},
                "resources": { "replicas": 1, "cpu_millicores": 1000, "memory_mib": 1024,
                               "storage_gib": 20 },
            })),
        )
        .await;
    assert_eq!(created.status, 202, "{}", created.body);
    let instance = created.json()["instance_id"].as_str().unwrap().to_owned();
    run_operations(&app, false).await;
    let ops = format!("/api/v1/instances/{instance}/operations");
    let stop = app
        .api(
            Some(&umbrella),
            "POST",
            &ops,
            Some(json!({ "operation": "stop" })),
        )
        .await;
    assert_eq!(stop.status, 202, "{}", stop.body);
    run_operations(&app, false).await;
    let start = app
        .api(
            Some(&umbrella),
            "POST",
            &ops,
            Some(json!({ "operation": "start" })),
        )
        .await;
    assert_eq!(start.status, 202, "{}", start.body);
    run_operations(&app, true).await;
    let delete = app
        .api(
            Some(&umbrella),
            "POST",
            &ops,
            Some(json!({ "operation": "delete", "confirm_name": "hooked" })),
        )
        .await;
    assert_eq!(delete.status, 202, "{}", delete.body);
    run_operations(&app, false).await;

    let scope = app::server::store::TenantScope::for_tests(
        app::domain::TenantId::parse("umbrella").unwrap(),
    );
    let newcomer = app
        .db
        .store
        .create_user(
            &app::domain::Email::parse("newcomer@umbrella.test").unwrap(),
            "Newcomer",
            None,
            app::server::store::now_millis(),
        )
        .await
        .unwrap();
    app.db
        .store
        .set_membership_as_provider(
            scope.tenant_id(),
            &newcomer,
            app::domain::Role::Viewer,
            app::server::store::now_millis(),
        )
        .await
        .unwrap();
    let member = format!("/api/v1/members/{}", newcomer.as_str());
    let res = app
        .api(
            Some(&umbrella),
            "PATCH",
            &member,
            Some(json!({ "role": "operator" })),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.body);
    let res = app.api(Some(&umbrella), "DELETE", &member, None).await;
    assert_eq!(res.status, 204, "{}", res.body);
    let test_id = send_test(&app, &umbrella, &u_id).await;
    send_test(&app, &globex, &g_id).await;

    let d = deliverer(&app, Duration::from_millis(10), Duration::from_secs(5));
    drain(&d).await;

    let got = rx.log("/umbrella").await;
    let types: BTreeSet<&str> = got.iter().map(|d| d["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ALL_TYPES.into_iter().collect(),
        "every type arrives: {got:#?}"
    );
    let ids: Vec<&str> = got.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "each message arrives once: {ids:?}"
    );
    assert!(ids.contains(&test_id.as_str()));
    for d in &got {
        assert_eq!(
            d["verified"],
            json!([0]),
            "signed with its own secret only: {d}"
        );
        assert!(d["bytes"].as_u64().unwrap() < 20 * 1024, "{d}");
        let body = d["body"].to_string();
        assert!(!body.contains("globex"), "another tenant's data: {body}");
        assert!(
            !body.contains("parameters"),
            "parameters may hold secrets: {body}"
        );
        let ts: i64 = d["timestamp"].as_str().unwrap().parse().unwrap();
        assert!(
            (ts - app::server::store::now_millis() / 1000).abs() < 60,
            "{d}"
        );
    }
    let kinds: HashMap<&str, usize> = got.iter().fold(HashMap::new(), |mut m, d| {
        *m.entry(d["type"].as_str().unwrap()).or_default() += 1;
        m
    });
    assert_eq!(
        kinds["operation.requested"], 4,
        "create, stop, start, delete: {kinds:?}"
    );
    assert_eq!(kinds["operation.failed"], 1, "{kinds:?}");
    let failed = got
        .iter()
        .find(|d| d["type"] == "operation.failed")
        .unwrap();
    assert_eq!(
        failed["body"]["data"]["operation"]["type"], "start",
        "{failed}"
    );
    assert_eq!(
        failed["body"]["data"]["operation"]["instance_id"],
        instance.as_str()
    );
    let role = got
        .iter()
        .find(|d| d["type"] == "member.role_changed")
        .unwrap();
    assert_eq!(
        role["body"]["data"]["member"]["email"],
        "newcomer@umbrella.test"
    );
    assert_eq!(role["body"]["data"]["member"]["role"], "operator");
    let stopped = got
        .iter()
        .find(|d| {
            d["type"] == "instance.status_changed"
                && d["body"]["data"]["instance"]["status"] == "stopped"
        })
        .unwrap_or_else(|| panic!("a change to stopped: {got:#?}"));
    assert_eq!(stopped["body"]["data"]["previous_status"], "stopping");

    let globex_got = rx.log("/globex").await;
    assert_eq!(
        globex_got.len(),
        1,
        "globex only gets its own test: {globex_got:#?}"
    );
    assert_eq!(globex_got[0]["type"], "webhook.test");
    assert_eq!(globex_got[0]["verified"], json!([0]));
    assert!(!globex_got[0]["body"].to_string().contains("umbrella"));

    // The delivery log tells the admin what happened, and another tenant sees none of it.
    let log = attempts(&app, &umbrella, &u_id).await;
    assert_eq!(log.len(), got.len());
    assert!(log
        .iter()
        .all(|a| a["status"] == 204 && a["delivery_state"] == "delivered"));
    let res = app
        .api(
            Some(&globex),
            "GET",
            &format!("/api/v1/webhooks/{u_id}/attempts"),
            None,
        )
        .await;
    assert_eq!(res.status, 404, "{}", res.body);
    drop(rx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_arrives_once_signed_with_only_its_tenants_data_sqlite() {
    every_event_type_arrives_once_signed_with_only_its_tenants_data(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_arrives_once_signed_with_only_its_tenants_data_postgres() {
    every_event_type_arrives_once_signed_with_only_its_tenants_data(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rotation_both_secrets_sign_every_delivery() {
    let app = spawn(Engine::Sqlite, &["127.0.0.1"]).await;
    let Hooked {
        rx,
        token,
        id,
        secret: old,
    } = hooked(&app, "/hook", json!([])).await;
    let res = app
        .api(
            Some(&token),
            "POST",
            &format!("/api/v1/webhooks/{id}/rotate"),
            None,
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let new = res.json()["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let view = app
        .api(Some(&token), "GET", &format!("/api/v1/webhooks/{id}"), None)
        .await;
    let until = view.json()["endpoint"]["previous_secret_valid_until"].clone();
    assert!(until.is_string(), "the page says until when: {}", view.body);
    rx.configure("/hook", &[&new, &old], json!([])).await;
    send_test(&app, &token, &id).await;
    drain(&deliverer(
        &app,
        Duration::from_millis(10),
        Duration::from_secs(5),
    ))
    .await;
    let got = rx.log("/hook").await;
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["verified"], json!([0, 1]), "both verify: {}", got[0]);
    assert_eq!(
        got[0]["signature"].as_str().unwrap().matches("v1,").count(),
        2
    );

    // Sent again on request: the same message, the same webhook-id, signed anew.
    let msg = got[0]["id"].as_str().unwrap().to_owned();
    let res = app
        .api(
            Some(&token),
            "POST",
            &format!("/api/v1/webhooks/{id}/messages/{msg}/redeliver"),
            None,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    drain(&deliverer(
        &app,
        Duration::from_millis(10),
        Duration::from_secs(5),
    ))
    .await;
    let got = rx.log("/hook").await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1]["id"], msg.as_str());
    assert_eq!(got[1]["body"], got[0]["body"]);
    assert_eq!(got[1]["verified"], json!([0, 1]));
    let unknown = app
        .api(
            Some(&token),
            "POST",
            &format!("/api/v1/webhooks/{id}/messages/msg_unknown/redeliver"),
            None,
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_was_down_gets_everything_once_it_is_back() {
    let app = spawn(Engine::Sqlite, &["127.0.0.1"]).await;
    let port = unused_port();
    let token = app.api_token("globex", "admin").await;
    let url = format!("http://127.0.0.1:{port}/hook");
    let (id, secret) = endpoint(&app, &token, &url, &["webhook.test"]).await;
    let mut sent = BTreeSet::new();
    for _ in 0..3 {
        sent.insert(send_test(&app, &token, &id).await);
    }
    let d = deliverer(&app, Duration::from_millis(200), Duration::from_secs(5));
    assert_eq!(drain(&d).await, 3, "each tried once, all refused");
    let log = attempts(&app, &token, &id).await;
    assert!(
        log.iter()
            .all(|a| a["status"].is_null() && a["delivery_state"] == "pending"),
        "{log:#?}"
    );
    assert!(
        log[0]["response"].as_str().unwrap().contains("connect"),
        "{log:#?}"
    );

    let rx = Receiver::start("127.0.0.1", port).await;
    rx.configure("/hook", &[&secret], json!([])).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.log("/hook").await.len() < 3 && Instant::now() < deadline {
        drain(&d).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = rx.log("/hook").await;
    let ids: BTreeSet<String> = got
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, sent, "every message arrives: {got:#?}");
    assert_eq!(got.len(), 3, "once each");
    assert!(got.iter().all(|d| d["verified"] == json!([0])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_times_out_and_is_tried_again_with_the_same_id() {
    let app = spawn(Engine::Sqlite, &["127.0.0.1"]).await;
    let Hooked { rx, token, id, .. } =
        hooked(&app, "/slow", json!([{ "status": 200, "delay_ms": 3000 }])).await;
    send_test(&app, &token, &id).await;
    let d = deliverer(&app, Duration::from_millis(10), Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.log("/slow").await.len() < 2 && Instant::now() < deadline {
        drain(&d).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = rx.log("/slow").await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0]["id"], got[1]["id"], "a retry keeps its webhook-id");
    let log = attempts(&app, &token, &id).await;
    assert_eq!(log.len(), 2, "{log:#?}");
    // Newest first: delivered, after a timeout.
    assert_eq!(log[0]["status"], 204);
    assert_eq!(log[0]["delivery_state"], "delivered");
    assert!(log[1]["status"].is_null());
    assert!(
        log[1]["response"]
            .as_str()
            .unwrap()
            .contains("no answer within"),
        "{log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint_at_once_until_an_admin_enables_it() {
    let app = spawn(Engine::Sqlite, &["127.0.0.1"]).await;
    let Hooked { rx, token, id, .. } = hooked(&app, "/gone", json!([{ "status": 410 }])).await;
    send_test(&app, &token, &id).await;
    let d = deliverer(&app, Duration::from_millis(10), Duration::from_secs(5));
    drain(&d).await;
    let view = app
        .api(Some(&token), "GET", &format!("/api/v1/webhooks/{id}"), None)
        .await;
    let e = &view.json()["endpoint"];
    assert_eq!(e["enabled"], false, "{e}");
    assert!(
        e["disabled_reason"].as_str().unwrap().contains("410"),
        "{e}"
    );
    let audit = app
        .api(
            Some(&token),
            "GET",
            "/api/v1/audit?operation=webhook-disable",
            None,
        )
        .await;
    assert!(
        audit.body.contains("410"),
        "the admins are told: {}",
        audit.body
    );

    // Nothing more is sent while disabled, and the log says why the first one failed.
    send_test(&app, &token, &id).await;
    drain(&d).await;
    assert_eq!(rx.log("/gone").await.len(), 1);
    assert_eq!(
        attempts(&app, &token, &id).await[0]["delivery_state"],
        "failed"
    );

    let res = app
        .api(
            Some(&token),
            "PATCH",
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({ "enabled": true })),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.json()["disabled_reason"].is_null(), "{}", res.body);
    drain(&d).await;
    let got = rx.log("/gone").await;
    assert_eq!(
        got.len(),
        2,
        "the test sent while disabled goes out now: {got:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_past_the_limit_is_disabled_and_audited() {
    let app = spawn(Engine::Sqlite, &["127.0.0.1"]).await;
    let failing: Vec<Value> = (0..20).map(|_| json!({ "status": 500 })).collect();
    let Hooked {
        rx: _rx, token, id, ..
    } = hooked(&app, "/down", json!(failing)).await;
    send_test(&app, &token, &id).await;
    let mut s = DeliverySettings::from_config(&app.state.provider.webhooks).unwrap();
    s.schedule = vec![Duration::from_millis(20); 7];
    // Five days, in a test's time: eight attempts 20 ms apart outlast it.
    s.disable_after = Duration::from_millis(50);
    let d = Deliverer::new(app.db.store.clone(), s).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        drain(&d).await;
        let view = app
            .api(Some(&token), "GET", &format!("/api/v1/webhooks/{id}"), None)
            .await;
        if view.json()["endpoint"]["enabled"] == false {
            let reason = view.json()["endpoint"]["disabled_reason"].clone();
            assert!(
                reason.as_str().unwrap().contains("failed since"),
                "{reason}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never disabled: {}", view.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let audit = app
        .api(
            Some(&token),
            "GET",
            "/api/v1/audit?operation=webhook-disable",
            None,
        )
        .await;
    assert!(audit.body.contains("failed since"), "{}", audit.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_429_is_waited_for() {
    let app = spawn(Engine::Sqlite, &["127.0.0.1"]).await;
    let Hooked { rx, token, id, .. } =
        hooked(&app, "/busy", json!([{ "status": 429, "retry_after": 2 }])).await;
    send_test(&app, &token, &id).await;
    let d = deliverer(&app, Duration::from_millis(10), Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.log("/busy").await.len() < 2 && Instant::now() < deadline {
        drain(&d).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = rx.log("/busy").await;
    assert_eq!(got.len(), 2, "{got:#?}");
    let waited = got[1]["at"].as_i64().unwrap() - got[0]["at"].as_i64().unwrap();
    assert!(
        waited >= 2000,
        "the receiver asked for 2 s, got {waited} ms"
    );
    assert!(waited < 4000, "and not much more: {waited} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_claimed_by_a_dead_worker_is_taken_over_when_its_lease_ends() {
    let app = spawn(Engine::Sqlite, &["127.0.0.1"]).await;
    let Hooked { rx, token, id, .. } = hooked(&app, "/hook", json!([])).await;
    let msg = send_test(&app, &token, &id).await;
    // A process claims it and dies before it records anything.
    let now = app::server::store::now_millis();
    let claimed = app
        .db
        .store
        .claim_webhook_delivery("dead-process", now, 300, now - 3_600_000, 100)
        .await
        .unwrap()
        .expect("due");
    assert_eq!(claimed.message_id, msg);
    let d = deliverer(&app, Duration::from_millis(10), Duration::from_secs(5));
    assert_eq!(drain(&d).await, 0, "held by its lease");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(drain(&d).await, 1, "taken over once the lease ran out");
    let got = rx.log("/hook").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"], msg.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_its_hourly_limit_a_tenant_waits_and_loses_nothing() {
    let app = TestApp::spawn_custom(
        Engine::Sqlite,
        Settings::default(),
        provider(&["127.0.0.1"], 2),
    )
    .await;
    let Hooked { rx, token, id, .. } = hooked(&app, "/hook", json!([])).await;
    for _ in 0..3 {
        send_test(&app, &token, &id).await;
    }
    let d = deliverer(&app, Duration::from_millis(10), Duration::from_secs(5));
    assert_eq!(drain(&d).await, 2, "two an hour");
    let view = app
        .api(Some(&token), "GET", &format!("/api/v1/webhooks/{id}"), None)
        .await;
    assert_eq!(
        view.json()["pending_deliveries"],
        1,
        "the third waits: {}",
        view.body
    );
    assert_eq!(rx.log("/hook").await.len(), 2);
}

/// A loopback listener that counts the connections made to it.
async fn recorder() -> (u16, Arc<AtomicUsize>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = l.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_never_reach_private_addresses() {
    // Only 127.0.0.2 is allowed: the redirecting receiver lives there.
    let app = spawn(Engine::Sqlite, &["127.0.0.2"]).await;
    let (port, seen) = recorder().await;
    let token = app.api_token("globex", "admin").await;

    for url in [
        format!("https://127.0.0.1:{port}/"),
        format!("https://[::1]:{port}/"),
        "https://10.0.0.1/hook".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        format!("http://127.0.0.1:{port}/"),
        "http://example.com/hook".to_owned(),
    ] {
        let res = app
            .api(
                Some(&token),
                "POST",
                "/api/v1/webhooks",
                Some(json!({ "url": url, "event_types": ["webhook.test"] })),
            )
            .await;
        assert_eq!(res.status, 422, "{url}: {}", res.body);
        assert_eq!(res.json()["field"], "url", "{}", res.body);
    }

    // Names (and spellings of addresses) that lead to loopback pass the form, and are refused
    // when a delivery connects.
    let d = deliverer(&app, Duration::from_secs(3600), Duration::from_secs(5));
    for url in [
        format!("https://localhost:{port}/hook"),
        format!("https://2130706433:{port}/hook"),
    ] {
        let (id, _) = endpoint(&app, &token, &url, &["webhook.test"]).await;
        send_test(&app, &token, &id).await;
        drain(&d).await;
        let log = attempts(&app, &token, &id).await;
        assert_eq!(log.len(), 1, "{url}: {log:#?}");
        assert!(log[0]["status"].is_null(), "{log:#?}");
        assert!(
            log[0]["response"]
                .as_str()
                .unwrap()
                .contains("may not reach"),
            "{url}: {log:#?}"
        );
    }

    // A receiver that redirects to loopback: the redirect is a failure, never followed.
    let rx = Receiver::start("127.0.0.2", 0).await;
    let (id, secret) = endpoint(
        &app,
        &token,
        &format!("{}/redirect", rx.url),
        &["webhook.test"],
    )
    .await;
    let to = format!("http://127.0.0.1:{port}/");
    rx.configure(
        "/redirect",
        &[&secret],
        json!([{ "status": 307, "location": to }]),
    )
    .await;
    send_test(&app, &token, &id).await;
    drain(&d).await;
    let log = attempts(&app, &token, &id).await;
    assert_eq!(log[0]["status"], 307, "{log:#?}");
    assert_eq!(
        log[0]["delivery_state"], "pending",
        "to be retried: {log:#?}"
    );
    assert_eq!(rx.log("/redirect").await.len(), 1);

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        seen.load(Ordering::SeqCst),
        0,
        "no connection reached loopback"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_are_checked_and_limited() {
    let mut p = provider(&[], 3600);
    p.webhooks.max_endpoints = 1;
    let app = TestApp::spawn_custom(Engine::Sqlite, Settings::default(), p).await;
    let token = app.api_token("globex", "admin").await;
    let bad = app
        .api(
            Some(&token),
            "POST",
            "/api/v1/webhooks",
            Some(json!({ "url": "https://hooks.example.com/", "event_types": [] })),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(bad.json()["field"], "event_types");
    let unknown = app
        .api(
            Some(&token),
            "POST",
            "/api/v1/webhooks",
            Some(json!({ "url": "https://hooks.example.com/", "event_types": ["instance.exploded"] })),
        )
        .await;
    assert!(
        unknown.status == 400 || unknown.status == 422,
        "{}",
        unknown.body
    );
    endpoint(
        &app,
        &token,
        "https://hooks.example.com/a",
        &["instance.created"],
    )
    .await;
    let second = app
        .api(
            Some(&token),
            "POST",
            "/api/v1/webhooks",
            Some(json!({ "url": "https://hooks.example.com/b", "event_types": ["instance.created"] })),
        )
        .await;
    assert_eq!(second.status, 403, "{}", second.body);
    assert!(second.body.contains("at most 1"), "{}", second.body);
    // The list never shows a secret.
    let list = app.api(Some(&token), "GET", "/api/v1/webhooks", None).await;
    assert_eq!(list.status, 200);
    assert!(!list.body.contains("whsec_"), "{}", list.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admins_are_emailed_when_portico_disables_an_endpoint() {
    let mut sink = crate::members::sink().await;
    let settings = Settings {
        public_origin: Some("https://portal.acme.example".into()),
        smtp: Some(app::server::state::Smtp {
            url: format!("smtp://127.0.0.1:{}", sink.port),
            from: "Acme Cloud <portal@acme.example>".into(),
        }),
        ..Default::default()
    };
    let app = TestApp::spawn_custom(Engine::Sqlite, settings, provider(&["127.0.0.1"], 3600)).await;
    let Hooked { rx, token, id, .. } = hooked(&app, "/gone", json!([{ "status": 410 }])).await;
    send_test(&app, &token, &id).await;
    let d = deliverer(&app, Duration::from_millis(10), Duration::from_secs(5))
        .with_mailer(app.state.mailer.clone(), "Acme Cloud");
    drain(&d).await;
    assert_eq!(rx.log("/gone").await.len(), 1);
    let line = tokio::time::timeout(Duration::from_secs(10), sink.lines.next_line())
        .await
        .expect("an email arrives")
        .unwrap()
        .unwrap();
    let mail: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        mail["to"],
        json!(["admin@globex.test"]),
        "to the tenant's admin: {mail}"
    );
    let data = mail["data"]
        .as_str()
        .unwrap()
        .replace("=\r\n", "")
        .replace("\r\n", " ");
    assert!(data.contains("was disabled on Acme Cloud"), "{data}");
    assert!(
        data.contains(&format!("{}/gone", rx.url)),
        "names the endpoint: {data}"
    );
    assert!(data.contains("410"), "says why: {data}");
}

/// `portico serve --demo` in `dir` with the provider configuration `config`, on `port`.
fn serve(dir: &std::path::Path, config: &std::path::Path, port: u16) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_portico"))
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("PORTICO_CONFIG")
        .env(
            "PORTICO_LEPTOS_CONFIG",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../Leptos.toml"),
        )
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        // No page is asked for: no bundle, no hash list beside the binary.
        .env("LEPTOS_HASH_FILES", "false")
        .args(["serve", "--demo", "--data-dir", "data", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start portico serve")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portico_killed_mid_delivery_sends_it_again_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = unused_port();
    let config = dir.path().join("provider.toml");
    let toml = format!(
        "{}\n[webhooks]\nallow = [\"127.0.0.1\"]\n",
        config::DEMO_CONFIG
    );
    std::fs::write(&config, toml).unwrap();
    // The receiver holds its first answer long enough for Portico to die waiting for it.
    let rx = Receiver::start("127.0.0.1", 0).await;
    let mut first = serve(dir.path(), &config, port);
    let base = format!("http://127.0.0.1:{port}");
    let ready = async {
        loop {
            if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), ready)
        .await
        .expect("portico serve is ready");
    let store = app::server::store::Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("data/portico.db").display()
    ))
    .await
    .unwrap();
    let scope =
        app::server::store::TenantScope::for_tests(app::domain::TenantId::parse("globex").unwrap());
    let actor = app::server::store::Actor {
        user_id: app::domain::UserId::parse("restart-test").unwrap(),
        email: "admin@globex.test".into(),
        role: app::domain::Role::Admin,
        request_id: None,
    };
    let now = app::server::store::now_millis();
    let secret = app::server::control_plane::signature::Secret::generate();
    let new = app::server::store::NewEndpoint {
        id: app::server::store::new_id(),
        url: format!("{}/hook", rx.url),
        description: String::new(),
        event_types: vec![app::domain::webhooks::WebhookEvent::Test],
        secret: secret.clone(),
    };
    rx.configure(
        "/hook",
        &[&secret],
        json!([{ "status": 204, "delay_ms": 5000 }]),
    )
    .await;
    let e = store
        .create_webhook_endpoint(&scope, &actor, &new, now)
        .await
        .unwrap();
    let msg = store
        .send_test_webhook(&scope, &actor, &e.id, now)
        .await
        .unwrap()
        .unwrap();

    let arrived = async {
        while rx.log("/hook").await.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), arrived)
        .await
        .expect("the first attempt reaches the receiver");
    first.kill().expect("SIGKILL");
    first.wait().unwrap();

    let mut second = serve(dir.path(), &config, port);
    let again = async {
        while rx.log("/hook").await.len() < 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    // The dead process's lease (30 s) runs out first.
    let waited = tokio::time::timeout(Duration::from_secs(90), again).await;
    let _ = second.kill();
    let _ = second.wait();
    waited.expect("the delivery is sent again after the restart");
    let got = rx.log("/hook").await;
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got
        .iter()
        .all(|d| d["id"] == msg.as_str() && d["verified"] == json!([0])));
    let log = store.webhook_attempts(&scope, &e.id, 10).await.unwrap();
    assert_eq!(log.len(), 1, "the dead process recorded nothing: {log:#?}");
    assert_eq!(log[0].status, Some(204));
    assert_eq!(log[0].delivery_state, "delivered");
}
