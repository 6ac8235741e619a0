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
//!
//! The counts are kept in the database (`attempt_window`), so replicas on one PostgreSQL share
//! them, and a restart forgets nothing.

use super::store::{millis, Counted, Counter, Store, StoreError};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::time::Duration;

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

impl Client {
    /// The client as a counter's key names it.
    fn tag(self) -> String {
        match self {
            Client::V4(a) => format!("4:{}", std::net::Ipv4Addr::from(a)),
            Client::V6Net(n) => format!("6:{}", hex(&n)),
            Client::Unknown => "?".to_owned(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A counter's key: a hash of what it counts, so the table never holds an email address or an
/// IP, and keys of different kinds never meet.
fn key(kind: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for p in parts {
        h.update([0]);
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

fn wait(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Counts failed sign-ins, in the database (see [`Store::count_attempt`]): every replica on
/// one PostgreSQL counts against the same numbers, so five failures of one client at one
/// account are five however the load balancer spread them. Windows that have ended are
/// deleted by the session sweep.
pub struct SignInLimiter {
    limits: Limits,
    store: Store,
}

/// An attempt that was let through and already counted as a failure. Hand it back with
/// [`SignInLimiter::succeeded`] when the password was right; drop it otherwise.
#[derive(Debug)]
#[must_use = "a correct password must give the reservation back"]
pub struct Reservation {
    /// This client's failures at this account.
    pair: String,
    /// The client's failures across accounts and the account's across clients.
    totals: Vec<String>,
    /// How long to hold the attempt before checking the password.
    pub delay: Duration,
}

impl SignInLimiter {
    pub fn new(store: Store, limits: Limits) -> Self {
        SignInLimiter { limits, store }
    }

    /// Reserves one attempt at `account` from `addr` at `now` (ms since the epoch), counting
    /// it as a failure now. `Ok(Err(wait))` when this client may not try this account (or any
    /// account) until `wait` has passed; nothing is counted then.
    pub async fn reserve(
        &self,
        addr: Option<IpAddr>,
        account: &str,
        now: i64,
    ) -> Result<Result<Reservation, Duration>, StoreError> {
        let client = Client::of(addr);
        let l = self.limits;
        let tag = client.tag();
        let pair = key("sign-in:account+client", &[account, &tag]);
        let by_client = key("sign-in:client", &[&tag]);
        let by_account = key("sign-in:account", &[account]);
        let refusing = |k: &str, limit: Limit| Counter {
            key: k.to_owned(),
            refuse_at: Some(limit.failures),
            window_ms: millis(limit.window),
        };
        // Kinds always in this order (see `count_attempt`).
        let mut counters = vec![refusing(&pair, l.per_account_client)];
        // Without an address there is no client to hold back across accounts.
        if client != Client::Unknown {
            counters.push(refusing(&by_client, l.per_client));
        }
        counters.push(Counter {
            key: by_account.clone(),
            refuse_at: None,
            window_ms: millis(l.delay_after.window),
        });
        let counts = match self.store.count_attempt(&counters, now).await? {
            Counted::Refused { wait_ms } => return Ok(Err(wait(wait_ms))),
            Counted::Yes(counts) => counts,
        };
        let failures = counts.last().copied().unwrap_or(0);
        let mut totals = vec![by_account];
        if client != Client::Unknown {
            totals.push(by_client);
        }
        Ok(Ok(Reservation {
            pair,
            totals,
            delay: progressive_delay(failures, l.delay_after.failures),
        }))
    }

    /// The password was right: the attempt is not a failure, and this client's earlier
    /// failures at this account are forgiven. (The client's count across accounts keeps its
    /// other failures.)
    pub async fn succeeded(&self, r: Reservation) -> Result<(), StoreError> {
        self.store.forgive_attempt(&[r.pair], &r.totals).await
    }
}

/// Counts one kind of request per client in a window, such as single sign-ons started (each
/// writes a row before anyone has signed in). In the database, like [`SignInLimiter`].
pub struct ClientLimiter {
    kind: &'static str,
    limit: Limit,
    store: Store,
}

impl ClientLimiter {
    pub fn new(store: Store, kind: &'static str, limit: Limit) -> Self {
        ClientLimiter { kind, limit, store }
    }

    /// Single sign-ons a client may start: 60 per 10 minutes.
    pub fn sso_starts(store: Store) -> Self {
        ClientLimiter::new(
            store,
            "sso-start:client",
            Limit {
                failures: 60,
                window: Duration::from_secs(10 * 60),
            },
        )
    }

    /// Counts this request at `now` (ms since the epoch); `Ok(Err(wait))` (counting nothing)
    /// when the client has used up the window.
    pub async fn hit(
        &self,
        addr: Option<IpAddr>,
        now: i64,
    ) -> Result<Result<(), Duration>, StoreError> {
        let counter = Counter {
            key: key(self.kind, &[&Client::of(addr).tag()]),
            refuse_at: Some(self.limit.failures),
            window_ms: millis(self.limit.window),
        };
        Ok(match self.store.count_attempt(&[counter], now).await? {
            Counted::Yes(_) => Ok(()),
            Counted::Refused { wait_ms } => Err(wait(wait_ms)),
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn many_failures_at_one_account_slow_each_attempt_down_to_a_cap() {
        let secs: Vec<u64> = (1..=12)
            .map(|n| progressive_delay(n, 6).as_secs())
            .collect();
        assert_eq!(secs, [0, 0, 0, 0, 0, 0, 1, 2, 4, 8, 8, 8]);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        assert_eq!(
            Client::of(ip("2001:db8:1:2::1")),
            Client::of(ip("2001:db8:1:2:ffff::1"))
        );
        assert_ne!(
            Client::of(ip("2001:db8:1:2::1")),
            Client::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            Client::of(ip("::ffff:192.0.2.1")),
            Client::of(ip("192.0.2.1"))
        );
    }

    #[test]
    fn a_key_holds_no_address_or_email() {
        let k = key(
            "sign-in:account+client",
            &["owner@x.test", &Client::of(ip("192.0.2.1")).tag()],
        );
        assert_eq!(k.len(), 64);
        assert!(!k.contains("x.test") && !k.contains("192"));
        // Parts are kept apart: ("ab", "c") is not ("a", "bc").
        assert_ne!(key("k", &["ab", "c"]), key("k", &["a", "bc"]));
    }
}
