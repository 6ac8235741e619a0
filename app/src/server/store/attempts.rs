//! Attempts counted per key in a time window (the sign-in limiter's counts; see `limiter`). In
//! the database, so every replica counts against the same numbers.

use super::{Result, Sql, Store};

/// One count an attempt adds to.
#[derive(Debug, Clone)]
pub struct Counter {
    /// What is counted, as a hash (see `limiter`): never an email address or an IP.
    pub key: String,
    /// The attempt is refused when the window already holds this many; `None` only counts.
    pub refuse_at: Option<u32>,
    /// How long a window lasts from its first attempt, in milliseconds.
    pub window_ms: i64,
}

/// What counting an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// Counted: each counter's attempts in its window, this one included, in the order given.
    Yes(Vec<u32>),
    /// Refused, and counted nowhere: how long until the last full window ends, in milliseconds.
    Refused { wait_ms: i64 },
}

/// One more attempt in the key's window, or the first of a new window when it has ended. The
/// row stays locked until the transaction ends, so attempts at one key are counted one by one.
const COUNT: &str = "INSERT INTO attempt_window (key, attempts, ends_at) VALUES ($1, 1, $2) \
     ON CONFLICT (key) DO UPDATE SET \
       attempts = CASE WHEN attempt_window.ends_at <= $3 THEN 1 \
                       ELSE attempt_window.attempts + 1 END, \
       ends_at = CASE WHEN attempt_window.ends_at <= $3 THEN $2 \
                      ELSE attempt_window.ends_at END \
     RETURNING attempts, ends_at";

impl Store {
    /// Counts one attempt against every counter at once: either all of them count it, or, when
    /// a counter with `refuse_at` is full, none does. Callers list counters in one fixed order
    /// of kinds, so two attempts never wait on each other's rows in a cycle.
    pub async fn count_attempt(&self, counters: &[Counter], now: i64) -> Result<Counted> {
        let mut tx = self.begin().await?;
        let mut counts = Vec::with_capacity(counters.len());
        let mut wait_ms = None;
        for c in counters {
            let (attempts, ends_at): (i64, i64) = tx
                .conn()
                .fetch_one(
                    Sql::new(COUNT)
                        .bind(c.key.as_str())
                        .bind(now.saturating_add(c.window_ms))
                        .bind(now),
                )
                .await?;
            if c.refuse_at.is_some_and(|n| attempts > i64::from(n)) {
                wait_ms = wait_ms.max(Some(ends_at - now));
            }
            counts.push(u32::try_from(attempts).unwrap_or(u32::MAX));
        }
        if let Some(wait_ms) = wait_ms {
            tx.rollback().await?;
            return Ok(Counted::Refused { wait_ms });
        }
        tx.commit().await?;
        Ok(Counted::Yes(counts))
    }

    /// Counts one request against `key`'s window of `window_ms`, refused or not (a client
    /// that keeps sending while refused stays refused): how many the window holds now, and
    /// when it ends.
    pub async fn count_request(&self, key: &str, window_ms: i64, now: i64) -> Result<(u32, i64)> {
        let (attempts, ends_at): (i64, i64) = self
            .pooled()
            .await?
            .conn()
            .fetch_one(
                Sql::new(COUNT)
                    .bind(key)
                    .bind(now.saturating_add(window_ms))
                    .bind(now),
            )
            .await?;
        Ok((u32::try_from(attempts).unwrap_or(u32::MAX), ends_at))
    }

    /// Takes back an attempt: the `forget` windows go altogether, the `uncount` ones hold one
    /// attempt fewer.
    pub async fn forgive_attempt(&self, forget: &[String], uncount: &[String]) -> Result<()> {
        let mut tx = self.begin().await?;
        for key in forget {
            tx.conn()
                .execute(Sql::new("DELETE FROM attempt_window WHERE key = $1").bind(key))
                .await?;
        }
        for key in uncount {
            tx.conn()
                .execute(
                    Sql::new(
                        "UPDATE attempt_window SET attempts = attempts - 1 \
                         WHERE key = $1 AND attempts > 0",
                    )
                    .bind(key),
                )
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes windows that have ended (they count nothing any more); returns how many.
    pub async fn delete_ended_attempt_windows(&self, now: i64) -> Result<u64> {
        Ok(self
            .pooled()
            .await?
            .conn()
            .execute(Sql::new("DELETE FROM attempt_window WHERE ends_at <= $1").bind(now))
            .await?)
    }
}
