//! Live updates over a real connection: `GET /events` sends a member their own tenant's
//! events, those their role may see, each once and in order, replays what a reconnecting
//! client missed, and ends with the session.

use crate::common;

use app::domain::{EventKind, TenantId};
use app::server::control_plane::{Simulated, SimulatedSettings};
use app::server::store::{now_millis, TenantScope};
use app::server::worker::{Worker, WorkerSettings};
use common::{Engine, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const PW: &str = "portico-demo";

fn scope(t: &str) -> TenantScope {
    TenantScope::for_tests(TenantId::parse(t).unwrap())
}

/// One event as a client reads it off the wire.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    id: Option<i64>,
    kind: String,
    data: Value,
}

/// An open stream, read by a task of its own.
struct Stream {
    events: tokio::sync::mpsc::UnboundedReceiver<Seen>,
}

impl Stream {
    /// Opens the stream as the holder of `cookie`, from `last` when given.
    async fn open(base: &str, cookie: &str, last: Option<i64>) -> Stream {
        let mut req = reqwest::Client::new()
            .get(format!("{base}/events"))
            .header("cookie", cookie)
            .header("accept", "text/event-stream");
        if let Some(last) = last {
            req = req.header("last-event-id", last.to_string());
        }
        let mut res = req.send().await.expect("the stream opens");
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = String::new();
            while let Ok(Some(chunk)) = res.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let frame: String = buf.drain(..end + 2).collect();
                    if let Some(seen) = parse(&frame) {
                        if tx.send(seen).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Stream { events }
    }

    /// The next event within `within`; `None` when the stream ended or nothing came.
    async fn next(&mut self, within: Duration) -> Option<Seen> {
        tokio::time::timeout(within, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Every event until `done` holds for one, or `within` passes.
    async fn until(&mut self, within: Duration, done: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        let deadline = tokio::time::Instant::now() + within;
        let mut out = Vec::new();
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            let stop = done(&e);
            out.push(e);
            if stop {
                break;
            }
        }
        out
    }

    /// Whether the server ended the stream within `within`.
    async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(None) => return true,
                Ok(Some(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// One frame of the stream; comments (keep-alives) are none.
fn parse(frame: &str) -> Option<Seen> {
    let (mut id, mut kind, mut data) = (None, None, String::new());
    for line in frame.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            id = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("event:") {
            kind = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.trim());
        }
    }
    Some(Seen {
        id,
        kind: kind?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
    })
}

fn worker(app: &TestApp) -> Worker {
    let driver = Simulated::new(SimulatedSettings {
        step: Duration::ZERO,
        failure_rate: 0.0,
        hang: false,
    });
    Worker::new(
        app.db.store.clone(),
        app.state.provider.clone(),
        driver,
        WorkerSettings::default(),
    )
}

async fn drain(app: &TestApp) {
    let w = worker(app);
    while w.run_once().await.unwrap() {}
}

async fn instance_id(app: &TestApp, tenant: &str, name: &str) -> String {
    common::instance_named(app, tenant, name)
        .await
        .id
        .to_string()
}

async fn request(app: &TestApp, cookie: &str, instance: &str, op: &str, key: &str) -> Value {
    let res = app
        .call_json(
            Some(cookie),
            "request_operation",
            json!({"instance_id": instance, "request": {"operation": op}, "idempotency_key": key}),
        )
        .await;
    assert_eq!(res.status, 200, "{op} on {instance}: {}", res.body);
    res.json()
}

const SOON: Duration = Duration::from_secs(5);

#[tokio::test]
async fn the_stream_is_for_signed_in_members_only() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let base = app.serve().await;
    let res = reqwest::get(format!("{base}/events")).await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    // A cookie that names no session is no better.
    let res = reqwest::Client::new()
        .get(format!("{base}/events"))
        .header("cookie", "__Host-portico_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// An operation's request, progress and end reach every member of its tenant, as events naming
/// the instance and the operation; audit lines reach only those who may read the log; another
/// tenant's member hears nothing of it.
async fn an_operation_reaches_its_tenant_and_no_one_else(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let base = app.serve().await;
    let ops = app.sign_in("ops@globex.test", PW).await;
    let viewer = app.sign_in("viewer@globex.test", PW).await;
    let outsider = app.sign_in("admin@umbrella.test", PW).await;
    let mut s_ops = Stream::open(&base, &ops, None).await;
    let mut s_viewer = Stream::open(&base, &viewer, None).await;
    let mut s_out = Stream::open(&base, &outsider, None).await;
    for s in [&mut s_ops, &mut s_viewer, &mut s_out] {
        let hello = s.next(SOON).await.expect("hello");
        assert_eq!(hello.kind, "hello");
    }

    let web = instance_id(&app, "globex", "globex-web").await;
    let op = request(&app, &ops, &web, "restart", "k1").await;
    let op_id = op["operation_id"].as_str().unwrap().to_owned();
    drain(&app).await;

    let names_op = |e: &Seen| e.data["operation_id"] == op_id.as_str();
    let finished = |e: &Seen| e.kind == "instance.changed" && e.data["instance_id"] == web.as_str();
    let got_ops = s_ops.until(SOON, finished).await;
    let got_viewer = s_viewer.until(SOON, finished).await;
    for (who, got) in [("operator", &got_ops), ("viewer", &got_viewer)] {
        assert!(
            got.iter()
                .any(|e| e.kind == "operation.changed" && names_op(e)),
            "{who}: {got:?}"
        );
        assert!(got.iter().any(finished), "{who}: {got:?}");
        // Ids only: nothing an instance page shows travels in an event.
        for e in got.iter() {
            let keys: Vec<&String> = e.data.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["instance_id", "operation_id"], "{e:?}");
        }
        let ids: Vec<i64> = got
            .iter()
            .map(|e| e.id.expect("every event has an id"))
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{who}: in order: {ids:?}"
        );
    }
    assert!(
        got_ops.iter().any(|e| e.kind == "audit.appended"),
        "operators read the audit log: {got_ops:?}"
    );
    assert!(
        !got_viewer.iter().any(|e| e.kind == "audit.appended"),
        "viewers may not read it here: {got_viewer:?}"
    );
    // The viewer missed nothing else the operator got.
    let public: Vec<&Seen> = got_ops
        .iter()
        .filter(|e| e.kind != "audit.appended")
        .collect();
    assert_eq!(public, got_viewer.iter().collect::<Vec<_>>());

    let heard = s_out.next(Duration::from_millis(500)).await;
    assert_eq!(heard, None, "another tenant's member heard {heard:?}");
}

/// A client that reconnects with the last id it saw gets exactly what it missed, in order; one
/// away longer than the log keeps gets a snapshot.
async fn a_reconnecting_client_gets_what_it_missed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let base = app.serve().await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let mut first = Stream::open(&base, &admin, None).await;
    let hello = first.next(SOON).await.expect("hello");
    let seen = hello.id.expect("hello says where the log stands");
    drop(first);

    // While away: two operations, each requested, run and ended.
    let web = instance_id(&app, "globex", "globex-web").await;
    let api = instance_id(&app, "globex", "globex-api").await;
    request(&app, &admin, &web, "restart", "a").await;
    request(&app, &admin, &api, "restart", "b").await;
    drain(&app).await;
    let log = app
        .db
        .store
        .events_after(&scope("globex"), seen, 1000)
        .await
        .unwrap();
    assert!(log.len() >= 6, "{log:?}");

    let mut back = Stream::open(&base, &admin, Some(seen)).await;
    let last = log.last().unwrap().seq;
    let replayed = back.until(SOON, |e| e.id == Some(last)).await;
    let ids: Vec<i64> = replayed.iter().filter_map(|e| e.id).collect();
    let expected: Vec<i64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(
        ids, expected,
        "every missed event once, in order: {replayed:?}"
    );
    assert!(replayed.iter().any(|e| e.kind == "hello"));
    // Then it is live again.
    request(&app, &admin, &web, "restart", "c").await;
    let next = back
        .next(SOON)
        .await
        .expect("a live event after the replay");
    assert_eq!(next.id, Some(last + 1), "{next:?}");

    // Longer away than the log keeps.
    let pruned = app.db.store.prune_events(now_millis() + 1).await.unwrap();
    assert!(pruned > 0);
    let mut late = Stream::open(&base, &admin, Some(seen)).await;
    let snap = late.next(SOON).await.expect("a snapshot");
    assert_eq!(snap.kind, "snapshot", "{snap:?}");
    let head = app.db.store.event_head(&scope("globex")).await.unwrap();
    assert_eq!(snap.id, Some(head.last));
}

/// Signing out, or losing the role the stream was opened with, ends the stream.
async fn the_stream_ends_with_the_session_or_the_role(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let base = app.serve().await;
    let viewer = app.sign_in("viewer@globex.test", PW).await;
    let mut s = Stream::open(&base, &viewer, None).await;
    assert_eq!(s.next(SOON).await.unwrap().kind, "hello");
    let res = app.call(Some(&viewer), "sign_out", &[]).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(s.ends_within(SOON).await, "signing out ends the stream");

    let viewer = app.sign_in("viewer@globex.test", PW).await;
    let mut s = Stream::open(&base, &viewer, None).await;
    assert_eq!(s.next(SOON).await.unwrap().kind, "hello");
    let admin = app.sign_in("admin@globex.test", PW).await;
    let members = app.call(Some(&admin), "list_members", &[]).await.json();
    let user = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "viewer@globex.test")
        .expect("the viewer is a member")["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .call(
            Some(&admin),
            "change_member_role",
            &[("user_id", &user), ("role", "operator")],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(s.ends_within(SOON).await, "a new role ends the stream");
    // The same session, with its new role, opens a new one.
    let mut again = Stream::open(&base, &viewer, None).await;
    assert_eq!(again.next(SOON).await.unwrap().kind, "hello");
}

/// Three tenants, operations requested at random among them (some refused, all audited): each
/// member's stream carries exactly its own tenant's log, the kinds its role may see, once each
/// and in order, and nothing of the others'.
async fn each_member_gets_exactly_their_tenants_events(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let base = app.serve().await;
    three_tenants_at_random(&app, &[base]).await;
}

/// The same with two replicas on one PostgreSQL database: each member watches on both, and
/// operations are requested on either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_each_member_gets_exactly_their_tenants_events() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let bases = [app.serve().await, app.replica().await];
    three_tenants_at_random(&app, &bases).await;
}

