//! Password hashing with argon2id, bounded: each hash takes ~19 MiB and tens of milliseconds
//! of a core, so only as many run at once as there are cores; the rest queue for a while and
//! are then refused as busy, instead of exhausting memory.
//!
//! Checking a password for an email with no account (or an account without a password) does
//! the same work as a wrong password: one verification, against a decoy hash made once.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long a request waits for a free hasher before it is refused as busy.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Every hasher was busy for the whole queue timeout.
    #[error("every password hasher is busy")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// The portal's password hasher; one per server, shared by every sign-in path.
pub struct Passwords {
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    /// Made on first use (or at start-up by [`Passwords::warm_up`]), then reused.
    decoy: Arc<OnceLock<String>>,
    evaluations: Arc<AtomicU64>,
    running: Arc<AtomicUsize>,
    most_running: Arc<AtomicUsize>,
}

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords::new(cores, QUEUE_TIMEOUT)
    }
}

impl Passwords {
    /// At most `concurrency` hashes at once; others wait up to `queue_timeout`.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Self {
        Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_timeout,
            decoy: Arc::default(),
            evaluations: Arc::default(),
            running: Arc::default(),
            most_running: Arc::default(),
        }
    }

    /// Makes the decoy hash now, so the first sign-in for an unknown email costs no more
    /// than any other.
    pub async fn warm_up(&self) {
        let decoy = self.decoy.clone();
        let _ = tokio::task::spawn_blocking(move || {
            decoy.get_or_init(make_decoy);
        })
        .await;
    }

    /// Runs `work` (one argon2 evaluation) on the blocking pool once a hasher is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&str) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        let (decoy, evaluations) = (self.decoy.clone(), self.evaluations.clone());
        let (running, most) = (self.running.clone(), self.most_running.clone());
        tokio::task::spawn_blocking(move || {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            let decoy = decoy.get_or_init(make_decoy);
            evaluations.fetch_add(1, Ordering::Relaxed);
            let out = work(decoy);
            running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            out
        })
        .await
        .map_err(|e| PasswordError::Failed(e.to_string()))
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        self.run(move |_| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| PasswordError::Failed(e.to_string()))
        })
        .await?
    }

    /// Checks a password against a stored hash. With none (no such account, or an account
    /// without a password) it verifies against the decoy, so it takes the same time, and
    /// answers false.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<bool, PasswordError> {
        self.run(move |decoy| {
            let hash = stored.as_deref().unwrap_or(decoy);
            let ok = PasswordHash::new(hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false);
            ok && stored.is_some()
        })
        .await
    }

    /// Argon2 evaluations run so far (hashes and verifications, the decoy's making excluded).
    pub fn evaluations(&self) -> u64 {
        self.evaluations.load(Ordering::Relaxed)
    }

    /// The most evaluations that ever ran at once.
    pub fn most_at_once(&self) -> usize {
        self.most_running.load(Ordering::SeqCst)
    }
}

/// A real argon2id hash of a random password: verifying against it costs what any check does.
fn make_decoy() -> String {
    let salt = SaltString::generate(&mut OsRng);
    let password = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_str().as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_the_right_password() {
        let p = Passwords::default();
        let hash = p.hash("portico-demo".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(p
            .verify("portico-demo".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!p.verify("portico-dem0".into(), Some(hash)).await.unwrap());
        assert!(!p.verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_account_costs_exactly_one_verification_like_a_known_one() {
        let p = Passwords::default();
        let hash = p.hash("right".into()).await.unwrap();
        let before = p.evaluations();
        assert!(!p.verify("wrong".into(), Some(hash)).await.unwrap());
        let known = p.evaluations() - before;
        let before = p.evaluations();
        assert!(!p.verify("wrong".into(), None).await.unwrap());
        let unknown = p.evaluations() - before;
        assert_eq!((known, unknown), (1, 1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_allowed() {
        let p = Arc::new(Passwords::new(2, Duration::from_secs(60)));
        p.warm_up().await;
        let checks: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move { p.verify("x".into(), None).await })
            })
            .collect();
        for c in checks {
            assert!(!c.await.unwrap().unwrap());
        }
        assert_eq!(p.evaluations(), 8);
        assert!(p.most_at_once() <= 2, "{}", p.most_at_once());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_check_that_waits_too_long_for_a_hasher_is_refused_as_busy() {
        let p = Arc::new(Passwords::new(1, Duration::from_millis(1)));
        p.warm_up().await;
        let checks: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                tokio::spawn(async move { p.verify("x".into(), None).await })
            })
            .collect();
        let mut busy = 0;
        for c in checks {
            if matches!(c.await.unwrap(), Err(PasswordError::Busy)) {
                busy += 1;
            }
        }
        assert!(
            busy >= 1,
            "with one hasher and no patience, some checks are refused"
        );
    }
}
