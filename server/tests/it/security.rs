//! The protections every request passes through, each provoked over HTTP against the real
//! router: cross-site refusal, headers, cookie attributes, body limits, decoding errors, panics
//! and database failures that leak nothing, and the sign-in rate limit.

use crate::common;

use app::server::routes;
use app::server::state::Settings;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use common::{Engine, Reply, TestApp};
use std::net::SocketAddr;

const PW: &str = "portico-demo";

fn sign_in_request() -> axum::http::request::Builder {
    Request::post("/api/sign_in")
        .header("accept", "application/json")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("host", "portal.test")
}

fn form(email: &str, password: &str) -> Body {
    Body::from(format!(
        "email={}&password={password}",
        email.replace('@', "%40")
    ))
}

/// Nothing internal may reach the browser: no SQL, no source path, no Rust type.
fn assert_leaks_nothing(r: &Reply) {
    let lower = r.body.to_lowercase();
    for needle in [
        "select ", "insert ", "sqlx", "sqlite", "postgres", ".rs", "/src/", "panicked", "appstate",
        "std::", "::", "u32", "string\"",
    ] {
        assert!(
            !lower.contains(needle),
            "response leaks {needle:?}: {}",
            r.body
        );
    }
}

#[tokio::test]
async fn cross_site_state_changes_are_refused() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let cookie = app.sign_in("admin@globex.test", PW).await;

    let res = app
        .send(
            sign_in_request()
                .header("sec-fetch-site", "cross-site")
                .body(form("admin@globex.test", PW))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(
        res.session_cookie().is_none(),
        "no session from a cross-site sign-in"
    );

    let out = app
        .send(
            Request::post("/api/sign_out")
                .header("cookie", &cookie)
                .header("sec-fetch-site", "cross-site")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(out.status, 403);
    let me = app.call(Some(&cookie), "current_user", &[]).await;
    assert_eq!(
        me.status, 200,
        "a cross-site sign-out must not end the session"
    );

    let same = app
        .send(
            sign_in_request()
                .header("sec-fetch-site", "same-origin")
                .header("origin", "http://portal.test")
                .body(form("admin@globex.test", PW))
                .unwrap(),
        )
        .await;
    assert_eq!(same.status, 200, "{}", same.body);
}

#[tokio::test]
async fn without_sec_fetch_site_the_origin_must_be_the_portals_own() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    for (origin, expected) in [
        ("https://evil.example", 403),
        ("null", 403),
        ("http://portal.test.evil.example", 403),
        ("http://portal.test", 200),
    ] {
        let res = app
            .send(
                sign_in_request()
                    .header("origin", origin)
                    .body(form("admin@globex.test", PW))
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status, expected, "Origin {origin}: {}", res.body);
    }
    // A same-site page (a sibling subdomain) is judged by its Origin too.
    let res = app
        .send(
            sign_in_request()
                .header("sec-fetch-site", "same-site")
                .header("origin", "https://other.portal.test")
                .body(form("admin@globex.test", PW))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, 403);
}

#[tokio::test]
async fn a_configured_public_origin_is_the_only_own_origin() {
    let app = TestApp::spawn_with(
        Engine::Sqlite,
        Settings {
            public_origin: Some("https://portal.example.com".into()),
            ..Settings::default()
        },
    )
    .await;
    let send = |origin: &'static str| {
        app.send(
            sign_in_request()
                .header("origin", origin)
                .body(form("admin@globex.test", PW))
                .unwrap(),
        )
    };
    assert_eq!(send("https://portal.example.com").await.status, 200);
    assert_eq!(
        send("http://portal.test").await.status,
        403,
        "the Host header no longer decides once the origin is configured"
    );
}

#[tokio::test]
async fn server_functions_do_not_answer_get() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let res = app
        .send(
            Request::get("/api/request_operation?instance_id=x&idempotency_key=k")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, 405, "{}", res.body);
}

