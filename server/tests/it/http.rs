//! The real router over HTTP: sign-in, sessions, pages and tenant isolation.

use crate::common;

use app::domain::{InstanceId, TenantId};
use app::server::state::Settings;
use app::server::store::TenantScope;
use common::{Engine, TestApp};
use std::time::Duration;

const PW: &str = "portico-demo";

async fn first_instance_of(app: &TestApp, tenant: &str) -> (InstanceId, String) {
    let scope = TenantScope::for_tests(TenantId::parse(tenant).unwrap());
    let list = app.db.store.list_instances(&scope).await.unwrap();
    let i = list.into_iter().next().expect("demo tenant has instances");
    (i.id, i.name)
}

async fn sign_in_sets_a_hardened_session_cookie(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let res = app
        .call(
            None,
            "sign_in",
            &[("email", "Admin@Globex.test"), ("password", PW)],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let set_cookie = res.header("set-cookie").expect("a cookie is set");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(
            set_cookie.contains(attr),
            "cookie lacks {attr}: {set_cookie}"
        );
    }
    assert_eq!(res.header("location"), Some("/instances"));
}

async fn wrong_password_is_refused_without_a_session(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for (email, pw) in [
        ("admin@globex.test", "wrong-password"),
        ("nobody@globex.test", PW),
    ] {
        let res = app
            .call(None, "sign_in", &[("email", email), ("password", pw)])
            .await;
        assert_eq!(res.status, 401, "{email}: {}", res.body);
        assert!(res.session_cookie().is_none());
        // The same answer whether the account exists or not.
        assert_eq!(res.json(), serde_json::json!("BadCredentials"));
    }
}

async fn malformed_email_is_refused_with_the_field_named(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let res = app
        .call(
            None,
            "sign_in",
            &[("email", "not-an-email"), ("password", PW)],
        )
        .await;
    assert_eq!(res.status, 422);
    assert_eq!(res.json()["Invalid"]["field"], "email");
}

async fn anonymous_calls_are_unauthenticated(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let res = app
        .call(
            None,
            "list_instances",
            &[("environment", ""), ("status", ""), ("q", "")],
        )
        .await;
    assert_eq!(res.status, 401);
    let res = app
        .call(
            Some("__Host-portico_session=forged-token"),
            "current_user",
            &[],
        )
        .await;
    assert_eq!(res.status, 401);
}

async fn anonymous_page_visit_redirects_to_sign_in(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let res = app.page(None, "/instances").await;
    assert_eq!(res.status, 302, "{}", res.body);
    assert_eq!(res.header("location"), Some("/sign-in"));
}

async fn tenant_sees_only_its_own_instances(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("admin@globex.test", PW).await;
    let res = app
        .call(
            Some(&cookie),
            "list_instances",
            &[("environment", ""), ("status", ""), ("q", "")],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let names: Vec<String> = res.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("globex-")), "{names:?}");
    assert!(!res.body.contains("initech") && !res.body.contains("umbrella"));
}

