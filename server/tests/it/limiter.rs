//! The sign-in limiter's counts, on both engines: who is refused and for how long, what a
//! correct password forgives, and that replicas on one PostgreSQL count together.

use crate::common::{Engine, TestDb};
use app::server::limiter::{ClientLimiter, Limit, Limits, SignInLimiter};
use app::server::store::Store;
use std::net::IpAddr;
use std::time::Duration;

const MINUTE: i64 = 60_000;
const T0: i64 = 1_800_000_000_000;

fn limiter(store: &Store) -> SignInLimiter {
    let minute = |failures| Limit {
        failures,
        window: Duration::from_secs(60),
    };
    SignInLimiter::new(
        store.clone(),
        Limits {
            per_account_client: minute(3),
            per_client: minute(5),
            delay_after: minute(6),
        },
    )
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// One attempt with a wrong password: `Err(wait)` when refused.
async fn fail(
    l: &SignInLimiter,
    addr: &str,
    account: &str,
    now: i64,
) -> Result<Duration, Duration> {
    let addr = if addr.is_empty() { None } else { ip(addr) };
    l.reserve(addr, account, now)
        .await
        .expect("the store answers")
        .map(|r| r.delay)
}

async fn a_client_is_refused_an_account_until_the_window_ends(engine: Engine) {
    let db = TestDb::new(engine).await;
    let l = limiter(&db.store);
    for _ in 0..3 {
        assert!(fail(&l, "10.0.0.1", "a@x.test", T0).await.is_ok());
    }
    let wait = fail(&l, "10.0.0.1", "a@x.test", T0 + 20_000)
        .await
        .unwrap_err();
    assert_eq!(
        wait,
        Duration::from_secs(40),
        "until the window that began at T0 ends"
    );
    assert!(
        fail(&l, "10.0.0.1", "b@x.test", T0).await.is_ok(),
        "another account"
    );
    assert!(
        fail(&l, "10.0.0.2", "a@x.test", T0).await.is_ok(),
        "another client"
    );
    assert!(
        fail(&l, "10.0.0.1", "a@x.test", T0 + MINUTE).await.is_ok(),
        "a new window"
    );
    // Ended windows are swept; the ones still open are kept.
    let swept = db
        .store
        .delete_ended_attempt_windows(T0 + MINUTE)
        .await
        .unwrap();
    assert!(swept >= 2, "{swept}");
    assert!(fail(&l, "10.0.0.1", "a@x.test", T0 + MINUTE).await.is_ok());
    assert!(fail(&l, "10.0.0.1", "a@x.test", T0 + MINUTE).await.is_ok());
    assert!(fail(&l, "10.0.0.1", "a@x.test", T0 + MINUTE).await.is_err());
}

async fn a_correct_password_forgives_that_clients_failures_at_the_account(engine: Engine) {
    let db = TestDb::new(engine).await;
    let l = limiter(&db.store);
    for _ in 0..2 {
        assert!(fail(&l, "", "a@x.test", T0).await.is_ok());
    }
    let right = l.reserve(None, "a@x.test", T0).await.unwrap().unwrap();
    l.succeeded(right).await.unwrap();
    for _ in 0..3 {
        assert!(fail(&l, "", "a@x.test", T0).await.is_ok());
    }
    assert!(fail(&l, "", "a@x.test", T0).await.is_err());
}

async fn a_client_is_refused_after_failures_across_accounts(engine: Engine) {
    let db = TestDb::new(engine).await;
    let l = limiter(&db.store);
    for i in 0..5 {
        assert!(fail(&l, "10.0.0.2", &format!("u{i}@x.test"), T0)
            .await
            .is_ok());
    }
    assert!(fail(&l, "10.0.0.2", "fresh@x.test", T0).await.is_err());
    assert!(fail(&l, "10.0.0.3", "fresh@x.test", T0).await.is_ok());
    // One IPv6 /64 is one client.
    for i in 0..5 {
        let addr = format!("2001:db8:1:2::{i:x}");
        assert!(fail(&l, &addr, &format!("v{i}@x.test"), T0).await.is_ok());
    }
    assert!(fail(&l, "2001:db8:1:2:ffff::1", "fresh@x.test", T0)
        .await
        .is_err());
    assert!(fail(&l, "2001:db8:1:3::1", "fresh@x.test", T0)
        .await
        .is_ok());
}

async fn many_clients_at_one_account_are_slowed_not_refused(engine: Engine) {
    let db = TestDb::new(engine).await;
    let l = limiter(&db.store);
    let mut secs = Vec::new();
    for i in 0..12 {
        let delay = fail(&l, &format!("10.1.0.{i}"), "a@x.test", T0)
            .await
            .unwrap();
        secs.push(delay.as_secs());
    }
    assert_eq!(secs, [0, 0, 0, 0, 0, 0, 1, 2, 4, 8, 8, 8]);
}

async fn sso_starts_are_limited_per_client(engine: Engine) {
    let db = TestDb::new(engine).await;
    let l = ClientLimiter::sso_starts(db.store.clone());
    for _ in 0..60 {
        assert_eq!(l.hit(ip("10.0.0.1"), T0).await.unwrap(), Ok(()));
    }
    assert_eq!(
        l.hit(ip("10.0.0.1"), T0 + MINUTE).await.unwrap(),
        Err(Duration::from_secs(9 * 60))
    );
    assert_eq!(l.hit(ip("10.0.0.2"), T0).await.unwrap(), Ok(()));
    assert_eq!(
        l.hit(ip("10.0.0.1"), T0 + 10 * MINUTE).await.unwrap(),
        Ok(())
    );
}

/// Attempts racing each other are counted one by one, on both engines.
async fn attempts_in_parallel_cannot_outrun_the_count(engine: Engine) {
    let db = TestDb::new(engine).await;
    let l = limiter(&db.store);
    let attempts = (0..12).map(|_| fail(&l, "10.0.0.9", "a@x.test", T0));
    let let_through = futures::future::join_all(attempts)
        .await
        .iter()
        .filter(|r| r.is_ok())
        .count();
    assert_eq!(let_through, 3);
}

/// Two replicas on one PostgreSQL, each with its own limiter: a client guessing through both
/// gets three guesses in all, not three at each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_count_together() {
    let db = TestDb::new(Engine::Postgres).await;
    let other = Store::connect(&db.pg.as_ref().unwrap().app).await.unwrap();
    let (a, b) = (limiter(&db.store), limiter(&other));
    assert!(fail(&a, "10.0.0.1", "a@x.test", T0).await.is_ok());
    assert!(fail(&b, "10.0.0.1", "a@x.test", T0).await.is_ok());
    assert!(fail(&a, "10.0.0.1", "a@x.test", T0).await.is_ok());
    assert!(fail(&b, "10.0.0.1", "a@x.test", T0).await.is_err());
    assert!(fail(&a, "10.0.0.1", "a@x.test", T0).await.is_err());
    other.close().await;
}

on_both_engines!(
    a_client_is_refused_an_account_until_the_window_ends,
    a_correct_password_forgives_that_clients_failures_at_the_account,
    a_client_is_refused_after_failures_across_accounts,
    many_clients_at_one_account_are_slowed_not_refused,
    sso_starts_are_limited_per_client,
    attempts_in_parallel_cannot_outrun_the_count,
);