async fn three_tenants_at_random(app: &TestApp, bases: &[String]) {
    let tenants = [
        (
            "globex",
            "admin@globex.test",
            ["globex-web", "globex-api", "globex-dev"],
        ),
        (
            "initech",
            "admin@initech.test",
            ["initech-sandbox", "initech-trial", "initech-trial"],
        ),
        (
            "umbrella",
            "admin@umbrella.test",
            ["umbrella-core", "umbrella-lab", "umbrella-research"],
        ),
    ];
    // A stream per tenant and replica.
    let mut members = Vec::new();
    for (tenant, email, names) in tenants {
        let cookie = app.sign_in(email, PW).await;
        let mut ids = Vec::new();
        for n in names {
            ids.push(instance_id(app, tenant, n).await);
        }
        for base in bases {
            let mut stream = Stream::open(base, &cookie, None).await;
            let hello = stream.next(SOON).await.expect("hello");
            members.push((
                tenant,
                cookie.clone(),
                stream,
                hello.id.unwrap(),
                ids.clone(),
            ));
        }
    }
    // A fixed seed: the same sequence every run, and a failure names it.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        usize::try_from(x % n as u64).unwrap()
    };
    let ops = ["restart", "stop", "start", "restart"];
    for i in 0..24 {
        let (_, cookie, _, _, ids) = &members[next(members.len())];
        let instance = &ids[next(ids.len())];
        let op = ops[next(ops.len())];
        let base = &bases[next(bases.len())];
        // Refusals are fine (they are audited too); only the transport must work.
        let res = reqwest::Client::new()
            .post(format!("{base}/api/request_operation"))
            .header("cookie", cookie.as_str())
            .header("accept", "application/json")
            .json(&json!({"instance_id": instance, "request": {"operation": op}, "idempotency_key": format!("f{i}")}))
            .send()
            .await
            .expect("the replica answers");
        let status = res.status();
        assert!(
            status.as_u16() < 500,
            "{status}: {}",
            res.text().await.unwrap_or_default()
        );
        if i % 5 == 4 {
            drain(app).await;
        }
    }
    drain(app).await;

    for (tenant, _, stream, from, ids) in &mut members {
        let log = app
            .db
            .store
            .events_after(&scope(tenant), *from, 10_000)
            .await
            .unwrap();
        // Admins may read the audit log: every kind a client is sent.
        let expected: Vec<(i64, String)> = log
            .iter()
            .filter(|e| e.kind.visible_to(true))
            .map(|e| (e.seq, e.kind.as_str().to_owned()))
            .collect();
        let Some(&(last, _)) = expected.last() else {
            continue;
        };
        let got = stream
            .until(Duration::from_secs(10), |e| e.id == Some(last))
            .await;
        let got_ids: Vec<(i64, String)> = got
            .iter()
            .map(|e| (e.id.expect("an id"), e.kind.clone()))
            .collect();
        assert_eq!(
            got_ids, expected,
            "{tenant}: exactly its log, once, in order"
        );
        for e in &got {
            if let Some(i) = e.data["instance_id"].as_str() {
                assert!(ids.iter().any(|own| own == i), "{tenant} heard of {i}");
            }
        }
        assert_eq!(
            stream.next(Duration::from_millis(300)).await,
            None,
            "{tenant}: nothing more"
        );
    }
    // Membership and session changes are the server's own business.
    assert!(!EventKind::MemberChanged.visible_to(true));
}