#[tokio::test]
async fn an_unknown_function_is_not_found_without_framework_details() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let res = app.call(None, "drop_all_tables", &[]).await;
    assert_eq!(res.status, 404, "{}", res.body);
    assert!(!res.body.contains("#[server]"), "{}", res.body);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let page = app.page(None, "/sign-in").await;
    assert_eq!(page.status, 200);
    let csp = page
        .header("content-security-policy")
        .expect("pages have a CSP");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("object-src 'none'"), "{csp}");
    // The nonce in the policy is the one the hydration scripts carry, and changes per response.
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("the policy has a nonce");
    assert!(
        page.body.contains(&format!("nonce=\"{nonce}\"")),
        "the scripts carry the policy's nonce"
    );
    let again = app.page(None, "/sign-in").await;
    assert!(!again
        .header("content-security-policy")
        .unwrap()
        .contains(nonce));

    let api = app.call(None, "current_user", &[]).await;
    let missing = app.page(None, "/no-such-page").await;
    for r in [&page, &api, &missing] {
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("referrer-policy"), Some("same-origin"));
        assert!(r.header("content-security-policy").is_some());
        let vary = r
            .headers
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        for h in ["Origin", "Sec-Fetch-Site", "Cookie"] {
            assert!(vary.contains(h), "Vary lacks {h}: {vary}");
        }
        assert!(
            r.header("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }

    let tls = TestApp::spawn_with(
        Engine::Sqlite,
        Settings {
            behind_tls: true,
            ..Settings::default()
        },
    )
    .await;
    let r = tls.page(None, "/sign-in").await;
    assert!(r
        .header("strict-transport-security")
        .is_some_and(|v| v.starts_with("max-age=")));
}

#[tokio::test]
async fn the_session_cookie_is_host_prefixed_and_hardened() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let res = app
        .call(
            None,
            "sign_in",
            &[("email", "admin@globex.test"), ("password", PW)],
        )
        .await;
    let set_cookie = res.header("set-cookie").expect("a cookie is set");
    assert!(
        set_cookie.starts_with("__Host-portico_session="),
        "{set_cookie}"
    );
    for attr in ["; Secure", "; HttpOnly", "; Path=/", "; SameSite=Lax"] {
        assert!(set_cookie.contains(attr), "lacks {attr}: {set_cookie}");
    }
    assert!(
        !set_cookie.to_lowercase().contains("domain="),
        "__Host- cookies have no Domain"
    );
}

#[tokio::test]
async fn when_sites_may_frame_the_portal_the_cookie_works_in_their_iframe() {
    let mut provider = app::server::config::demo();
    provider.security.frame_ancestors = vec!["https://www.acme.example".into()];
    let app = TestApp::spawn_custom(Engine::Sqlite, Settings::default(), provider).await;
    let res = app
        .call(
            None,
            "sign_in",
            &[("email", "admin@globex.test"), ("password", PW)],
        )
        .await;
    let set_cookie = res.header("set-cookie").expect("a cookie is set");
    assert!(
        set_cookie.starts_with("__Host-portico_session="),
        "{set_cookie}"
    );
    for attr in ["; Secure", "; HttpOnly", "; SameSite=None", "; Partitioned"] {
        assert!(set_cookie.contains(attr), "lacks {attr}: {set_cookie}");
    }
    let page = app.page(None, "/sign-in").await;
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.ends_with("frame-ancestors https://www.acme.example"),
        "{csp}"
    );
    // The cookie no longer stops cross-site posts; the server still does.
    let cookie = res.session_cookie().unwrap();
    let forged = app
        .send(
            Request::post("/api/sign_out")
                .header("cookie", &cookie)
                .header("sec-fetch-site", "cross-site")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = TestApp::spawn_with(
        Engine::Sqlite,
        Settings {
            max_body_bytes: 1024,
            ..Settings::default()
        },
    )
    .await;
    let big = "x".repeat(4096);
    let res = app
        .send(
            Request::post("/api/sign_in")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("content-length", big.len())
                .body(Body::from(format!("email=a%40b.test&password={big}")))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, 413, "{}", res.body);
}

