//! Drives every cell of `authz_matrix.toml` over HTTP against the real router, and fails when a
//! server function, page or route has no row there.

use crate::common;

use app::domain::{Email, Role, TenantId};
use app::server::store::TenantScope;
use app::server::{auth, routes};
use axum::body::Body;
use axum::http::Request;
use common::{Engine, Reply, TestApp};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const ACTORS: [&str; 5] = ["anonymous", "viewer", "operator", "admin", "other"];
/// The actors of an `/api/v1` or `/provider/v1` row: no credentials, an admin's session
/// cookie, API tokens of each role, an expired and a revoked admin token, another tenant's
/// admin token, and a provider key.
const API_ACTORS: [&str; 9] = [
    "anonymous",
    "session",
    "viewer",
    "operator",
    "admin",
    "expired",
    "revoked",
    "other",
    "provider",
];

fn is_api(row: &Value) -> bool {
    row["call"].as_str().is_some_and(|c| {
        c.split_once(' ')
            .is_some_and(|(_, p)| p.starts_with("/api/v1/") || p.starts_with("/provider/v1/"))
    })
}

fn actors_of(row: &Value) -> &'static [&'static str] {
    if is_api(row) {
        &API_ACTORS
    } else {
        &ACTORS
    }
}
const TENANTS: [&str; 3] = ["globex", "initech", "umbrella"];
const PW: &str = "portico-demo";

fn matrix() -> Vec<Value> {
    let src = include_str!("authz_matrix.toml");
    let doc: toml::Value = toml::from_str(src).expect("authz_matrix.toml parses");
    let doc = serde_json::to_value(doc).unwrap();
    doc["row"].as_array().expect("rows").clone()
}

fn other_tenant(t: &str) -> &'static str {
    match t {
        "globex" => "umbrella",
        "initech" => "globex",
        _ => "initech",
    }
}

/// The email an actor signs in with, for a row about `tenant`.
fn email_of(actor: &str, tenant: &str) -> Option<String> {
    match actor {
        "anonymous" => None,
        "viewer" => Some(format!("viewer@{tenant}.test")),
        "operator" => Some(format!("ops@{tenant}.test")),
        "admin" => Some(format!("admin@{tenant}.test")),
        "other" => Some(format!("admin@{}.test", other_tenant(tenant))),
        a => panic!("unknown actor {a}"),
    }
}

/// The tenant whose data an actor may see (none for anonymous).
fn home_of(actor: &str, tenant: &str) -> Option<&'static str> {
    match actor {
        "anonymous" | "session" | "expired" | "revoked" => None,
        "provider" => TENANTS.into_iter().find(|t| *t == tenant),
        "other" => Some(other_tenant(tenant)),
        _ => TENANTS.into_iter().find(|t| *t == tenant),
    }
}

/// Every tenant gets a viewer and an operator, as globex has in the demo data.
async fn add_missing_members(app: &TestApp) {
    let hash = app::server::password::Passwords::default()
        .hash(PW.into())
        .await
        .unwrap();
    let now = app::server::store::now_millis();
    for tenant in ["initech", "umbrella"] {
        for (prefix, role) in [("viewer", Role::Viewer), ("ops", Role::Operator)] {
            let email = Email::parse(&format!("{prefix}@{tenant}.test")).unwrap();
            let user = app
                .db
                .store
                .create_user(&email, prefix, Some(&hash), now)
                .await
                .unwrap();
            let scope = TenantScope::for_tests(TenantId::parse(tenant).unwrap());
            app.db
                .store
                .set_membership(&scope, &user, role, now)
                .await
                .unwrap();
        }
    }
}

/// Instance names per tenant, to look for in responses that must not show them.
async fn instance_names(app: &TestApp) -> BTreeMap<&'static str, Vec<String>> {
    let mut out = BTreeMap::new();
    for t in TENANTS {
        let scope = TenantScope::for_tests(TenantId::parse(t).unwrap());
        let names = app
            .db
            .store
            .list_instances(&scope)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        out.insert(t, names);
    }
    out
}

