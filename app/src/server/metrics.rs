//! What an operator scrapes: `GET /metrics` in the Prometheus text format (version 0.0.4), on
//! the separate address `--metrics-addr` names, never on the portal's own. Each replica reports
//! its own requests, streams and fan-out; operation counts come from the shared database, so
//! every replica reports the same numbers (aggregate them with `max`, not `sum`).

use super::state::AppState;
use super::store::now_millis;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Histogram bucket bounds, in seconds.
const BOUNDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or under each bound (cumulative, as the format wants them).
    buckets: [u64; BOUNDS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bucket, bound) in self.buckets.iter_mut().zip(BOUNDS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    /// The `_bucket`, `_sum` and `_count` lines; `labels` are the series' own, `k="v",…`.
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (n, bound) in self.buckets.iter().zip(BOUNDS) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// A route, method and status, as requests are counted.
type RequestKey = (String, String, u16);

/// This process's counters. Labels come from a fixed set (routes as declared, never paths as
/// requested), so the number of series stays bounded whatever clients send.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    fanout: Mutex<Histogram>,
    events: AtomicU64,
    refusals: Mutex<BTreeMap<&'static str, u64>>,
}

/// Why an attempt was refused, as `portico_sign_in_refusals_total` labels it.
#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    /// Too many failed passwords for this client and account, or from this client.
    Password,
    /// Too many single sign-ons started by this client.
    SsoStarts,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// One answered request: `route` as the router declared it.
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        *lock(&self.requests)
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        lock(&self.latency)
            .entry(route.to_owned())
            .or_default()
            .observe(took);
    }

    /// An event handed to this process's streams `lag` after it was committed.
    pub fn fanned_out(&self, lag: Duration) {
        self.events.fetch_add(1, Ordering::Relaxed);
        lock(&self.fanout).observe(lag);
    }

    pub fn refused(&self, why: Refusal) {
        let label = match why {
            Refusal::Password => "password",
            Refusal::SsoStarts => "sso_starts",
        };
        *lock(&self.refusals).entry(label).or_default() += 1;
    }

    /// The text format, with `gauges` read at scrape time.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        family(
            &mut out,
            "portico_http_requests_total",
            "counter",
            "Requests answered, by route (as declared), method and status.",
        );
        for ((route, method, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "portico_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(route),
                escape(method)
            );
        }
        family(
            &mut out,
            "portico_http_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its response's head, by route. A live stream's \
             head goes out at once; its life is not counted.",
        );
        for (route, h) in lock(&self.latency).iter() {
            let labels = format!("route=\"{}\"", escape(route));
            h.write(&mut out, "portico_http_request_duration_seconds", &labels);
        }
        family(
            &mut out,
            "portico_operations",
            "gauge",
            "Operations by kind and state, in every tenant (from the database).",
        );
        for c in &gauges.operations {
            let _ = writeln!(
                out,
                "portico_operations{{operation=\"{}\",state=\"{}\"}} {}",
                escape(&c.kind),
                escape(&c.state),
                c.operations
            );
        }
        family(
            &mut out,
            "portico_operation_queue_depth",
            "gauge",
            "Operations waiting for a worker, in every tenant.",
        );
        let queued = gauges.operations.iter().filter(|c| c.state == "queued");
        let depth: i64 = queued.clone().map(|c| c.operations).sum();
        let _ = writeln!(out, "portico_operation_queue_depth {depth}");
        family(
            &mut out,
            "portico_operation_queue_oldest_age_seconds",
            "gauge",
            "How long the oldest waiting operation has waited; 0 when none waits.",
        );
        let oldest = queued.map(|c| c.oldest).min();
        let age = oldest.map_or(0.0, |t| (gauges.now - t).max(0) as f64 / 1000.0);
        let _ = writeln!(out, "portico_operation_queue_oldest_age_seconds {age}");
        family(
            &mut out,
            "portico_live_streams",
            "gauge",
            "Live event streams open on this replica.",
        );
        let _ = writeln!(out, "portico_live_streams {}", gauges.streams);
        family(
            &mut out,
            "portico_live_events_total",
            "counter",
            "Events this replica handed to its open streams.",
        );
        let _ = writeln!(
            out,
            "portico_live_events_total {}",
            self.events.load(Ordering::Relaxed)
        );
        family(
            &mut out,
            "portico_live_fanout_lag_seconds",
            "histogram",
            "Time from an event's commit to this replica handing it to its streams.",
        );
        lock(&self.fanout).write(&mut out, "portico_live_fanout_lag_seconds", "");
        family(
            &mut out,
            "portico_sign_in_refusals_total",
            "counter",
            "Sign-in attempts refused by the rate limiter, by reason.",
        );
        let refusals = lock(&self.refusals);
        for reason in ["password", "sso_starts"] {
            let n = refusals.get(reason).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "portico_sign_in_refusals_total{{reason=\"{reason}\"}} {n}"
            );
        }
        out
    }
}

/// What is read afresh at each scrape.
#[derive(Debug, Default)]
pub struct Gauges {
    pub now: i64,
    pub streams: usize,
    pub operations: Vec<super::store::OperationCount>,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the format quotes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts every request by the route it matched (`unmatched` for the static files and the
/// fallback), its method and status.
pub async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let method = req.method().as_str().to_owned();
    let res = next.run(req).await;
    state
        .metrics
        .request(&route, &method, res.status().as_u16(), started.elapsed());
    res
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let operations = match state.store.operation_counts().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = ?e, "metrics: cannot count operations");
            return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response();
        }
    };
    let gauges = Gauges {
        now: now_millis(),
        streams: state.live.streams(),
        operations,
    };
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(&gauges),
    )
        .into_response()
}

/// The metrics listener's whole router.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::store::OperationCount;

    #[test]
    fn a_histogram_counts_each_observation_in_every_bucket_at_or_above_it() {
        let mut h = Histogram::default();
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(60));
        let mut out = String::new();
        h.write(&mut out, "x", "route=\"/a\"");
        assert!(
            out.contains("x_bucket{route=\"/a\",le=\"0.025\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{route=\"/a\",le=\"0.05\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{route=\"/a\",le=\"30\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("x_bucket{route=\"/a\",le=\"+Inf\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("x_count{route=\"/a\"} 2\n"), "{out}");
    }

    #[test]
    fn the_queue_is_what_waits_and_its_age_the_oldest() {
        let count = |kind: &str, state: &str, operations, oldest| OperationCount {
            kind: kind.into(),
            state: state.into(),
            operations,
            oldest,
        };
        let gauges = Gauges {
            now: 100_000,
            streams: 3,
            operations: vec![
                count("restart", "queued", 2, 70_000),
                count("stop", "queued", 1, 95_000),
                count("stop", "succeeded", 9, 1_000),
            ],
        };
        let out = Metrics::default().render(&gauges);
        assert!(out.contains("portico_operation_queue_depth 3\n"), "{out}");
        assert!(
            out.contains("portico_operation_queue_oldest_age_seconds 30\n"),
            "{out}"
        );
        assert!(out.contains("portico_operations{operation=\"stop\",state=\"succeeded\"} 9\n"));
        assert!(out.contains("portico_live_streams 3\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
