//! Several replicas on one PostgreSQL: a periodic job runs on one replica at a time, and a
//! replica that stops mid-pass does not keep the others from it.

use crate::common::{Engine, TestDb};
use app::server::store::{Job, Store};
use std::time::Duration;
use tokio::sync::oneshot;

/// Replica A starts a pass of `job` and holds it until told; what it returns once told.
async fn hold(a: &Store, job: Job) -> (oneshot::Sender<()>, tokio::task::JoinHandle<bool>) {
    let (release, released) = oneshot::channel::<()>();
    let (started, has_started) = oneshot::channel::<()>();
    let a = a.clone();
    let pass = tokio::spawn(async move {
        a.exclusively(job, async move {
            let _ = started.send(());
            let _ = released.await;
        })
        .await
        .expect("replica A reaches the database")
        .is_some()
    });
    has_started.await.expect("replica A started its pass");
    (release, pass)
}

async fn runs(store: &Store, job: Job) -> bool {
    store
        .exclusively(job, async {})
        .await
        .expect("the replica reaches the database")
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_on_one_replica_at_a_time() {
    let db = TestDb::new(Engine::Postgres).await;
    let a = db.store.clone();
    let b = Store::connect(&db.pg.as_ref().unwrap().app).await.unwrap();

    let (release, pass) = hold(&a, Job::SweepSessions).await;
    assert!(
        !runs(&b, Job::SweepSessions).await,
        "B skips the sweep A is running"
    );
    assert!(
        runs(&b, Job::PruneEvents).await,
        "other jobs are not held up"
    );
    assert!(runs(&b, Job::Reconcile).await);
    release.send(()).unwrap();
    assert!(pass.await.unwrap(), "A ran its pass");
    assert!(
        runs(&b, Job::SweepSessions).await,
        "the next pass runs wherever it is due"
    );
    assert!(runs(&a, Job::SweepSessions).await);
    b.close().await;
}

/// A replica stopped in the middle of a pass (its task cancelled at shutdown, or the process
/// gone with its connections) leaves the job free for the others at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_cut_short_frees_the_job() {
    let db = TestDb::new(Engine::Postgres).await;
    let a = db.store.clone();
    let b = Store::connect(&db.pg.as_ref().unwrap().app).await.unwrap();

    let (_release, pass) = hold(&a, Job::Reconcile).await;
    assert!(!runs(&b, Job::Reconcile).await);
    pass.abort();
    assert!(pass.await.unwrap_err().is_cancelled());
    // The lock goes with its connection, which the pool closes in the background.
    let mut free = false;
    for _ in 0..50 {
        if runs(&b, Job::Reconcile).await {
            free = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        free,
        "the job was still held 5 s after A's pass was cut short"
    );

    // Replica B dies mid-pass: the database sees its connection end, as on a crash.
    let (_release, _pass) = hold(&b, Job::PruneEvents).await;
    assert!(!runs(&a, Job::PruneEvents).await);
    let superuser = sqlx::PgPool::connect(&db.pg.as_ref().unwrap().superuser)
        .await
        .unwrap();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_locks \
         WHERE locktype = 'advisory' AND granted \
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&superuser)
    .await
    .unwrap();
    assert_eq!(killed, 1, "one connection held the job");
    assert!(
        runs(&a, Job::PruneEvents).await,
        "the job is free once B is gone"
    );
    superuser.close().await;
}

/// SQLite serves one process: every pass runs.
#[tokio::test]
async fn on_sqlite_every_pass_runs() {
    let db = TestDb::new(Engine::Sqlite).await;
    let (release, pass) = hold(&db.store, Job::SweepSessions).await;
    assert!(runs(&db.store, Job::PruneEvents).await);
    release.send(()).unwrap();
    assert!(pass.await.unwrap());
}