struct Fixture {
    app: TestApp,
    id: String,
    name: String,
    op: String,
    /// The row tenant's viewer.
    user: String,
    /// A pending invitation to the row's tenant: its link token and its id.
    invite: String,
    invitation: String,
    /// An API token of the row's tenant: its id.
    token: String,
    /// A webhook endpoint of the row's tenant, and a message it was sent: their ids.
    webhook: String,
    message: String,
    tenant: String,
}

async fn fixture(row: &Value) -> Fixture {
    let app = TestApp::spawn(Engine::Sqlite).await;
    add_missing_members(&app).await;
    let tenant = row["tenant"].as_str().unwrap();
    let (mut id, mut name, mut op) = (String::new(), String::new(), String::new());
    if let Some(target) = row["target"].as_str() {
        let scope = TenantScope::for_tests(TenantId::parse(tenant).unwrap());
        let inst = app
            .db
            .store
            .list_instances(&scope)
            .await
            .unwrap()
            .into_iter()
            .find(|i| i.name == target)
            .unwrap_or_else(|| panic!("no instance {target} in {tenant}"));
        id = inst.id.to_string();
        name = inst.name;
        if row.to_string().contains("{op}") {
            let admin = app.sign_in(&format!("admin@{tenant}.test"), PW).await;
            let res = app
                .call_json(
                    Some(&admin),
                    "request_operation",
                    json!({"instance_id": id, "request": {"operation": "restart"}, "idempotency_key": "fixture"}),
                )
                .await;
            assert_eq!(res.status, 200, "fixture operation: {}", res.body);
            op = res.json()["operation_id"].as_str().unwrap().to_owned();
        }
    }
    let viewer = Email::parse(&format!("viewer@{tenant}.test")).unwrap();
    let user = app
        .db
        .store
        .user_credentials(&viewer)
        .await
        .unwrap()
        .unwrap()
        .user_id
        .to_string();
    let (mut invite, mut invitation) = (String::new(), String::new());
    if row.to_string().contains("{invit") {
        let admin = app.sign_in(&format!("admin@{tenant}.test"), PW).await;
        let res = app
            .call(
                Some(&admin),
                "invite_member",
                &[
                    ("email", &format!("invitee@{tenant}.test")),
                    ("role", "viewer"),
                ],
            )
            .await;
        assert_eq!(res.status, 200, "fixture invitation: {}", res.body);
        let path = res.json()["path"].as_str().unwrap().to_owned();
        invite = path.trim_start_matches("/invite/").to_owned();
        invitation = auth::token_hash(&invite);
    }
    let mut token = String::new();
    if row.to_string().contains("{token}") {
        let admin = app.sign_in(&format!("admin@{tenant}.test"), PW).await;
        let res = app
            .call(
                Some(&admin),
                "create_api_token",
                &[("name", "fixture"), ("role", "viewer")],
            )
            .await;
        assert_eq!(res.status, 200, "fixture token: {}", res.body);
        token = res.json()["token"]["id"].as_str().unwrap().to_owned();
    }
    let (mut webhook, mut message) = (String::new(), String::new());
    if row.to_string().contains("{webhook}") {
        let scope = TenantScope::for_tests(TenantId::parse(tenant).unwrap());
        let actor = app::server::store::Actor {
            user_id: app::domain::UserId::parse("matrix").unwrap(),
            email: format!("admin@{tenant}.test"),
            role: Role::Admin,
            request_id: None,
        };
        let now = app::server::store::now_millis();
        let new = app::server::store::NewEndpoint {
            id: app::server::store::new_id(),
            url: "https://hooks.example.com/portico".into(),
            description: String::new(),
            event_types: vec![app::domain::webhooks::WebhookEvent::InstanceCreated],
            secret: app::server::control_plane::signature::Secret::generate(),
        };
        let store = &app.db.store;
        webhook = store
            .create_webhook_endpoint(&scope, &actor, &new, now)
            .await
            .unwrap()
            .id;
        message = store
            .send_test_webhook(&scope, &actor, &webhook, now)
            .await
            .unwrap()
            .unwrap();
    }
    Fixture {
        app,
        id,
        name,
        op,
        user,
        invite,
        invitation,
        token,
        webhook,
        message,
        tenant: tenant.to_owned(),
    }
}

