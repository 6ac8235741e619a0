//! Test harness: a fresh database per test (SQLite file or a new PostgreSQL database) and the
//! real router served on a loopback port.
#![allow(dead_code)]

use app::domain::TenantId;
use app::server::config;
use app::server::state::{AppState, Settings};
use app::server::store::{InstanceRecord, Store, TenantScope};
use app::server::{demo, routes};
use leptos::config::LeptosOptions;

/// Where the PostgreSQL tests create their databases. CI has a server on 127.0.0.1:5432; the
/// tests fail (never skip) when it cannot be reached.
pub fn postgres_admin_url() -> String {
    std::env::var("PORTICO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A loopback port nothing listens on, for a server a test starts as a child process or an
/// address that must refuse connections. It is picked below the kernel's ephemeral range
/// (32768 and up): a port taken from `bind(0)` and closed again can be handed to another
/// test's `bind(0)` before the child binds it, which made such tests fail now and then.
pub fn unused_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for _ in 0..1000 {
        let n = seed.wrapping_add(NEXT.fetch_add(7919, Ordering::Relaxed));
        let port = 20_000 + (n % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no unused loopback port between 20000 and 32000");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The roles the PostgreSQL tests use, as a provider would set them up: the owner is no
/// superuser (so row-level security binds it too, except where its policies say otherwise),
/// and the portal's login is a member of `portico_app` that owns nothing.
pub const PG_OWNER: &str = "portico_test_owner";
pub const PG_APP: &str = "portico_test_app";

/// A database that exists for one test and is removed afterwards.
pub struct TestDb {
    /// Connected as the portal connects: on PostgreSQL, as [`PG_APP`].
    pub store: Store,
    /// On PostgreSQL, the URLs of the owner (who migrated) and of the portal's role.
    pub pg: Option<PgUrls>,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct PgUrls {
    pub owner: String,
    pub app: String,
    /// The administrative role of [`postgres_admin_url`], on this database.
    pub superuser: String,
}

impl TestDb {
    pub async fn new(engine: Engine) -> TestDb {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("portico.db").display());
                let store = Store::connect(&url).await.expect("open sqlite");
                store.migrate().await.expect("migrate sqlite");
                TestDb {
                    store,
                    pg: None,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Engine::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("portico_test_{}", uuid_hex());
                let admin = sqlx::PgPool::connect(&admin_url).await.unwrap_or_else(|e| {
                    panic!("PostgreSQL is required for these tests and is unreachable at {admin_url}: {e}")
                });
                ensure_pg_roles(&admin).await;
                sqlx::query(&format!("CREATE DATABASE {name} OWNER {PG_OWNER}"))
                    .execute(&admin)
                    .await
                    .expect("create test database");
                admin.close().await;
                let urls = PgUrls {
                    owner: pg_url(&admin_url, PG_OWNER, &name),
                    app: pg_url(&admin_url, PG_APP, &name),
                    superuser: replace_db(&admin_url, &name),
                };
                let owner = Store::connect(&urls.owner).await.expect("open postgres");
                owner
                    .migrate()
                    .await
                    .expect("migrate postgres as the owner");
                owner.close().await;
                let store = Store::connect(&urls.app).await.expect("open postgres");
                TestDb {
                    store,
                    pg: Some(urls),
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        // Drop runs outside async; a short-lived runtime on its own thread removes the database.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let admin = sqlx::PgPool::connect(&postgres_admin_url()).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&admin)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

fn uuid_hex() -> String {
    app::server::store::new_id().replace('-', "")
}

fn replace_db(url: &str, db: &str) -> String {
    use sqlx::ConnectOptions;
    let opts: sqlx::postgres::PgConnectOptions = url.parse().expect("a PostgreSQL URL");
    opts.database(db).to_url_lossy().to_string()
}

/// `admin_url` with another user and database (trust authentication needs no password).
fn pg_url(admin_url: &str, user: &str, db: &str) -> String {
    use sqlx::ConnectOptions;
    let opts: sqlx::postgres::PgConnectOptions = admin_url.parse().expect("a PostgreSQL URL");
    opts.username(user).database(db).to_url_lossy().to_string()
}

/// Creates the test roles once per cluster. Tests run in parallel, and concurrent CREATE ROLE
/// or GRANT statements fail on each other, so they take turns under an advisory lock.
async fn ensure_pg_roles(admin: &sqlx::PgPool) {
    let mut tx = admin.begin().await.expect("begin");
    sqlx::query("SELECT pg_advisory_xact_lock(7305420017)")
        .execute(&mut *tx)
        .await
        .expect("lock");
    sqlx::query(&format!(
        "DO $$ BEGIN \
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PG_OWNER}') THEN \
             CREATE ROLE {PG_OWNER} LOGIN CREATEROLE; END IF; \
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portico_app') THEN \
             CREATE ROLE portico_app NOLOGIN; END IF; \
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{PG_APP}') THEN \
             CREATE ROLE {PG_APP} LOGIN IN ROLE portico_app; END IF; \
         END $$"
    ))
    .execute(&mut *tx)
    .await
    .expect("create the test roles");
    tx.commit().await.expect("commit");
}

pub fn leptos_options() -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("portico")
        .site_root("target/site")
        .site_pkg_dir("pkg")
        .build()
}

/// What a test sees of a response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `name=value` part of the session cookie this response sets, if any.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("__Host-portico_session="))
            .map(|v| v.split(';').next().unwrap_or_default().to_owned())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// The instance called `name` in `tenant`, as the store has it now.
pub async fn instance_named(app: &TestApp, tenant: &str, name: &str) -> InstanceRecord {
    let scope = TenantScope::for_tests(TenantId::parse(tenant).expect("a tenant id"));
    app.db
        .store
        .list_instances(&scope)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no instance {name}"))
}

/// The real router with the demo provider and demo data, driven request by request.
pub struct TestApp {
    pub db: TestDb,
    pub state: AppState,
    router: axum::Router,
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> TestApp {
        Self::spawn_with(engine, Settings::default()).await
    }

    pub async fn spawn_with(engine: Engine, settings: Settings) -> TestApp {
        Self::spawn_custom(engine, settings, config::demo()).await
    }

    /// With the demo data under a changed provider configuration.
    pub async fn spawn_custom(
        engine: Engine,
        settings: Settings,
        provider: app::domain::ProviderConfig,
    ) -> TestApp {
        let db = TestDb::new(engine).await;
        demo::seed(&db.store, &provider)
            .await
            .expect("seed demo data");
        // The same start-up path as `portico serve`, with its checks.
        let state = AppState::build(leptos_options(), db.store.clone(), provider, settings)
            .await
            .unwrap_or_else(|e| panic!("the test configuration does not start: {e}"));
        let router = routes::router(state.clone());
        TestApp { db, state, router }
    }

    pub async fn send(&self, req: axum::http::Request<axum::body::Body>) -> Reply {
        use tower::ServiceExt;
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router is infallible");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let stream = headers
            .get("content-type")
            .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
        let bytes = if stream {
            // A live stream never ends: its first event is what there is to see.
            first_event(res.into_body()).await
        } else {
            axum::body::to_bytes(res.into_body(), 16 << 20)
                .await
                .expect("read body")
                .to_vec()
        };
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Serves the same router on a loopback port, for callers out of process (a control
    /// plane's callbacks); returns its base URL. Served until the test ends.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        self.serve_on(listener)
    }

    /// A second replica on this app's PostgreSQL database, as another `portico serve` process
    /// would be: its own store (pool and `LISTEN` connection), state and router, served on a
    /// loopback port until the test ends; returns its base URL.
    pub async fn replica(&self) -> String {
        let urls = self
            .db
            .pg
            .as_ref()
            .expect("replicas share a PostgreSQL database");
        let store = Store::connect(&urls.app).await.expect("open postgres");
        let state = AppState::build(
            leptos_options(),
            store,
            (*self.state.provider).clone(),
            (*self.state.settings).clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("the replica does not start: {e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let app =
            routes::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// Serves the router on a listener bound beforehand, so its URL can be handed out (to a
    /// control plane that calls back) before the portal's configuration is complete.
    pub fn serve_on(&self, listener: tokio::net::TcpListener) -> String {
        let addr = listener.local_addr().expect("local address");
        let app = self
            .router
            .clone()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// Calls a server function the way the hydrated front end does.
    pub async fn call(&self, cookie: Option<&str>, name: &str, form: &[(&str, &str)]) -> Reply {
        let body: String = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    app::domain::percent_encode(k),
                    app::domain::percent_encode(v)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let mut req = axum::http::Request::post(format!("/api/{name}"))
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.send(req.body(axum::body::Body::from(body)).unwrap())
            .await
    }

    /// Calls a server function whose arguments are JSON-encoded.
    pub async fn call_json(
        &self,
        cookie: Option<&str>,
        name: &str,
        body: serde_json::Value,
    ) -> Reply {
        let mut req = axum::http::Request::post(format!("/api/{name}"))
            .header("accept", "application/json")
            .header("content-type", "application/json");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.send(req.body(axum::body::Body::from(body.to_string())).unwrap())
            .await
    }

    /// Requests a page the way a browser navigation does.
    pub async fn page(&self, cookie: Option<&str>, path: &str) -> Reply {
        let mut req = axum::http::Request::get(path).header("accept", "text/html");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        self.send(req.body(axum::body::Body::empty()).unwrap())
            .await
    }

    /// The body of the audit log's `member-join` entries, as the admin whose session cookie is
    /// `admin` reads them.
    pub async fn member_joins(&self, admin: &str) -> String {
        let res = self
            .call(
                Some(admin),
                "audit_log",
                &[
                    ("instance_id", ""),
                    ("operation", "member-join"),
                    ("user", ""),
                    ("outcome", ""),
                ],
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        res.body
    }

    /// Invites `email` as `role`, as the admin whose session cookie is `admin`; returns the
    /// invitation link's token and the whole answer.
    pub async fn invite(
        &self,
        admin: &str,
        email: &str,
        role: &str,
    ) -> (String, serde_json::Value) {
        let res = self
            .call(
                Some(admin),
                "invite_member",
                &[("email", email), ("role", role)],
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let json = res.json();
        let path = json["path"].as_str().unwrap().to_owned();
        assert!(path.starts_with("/invite/"), "{path}");
        (path.trim_start_matches("/invite/").to_owned(), json)
    }

    /// A new API token of `tenant` acting as `role`, created by its admin in the portal:
    /// the secret.
    pub async fn api_token(&self, tenant: &str, role: &str) -> String {
        let admin = self
            .sign_in(&format!("admin@{tenant}.test"), "portico-demo")
            .await;
        let name = format!("{role} token {}", app::server::store::new_id());
        let res = self
            .call(
                Some(&admin),
                "create_api_token",
                &[("name", &name), ("role", role)],
            )
            .await;
        assert_eq!(res.status, 200, "creating a token: {}", res.body);
        res.json()["secret"].as_str().unwrap().to_owned()
    }

    /// An API request with the token `secret` (none when `None`), a JSON body when given.
    pub async fn api(
        &self,
        secret: Option<&str>,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("accept", "application/json");
        if let Some(s) = secret {
            req = req.header("authorization", format!("Bearer {s}"));
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(axum::body::Body::from(b.to_string())),
            None => req.body(axum::body::Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    /// Signs in and returns the `name=value` of the session cookie.
    pub async fn sign_in(&self, email: &str, password: &str) -> String {
        let res = self
            .call(None, "sign_in", &[("email", email), ("password", password)])
            .await;
        assert_eq!(res.status, 200, "sign-in as {email} failed: {}", res.body);
        res.session_cookie()
            .expect("sign-in sets the session cookie")
    }
}

/// The body of an event stream up to its first event (a blank line), or what came in 5 s.
async fn first_event(body: axum::body::Body) -> Vec<u8> {
    use futures::StreamExt;
    let mut frames = body.into_data_stream();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !out.windows(2).any(|w| w == b"\n\n") {
        match tokio::time::timeout_at(deadline, frames.next()).await {
            Ok(Some(Ok(chunk))) => out.extend_from_slice(&chunk),
            _ => break,
        }
    }
    out
}

/// Instantiates each listed async test once per storage engine.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Engine::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Engine::Postgres).await
                }
            )*
        }
    };
}

/// Every log line (down to DEBUG) written by this test binary since the first test asked for
/// them, for asserting on what the server logs. One subscriber for the whole process: a
/// per-thread one misses events whose callsites other threads' tests saw first. Tests share
/// it, so assert on what is unique to the test (its own ids and tokens).
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn global() -> &'static CapturedLogs {
        static LOGS: std::sync::OnceLock<CapturedLogs> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = CapturedLogs::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(logs.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in the test binaries");
            logs
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;
    fn make_writer(&'a self) -> CapturedLogs {
        self.clone()
    }
}