#[tokio::test]
async fn malformed_payloads_get_400_with_a_clear_message() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    for body in [
        "{not json",
        "{}",
        r#"{"instance_id": 5, "request": {"operation": "stop"}, "idempotency_key": "k"}"#,
        r#"{"instance_id": "x", "request": {"operation": "scale", "resources": {"replicas": "many"}}, "idempotency_key": "k"}"#,
    ] {
        let res = app
            .send(
                Request::post("/api/request_operation")
                    .header("cookie", &cookie)
                    .header("content-type", "application/json")
                    .header("accept", "application/json")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(res.status, 400, "{body}: {}", res.body);
        assert!(res.body.contains("malformed"), "{}", res.body);
        let id = res.header("x-request-id").expect("a request id");
        assert!(
            res.body.contains(id),
            "the message quotes the request id: {}",
            res.body
        );
        assert_leaks_nothing(&res);
    }
}

#[tokio::test]
async fn a_panic_becomes_a_generic_error_with_a_request_id() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let router = routes::harden(
        axum::Router::new().route(
            "/boom",
            axum::routing::get(|| async {
                let detail: Vec<u32> = Vec::new();
                let first = detail.first().copied();
                first.expect("secret detail in /src/store.rs").to_string()
            }),
        ),
        app.state.clone(),
    );
    use tower::ServiceExt;
    let res = router
        .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 500);
    let id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id")
        .to_owned();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let reply = Reply {
        status: 500,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    assert!(reply.body.contains(&id), "{}", reply.body);
    assert!(!reply.body.contains("secret detail"));
    assert_leaks_nothing(&reply);
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn a_malformed_query_string_gets_400_without_details() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let cookie = app.sign_in("admin@globex.test", PW).await;
    let res = app
        .send(
            Request::get("/audit/export?format=csv&user=%FF%FE&user=twice")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, 400, "{}", res.body);
    let id = res.header("x-request-id").expect("a request id");
    assert!(res.body.contains(id), "{}", res.body);
    assert_leaks_nothing(&res);
}

async fn database_failures_leak_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("admin@globex.test", PW).await;
    app.db.store.close().await;
    for res in [
        app.call(
            Some(&cookie),
            "list_instances",
            &[("environment", ""), ("status", ""), ("q", "")],
        )
        .await,
        app.call(
            None,
            "sign_in",
            &[("email", "admin@globex.test"), ("password", PW)],
        )
        .await,
        app.page(Some(&cookie), "/instances").await,
        app.page(Some(&cookie), "/audit/export?format=json").await,
    ] {
        assert_eq!(res.status, 500, "{}", res.body);
        let id = res.header("x-request-id").expect("a request id");
        assert!(
            res.body.contains(id),
            "the body quotes the request id: {}",
            res.body
        );
        assert_leaks_nothing(&res);
    }
}

async fn control_characters_are_refused_at_the_boundary(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.sign_in("admin@globex.test", PW).await;
    let cases: Vec<(&str, Reply)> = vec![
        (
            "email",
            app.call(
                None,
                "sign_in",
                &[("email", "admin\0@globex.test"), ("password", "x")],
            )
            .await,
        ),
        (
            "user",
            app.call(
                Some(&admin),
                "audit_log",
                &[
                    ("instance_id", ""),
                    ("operation", ""),
                    ("user", "\u{1}"),
                    ("outcome", ""),
                ],
            )
            .await,
        ),
        (
            "idempotency_key",
            app.call_json(
                Some(&admin),
                "request_operation",
                serde_json::json!({
                    "instance_id": "x\u{0}",
                    "request": { "operation": "restart" },
                    "idempotency_key": "k\u{0}"
                }),
            )
            .await,
        ),
        (
            "changes",
            app.call_json(
                Some(&admin),
                "request_operation",
                serde_json::json!({
                    "instance_id": "x",
                    "request": { "operation": "update-config", "changes": { "a\u{0}": 1 } },
                    "idempotency_key": "k"
                }),
            )
            .await,
        ),
        ("q", app.page(Some(&admin), "/instances?q=%00").await),
        (
            "user",
            app.page(Some(&admin), "/audit/export?user=%7F").await,
        ),
    ];
    for (field, r) in cases {
        assert_eq!(r.status, 422, "{field}: {}", r.body);
        assert!(r.body.contains("control characters"), "{field}: {}", r.body);
    }
}

