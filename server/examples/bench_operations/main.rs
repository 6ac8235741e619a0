//! Benchmark: enqueue and complete 1,000 operations on each store, through three drivers, and
//! print one table of operations per second and p50/p99 request-to-completion time:
//!
//! - `simulated`: the in-process simulator with zero delay;
//! - `http sync`: the `http` driver against the reference control plane
//!   (`portico-control-plane --mode sync --delay-ms 0`, a child process);
//! - `http async`: the same with `--mode async --delay-ms 0 --progress-steps 0`; each command
//!   is answered 202 and completed by a signed callback to the portal's real router, served
//!   here on a loopback port.
//!
//! Run it, after building the control plane with the same profile, as:
//!
//! ```text
//! cargo build --release -p portico --bins
//! cargo run --release -p portico --example bench_operations
//! ```
//!
//! PostgreSQL is taken from PORTICO_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres);
//! a throw-away database is created and dropped. The portal's side connects as a member of
//! `portico_app` (role `portico_bench_app`, created if missing), so row-level security applies.

mod http;

use app::domain::policy::{self, OperationRequest, Request};
use app::domain::{Email, Endpoint, InstanceId, Resources, Role, Status, TenantId};
use app::server::config;
use app::server::control_plane::{ControlPlane, Simulated, SimulatedSettings};
use app::server::store::{new_id, now_millis, InstanceRecord, Store, TenantScope};
use app::server::store::{Actor, OpState};
use app::server::worker::{Worker, WorkerSettings};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const OPERATIONS: usize = 1000;
const WORKERS: usize = 2;
const POLL_INTERVAL: Duration = Duration::from_secs(30);

/// The drivers measured, in the table's order.
const DRIVERS: [Driver; 3] = [Driver::Simulated, Driver::HttpSync, Driver::HttpAsync];

#[derive(Clone, Copy, Debug)]
enum Driver {
    Simulated,
    HttpSync,
    HttpAsync,
}

impl Driver {
    fn label(self) -> &'static str {
        match self {
            Driver::Simulated => "simulated",
            Driver::HttpSync => "http sync",
            Driver::HttpAsync => "http async",
        }
    }

    /// Each run has a tenant (and instances) of its own.
    fn tenant(self) -> &'static str {
        match self {
            Driver::Simulated => "bench-simulated",
            Driver::HttpSync => "bench-http-sync",
            Driver::HttpAsync => "bench-http-async",
        }
    }
}

/// One line of the table.
struct Row {
    store: &'static str,
    driver: Driver,
    enqueued: Duration,
    total: Duration,
    p50: i64,
    p99: i64,
    max: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Checked first: a missing binary should not cost a SQLite run.
    let cp_bin = match http::control_plane_binary() {
        Ok(bin) => bin,
        Err(e) => {
            eprintln!("bench_operations: {e}");
            std::process::exit(2);
        }
    };
    let mut rows = Vec::new();
    let dir = tempfile::tempdir()?;
    let sqlite = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await?;
    bench_store("sqlite", sqlite.clone(), &cp_bin, &mut rows).await?;
    sqlite.close().await;

