//! The sign-in limiter: how many password guesses an account and a client get.
//!
//! An attempt is *reserved* before the password is checked, and counted as a failure at once;
//! a correct password gives the reservation back. So requests sent in parallel cannot all slip
//! through between a check and a count.
//!
//! Limits are keyed so a stranger cannot lock the owner out:
//! - per account *and* client: a client that keeps guessing one account is refused, other
//!   clients (the owner's) are not;
//! - per client across accounts: a client spraying many accounts is refused;
//! - per account across all clients: past a threshold, each attempt waits a little longer
//!   (up to [`MAX_DELAY`]) before its password is checked. It slows many clients guessing one
//!   account together, and never refuses the owner.
//!
//! A client is its IPv4 address, or its IPv6 /64 (one subscriber's network: the rest of the
//! address is theirs to vary).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest an attempt is held back by the account's failures across all clients.
pub const MAX_DELAY: Duration = Duration::from_secs(8);

/// Failed sign-ins allowed per key and window before sign-in is refused until it ends.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub failures: u32,
    pub window: Duration,
}

impl Limit {
    const fn per_15_minutes(failures: u32) -> Limit {
        Limit {
            failures,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// The limits in force; [`Limits::default`] is what the portal uses.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// One client guessing one account.
    pub per_account_client: Limit,
    /// One client across all accounts.
    pub per_client: Limit,
    /// Failures of one account across all clients after which attempts are delayed.
    pub delay_after: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_account_client: Limit::per_15_minutes(5),
            per_client: Limit::per_15_minutes(20),
            delay_after: Limit::per_15_minutes(10),
        }
    }
}

/// A client as the limiter counts it: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    V4([u8; 4]),
    V6Net([u8; 8]),
    /// The address is not known (no peer address; tests driving the router directly).
    Unknown,
}

impl Client {
    pub fn of(addr: Option<IpAddr>) -> Client {
        match addr.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(a)) => Client::V4(a.octets()),
            Some(IpAddr::V6(a)) => {
                let mut net = [0u8; 8];
                net.copy_from_slice(&a.octets()[..8]);
                Client::V6Net(net)
            }
            None => Client::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    failures: u32,
    ends: Instant,
}

#[derive(Default)]
struct Counts {
    account_client: HashMap<(String, Client), Window>,
    client: HashMap<Client, Window>,
    account: HashMap<String, Window>,
}

/// Counts failed sign-ins. Memory stays bounded: at most `max_keys` entries per kind; when
/// full, expired entries go first, then the oldest.
pub struct SignInLimiter {
    limits: Limits,
    max_keys: usize,
    counts: Mutex<Counts>,
}

impl Default for SignInLimiter {
    fn default() -> Self {
        SignInLimiter::new(Limits::default(), 10_000)
    }
}

/// An attempt that was let through and already counted as a failure. Hand it back with
/// [`SignInLimiter::succeeded`] when the password was right; drop it otherwise.
#[derive(Debug)]
#[must_use = "a correct password must give the reservation back"]
pub struct Reservation {
    account: String,
    client: Client,
    /// How long to hold the attempt before checking the password.
    pub delay: Duration,
}