on_both_engines!(
    database_failures_leak_nothing,
    control_characters_are_refused_at_the_boundary
);

#[tokio::test]
async fn repeated_failed_sign_ins_are_limited_per_account_with_retry_after() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    for _ in 0..5 {
        let r = app
            .call(
                None,
                "sign_in",
                &[("email", "admin@globex.test"), ("password", "guess")],
            )
            .await;
        assert_eq!(r.status, 401);
    }
    // Locked now, even with the right password.
    let r = app
        .call(
            None,
            "sign_in",
            &[("email", "admin@globex.test"), ("password", PW)],
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=15 * 60).contains(&retry), "{retry}");
    assert!(r.session_cookie().is_none());
    assert_eq!(
        r.json()["RateLimited"]["retry_after_secs"].as_u64(),
        Some(retry)
    );
    // Other accounts are unaffected.
    let other = app
        .call(
            None,
            "sign_in",
            &[("email", "ops@globex.test"), ("password", PW)],
        )
        .await;
    assert_eq!(other.status, 200);
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_limited_across_accounts() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let from = sign_in_from;
    for i in 0..20 {
        let r = app
            .send(from(
                "198.51.100.7",
                &format!("nobody{i}@globex.test"),
                "guess",
            ))
            .await;
        assert_eq!(r.status, 401);
    }
    let r = app
        .send(from("198.51.100.7", "admin@globex.test", PW))
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    let r = app
        .send(from("198.51.100.8", "admin@globex.test", PW))
        .await;
    assert_eq!(r.status, 200, "another address is not limited");
}

#[tokio::test]
async fn the_server_names_each_request_itself() {
    let settings = Settings {
        trusted_proxies: vec!["10.0.0.9".parse().unwrap()],
        ..Settings::default()
    };
    let app = TestApp::spawn_with(Engine::Sqlite, settings).await;
    let from = |peer: &str, id: &str| {
        let mut req = Request::get("/healthz")
            .header("x-request-id", id)
            .body(Body::empty())
            .unwrap();
        let addr: SocketAddr = format!("{peer}:40000").parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        req
    };
    let forged = "x tenant=umbrella user=admin@umbrella.test";
    let r = app.send(from("203.0.113.7", forged)).await;
    let id = r.header("x-request-id").unwrap();
    assert_ne!(id, forged);
    assert_eq!(id.len(), 36, "a fresh uuid: {id}");
    // A trusted proxy's id is kept when it is well formed, and replaced when it is not.
    let r = app.send(from("10.0.0.9", "edge-4b1d.7")).await;
    assert_eq!(r.header("x-request-id"), Some("edge-4b1d.7"));
    let r = app.send(from("10.0.0.9", forged)).await;
    assert_ne!(r.header("x-request-id"), Some(forged));
    let r = app.send(from("203.0.113.7", "edge-4b1d.7")).await;
    assert_ne!(r.header("x-request-id"), Some("edge-4b1d.7"));
}

#[tokio::test]
async fn answers_with_tenant_data_are_never_cached() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let cookie = app.sign_in("admin@globex.test", PW).await;
    let filters = [("environment", ""), ("status", ""), ("q", "")];
    let answers = [
        ("page", app.page(Some(&cookie), "/instances").await),
        (
            "server function",
            app.call(Some(&cookie), "list_instances", &filters).await,
        ),
        (
            "export",
            app.page(Some(&cookie), "/audit/export?format=csv").await,
        ),
    ];
    for (what, r) in answers {
        assert_eq!(r.status, 200, "{what}: {}", r.body);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    }
}

