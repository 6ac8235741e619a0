//! Signed callbacks to the portal: operation events and instance events, each signed with the
//! callback secret under a fresh `webhook-id`, retried with backoff for about a minute while
//! the portal cannot be reached or answers 5xx (a 4xx is final).

use app::server::control_plane::contract::{InstanceEvent, OperationEvent, CALLBACK_PREFIX};
use app::server::control_plane::signature::{
    Keyring, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a callback is retried.
const RETRY_FOR: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub struct Notifier {
    client: reqwest::Client,
    /// The portal's public URL and the callback secret; none: no callbacks are sent.
    target: Option<(String, Keyring)>,
    dropping: AtomicBool,
}

pub fn now_millis() -> i64 {
    app::server::store::now_millis()
}

/// A fresh `webhook-id`.
pub fn message_id() -> String {
    format!("msg_{}", app::server::store::new_id().replace('-', ""))
}

impl Notifier {
    pub fn new(portal_url: Option<String>, keys: Option<Keyring>) -> anyhow::Result<Notifier> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("portico-control-plane/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let target = match (portal_url, keys) {
            (Some(url), Some(keys)) => Some((url.trim_end_matches('/').to_owned(), keys)),
            _ => None,
        };
        Ok(Notifier {
            client,
            target,
            dropping: AtomicBool::new(false),
        })
    }

    /// Stops (`true`) or resumes sending callbacks.
    pub fn set_dropping(&self, dropping: bool) {
        self.dropping.store(dropping, Ordering::SeqCst);
    }

    /// Sends an operation's event in the background.
    pub fn operation_event(&'static self, operation_id: &str, event: OperationEvent) {
        let path = format!(
            "{CALLBACK_PREFIX}/operations/{}/events",
            app::domain::percent_encode(operation_id)
        );
        self.spawn(path, serde_json::to_vec(&event));
    }

    /// Sends an instance's event in the background (the portal may not take them yet).
    pub fn instance_event(&'static self, instance_id: &str, event: InstanceEvent) {
        let path = format!(
            "{CALLBACK_PREFIX}/instances/{}/events",
            app::domain::percent_encode(instance_id)
        );
        self.spawn(path, serde_json::to_vec(&event));
    }

    fn spawn(&'static self, path: String, body: serde_json::Result<Vec<u8>>) {
        if self.target.is_none() {
            return;
        }
        if self.dropping.load(Ordering::SeqCst) {
            tracing::info!(%path, "callback dropped (drop_callbacks is on)");
            return;
        }
        match body {
            Ok(body) => {
                tokio::spawn(self.deliver(path, body));
            }
            Err(e) => tracing::error!(%path, error = %e, "cannot encode a callback"),
        }
    }

    async fn deliver(&self, path: String, body: Vec<u8>) {
        let Some((portal, keys)) = &self.target else {
            return;
        };
        let url = format!("{portal}{path}");
        let started = tokio::time::Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let id = message_id();
            let ts = now_millis() / 1000;
            let signature = keys.sign(&id, ts, &body);
            let sent = self
                .client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(ID_HEADER, &id)
                .header(TIMESTAMP_HEADER, ts.to_string())
                .header(SIGNATURE_HEADER, signature)
                .body(body.clone())
                .send()
                .await;
            let why = match sent {
                Ok(res) if res.status().is_success() => {
                    tracing::info!(%url, status = res.status().as_u16(), "callback delivered");
                    return;
                }
                Ok(res) if !res.status().is_server_error() => {
                    let status = res.status().as_u16();
                    let text = res.text().await.unwrap_or_default();
                    tracing::warn!(%url, status, body = %text, "callback refused; not retried");
                    return;
                }
                Ok(res) => format!("HTTP {}", res.status().as_u16()),
                Err(e) => e.to_string(),
            };
            if started.elapsed() + backoff > RETRY_FOR {
                tracing::warn!(%url, %why, "callback failed; giving up");
                return;
            }
            tracing::info!(%url, %why, retry_in_ms = backoff.as_millis() as u64, "callback failed");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
