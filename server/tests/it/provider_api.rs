//! The provider API (`/provider/v1`) over HTTP, on both stores: onboarding a tenant end to end,
//! suspension, plan changes, provider keys from the database and the environment, and the
//! OpenAPI document against an independent validator.

use crate::common;

use app::server::service::provider;
use app::server::state::Settings;
use common::{instance_named, Engine, Reply, TestApp};
use serde_json::{json, Value};

const PW: &str = app::server::demo::DEMO_PASSWORD;

async fn key(app: &TestApp, name: &str) -> String {
    provider::create_key(&app.db.store, name).await.unwrap().1
}

fn ok(res: &Reply, status: u16) -> Value {
    assert_eq!(res.status, status, "{}", res.body);
    if res.body.is_empty() {
        Value::Null
    } else {
        res.json()
    }
}

async fn a_provider_onboards_a_tenant_whose_admin_sees_the_imported_instance(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let k = key(&app, "billing").await;
    let t = ok(
        &app.api(
            Some(&k),
            "POST",
            "/provider/v1/tenants",
            Some(json!({"id": "acme", "name": "Acme Corp", "plan": "pro"})),
        )
        .await,
        201,
    );
    assert_eq!(t["plan"], "pro");
    assert_eq!(t["suspended"], false);
    let imported = ok(
        &app.api(
            Some(&k),
            "POST",
            "/provider/v1/tenants/acme/instances",
            Some(
                json!({"name": "acme-db", "external_id": "cp-7781", "environment": "production",
                "region": "eu-west", "resources": {"replicas": 2, "cpu_millicores": 1000,
                "memory_mib": 2048, "storage_gib": 50}}),
            ),
        )
        .await,
        201,
    );
    assert_eq!(imported["status"], "running");
    assert_eq!(
        instance_named(&app, "acme", "acme-db")
            .await
            .external_id
            .as_deref(),
        Some("cp-7781")
    );
    // The same name again is refused, naming the field.
    let again = app
        .api(
            Some(&k),
            "POST",
            "/provider/v1/tenants/acme/instances",
            Some(
                json!({"name": "acme-db", "external_id": "cp-9", "environment": "production",
                "region": "eu-west", "resources": {"replicas": 1, "cpu_millicores": 500,
                "memory_mib": 512, "storage_gib": 5}}),
            ),
        )
        .await;
    assert_eq!(again.status, 422, "{}", again.body);
    assert_eq!(again.json()["field"], "name");

    let inv = ok(
        &app.api(
            Some(&k),
            "POST",
            "/provider/v1/tenants/acme/invitations",
            Some(json!({"email": "founder@acme.test", "role": "admin"})),
        )
        .await,
        201,
    );
    let token = inv["path"].as_str().unwrap().trim_start_matches("/invite/");
    let res = app
        .call(
            None,
            "accept_invitation",
            &[
                ("token", token),
                ("display_name", "Ada Founder"),
                ("password", "a-long-password-1"),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let admin = app.sign_in("founder@acme.test", "a-long-password-1").await;
    let list = app
        .call(
            Some(&admin),
            "list_instances",
            &[("environment", ""), ("status", ""), ("q", "")],
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let names: Vec<String> = list.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["acme-db"]);

    // The tenant's log names the key for what the provider did.
    let audit = ok(
        &app.api(Some(&k), "GET", "/provider/v1/tenants/acme/audit", None)
            .await,
        200,
    );
    let lines: Vec<(String, String)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["operation"].as_str().unwrap().to_owned(),
                l["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for op in ["tenant-create", "instance-import", "member-invite"] {
        assert!(
            lines
                .iter()
                .any(|(o, a)| o == op && a == "provider-key:billing"),
            "{op}: {lines:?}"
        );
    }
    // Support staff read any tenant's instances; a tenant that does not exist is not found.
    let globex = ok(
        &app.api(
            Some(&k),
            "GET",
            "/provider/v1/tenants/globex/instances",
            None,
        )
        .await,
        200,
    );
    assert!(globex["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["name"].as_str().unwrap().starts_with("globex")));
    let res = app
        .api(
            Some(&k),
            "GET",
            "/provider/v1/tenants/nobody/instances",
            None,
        )
        .await;
    assert_eq!(res.status, 404, "{}", res.body);
}

async fn a_suspended_tenant_sees_everything_and_changes_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let k = key(&app, "support").await;
    let t = ok(
        &app.api(
            Some(&k),
            "PATCH",
            "/provider/v1/tenants/globex",
            Some(json!({"suspended": true})),
        )
        .await,
        200,
    );
    assert_eq!(t["suspended"], true);
    let ops = app.sign_in("ops@globex.test", PW).await;
    let me = app.call(Some(&ops), "current_user", &[]).await;
    assert_eq!(me.json()["suspended"], true, "{}", me.body);
    let web = instance_named(&app, "globex", "globex-web").await;
    let detail = app
        .call(Some(&ops), "get_instance", &[("id", web.id.as_str())])
        .await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let actions = detail.json()["actions"].as_array().unwrap().clone();
    // Nothing is open; what the plan and status would allow says why not.
    assert!(
        actions.iter().all(|a| a["reason"].is_string()),
        "{actions:?}"
    );
    for a in &actions {
        if ["stop", "restart", "scale", "update-config"].contains(&a["operation"].as_str().unwrap())
        {
            assert!(a["reason"].as_str().unwrap().contains("suspended"), "{a}");
        }
    }
    let res = app
        .call_json(
            Some(&ops),
            "request_operation",
            json!({"instance_id": web.id.as_str(), "request": {"operation": "stop"},
                "idempotency_key": "s1"}),
        )
        .await;
    assert_eq!(res.status, 403, "{}", res.body);
    assert!(res.body.contains("suspended"), "{}", res.body);
    // A page says so.
    let page = app.page(Some(&ops), "/instances").await;
    assert!(
        page.body.contains("account is suspended"),
        "{}",
        page.status
    );

    ok(
        &app.api(
            Some(&k),
            "PATCH",
            "/provider/v1/tenants/globex",
            Some(json!({"suspended": false})),
        )
        .await,
        200,
    );
    let res = app
        .call_json(
            Some(&ops),
            "request_operation",
            json!({"instance_id": web.id.as_str(), "request": {"operation": "stop"},
                "idempotency_key": "s2"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
}

async fn a_provider_renames_a_tenant_and_moves_it_to_another_plan(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let k = key(&app, "ops").await;
    let t = ok(
        &app.api(
            Some(&k),
            "PATCH",
            "/provider/v1/tenants/initech",
            Some(json!({"name": "Initech Global", "plan": "enterprise"})),
        )
        .await,
        200,
    );
    assert_eq!(
        (t["name"].as_str(), t["plan"].as_str()),
        (Some("Initech Global"), Some("enterprise"))
    );
    // Its people see the new name at once.
    let admin = app.sign_in("admin@initech.test", PW).await;
    let me = app.call(Some(&admin), "current_user", &[]).await;
    assert_eq!(me.json()["tenant_name"], "Initech Global");
    let res = app
        .api(
            Some(&k),
            "PATCH",
            "/provider/v1/tenants/initech",
            Some(json!({"plan": "platinum"})),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.json()["field"], "plan");
    let res = app
        .api(
            Some(&k),
            "POST",
            "/provider/v1/tenants",
            Some(json!({"id": "initech", "name": "Again", "plan": "free"})),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    assert_eq!(res.json()["field"], "id");
    let res = app
        .api(
            Some(&k),
            "POST",
            "/provider/v1/tenants",
            Some(json!({"id": "Not A Slug", "name": "x", "plan": "free"})),
        )
        .await;
    assert_eq!(res.status, 422, "{}", res.body);
    // A person added directly, with a role.
    ok(
        &app.api(
            Some(&k),
            "POST",
            "/provider/v1/tenants/initech/members",
            Some(json!({"email": "auditor@partner.test", "role": "viewer"})),
        )
        .await,
        204,
    );
    let res = app
        .api(
            Some(&k),
            "POST",
            "/provider/v1/tenants/initech/members",
            Some(json!({"email": "auditor@partner.test", "role": "admin"})),
        )
        .await;
    assert_eq!(res.status, 422, "already a member: {}", res.body);
}

async fn revoked_and_environment_keys(engine: Engine) {
    // A key held by an environment variable, as `--provider-key-env` loads it.
    let env_secret =
        app::server::service::tokens::new_secret(app::domain::api_token::SecretKind::ProviderKey);
    let settings = Settings {
        provider_keys: vec![(
            "ACME_PORTICO_KEY".into(),
            app::server::auth::token_hash(&env_secret),
        )],
        ..Settings::default()
    };
    let app = TestApp::spawn_with(engine, settings).await;
    ok(
        &app.api(
            Some(&env_secret),
            "PATCH",
            "/provider/v1/tenants/globex",
            Some(json!({"name": "Globex Inc"})),
        )
        .await,
        200,
    );
    let audit = ok(
        &app.api(
            Some(&env_secret),
            "GET",
            "/provider/v1/tenants/globex/audit",
            None,
        )
        .await,
        200,
    );
    assert_eq!(audit["items"][0]["actor"], "provider-key:ACME_PORTICO_KEY");

    let k = key(&app, "temp").await;
    ok(
        &app.api(Some(&k), "GET", "/provider/v1/tenants", None).await,
        200,
    );
    assert!(app.db.store.revoke_provider_key("temp", 0).await.unwrap());
    let res = app.api(Some(&k), "GET", "/provider/v1/tenants", None).await;
    assert_eq!(res.status, 401, "{}", res.body);
    // A tenant's token is no provider key.
    let token = app.api_token("globex", "admin").await;
    let res = app
        .api(Some(&token), "GET", "/provider/v1/tenants", None)
        .await;
    assert_eq!(res.status, 401, "{}", res.body);
    assert!(res.json()["detail"].as_str().unwrap().contains("/api/v1"));
}

on_both_engines!(
    a_provider_onboards_a_tenant_whose_admin_sees_the_imported_instance,
    a_suspended_tenant_sees_everything_and_changes_nothing,
    a_provider_renames_a_tenant_and_moves_it_to_another_plan,
    revoked_and_environment_keys,
    every_route_of_both_apis_answers,
);

/// `/provider/v1/openapi.json` is valid by the independent validator, documents exactly the
/// routes served, and real answers match its schemas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_document_is_valid_complete_and_true_to_the_answers() {
    use crate::control_plane::openapi::{validator, write};
    let app = TestApp::spawn(Engine::Sqlite).await;
    let res = app
        .api(None, "GET", "/provider/v1/openapi.json", None)
        .await;
    let doc = ok(&res, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let served: std::collections::BTreeSet<String> = app::server::rest::provider::routes()
        .into_iter()
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert_eq!(served, documented);

    let k = key(&app, "docs").await;
    let dir = tempfile::tempdir().unwrap();
    let tenant = app
        .api(
            Some(&k),
            "POST",
            "/provider/v1/tenants",
            Some(json!({"id": "docs", "name": "Docs", "plan": "free"})),
        )
        .await;
    let tenant = write(dir.path(), "tenant.json", &ok(&tenant, 201));
    let imported = app
        .api(
            Some(&k),
            "POST",
            "/provider/v1/tenants/docs/instances",
            Some(
                json!({"name": "docs-db", "external_id": "x1", "environment": "dev",
                "region": "us-east", "status": "stopped", "parameters": {"log_level": "info"},
                "resources": {"replicas": 1, "cpu_millicores": 500, "memory_mib": 512,
                "storage_gib": 5}}),
            ),
        )
        .await;
    let imported = write(dir.path(), "imported.json", &ok(&imported, 201));
    let problem = app
        .api(Some(&k), "GET", "/provider/v1/tenants/nobody", None)
        .await;
    let problem = write(dir.path(), "problem.json", &problem.json());
    let doc_file = dir.path().join("openapi.json");
    std::fs::write(&doc_file, &res.body).unwrap();
    let (valid, out) = validator(
        &doc_file,
        &[
            ("Tenant", &tenant),
            ("InstanceDetails", &imported),
            ("Problem", &problem),
        ],
    );
    assert!(valid, "{out}");
}

/// Every route of both APIs once, on this store: the matrix drives them all on SQLite, this
/// proves each also works on PostgreSQL under row-level security.
async fn every_route_of_both_apis_answers(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let admin = app.api_token("globex", "admin").await;
    let k = key(&app, "routes").await;
    let web = instance_named(&app, "globex", "globex-web").await;
    let viewer = app
        .db
        .store
        .user_credentials(&app::domain::Email::parse("viewer@globex.test").unwrap())
        .await
        .unwrap()
        .unwrap()
        .user_id
        .to_string();
    let id = web.id.as_str();
    let op = ok(
        &app.api(
            Some(&admin),
            "POST",
            &format!("/api/v1/instances/{id}/operations"),
            Some(json!({"operation": "restart"})),
        )
        .await,
        202,
    );
    let op = op["id"].as_str().unwrap().to_owned();
    let token = ok(
        &app.api(
            Some(&admin),
            "POST",
            "/api/v1/tokens",
            Some(json!({"name": "every route", "role": "viewer"})),
        )
        .await,
        201,
    );
    let token_id = token["token"]["id"].as_str().unwrap().to_owned();
    let tenant_calls: Vec<(&str, String, Option<Value>, u16)> = vec![
        ("GET", "/api/v1/instances".into(), None, 200),
        ("GET", format!("/api/v1/instances/{id}"), None, 200),
        ("GET", format!("/api/v1/instances/{id}/actions"), None, 200),
        (
            "GET",
            format!("/api/v1/instances/{id}/operations"),
            None,
            200,
        ),
        ("GET", format!("/api/v1/operations/{op}"), None, 200),
        ("GET", "/api/v1/audit".into(), None, 200),
        ("GET", "/api/v1/members".into(), None, 200),
        (
            "POST",
            "/api/v1/invitations".into(),
            Some(json!({"email": "guest@partner.test", "role": "viewer"})),
            201,
        ),
        (
            "PATCH",
            format!("/api/v1/members/{viewer}"),
            Some(json!({"role": "operator"})),
            204,
        ),
        ("DELETE", format!("/api/v1/members/{viewer}"), None, 204),
        ("GET", "/api/v1/tokens".into(), None, 200),
        ("DELETE", format!("/api/v1/tokens/{token_id}"), None, 204),
        (
            "POST",
            "/api/v1/instances".into(),
            Some(
                json!({"name": "x", "environment": "dev", "region": "eu-west",
                "parameters": {}, "resources": {"replicas": 1, "cpu_millicores": 1000,
                "memory_mib": 1024, "storage_gib": 20}}),
            ),
            403,
        ),
    ];
    for (method, path, body, status) in tenant_calls {
        let res = app.api(Some(&admin), method, &path, body).await;
        assert_eq!(res.status, status, "{method} {path}: {}", res.body);
    }
    let provider_calls: Vec<(&str, String, Option<Value>, u16)> = vec![
        ("GET", "/provider/v1/tenants".into(), None, 200),
        (
            "POST",
            "/provider/v1/tenants".into(),
            Some(json!({"id": "every", "name": "Every", "plan": "enterprise"})),
            201,
        ),
        ("GET", "/provider/v1/tenants/every".into(), None, 200),
        (
            "PATCH",
            "/provider/v1/tenants/every".into(),
            Some(json!({"plan": "pro"})),
            200,
        ),
        (
            "POST",
            "/provider/v1/tenants/every/members".into(),
            Some(json!({"email": "lead@every.test", "role": "admin", "display_name": "Lead"})),
            204,
        ),
        (
            "POST",
            "/provider/v1/tenants/every/invitations".into(),
            Some(json!({"email": "second@every.test", "role": "operator"})),
            201,
        ),
        (
            "POST",
            "/provider/v1/tenants/every/instances".into(),
            Some(
                json!({"name": "every-db", "external_id": "e-1", "environment": "staging",
                "region": "us-east", "resources": {"replicas": 1, "cpu_millicores": 500,
                "memory_mib": 512, "storage_gib": 5}}),
            ),
            201,
        ),
        (
            "GET",
            "/provider/v1/tenants/every/instances".into(),
            None,
            200,
        ),
        (
            "GET",
            format!("/provider/v1/tenants/globex/operations/{op}"),
            None,
            200,
        ),
        (
            "GET",
            format!("/provider/v1/tenants/every/operations/{op}"),
            None,
            404,
        ),
        ("GET", "/provider/v1/tenants/every/audit".into(), None, 200),
    ];
    for (method, path, body, status) in provider_calls {
        let res = app.api(Some(&k), method, &path, body).await;
        assert_eq!(res.status, status, "{method} {path}: {}", res.body);
    }
}