fn sign_in_from(ip: &str, email: &str, pw: &str) -> Request<Body> {
    let mut req = sign_in_request().body(form(email, pw)).unwrap();
    let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_sent_in_parallel_cannot_outrun_the_limiter() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let attempts =
        (0..25).map(|_| app.send(sign_in_from("203.0.113.7", "admin@globex.test", "guess")));
    let statuses: Vec<u16> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, limited), (5, 20), "{statuses:?}");
    assert!(app.state.passwords.evaluations() <= 5);
}

#[tokio::test]
async fn a_stranger_guessing_does_not_lock_the_owner_out() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    for _ in 0..5 {
        let r = app
            .send(sign_in_from("203.0.113.7", "admin@globex.test", "guess"))
            .await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let r = app
        .send(sign_in_from("203.0.113.7", "admin@globex.test", PW))
        .await;
    assert_eq!(r.status, 429, "the guessing client is held back");
    // The owner, elsewhere; an IPv6 neighbour of the guesser in the same /64 is not.
    let owner = app
        .send(sign_in_from("198.51.100.2", "admin@globex.test", PW))
        .await;
    assert_eq!(owner.status, 200, "{}", owner.body);
    for _ in 0..5 {
        let r = app
            .send(sign_in_from(
                "[2001:db8:7:7::1]",
                "ops@globex.test",
                "guess",
            ))
            .await;
        assert_eq!(r.status, 401, "{}", r.body);
    }
    let neighbour = app
        .send(sign_in_from(
            "[2001:db8:7:7:ffff::2]",
            "ops@globex.test",
            PW,
        ))
        .await;
    assert_eq!(neighbour.status, 429, "one /64 is one client");
}

#[tokio::test]
async fn an_unknown_email_costs_the_same_password_work_as_a_known_one() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let mut work = Vec::new();
    for email in ["admin@globex.test", "nobody@globex.test"] {
        let before = app.state.passwords.evaluations();
        let r = app.send(sign_in_from("192.0.2.1", email, "guess")).await;
        assert_eq!(r.status, 401, "{}", r.body);
        work.push(app.state.passwords.evaluations() - before);
    }
    assert_eq!(
        work,
        [1, 1],
        "argon2 evaluations for a known and an unknown email"
    );
}

/// JSON made of the fields the server functions read, nested and typed at random, so the
/// decoders see near-misses rather than only noise.
fn payload() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let key = prop::sample::select(vec![
        "instance_id",
        "request",
        "operation",
        "resources",
        "replicas",
        "storage_gib",
        "changes",
        "idempotency_key",
        "confirm_name",
        "name",
        "environment",
        "region",
        "parameters",
        "log_level",
        "stop",
        "scale",
        "delete",
        "update-config",
    ]);
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "[a-z-]{0,12}".prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    let json = leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    });
    prop_oneof![
        3 => json.prop_map(|v| v.to_string()),
        1 => any::<String>(),
    ]
}

#[test]
fn no_payload_makes_a_server_function_fail_or_panic_on_sqlite() {
    no_payload_makes_a_server_function_fail_or_panic(Engine::Sqlite);
}

#[test]
fn no_payload_makes_a_server_function_fail_or_panic_on_postgres() {
    no_payload_makes_a_server_function_fail_or_panic(Engine::Postgres);
}

fn no_payload_makes_a_server_function_fail_or_panic(engine: Engine) {
    use proptest::prelude::*;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (app, cookie) = rt.block_on(async {
        let app = TestApp::spawn(engine).await;
        let cookie = app.sign_in("admin@umbrella.test", PW).await;
        (app, cookie)
    });
    let functions = vec!["request_operation", "create_instance"];
    proptest!(ProptestConfig::with_cases(300), |(body in payload(), f in prop::sample::select(functions))| {
        let res = rt.block_on(app.send(
            Request::post(format!("/api/{f}"))
                .header("cookie", &cookie)
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .body(Body::from(body.clone()))
                .unwrap(),
        ));
        prop_assert!(res.status < 500, "{f} {body}: {} {}", res.status, res.body);
    });
}
