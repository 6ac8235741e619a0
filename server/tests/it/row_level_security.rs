//! PostgreSQL row-level security, the second barrier behind the tenant-scoped store: queries
//! written by hand as the portal's role, outside the store, still see one tenant at most.
//! (SQLite has no row-level security; it relies on the store's scoped interface alone.)

use crate::common;

use app::domain::{Status, TenantId};
use app::server::store::{Store, TenantScope};
use common::{Engine, TestApp};
use serde_json::json;
use sqlx::{PgPool, Row};

const PW: &str = app::server::demo::DEMO_PASSWORD;
const TABLES: [&str; 7] = [
    "tenant",
    "membership",
    "session",
    "instance",
    "operation",
    "audit_event",
    "invitation",
];

/// The demo on PostgreSQL, plus in each of globex and initech a session, an operation, an
/// invitation and audit events, so every tenant table has rows of both; and a raw pool as the portal's role.
async fn two_busy_tenants() -> (TestApp, PgPool) {
    let app = TestApp::spawn(Engine::Postgres).await;
    for (email, tenant) in [
        ("admin@globex.test", "globex"),
        ("admin@initech.test", "initech"),
    ] {
        let cookie = app.sign_in(email, PW).await;
        let instances = app.db.store.list_instances(&scope(tenant)).await.unwrap();
        let first = instances
            .iter()
            .find(|i| i.status == Status::Running)
            .expect("a running demo instance");
        let res = app
            .call_json(
                Some(&cookie),
                "request_operation",
                json!({ "instance_id": first.id.as_str(), "request": {"operation": "restart"},
                        "idempotency_key": "k1" }),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let res = app
            .call(
                Some(&cookie),
                "invite_member",
                &[("email", "guest@partner.test"), ("role", "viewer")],
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
    }
    let pool = PgPool::connect(&app.db.pg.as_ref().unwrap().app)
        .await
        .unwrap();
    (app, pool)
}

fn scope(tenant: &str) -> TenantScope {
    TenantScope::for_tests(TenantId::parse(tenant).unwrap())
}

async fn count(conn: &mut sqlx::PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

/// Starts a transaction as the store does for `tenant`.
async fn tenant_tx(pool: &PgPool, tenant: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('portico.tenant_id', $1, true)")
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

#[tokio::test]
async fn without_a_tenant_every_tenant_table_looks_empty() {
    let (app, pool) = two_busy_tenants().await;
    let mut conn = pool.acquire().await.unwrap();
    for table in TABLES {
        assert_eq!(
            count(&mut conn, &format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table} shows rows to a query that names no tenant"
        );
    }
    // The rows are there: the store, which names the tenant, sees them.
    assert!(!app
        .db
        .store
        .list_instances(&scope("globex"))
        .await
        .unwrap()
        .is_empty());
    let audit = app
        .db
        .store
        .list_audit(&scope("globex"), &Default::default(), 10)
        .await
        .unwrap();
    assert!(!audit.is_empty());
}

#[tokio::test]
async fn without_a_tenant_nothing_can_be_written() {
    let (_app, pool) = two_busy_tenants().await;
    let err = sqlx::query(
        "INSERT INTO audit_event (audit_event_id, tenant_id, parameters, outcome, created_at) \
         VALUES ('forged', 'globex', '{}', 'succeeded', 0)",
    )
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(err.to_string().contains("row-level security"), "{err}");
    let changed = sqlx::query("UPDATE instance SET name = 'renamed'")
        .execute(&pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 0);
}

#[tokio::test]
async fn a_tenants_transaction_reads_only_its_own_rows() {
    let (_app, pool) = two_busy_tenants().await;
    let mut tx = tenant_tx(&pool, "globex").await;
    for table in TABLES {
        let foreign = count(
            &mut tx,
            &format!("SELECT COUNT(*) FROM {table} WHERE tenant_id <> 'globex'"),
        )
        .await;
        assert_eq!(foreign, 0, "{table} shows another tenant's rows");
        let own = count(&mut tx, &format!("SELECT COUNT(*) FROM {table}")).await;
        assert!(own > 0, "{table} hides globex's own rows from globex");
    }
    // A join cannot reach around it either.
    let names: Vec<String> = sqlx::query(
        "SELECT i.name FROM operation o JOIN instance i USING (instance_id) \
         WHERE o.tenant_id = 'initech' OR i.tenant_id = 'initech'",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[tokio::test]
async fn a_tenants_transaction_cannot_change_another_tenants_rows() {
    let (app, pool) = two_busy_tenants().await;
    let mut tx = tenant_tx(&pool, "globex").await;
    for sql in [
        "UPDATE instance SET status = 'deleted' WHERE tenant_id = 'initech'",
        "UPDATE operation SET state = 'failed' WHERE tenant_id = 'initech'",
        "UPDATE membership SET role = 'viewer' WHERE tenant_id = 'initech'",
        "UPDATE tenant SET name = 'pwned' WHERE tenant_id = 'initech'",
        "DELETE FROM session WHERE tenant_id = 'initech'",
        "DELETE FROM invitation WHERE tenant_id = 'initech'",
        "DELETE FROM membership WHERE tenant_id = 'initech'",
    ] {
        let n = sqlx::query(sql)
            .execute(&mut *tx)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(n, 0, "{sql} changed {n} rows");
    }
    tx.commit().await.unwrap();

    // Moving a row into another tenant, or inserting one there, is refused outright.
    for sql in [
        "UPDATE instance SET tenant_id = 'initech' WHERE tenant_id = 'globex'",
        "INSERT INTO audit_event (audit_event_id, tenant_id, parameters, outcome, created_at) \
         VALUES ('forged', 'initech', '{}', 'succeeded', 0)",
        "INSERT INTO membership (tenant_id, user_id, role, created_at, updated_at) \
         SELECT 'initech', user_id, 'admin', 0, 0 FROM app_user WHERE email = 'admin@globex.test'",
    ] {
        let mut tx = tenant_tx(&pool, "globex").await;
        let err = sqlx::query(sql).execute(&mut *tx).await.unwrap_err();
        assert!(
            err.to_string().contains("row-level security"),
            "{sql}: {err}"
        );
    }

    // initech is as it was.
    let tenant = app.db.store.tenant(&scope("initech")).await.unwrap();
    assert_eq!(tenant.name, "Initech");
    let instances = app
        .db
        .store
        .list_instances(&scope("initech"))
        .await
        .unwrap();
    assert_eq!(instances.len(), 2);
    assert!(app.sign_in("admin@initech.test", PW).await.contains('='));
}

#[tokio::test]
async fn the_tenant_ends_with_its_transaction_on_a_pooled_connection() {
    let (_app, pool) = two_busy_tenants().await;
    let mut conn = pool.acquire().await.unwrap();
    let mut tx = sqlx::Connection::begin(&mut *conn).await.unwrap();
    sqlx::query("SELECT set_config('portico.tenant_id', 'globex', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    assert!(count(&mut tx, "SELECT COUNT(*) FROM instance").await > 0);
    tx.commit().await.unwrap();
    // The same connection, as the next request would get it from the pool.
    assert_eq!(count(&mut conn, "SELECT COUNT(*) FROM instance").await, 0);
}

#[tokio::test]
async fn the_audit_log_is_append_only_for_the_portal() {
    let (_app, pool) = two_busy_tenants().await;
    let mut tx = tenant_tx(&pool, "globex").await;
    let err = sqlx::query("DELETE FROM audit_event")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
}

#[tokio::test]
async fn only_a_role_that_cannot_bypass_row_security_may_serve() {
    let (app, _pool) = two_busy_tenants().await;
    assert_eq!(app.db.store.row_security_problem().await.unwrap(), None);

    let urls = app.db.pg.clone().unwrap();
    let owner = Store::connect(&urls.owner).await.unwrap();
    let problem = owner.row_security_problem().await.unwrap().unwrap();
    assert!(problem.contains("owns Portico's tables"), "{problem}");

    let superuser = Store::connect(&urls.superuser).await.unwrap();
    let problem = superuser.row_security_problem().await.unwrap().unwrap();
    assert!(problem.contains("superuser"), "{problem}");
}

/// The binary: `serve` refuses a role that can bypass row-level security and starts, demo and
/// all, as the portal's role once the owner has migrated.
#[tokio::test]
async fn serve_refuses_an_owner_and_runs_as_the_portal_role() {
    let db = common::TestDb::new(Engine::Postgres).await;
    let urls = db.pg.clone().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let portico = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_portico"));
        c.current_dir(dir.path())
            .env_remove("PORTICO_CONFIG")
            .env_remove("PORTICO_MIGRATION_DATABASE_URL")
            .env(
                "PORTICO_LEPTOS_CONFIG",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../Leptos.toml"),
            )
            .args(args);
        c
    };

    let out = portico(&["serve", "--demo", "--database-url", &urls.owner])
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        // This server is not asked for pages: no bundle, no hash list beside the binary.
        .env("LEPTOS_HASH_FILES", "false")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve"), "{err}");
    assert!(err.contains("--migration-database-url"), "{err}");

    let port = common::unused_port();
    let mut child = portico(&[
        "serve",
        "--demo",
        "--database-url",
        &urls.app,
        "--migration-database-url",
        &urls.owner,
    ])
    .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
    // This server is not asked for pages: no bundle, no hash list beside the binary.
    .env("LEPTOS_HASH_FILES", "false")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let ready = wait_for_readyz(port).await;
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(
        ready,
        "serve did not become ready: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It loaded the demo as the portal's role.
    assert!(!db
        .store
        .list_instances(&scope("globex"))
        .await
        .unwrap()
        .is_empty());
}

async fn wait_for_readyz(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for _ in 0..150 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            let req = "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            if s.write_all(req.as_bytes()).await.is_ok() {
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf).await;
                if buf.starts_with(b"HTTP/1.1 200") {
                    return true;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}