    let admin_url = std::env::var("PORTICO_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("portico_bench_{}", new_id().replace('-', ""));
    let admin = sqlx::PgPool::connect(&admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    let url = |user: Option<&str>| -> anyhow::Result<String> {
        use sqlx::ConnectOptions;
        let opts: sqlx::postgres::PgConnectOptions = admin_url.parse()?;
        let opts = opts.database(&name);
        Ok(match user {
            Some(u) => opts.username(u),
            None => opts,
        }
        .to_url_lossy()
        .to_string())
    };
    // Migrated by the administrative role; run as a member of portico_app, as in production,
    // so the numbers include row-level security.
    let owner = Store::connect(&url(None)?).await?;
    owner.migrate().await?;
    owner.close().await;
    sqlx::query(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portico_bench_app') \
         THEN CREATE ROLE portico_bench_app LOGIN IN ROLE portico_app; END IF; END $$",
    )
    .execute(&admin)
    .await?;
    let pg = Store::connect(&url(Some("portico_bench_app"))?).await?;
    let result = bench_store("postgres", pg.clone(), &cp_bin, &mut rows).await;
    pg.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    print_table(&rows);
    result
}

/// Every driver in turn on one store.
async fn bench_store(
    engine: &'static str,
    store: Store,
    cp_bin: &PathBuf,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    store.migrate().await?;
    let provider = Arc::new(config::demo());
    for driver in DRIVERS {
        // Kept alive for the run: the child process (and the portal serving its callbacks).
        let (cp, reference) = match driver {
            Driver::Simulated => {
                let sim: Arc<dyn ControlPlane> = Simulated::new(SimulatedSettings {
                    step: Duration::ZERO,
                    failure_rate: 0.0,
                    hang: false,
                });
                (sim, None)
            }
            Driver::HttpSync | Driver::HttpAsync => {
                let mode = match driver {
                    Driver::HttpSync => http::Mode::Sync,
                    _ => http::Mode::Async,
                };
                let r = http::Reference::start(cp_bin, mode, &store, &provider).await?;
                (r.driver.clone(), Some(r))
            }
        };
        let row = bench(engine, driver, &store, &provider, cp).await?;
        drop(reference);
        println!(
            "bench {engine:8} {:10} {OPERATIONS} operations, {WORKERS} workers: enqueued in {:.2} s, \
             all completed in {:.2} s = {:.0} ops/s; request-to-completion p50 {} ms, p99 {} ms",
            driver.label(),
            row.enqueued.as_secs_f64(),
            row.total.as_secs_f64(),
            OPERATIONS as f64 / row.total.as_secs_f64(),
            row.p50,
            row.p99,
        );
        if let Driver::HttpAsync = driver {
            let by_callback = row.max < POLL_INTERVAL.as_millis() as i64;
            println!(
                "      {engine:8} {:10} slowest {} ms {} the worker's {} s poll interval: {}",
                driver.label(),
                row.max,
                if by_callback { "<" } else { ">=" },
                POLL_INTERVAL.as_secs(),
                if by_callback {
                    "every completion came by callback"
                } else {
                    "some completions may have come by polling"
                }
            );
        }
        rows.push(row);
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| {:8} | {:10} | {:>10} | {:>6} | {:>6} | {:>6} |",
        "store", "driver", "operations", "ops/s", "p50 ms", "p99 ms"
    );
    println!(
        "| {:-<8} | {:-<10} | {:->10} | {:->6} | {:->6} | {:->6} |",
        "", "", "", "", "", ""
    );
    for r in rows {
        println!(
            "| {:8} | {:10} | {:>10} | {:>6.0} | {:>6} | {:>6} |",
            r.store,
            r.driver.label(),
            OPERATIONS,
            OPERATIONS as f64 / r.total.as_secs_f64(),
            r.p50,
            r.p99,
        );
    }
}

/// Enqueues and completes the workload through `driver` on a tenant of its own.
async fn bench(
    engine: &'static str,
    which: Driver,
    store: &Store,
    provider: &Arc<app::domain::ProviderConfig>,
    driver: Arc<dyn ControlPlane>,
) -> anyhow::Result<Row> {
    let plan = provider.plan("enterprise").expect("demo plan").clone();
    let tenant = TenantId::parse(which.tenant())?;
    let scope = TenantScope::for_tests(tenant.clone());
    let setup = now_millis();
    store
        .create_tenant(&tenant, which.label(), &plan.id, setup)
        .await?;
    let email = format!("{}@bench.test", which.tenant());
    let user = store
        .create_user(&Email::parse(&email)?, "Bench", None, setup)
        .await?;
    store
        .set_membership(&scope, &user, Role::Admin, setup)
        .await?;
    let mut ids = Vec::with_capacity(OPERATIONS);
    for n in 0..OPERATIONS {
        let id = InstanceId::parse(&new_id())?;
        let now = now_millis();
        store
            .insert_instance(
                &scope,
                &InstanceRecord {
                    id: id.clone(),
                    tenant_id: tenant.clone(),
                    name: format!("bench-{n}"),
                    plan_id: plan.id.clone(),
                    environment: "dev".into(),
                    region: "eu-west".into(),
                    status: Status::Running,
                    status_reason: None,
                    resources: Resources {
                        replicas: 3,
                        cpu_millicores: 2000,
                        memory_mib: 4096,
                        storage_gib: 100,
                    },
                    parameters: Default::default(),
                    endpoints: vec![Endpoint {
                        label: "HTTPS".into(),
                        url: "https://bench.example".into(),
                    }],
                    delete_protected: false,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                    external_id: None,
                    observed_at: None,
                    missing_since: None,
                },
            )
            .await?;
        ids.push(id);
    }

    let settings = WorkerSettings {
        idle_poll: Duration::from_millis(2),
        // After a 202 the worker asks again only this much later: in the async run every
        // operation finished sooner was finished by the control plane's callback.
        poll_interval: POLL_INTERVAL,
        ..WorkerSettings::default()
    };
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let w = Worker::new(
                store.clone(),
                provider.clone(),
                driver.clone(),
                settings.clone(),
            );
            tokio::spawn(w.run(shutdown.clone()))
        })
        .collect();

    let actor = Actor {
        user_id: user.clone(),
        email: email.clone(),
        role: Role::Admin,
        request_id: None,
    };
    let started = Instant::now();
    let mut op_ids = Vec::with_capacity(OPERATIONS);
    for (n, id) in ids.iter().enumerate() {
        let req = OperationRequest::Change(Request::Restart);
        let submitted = store
            .submit_change(
                &scope,
                &actor,
                id,
                &req,
                "{}".into(),
                Some(&format!("bench-{n}")),
                now_millis(),
                |inst, in_flight| {
                    let facts = inst.facts(&plan, in_flight);
                    policy::check(&provider.roles, Role::Admin, &facts, &Request::Restart)
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!("submit: {e}"))?;
        op_ids.push(submitted.operation_id().to_owned());
    }
    let enqueued = started.elapsed();

    let mut latencies = Vec::with_capacity(OPERATIONS);
    let mut failed = 0usize;
    let mut pending = op_ids.clone();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for id in pending {
            let op = store
                .get_operation(&scope, &id)
                .await?
                .expect("operation exists");
            match op.finished_at {
                Some(done) => {
                    latencies.push(done - op.created_at);
                    if op.state != OpState::Succeeded {
                        failed += 1;
                    }
                }
                None => still.push(id),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let total = started.elapsed();
    let _ = stop.send(true);
    for w in workers {
        let _ = w.await;
    }
    if failed > 0 {
        anyhow::bail!(
            "{engine} {}: {failed} of {OPERATIONS} operations did not succeed",
            which.label()
        );
    }
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    Ok(Row {
        store: engine,
        driver: which,
        enqueued,
        total,
        p50: pct(0.50),
        p99: pct(0.99),
        max: *latencies.last().expect("operations"),
    })
}