async fn list_filters_by_environment_status_and_text(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let names = |res: common::Reply| -> Vec<String> {
        res.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let prod = app
        .call(
            Some(&cookie),
            "list_instances",
            &[("environment", "production"), ("status", ""), ("q", "")],
        )
        .await;
    assert_eq!(names(prod), ["globex-api", "globex-web"]);
    let stopped = app
        .call(
            Some(&cookie),
            "list_instances",
            &[("environment", ""), ("status", "stopped"), ("q", "")],
        )
        .await;
    assert_eq!(names(stopped), ["globex-staging"]);
    let search = app
        .call(
            Some(&cookie),
            "list_instances",
            &[("environment", ""), ("status", ""), ("q", "REP")],
        )
        .await;
    assert_eq!(names(search), ["globex-reports"]);
}

async fn own_instance_detail_is_served(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("viewer@globex.test", PW).await;
    let (id, name) = first_instance_of(&app, "globex").await;
    let res = app
        .call(Some(&cookie), "get_instance", &[("id", id.as_str())])
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let d = res.json();
    assert_eq!(d["name"], name.as_str());
    assert_eq!(d["plan_name"], "Pro");
    // Secrets never leave the server.
    assert!(!res.body.contains("demo-secret"), "{}", res.body);

    // What a card of the list reloads after an operation: the same instance, as the list has it.
    let card = app
        .call(Some(&cookie), "instance_summary", &[("id", id.as_str())])
        .await;
    assert_eq!(card.status, 200, "{}", card.body);
    let c = card.json();
    assert_eq!((&c["id"], &c["name"]), (&d["id"], &d["name"]));
    assert_eq!(c["status"], d["status"]);
    assert_eq!(c["actions"], d["actions"]);
    assert_eq!(c["replicas"], d["resources"]["replicas"]);

    let page = app.page(Some(&cookie), &format!("/instances/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&name));
    assert!(page.body.contains("Pro"));
    assert!(!page.body.contains("demo-secret"));
}

async fn other_tenants_instance_is_not_found(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("admin@globex.test", PW).await;
    let (foreign_id, foreign_name) = first_instance_of(&app, "initech").await;

    let res = app
        .call(
            Some(&cookie),
            "get_instance",
            &[("id", foreign_id.as_str())],
        )
        .await;
    assert_eq!(res.status, 404);
    assert!(!res.body.contains(&foreign_name), "{}", res.body);
    let card = app
        .call(
            Some(&cookie),
            "instance_summary",
            &[("id", foreign_id.as_str())],
        )
        .await;
    assert_eq!(card.status, 404);
    assert!(!card.body.contains(&foreign_name), "{}", card.body);
    let missing = app
        .call(
            Some(&cookie),
            "get_instance",
            &[("id", "00000000-0000-0000-0000-000000000000")],
        )
        .await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (res.status, res.body.as_str()),
        "same answer as a missing one"
    );

    let page = app
        .page(Some(&cookie), &format!("/instances/{foreign_id}"))
        .await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("Not found"));
    assert!(
        !page.body.contains(&foreign_name),
        "the page leaks the foreign instance"
    );
    assert!(!page.body.to_lowercase().contains("initech"));
}

async fn unknown_path_is_a_404_page(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let res = app.page(None, "/no/such/page").await;
    assert_eq!(res.status, 404);
    assert!(res.body.contains("Not found"));
}

async fn sign_out_ends_the_session_on_the_server(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("admin@umbrella.test", PW).await;
    assert_eq!(
        app.call(Some(&cookie), "current_user", &[]).await.status,
        200
    );
    let out = app.call(Some(&cookie), "sign_out", &[]).await;
    assert_eq!(out.status, 200);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    // Replaying the old cookie does not bring the session back.
    assert_eq!(
        app.call(Some(&cookie), "current_user", &[]).await.status,
        401
    );
}

async fn each_sign_in_gets_a_new_session(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let a = app.sign_in("admin@initech.test", PW).await;
    let b = app.sign_in("admin@initech.test", PW).await;
    assert_ne!(a, b);
}

async fn idle_session_expires(engine: Engine) {
    let settings = Settings {
        session_idle: Duration::from_millis(300),
        ..Settings::default()
    };
    let app = TestApp::spawn_with(engine, settings).await;
    let cookie = app.sign_in("admin@globex.test", PW).await;
    assert_eq!(
        app.call(Some(&cookie), "current_user", &[]).await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        app.call(Some(&cookie), "current_user", &[]).await.status,
        401
    );
}

async fn session_expires_at_its_absolute_limit(engine: Engine) {
    let settings = Settings {
        session_absolute: Duration::from_millis(300),
        ..Settings::default()
    };
    let app = TestApp::spawn_with(engine, settings).await;
    let cookie = app.sign_in("admin@globex.test", PW).await;
    assert_eq!(
        app.call(Some(&cookie), "current_user", &[]).await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        app.call(Some(&cookie), "current_user", &[]).await.status,
        401
    );
}

async fn me_names_the_user_and_tenant(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let cookie = app.sign_in("ops@globex.test", PW).await;
    let me = app.call(Some(&cookie), "current_user", &[]).await.json();
    assert_eq!(me["email"], "ops@globex.test");
    assert_eq!(me["tenant_name"], "Globex");
    assert_eq!(me["role"], "operator");
}

async fn health_probes_answer(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    assert_eq!(app.page(None, "/healthz").await.status, 200);
    assert_eq!(app.page(None, "/readyz").await.status, 200);
}

async fn sign_in_page_has_labelled_fields(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let res = app.page(None, "/sign-in").await;
    assert_eq!(res.status, 200);
    for text in [">Email<", ">Password<", ">Sign in<"] {
        assert!(res.body.contains(text), "missing {text}");
    }
    assert!(res.header("x-request-id").is_some());
}

async fn detail_says_which_actions_the_policy_allows_and_why_not(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let scope = TenantScope::for_tests(TenantId::parse("globex").unwrap());
    let web = app
        .db
        .store
        .list_instances(&scope)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == "globex-web")
        .unwrap();
    let actions = |body: serde_json::Value| -> Vec<(String, Option<String>)> {
        body["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["operation"].as_str().unwrap().to_owned(),
                    a["reason"].as_str().map(str::to_owned),
                )
            })
            .collect()
    };
    let ops = app.sign_in("ops@globex.test", PW).await;
    let got = actions(
        app.call(Some(&ops), "get_instance", &[("id", web.id.as_str())])
            .await
            .json(),
    );
    let allowed: Vec<&str> = got
        .iter()
        .filter(|a| a.1.is_none())
        .map(|a| a.0.as_str())
        .collect();
    assert_eq!(allowed, ["stop", "restart", "scale", "update-config"]);
    let reason = |op: &str| got.iter().find(|a| a.0 == op).unwrap().1.clone().unwrap();
    assert_eq!(
        reason("start"),
        "Cannot start while the instance is running."
    );
    assert_eq!(reason("delete"), "The Pro plan does not include delete.");

    let viewer = app.sign_in("viewer@globex.test", PW).await;
    let got = actions(
        app.call(Some(&viewer), "get_instance", &[("id", web.id.as_str())])
            .await
            .json(),
    );
    assert_eq!(got.len(), 6);
    assert!(
        got.iter().all(|a| a.1.is_some()),
        "a viewer may do nothing: {got:?}"
    );
    assert!(got
        .iter()
        .any(|a| a.1.as_deref() == Some("Your role (viewer) may not stop.")));
    let page = app
        .page(Some(&viewer), &format!("/instances/{}", web.id))
        .await;
    assert!(page.body.contains("Your role (viewer) may not restart."));
}

