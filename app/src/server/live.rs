//! Live updates: one server-sent event stream per browser tab, `GET /events`.
//!
//! Changes are written to the tenant's event log in the transaction that makes them (see
//! `store::events`). One dispatcher per process hears that a tenant's log grew (PostgreSQL's
//! `NOTIFY`, or on SQLite the store's own channel), reads the new events once, and fans them out
//! in memory to that tenant's streams. Each stream keeps the number of the last event it saw:
//! it skips what it has seen, reads from the log whatever it did not hear (a gap, a lagging
//! channel, a reconnecting client's `Last-Event-ID`), and so delivers every event exactly once
//! and in order. A client that asks for events older than the log keeps is sent `snapshot`
//! instead: re-read everything.
//!
//! A stream sends a member only their own tenant's events that their role may see, and closes
//! when their session ends, their membership or role changes, or the server shuts down.

use super::auth;
use super::metrics::Metrics;
use super::state::AppState;
use super::store::{EventRecord, Job, Notice, Store, TenantScope};
use crate::domain::{Role, TenantId};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Where the stream is served.
pub const STREAM_PATH: &str = "/events";
/// How long the event log keeps an event: a client away longer gets a snapshot.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// Events read from the log at a time.
const READ_LIMIT: i64 = 500;
/// Events a tenant's channel holds for streams that have not taken them yet; a stream that
/// falls further behind reads the log instead.
const CHANNEL_DEPTH: usize = 256;
/// How often an open stream checks that its session still holds, without an event telling it
/// to (idle and absolute expiry).
const RECHECK: Duration = Duration::from_secs(30);
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The process's fan-out of committed events to open streams.
pub struct Live {
    store: Store,
    metrics: Arc<Metrics>,
    tenants: Mutex<HashMap<String, broadcast::Sender<Arc<EventRecord>>>>,
    closing: watch::Sender<bool>,
    streams: AtomicUsize,
    /// Woken at every notice of committed events (webhook deliveries wait on it).
    committed: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("streams", &self.streams())
            .finish()
    }
}

impl Live {
    /// Starts this process's dispatcher; it runs until [`Live::close`].
    pub fn start(store: Store, metrics: Arc<Metrics>) -> Arc<Live> {
        let live = Arc::new(Live {
            store,
            metrics,
            tenants: Mutex::default(),
            closing: watch::channel(false).0,
            streams: AtomicUsize::new(0),
            committed: Arc::default(),
        });
        tokio::spawn(live.clone().dispatch());
        live
    }

    /// Stops the dispatcher and ends every open stream (so a graceful shutdown is not held
    /// up by streams that would never end by themselves).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Woken whenever this process hears that events were committed, on any replica.
    pub fn committed(&self) -> Arc<tokio::sync::Notify> {
        self.committed.clone()
    }

