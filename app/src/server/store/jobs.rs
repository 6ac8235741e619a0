//! Periodic jobs that one replica at a time runs: several `portico serve` processes on one
//! PostgreSQL each schedule the session sweep, the event pruner and reconciliation, and each
//! pass first asks the database whether another replica is already running it. No leader is
//! elected: whoever takes the job's advisory lock runs the pass, the others skip it.

use super::{Pool, Result, Store};
use std::future::Future;

/// A job that must not run on two replicas at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Deleting expired sessions, embed tokens and single sign-ons.
    SweepSessions,
    /// Deleting events past their retention.
    PruneEvents,
    /// A pass over the control plane's list of instances.
    Reconcile,
    /// Deleting webhook messages past their retention.
    PruneWebhooks,
}

impl Job {
    /// The job's advisory lock key: "portico" in ASCII, then the job's number.
    fn key(self) -> i64 {
        const BASE: i64 = 0x706f_7274_6963_6f00;
        BASE | match self {
            Job::SweepSessions => 1,
            Job::PruneEvents => 2,
            Job::Reconcile => 3,
            Job::PruneWebhooks => 4,
        }
    }
}

impl Store {
    /// Runs `pass` unless another replica is running `job` right now; `None` when it was
    /// skipped.
    ///
    /// On PostgreSQL the pass holds a session-level advisory lock on a connection of its own for
    /// as long as it runs, and unlocks it when done. That connection is then closed rather than
    /// returned to the pool, so the lock ends with it even if the pass is cancelled half-way
    /// (the process shutting down), and a replica that dies mid-pass releases the job with its
    /// connection. SQLite
    /// serves one process, which runs every pass.
    pub async fn exclusively<T>(
        &self,
        job: Job,
        pass: impl Future<Output = T>,
    ) -> Result<Option<T>> {
        let Pool::Postgres(pool) = &self.pool else {
            return Ok(Some(pass.await));
        };
        let mut conn = pool.acquire().await?;
        conn.close_on_drop();
        let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(job.key())
            .fetch_one(&mut *conn)
            .await?;
        if !mine {
            tracing::debug!(?job, "another replica is running this job");
            return Ok(None);
        }
        let out = pass.await;
        // At once, for whichever replica is next; should this fail, closing the connection
        // (on drop) releases the lock all the same, only a moment later.
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(job.key())
            .execute(&mut *conn)
            .await;
        if let Err(e) = unlocked {
            tracing::debug!(?job, error = %e, "advisory unlock failed; the lock ends with its connection");
        }
        Ok(Some(out))
    }
}
