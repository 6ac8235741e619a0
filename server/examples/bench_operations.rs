//! Benchmark: enqueue and complete 1,000 operations on each store against the simulated control
//! plane with zero delay; prints operations per second and p50/p99 request-to-completion time.
//!
//!     cargo run --release -p portico --example bench_operations
//!
//! PostgreSQL is taken from PORTICO_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres);
//! a throw-away database is created and dropped. The portal's side connects as a member of
//! `portico_app` (role `portico_bench_app`, created if missing), so row-level security applies.

use app::domain::policy::{self, OperationRequest, Request};
use app::domain::{Email, Endpoint, InstanceId, Resources, Role, Status, TenantId};
use app::server::config;
use app::server::control_plane::{Simulated, SimulatedSettings};
use app::server::store::Actor;
use app::server::store::{new_id, now_millis, InstanceRecord, Store, TenantScope};
use app::server::worker::{Worker, WorkerSettings};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OPERATIONS: usize = 1000;
const WORKERS: usize = 2;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sqlite = Store::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await?;
    bench("sqlite", sqlite).await?;

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
    let result = bench("postgres", pg.clone()).await;
    pg.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await?;
    result
}

async fn bench(engine: &str, store: Store) -> anyhow::Result<()> {
    store.migrate().await?;
    let provider = Arc::new(config::demo());
    let plan = provider.plan("enterprise").expect("demo plan").clone();
    let tenant = TenantId::parse("bench")?;
    let scope = TenantScope::for_tests(tenant.clone());
    let setup = now_millis();
    store
        .create_tenant(&tenant, "Bench", &plan.id, setup)
        .await?;
    let user = store
        .create_user(&Email::parse("bench@bench.test")?, "Bench", None, setup)
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

    let driver = Simulated::new(SimulatedSettings {
        step: Duration::ZERO,
        failure_rate: 0.0,
        hang: false,
    });
    let settings = WorkerSettings {
        idle_poll: Duration::from_millis(2),
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
        email: "bench@bench.test".into(),
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
    let mut pending = op_ids.clone();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for id in pending {
            let op = store
                .get_operation(&scope, &id)
                .await?
                .expect("operation exists");
            match op.finished_at {
                Some(done) => latencies.push(done - op.created_at),
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
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1)];
    println!(
        "bench {engine:8} {OPERATIONS} operations, {WORKERS} workers: enqueued in {:.2} s, all completed in {:.2} s = {:.0} ops/s; request-to-completion p50 {} ms, p99 {} ms",
        enqueued.as_secs_f64(),
        total.as_secs_f64(),
        OPERATIONS as f64 / total.as_secs_f64(),
        pct(0.50),
        pct(0.99),
    );
    store.close().await;
    Ok(())
}