/// PostgreSQL: the process's LISTEN connection is killed in the middle of a burst of events;
/// the stream still carries every event once, in order (the listener reconnects, then reads
/// the log from where it was).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_loses_nothing() {
    let app = TestApp::spawn(Engine::Postgres).await;
    let base = app.serve().await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let mut s = Stream::open(&base, &admin, None).await;
    let from = s.next(SOON).await.expect("hello").id.unwrap();
    let superuser = sqlx::PgPool::connect(&app.db.pg.as_ref().unwrap().superuser)
        .await
        .unwrap();
    let web = instance_id(&app, "globex", "globex-web").await;
    let mut killed = 0;
    for i in 0..30 {
        // Each is refused but the first (an operation is in flight), and audited: an event.
        let res = app
            .call_json(
                Some(&admin),
                "request_operation",
                json!({"instance_id": web, "request": {"operation": "restart"}, "idempotency_key": format!("b{i}")}),
            )
            .await;
        assert!(res.status < 500, "{}", res.body);
        if i == 10 || i == 20 {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid() \
                   AND query ILIKE 'LISTEN%'",
            )
            .fetch_one(&superuser)
            .await
            .unwrap();
            killed += n;
        }
    }
    assert!(
        killed >= 1,
        "the listener's connection was found and killed"
    );
    let log = app
        .db
        .store
        .events_after(&scope("globex"), from, 10_000)
        .await
        .unwrap();
    let last = log.last().unwrap().seq;
    let got = s
        .until(Duration::from_secs(15), |e| e.id == Some(last))
        .await;
    let got: Vec<i64> = got.iter().filter_map(|e| e.id).collect();
    let expected: Vec<i64> = log
        .iter()
        .filter(|e| e.kind.visible_to(true))
        .map(|e| e.seq)
        .collect();
    assert_eq!(got, expected, "every event once, in order");
}

on_both_engines!(
    an_operation_reaches_its_tenant_and_no_one_else,
    a_reconnecting_client_gets_what_it_missed,
    the_stream_ends_with_the_session_or_the_role,
    each_member_gets_exactly_their_tenants_events,
);