    /// Streams open in this process now.
    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }

    fn subscribe(&self, tenant: &str) -> broadcast::Receiver<Arc<EventRecord>> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the channels of tenants nobody watches any more.
        tenants.retain(|_, tx| tx.receiver_count() > 0);
        tenants
            .entry(tenant.to_owned())
            .or_insert_with(|| broadcast::channel(CHANNEL_DEPTH).0)
            .subscribe()
    }

    /// The channel of a tenant someone watches.
    fn watched(&self, tenant: &str) -> Option<broadcast::Sender<Arc<EventRecord>>> {
        let tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        tenants
            .get(tenant)
            .filter(|tx| tx.receiver_count() > 0)
            .cloned()
    }

    async fn dispatch(self: Arc<Self>) {
        let mut closing = self.closing.subscribe();
        // The last event sent on each tenant's channel.
        let mut heads: HashMap<String, i64> = HashMap::new();
        if let Some(mut notices) = self.store.local_notices() {
            loop {
                tokio::select! {
                    _ = closed(&mut closing) => return,
                    n = notices.recv() => match n {
                        Ok(n) => self.deliver(&mut heads, n).await,
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            self.catch_up(&mut heads).await;
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
        }
        // PostgreSQL: LISTEN first, then read what the log holds, so nothing committed while
        // the listener was away is missed; a lost connection starts over.
        loop {
            let mut listener = match self.store.listen_events().await {
                Ok(Some(l)) => l,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = ?e, "cannot listen for events; retrying");
                    tokio::select! {
                        _ = closed(&mut closing) => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            self.catch_up(&mut heads).await;
            loop {
                tokio::select! {
                    _ = closed(&mut closing) => return,
                    n = listener.try_recv() => match n {
                        Ok(Some(n)) => {
                            if let Some(n) = Notice::parse(n.payload()) {
                                self.deliver(&mut heads, n).await;
                            }
                        }
                        Ok(None) => {
                            tracing::warn!("the event listener lost its connection; reconnecting");
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(error = ?e, "the event listener failed; reconnecting");
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Sends the tenant's events up to the notice's on its channel, if anyone watches it.
    async fn deliver(&self, heads: &mut HashMap<String, i64>, n: Notice) {
        self.committed.notify_waiters();
        let head = heads.entry(n.tenant_id.clone()).or_insert(n.seq - 1);
        if n.seq <= *head {
            return;
        }
        let Some(tx) = self.watched(&n.tenant_id) else {
            // Nobody to tell: a stream that opens later reads the log itself.
            *head = n.seq;
            return;
        };
        let Ok(tenant) = TenantId::parse(&n.tenant_id) else {
            return;
        };
        let scope = TenantScope::provider(tenant);
        while *head < n.seq {
            match self.store.events_after(&scope, *head, READ_LIMIT).await {
                Ok(events) if events.is_empty() => return,
                Ok(events) => {
                    for e in events {
                        *head = e.seq;
                        let lag = super::store::now_millis().saturating_sub(e.created_at);
                        let _ = tx.send(Arc::new(e));
                        self.metrics
                            .fanned_out(Duration::from_millis(u64::try_from(lag).unwrap_or(0)));
                    }
                }
                Err(e) => {
                    // The next notice retries; streams that see a gap read the log.
                    tracing::warn!(error = ?e, tenant = %n.tenant_id, "cannot read new events");
                    return;
                }
            }
        }
    }

    /// After a lost listener or a lagging channel: every tenant's log as it stands now.
    async fn catch_up(&self, heads: &mut HashMap<String, i64>) {
        match self.store.event_heads().await {
            Ok(all) => {
                for (tenant, last) in all {
                    let tenant = tenant.to_string();
                    let known = heads.get(&tenant).copied();
                    match known {
                        Some(h) if h < last => {
                            let n = Notice {
                                tenant_id: tenant,
                                seq: last,
                            };
                            self.deliver(heads, n).await;
                        }
                        Some(_) => {}
                        // Never heard of: streams of that tenant read the log on a gap.
                        None => {
                            heads.insert(tenant, last);
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = ?e, "cannot read where the event logs stand"),
        }
    }
}

/// `GET /events`: the signed-in member's live stream. 401 without a session.
pub async fn stream(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let request_id = super::security::request_id(&headers).to_owned();
    let session = match auth::current_session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return (StatusCode::UNAUTHORIZED, "Please sign in to continue.").into_response()
        }
        Err(e) => {
            tracing::error!(%request_id, error = ?e, "cannot open the event stream");
            return super::security::internal_error_response(&request_id);
        }
    };
    let since = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    match Watch::open(&state, &session, since).await {
        Ok(watch) => {
            let events = futures::stream::unfold(watch, |mut w| async move {
                w.next().await.map(|e| (Ok::<_, Infallible>(e), w))
            });
            let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
            // Proxies that buffer responses (nginx) pass this one through as it is written.
            ([("x-accel-buffering", "no")], sse).into_response()
        }
        Err(e) => {
            tracing::error!(%request_id, error = ?e, "cannot open the event stream");
            super::security::internal_error_response(&request_id)
        }
    }
}

/// What woke a waiting stream.
enum Woke {
    Closing,
    Recheck,
    Event(Result<Arc<EventRecord>, broadcast::error::RecvError>),
}

/// Resolves once `closing` says so (or its sender is gone).
async fn closed(closing: &mut watch::Receiver<bool>) {
    let _ = closing.wait_for(|c| *c).await;
}

/// One open stream.
struct Watch {
    state: AppState,
    live: Arc<Live>,
    scope: TenantScope,
    session_id: String,
    user_id: String,
    role: Role,
    may_read_audit: bool,
    rx: broadcast::Receiver<Arc<EventRecord>>,
    /// The last event this stream has seen (sent, or not the member's to see).
    last: i64,
    queue: VecDeque<Arc<EventRecord>>,
    /// The last read of the log was a full one: there may be more to read.
    more: bool,
    /// `hello` or `snapshot`, sent before any event.
    first: Option<Event>,
    closing: watch::Receiver<bool>,
    recheck: tokio::time::Interval,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.live.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Watch {
    async fn open(
        state: &AppState,
        session: &auth::Session,
        since: Option<i64>,
    ) -> Result<Watch, super::store::StoreError> {
        let live = state.live.clone();
        let scope = session.scope();
        // Subscribe before reading where the log stands: nothing falls between the two.
        let rx = live.subscribe(scope.tenant_id().as_str());
        live.streams.fetch_add(1, Ordering::Relaxed);
        let mut w = Watch {
            state: state.clone(),
            live: live.clone(),
            session_id: session.token_hash.clone(),
            user_id: session.record.user_id.to_string(),
            role: session.record.role,
            may_read_audit: state.provider.audit.may_read(session.record.role),
            scope,
            rx,
            last: 0,
            queue: VecDeque::new(),
            more: false,
            first: None,
            closing: live.closing.subscribe(),
            recheck: tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK),
        };
        let head = state.store.event_head(&w.scope).await?;
        match since {
            Some(since) if replayable(since, head.oldest, head.last) => {
                w.last = since;
                w.fill().await?;
                // Tells the client it is live; carries no id, so its position stays where
                // the replay leaves it.
                w.first = Some(Event::default().event("hello").data("{}"));
            }
            Some(_) => {
                w.last = head.last;
                w.first = Some(
                    Event::default()
                        .event("snapshot")
                        .id(head.last.to_string())
                        .data("{}"),
                );
            }
            None => {
                w.last = head.last;
                w.first = Some(
                    Event::default()
                        .event("hello")
                        .id(head.last.to_string())
                        .data("{}"),
                );
            }
        }
        Ok(w)
    }

    /// The next event to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(first) = self.first.take() {
                return Some(first);
            }
            if *self.closing.borrow() {
                return None;
            }
            while let Some(e) = self.queue.pop_front() {
                if e.seq <= self.last {
                    continue;
                }
                self.last = e.seq;
                if e.kind.ends_sessions_of()
                    && e.user_id.as_deref() == Some(self.user_id.as_str())
                    && !self.still_holds().await
                {
                    return None;
                }
                if e.kind.visible_to(self.may_read_audit) {
                    return Some(to_sse(&e));
                }
            }
            // A long replay is read a page at a time.
            if self.more {
                if self.fill().await.is_err() {
                    return None;
                }
                continue;
            }
            let woke = tokio::select! {
                _ = closed(&mut self.closing) => Woke::Closing,
                _ = self.recheck.tick() => Woke::Recheck,
                r = self.rx.recv() => Woke::Event(r),
            };
            match woke {
                Woke::Closing => return None,
                Woke::Recheck => {
                    if !self.still_holds().await {
                        return None;
                    }
                }
                Woke::Event(Ok(e)) if e.seq <= self.last => {}
                Woke::Event(Ok(e)) if e.seq == self.last + 1 => self.queue.push_back(e),
                // A gap, or a channel that moved on without us: the log has it all.
                Woke::Event(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {
                    if self.fill().await.is_err() {
                        return None;
                    }
                }
                Woke::Event(Err(broadcast::error::RecvError::Closed)) => return None,
            }
        }
    }

    /// Queues what the log holds after the last event seen.
    async fn fill(&mut self) -> Result<(), super::store::StoreError> {
        let events = self
            .state
            .store
            .events_after(&self.scope, self.last, READ_LIMIT)
            .await?;
        self.more = i64::try_from(events.len()).unwrap_or(i64::MAX) >= READ_LIMIT;
        self.queue.extend(events.into_iter().map(Arc::new));
        Ok(())
    }

    /// Whether the session is still live, its user still a member with the same role. Only
    /// looks: a stream never keeps a session from going idle.
    async fn still_holds(&self) -> bool {
        let now = super::store::now_millis();
        let idle = i64::try_from(self.state.settings.session_idle.as_millis()).unwrap_or(i64::MAX);
        match self
            .state
            .store
            .peek_session(&self.session_id, now, now.saturating_sub(idle))
            .await
        {
            Ok(Some(record)) => record.role == self.role,
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = ?e, "cannot check a stream's session; closing it");
                false
            }
        }
    }
}

/// Whether a client that last saw event `since` can be sent what followed from the log:
/// nothing after it has been pruned, and it is not from a log this one never wrote.
fn replayable(since: i64, oldest: Option<i64>, last: i64) -> bool {
    if since > last || since < 0 {
        return false;
    }
    since == last || oldest.is_some_and(|o| since >= o - 1)
}

/// An event as the stream sends it: ids only.
fn to_sse(e: &EventRecord) -> Event {
    let data = serde_json::json!({
        "instance_id": e.instance_id,
        "operation_id": e.operation_id,
    });
    Event::default()
        .id(e.seq.to_string())
        .event(e.kind.as_str())
        .data(data.to_string())
}

/// Removes events past the retention, every `every`, until `shutdown`. With several replicas,
/// one at a time prunes ([`Job::PruneEvents`]).
pub async fn prune(store: Store, every: Duration, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        let cutoff =
            super::store::now_millis() - i64::try_from(RETENTION.as_millis()).unwrap_or(i64::MAX);
        match store
            .exclusively(Job::PruneEvents, store.prune_events(cutoff))
            .await
        {
            Ok(Some(Ok(0)) | None) => {}
            Ok(Some(Ok(n))) => tracing::info!(removed = n, "removed events past their retention"),
            Ok(Some(Err(e))) | Err(e) => tracing::warn!(error = ?e, "event retention sweep failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::replayable;

    #[test]
    fn a_client_is_replayed_only_what_the_log_still_holds() {
        // Log holds 5..=9.
        assert!(replayable(9, Some(5), 9), "up to date");
        assert!(replayable(4, Some(5), 9), "missed 5..=9, all kept");
        assert!(replayable(7, Some(5), 9));
        assert!(!replayable(3, Some(5), 9), "4 was pruned");
        assert!(
            !replayable(10, Some(5), 9),
            "from a log this one never wrote"
        );
        assert!(!replayable(-1, Some(5), 9));
        // Everything pruned: only an up-to-date client is replayable.
        assert!(replayable(9, None, 9));
        assert!(!replayable(8, None, 9));
        // A new tenant.
        assert!(replayable(0, None, 0));
    }
}