fn fill(v: &Value, f: &Fixture, email: &str) -> Value {
    match v {
        Value::String(s) => Value::String(
            s.replace("{id}", &f.id)
                .replace("{name}", &f.name)
                .replace("{op}", &f.op)
                .replace("{user}", &f.user)
                .replace("{invite}", &f.invite)
                .replace("{invitation}", &f.invitation)
                .replace("{token}", &f.token)
                .replace("{webhook}", &f.webhook)
                .replace("{message}", &f.message)
                .replace("{tenant}", &f.tenant)
                .replace("{email}", email),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill(x, f, email)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), fill(x, f, email)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The `Authorization` secret an API actor sends, and the cookie the `session` actor does.
async fn api_credentials(
    actor: &str,
    tenant: &str,
    f: &Fixture,
) -> (Option<String>, Option<String>) {
    let app = &f.app;
    match actor {
        "anonymous" => (None, None),
        "session" => (
            Some(app.sign_in(&format!("admin@{tenant}.test"), PW).await),
            None,
        ),
        "viewer" | "operator" | "admin" => (None, Some(app.api_token(tenant, actor).await)),
        "other" => (
            None,
            Some(app.api_token(other_tenant(tenant), "admin").await),
        ),
        "revoked" => {
            let admin = app.sign_in(&format!("admin@{tenant}.test"), PW).await;
            let res = app
                .call(
                    Some(&admin),
                    "create_api_token",
                    &[("name", "revoked"), ("role", "admin")],
                )
                .await;
            assert_eq!(res.status, 200, "creating: {}", res.body);
            let created = res.json();
            let id = created["token"]["id"].as_str().unwrap();
            let res = app
                .call(Some(&admin), "revoke_api_token", &[("id", id)])
                .await;
            assert_eq!(res.status, 200, "revoking: {}", res.body);
            (None, Some(created["secret"].as_str().unwrap().to_owned()))
        }
        "expired" => {
            let secret = app::server::service::tokens::new_secret(
                app::domain::api_token::SecretKind::TenantToken,
            );
            let scope = TenantScope::for_tests(TenantId::parse(tenant).unwrap());
            let actor = app::server::store::Actor {
                user_id: app::domain::UserId::parse("matrix").unwrap(),
                email: format!("admin@{tenant}.test"),
                role: Role::Admin,
                request_id: None,
            };
            let now = app::server::store::now_millis();
            let new = app::server::store::NewApiToken {
                id: app::server::store::new_id(),
                name: "expired".into(),
                role: Role::Admin,
                token_hash: auth::token_hash(&secret),
                expires_at: Some(now - 1000),
            };
            app.db
                .store
                .create_api_token(&scope, &actor, &new, now - 2000)
                .await
                .unwrap();
            (None, Some(secret))
        }
        "provider" => {
            let (_, secret) = app::server::service::provider::create_key(&app.db.store, "matrix")
                .await
                .unwrap();
            (None, Some(secret))
        }
        a => panic!("unknown API actor {a}"),
    }
}

async fn run_cell(row: &Value, actor: &str, f: &Fixture) -> Reply {
    let tenant = row["tenant"].as_str().unwrap();
    let (cookie, bearer, email) = if is_api(row) {
        let (cookie, bearer) = api_credentials(actor, tenant, f).await;
        (cookie, bearer, None)
    } else {
        let email = email_of(actor, tenant);
        let cookie = match &email {
            Some(e) => Some(f.app.sign_in(e, PW).await),
            None => None,
        };
        (cookie, None, email)
    };
    let as_email = email.unwrap_or_else(|| format!("nobody@{tenant}.test"));
    let call = row["call"].as_str().unwrap();
    let (method, path) = call.split_once(' ').unwrap();
    let path = fill(&Value::String(path.into()), f, &as_email);
    let path = path.as_str().unwrap();
    let body = fill(row.get("body").unwrap_or(&json!({})), f, &as_email);
    let req = match method {
        "GET" => Request::get(path).header("accept", "text/html"),
        "POST" | "PATCH" | "DELETE" => Request::builder()
            .method(method)
            .uri(path)
            .header("accept", "application/json"),
        m => panic!("unsupported method {m}"),
    };
    let req = match &cookie {
        Some(c) => req.header("cookie", c),
        None => req,
    };
    let req = match &bearer {
        Some(b) => req.header("authorization", format!("Bearer {b}")),
        None => req,
    };
    let req = if method == "GET" || method == "DELETE" {
        req.body(Body::empty())
    } else if row["json"].as_bool().unwrap_or(false) {
        req.header("content-type", "application/json")
            .body(Body::from(body.to_string()))
    } else {
        let form = body
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    app::domain::percent_encode(v.as_str().unwrap_or_default())
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        req.header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form))
    };
    f.app.send(req.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cell_of_the_authorization_matrix_holds() {
    let rows = matrix();
    let mut failures = Vec::new();
    for row in &rows {
        let call = row["call"].as_str().unwrap();
        let tenant = row["tenant"].as_str().unwrap();
        let expect = row["expect"].as_object().expect("expect table");
        let actors: BTreeSet<&str> = expect.keys().map(String::as_str).collect();
        assert_eq!(
            actors,
            actors_of(row).iter().copied().collect(),
            "{call} ({tenant}) must give every actor an outcome"
        );
        let mutates = row["mutates"].as_bool().unwrap_or(false);
        let shared = fixture(row).await;
        let names = instance_names(&shared.app).await;
        for &actor in actors_of(row) {
            let want = expect[actor].as_u64().unwrap() as u16;
            // A cell that changes state runs alone, so the others see the demo data as seeded.
            let fresh;
            let f = if mutates && (200..300).contains(&want) {
                fresh = fixture(row).await;
                &fresh
            } else {
                &shared
            };
            let res = run_cell(row, actor, f).await;
            let label = format!("{call} ({tenant}, {actor})");
            if res.status != want {
                failures.push(format!(
                    "{label}: expected {want}, got {}: {}",
                    res.status,
                    res.body.chars().take(200).collect::<String>()
                ));
            }
            let home = home_of(actor, tenant);
            for (t, list) in &names {
                if Some(*t) == home {
                    continue;
                }
                for n in list {
                    if res.body.contains(n.as_str()) {
                        failures.push(format!("{label}: response shows {t}'s instance {n}"));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cell(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// `/instances/{id}` and `/instances/:id` alike become `/instances/*`.
fn shape(path: &str) -> String {
    path.split('?')
        .next()
        .unwrap_or_default()
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') || seg.starts_with(':') {
                "*"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_endpoint_has_a_row_and_every_row_an_endpoint() {
    let in_matrix: BTreeSet<String> = matrix()
        .iter()
        .map(|r| {
            let (m, p) = r["call"].as_str().unwrap().split_once(' ').unwrap();
            format!("{m} {}", shape(p))
        })
        .collect();
    let mut endpoints = BTreeSet::new();
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        endpoints.insert(format!("{method} {}", shape(path)));
    }
    for listing in leptos_axum::generate_route_list(app::ui::App) {
        endpoints.insert(format!("GET {}", shape(listing.path())));
    }
    for (method, path) in routes::PLAIN_ROUTES {
        endpoints.insert(format!("{method} {}", shape(path)));
    }
    for (method, path) in app::server::rest::route_list() {
        endpoints.insert(format!("{method} {}", shape(path)));
    }
    let missing: Vec<_> = endpoints.difference(&in_matrix).collect();
    assert!(
        missing.is_empty(),
        "endpoints without a row in authz_matrix.toml: {missing:?}"
    );
    let stale: Vec<_> = in_matrix.difference(&endpoints).collect();
    assert!(
        stale.is_empty(),
        "rows for endpoints that do not exist: {stale:?}"
    );
}