impl SignInLimiter {
    pub fn new(limits: Limits, max_keys: usize) -> Self {
        SignInLimiter {
            limits,
            max_keys: max_keys.max(1),
            counts: Mutex::new(Counts::default()),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves one attempt at `account` from `addr`, counting it as a failure now.
    /// `Err(wait)` when this client may not try this account (or any account) until `wait`
    /// has passed; nothing is counted then.
    pub fn reserve(
        &self,
        addr: Option<IpAddr>,
        account: &str,
        now: Instant,
    ) -> Result<Reservation, Duration> {
        let client = Client::of(addr);
        let account = account.to_owned();
        let l = self.limits;
        let mut c = self.counts();
        let pair = (account.clone(), client);
        let refused = [
            blocked(c.account_client.get(&pair), l.per_account_client, now),
            // Without an address there is no client to hold back across accounts.
            (client != Client::Unknown)
                .then(|| blocked(c.client.get(&client), l.per_client, now))
                .flatten(),
        ];
        if let Some(wait) = refused.into_iter().flatten().max() {
            return Err(wait);
        }
        let max = self.max_keys;
        bump(&mut c.account_client, pair, l.per_account_client, max, now);
        if client != Client::Unknown {
            bump(&mut c.client, client, l.per_client, max, now);
        }
        let failures = bump(&mut c.account, account.clone(), l.delay_after, max, now);
        Ok(Reservation {
            account,
            client,
            delay: progressive_delay(failures, l.delay_after.failures),
        })
    }

    /// The password was right: the attempt is not a failure, and this client's earlier
    /// failures at this account are forgiven. (The client's count across accounts keeps its
    /// other failures.)
    pub fn succeeded(&self, r: Reservation) {
        let mut c = self.counts();
        c.account_client.remove(&(r.account.clone(), r.client));
        if let Some(w) = c.client.get_mut(&r.client) {
            w.failures = w.failures.saturating_sub(1);
        }
        if let Some(w) = c.account.get_mut(&r.account) {
            w.failures = w.failures.saturating_sub(1);
        }
    }

    /// Entries held: (account and client, client, account).
    pub fn len(&self) -> (usize, usize, usize) {
        let c = self.counts();
        (c.account_client.len(), c.client.len(), c.account.len())
    }
}

/// Counts one kind of request per client in a window, such as single sign-ons started (each
/// writes a row before anyone has signed in).
pub struct ClientLimiter {
    limit: Limit,
    max_keys: usize,
    counts: Mutex<HashMap<Client, Window>>,
}

impl ClientLimiter {
    pub fn new(limit: Limit, max_keys: usize) -> Self {
        ClientLimiter {
            limit,
            max_keys: max_keys.max(1),
            counts: Mutex::default(),
        }
    }

    /// Single sign-ons a client may start: 60 per 10 minutes.
    pub fn sso_starts() -> Self {
        ClientLimiter::new(
            Limit {
                failures: 60,
                window: Duration::from_secs(10 * 60),
            },
            10_000,
        )
    }

    /// Counts this request; `Err(wait)` (counting nothing) when the client has used up the
    /// window.
    pub fn hit(&self, addr: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let client = Client::of(addr);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wait) = blocked(counts.get(&client), self.limit, now) {
            return Err(wait);
        }
        bump(&mut counts, client, self.limit, self.max_keys, now);
        Ok(())
    }
}

/// How long an attempt waits when its account has `failures` (this one included) across all
/// clients: nothing up to `after`, then 1 s, 2 s, 4 s … up to [`MAX_DELAY`].
fn progressive_delay(failures: u32, after: u32) -> Duration {
    match failures.checked_sub(after.saturating_add(1)) {
        None => Duration::ZERO,
        Some(n) => Duration::from_secs(1u64 << n.min(10)).min(MAX_DELAY),
    }
}

fn blocked(w: Option<&Window>, limit: Limit, now: Instant) -> Option<Duration> {
    w.filter(|w| w.ends > now && w.failures >= limit.failures)
        .map(|w| w.ends - now)
}

/// Counts one failure for `key`; returns its failures in the current window.
fn bump<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, Window>,
    key: K,
    limit: Limit,
    max_keys: usize,
    now: Instant,
) -> u32 {
    if !map.contains_key(&key) && map.len() >= max_keys {
        map.retain(|_, w| w.ends > now);
        if map.len() >= max_keys {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, w)| w.ends)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
    }
    let fresh = Window {
        failures: 0,
        ends: now + limit.window,
    };
    let w = map.entry(key).or_insert(fresh);
    if w.ends <= now {
        *w = fresh;
    }
    w.failures += 1;
    w.failures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max_keys: usize) -> SignInLimiter {
        let minute = |failures| Limit {
            failures,
            window: Duration::from_secs(60),
        };
        SignInLimiter::new(
            Limits {
                per_account_client: minute(3),
                per_client: minute(5),
                delay_after: minute(6),
            },
            max_keys,
        )
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_client_is_refused_an_account_after_its_failures_until_the_window_ends() {
        let l = limiter(100);
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(l.reserve(ip("10.0.0.1"), "a@x.test", t0).unwrap());
        }
        let wait = l.reserve(ip("10.0.0.1"), "a@x.test", t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(60));
        assert!(l.reserve(ip("10.0.0.1"), "b@x.test", t0).is_ok());
        assert!(l
            .reserve(ip("10.0.0.1"), "a@x.test", t0 + Duration::from_secs(61))
            .is_ok());
    }

    #[test]
    fn a_stranger_failing_does_not_lock_the_owner_out() {
        let l = limiter(100);
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(l.reserve(ip("203.0.113.9"), "owner@x.test", t0).unwrap());
        }
        assert!(l.reserve(ip("203.0.113.9"), "owner@x.test", t0).is_err());
        let owner = l.reserve(ip("198.51.100.2"), "owner@x.test", t0).unwrap();
        assert_eq!(owner.delay, Duration::ZERO);
        l.succeeded(owner);
    }

    #[test]
    fn reservations_are_counted_before_any_password_is_checked() {
        // Every reservation counts at once, so attempts racing each other cannot all pass.
        let l = limiter(100);
        let t0 = Instant::now();
        let held: Vec<_> = (0..10)
            .filter_map(|_| l.reserve(ip("10.0.0.1"), "a@x.test", t0).ok())
            .collect();
        assert_eq!(held.len(), 3);
    }

    #[test]
    fn success_forgives_the_clients_failures_at_that_account() {
        let l = limiter(100);
        let t0 = Instant::now();
        for _ in 0..2 {
            drop(l.reserve(None, "a@x.test", t0).unwrap());
        }
        l.succeeded(l.reserve(None, "a@x.test", t0).unwrap());
        for _ in 0..3 {
            drop(l.reserve(None, "a@x.test", t0).unwrap());
        }
        assert!(l.reserve(None, "a@x.test", t0).is_err());
    }

    #[test]
    fn a_client_is_refused_after_failures_across_accounts() {
        let l = limiter(100);
        let t0 = Instant::now();
        for i in 0..5 {
            drop(
                l.reserve(ip("10.0.0.2"), &format!("u{i}@x.test"), t0)
                    .unwrap(),
            );
        }
        assert!(l.reserve(ip("10.0.0.2"), "fresh@x.test", t0).is_err());
        assert!(l.reserve(ip("10.0.0.3"), "fresh@x.test", t0).is_ok());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let l = limiter(100);
        let t0 = Instant::now();
        for i in 0..3 {
            let addr = format!("2001:db8:1:2::{i:x}");
            drop(l.reserve(ip(&addr), "a@x.test", t0).unwrap());
        }
        assert!(l
            .reserve(ip("2001:db8:1:2:ffff::1"), "a@x.test", t0)
            .is_err());
        assert!(l.reserve(ip("2001:db8:1:3::1"), "a@x.test", t0).is_ok());
        assert_eq!(
            Client::of(ip("::ffff:192.0.2.1")),
            Client::of(ip("192.0.2.1"))
        );
    }

    #[test]
    fn many_clients_at_one_account_are_slowed_not_refused() {
        let l = limiter(100);
        let t0 = Instant::now();
        let delays: Vec<_> = (0..12)
            .map(|i| {
                l.reserve(ip(&format!("10.1.0.{i}")), "a@x.test", t0)
                    .unwrap()
                    .delay
            })
            .collect();
        let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [0, 0, 0, 0, 0, 0, 1, 2, 4, 8, 8, 8]);
    }

    #[test]
    fn a_client_limiter_refuses_past_its_window_and_starts_again_after() {
        let l = ClientLimiter::new(
            Limit {
                failures: 2,
                window: Duration::from_secs(60),
            },
            10,
        );
        let t0 = Instant::now();
        assert!(l.hit(ip("10.0.0.1"), t0).is_ok());
        assert!(l.hit(ip("10.0.0.1"), t0).is_ok());
        assert_eq!(l.hit(ip("10.0.0.1"), t0), Err(Duration::from_secs(60)));
        assert!(l.hit(ip("10.0.0.2"), t0).is_ok());
        assert!(l.hit(ip("10.0.0.1"), t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let l = limiter(50);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let ip = IpAddr::from(i.to_be_bytes());
            drop(l.reserve(Some(ip), &format!("u{i}@x.test"), t0));
        }
        let (pairs, clients, accounts) = l.len();
        assert!(
            pairs <= 50 && clients <= 50 && accounts <= 50,
            "{pairs} {clients} {accounts}"
        );
    }
}