async fn expired_sessions_are_swept_from_the_database(engine: Engine) {
    let settings = Settings {
        session_absolute: Duration::from_millis(200),
        ..Settings::default()
    };
    let app = TestApp::spawn_with(engine, settings).await;
    app.sign_in("admin@globex.test", PW).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(app::server::auth::sweep_sessions(
        app.state.clone(),
        Duration::from_millis(50),
        shutdown,
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(true).unwrap();
    sweeper.await.unwrap();
    let now = app::server::store::now_millis();
    let left = app
        .db
        .store
        .delete_stale_sessions(now, now - 60_000)
        .await
        .unwrap();
    assert_eq!(left, 0, "the sweeper left an expired session behind");
}

/// The provider's brand colour and logo reach every signed-in page; text on the colour stays
/// readable, and a logo hosted elsewhere is let through the page's image policy.
async fn the_providers_brand_colour_and_logo_apply(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let css = app.page(None, "/brand.css").await;
    assert_eq!(css.status, 200);
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(
        css.body.contains("--brand: #3b5bdb; --brand-ink: #ffffff;"),
        "{}",
        css.body
    );

    let yellow = app::server::config::DEMO_CONFIG
        .replace("primary_color = \"#3b5bdb\"", "primary_color = \"#ffd43b\"")
        .replace(
            "logo_url = \"/logo.svg\"",
            "logo_url = \"https://cdn.acme.example/brand/logo.svg\"",
        );
    let provider = app::server::config::parse("yellow.toml", &yellow).unwrap();
    let app = TestApp::spawn_custom(engine, Settings::default(), provider).await;
    let css = app.page(None, "/brand.css").await;
    assert!(
        css.body.contains("--brand: #ffd43b; --brand-ink: #000000;"),
        "{}",
        css.body
    );
    let cookie = app.sign_in("admin@globex.test", PW).await;
    let page = app.page(Some(&cookie), "/instances").await;
    // Linked at an address that names the brand, where it may be cached for good.
    let href = page
        .body
        .split("href=\"")
        .find_map(|rest| {
            rest.split('"')
                .next()
                .filter(|h| h.starts_with("/brand.css?v="))
        })
        .unwrap_or_else(|| panic!("no versioned brand stylesheet in {}", page.body))
        .to_owned();
    let versioned = app.page(None, &href).await;
    assert!(versioned.body.contains("--brand: #ffd43b;"));
    assert_eq!(
        versioned.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(css.header("cache-control"), Some("public, max-age=300"));
    let first = TestApp::spawn(engine).await;
    let first_page = first
        .page(
            Some(&first.sign_in("admin@globex.test", PW).await),
            "/instances",
        )
        .await;
    assert!(
        !first_page.body.contains(&href),
        "another brand must get another address"
    );
    assert!(page
        .body
        .contains("src=\"https://cdn.acme.example/brand/logo.svg\""));
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("img-src 'self' data: https://cdn.acme.example;"),
        "{csp}"
    );
}

on_both_engines!(
    expired_sessions_are_swept_from_the_database,
    detail_says_which_actions_the_policy_allows_and_why_not,
    sign_in_sets_a_hardened_session_cookie,
    wrong_password_is_refused_without_a_session,
    malformed_email_is_refused_with_the_field_named,
    anonymous_calls_are_unauthenticated,
    anonymous_page_visit_redirects_to_sign_in,
    tenant_sees_only_its_own_instances,
    list_filters_by_environment_status_and_text,
    own_instance_detail_is_served,
    other_tenants_instance_is_not_found,
    unknown_path_is_a_404_page,
    sign_out_ends_the_session_on_the_server,
    each_sign_in_gets_a_new_session,
    idle_session_expires,
    session_expires_at_its_absolute_limit,
    me_names_the_user_and_tenant,
    health_probes_answer,
    sign_in_page_has_labelled_fields,
    the_providers_brand_colour_and_logo_apply,
);
