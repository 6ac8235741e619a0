//! Delivers webhooks: claims due deliveries from the queue under a lease, signs each as the
//! Standard Webhooks specification says, sends it, and records the attempt and what follows
//! (delivered, a retry on the schedule, or the endpoint disabled).
//!
//! A delivery never reaches what a tenant must not reach. The URL is checked again before each
//! attempt; an address written in the URL is judged there, and a name is resolved by
//! [`GuardedResolver`], which drops every address the rules refuse, so the connection is only
//! ever made to an address that passed. Redirects are not followed, no proxy is used, and an
//! answer's body is read only up to a few hundred bytes.

use super::control_plane::signature::{Secret, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::mail::Mailer;
use super::store::{
    millis, now_millis, AttemptOutcome, DeliveryRecord, EndpointRecord, Job, MessageRecord,
    NextStep, Recorded, Store, StoreError, TenantScope,
};
use crate::domain::webhooks::{self, Allowance, Verdict};
use crate::domain::{Role, TenantId};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// How long one delivery may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// How much of an answer's body is read and kept in the delivery log.
pub const RESPONSE_KEPT: usize = 512;
/// How long messages and their delivery log are kept once nothing waits to be sent.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub lease: Duration,
    pub idle_poll: Duration,
    pub timeout: Duration,
    /// Waits between attempts ([`webhooks::RETRY_SCHEDULE`] unless a test shortens it).
    pub schedule: Vec<Duration>,
    /// An endpoint failing this long is disabled.
    pub disable_after: Duration,
    /// Attempts one tenant may make in an hour.
    pub per_hour: u32,
    /// Deliveries sent at once by this process.
    pub concurrency: usize,
    pub allow: Allowance,
}

impl DeliverySettings {
    /// The settings the provider configuration asks for.
    pub fn from_config(c: &crate::domain::provider::WebhooksConfig) -> Result<Self, String> {
        Ok(DeliverySettings {
            // Twice the longest attempt: a live worker never loses its lease mid-attempt, and a
            // dead one's delivery is taken over half a minute later.
            lease: TIMEOUT * 2,
            idle_poll: Duration::from_millis(500),
            timeout: TIMEOUT,
            schedule: webhooks::RETRY_SCHEDULE.to_vec(),
            disable_after: webhooks::DISABLE_AFTER,
            per_hour: c.deliveries_per_hour,
            concurrency: 4,
            allow: Allowance::parse(&c.allow)?,
        })
    }
}

/// Resolves host names for deliveries, keeping only addresses a delivery may reach.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow: Arc<Allowance>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match allow.check_address(&host, a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refused = Some(why);
                        false
                    }
                })
                .collect();
            if kept.is_empty() {
                let why = refused.unwrap_or_else(|| format!("{host} has no address"));
                return Err(Box::new(Refused(why)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A destination the rules refuse; no connection was made.
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The HTTP client deliveries go through: guarded resolver, no redirects, no proxy.
pub fn client(settings: &DeliverySettings) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("Portico-Webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver {
            allow: Arc::new(settings.allow.clone()),
        }))
        .build()
        .map_err(|e| format!("cannot build the webhook client: {e}"))
}

/// One process's delivery loops.
#[derive(Clone)]
pub struct Deliverer {
    pub id: String,
    store: Store,
    client: reqwest::Client,
    settings: Arc<DeliverySettings>,
    /// Tells a tenant's admins when Portico disables one of their endpoints, with the
    /// provider's name.
    mailer: Option<(Arc<Mailer>, String)>,
    /// Wake the loops before their poll interval is up: deliveries queued by this process,
    /// and events committed on any replica (the changes that queue deliveries).
    wake: Vec<Arc<Notify>>,
}

impl Deliverer {
    pub fn new(store: Store, settings: DeliverySettings) -> Result<Deliverer, String> {
        Ok(Deliverer {
            id: format!("webhooks-{}", super::store::new_id()),
            client: client(&settings)?,
            wake: vec![store.webhooks_due()],
            store,
            settings: Arc::new(settings),
            mailer: None,
        })
    }

    /// Also wakes when `notify` is (the live updates' notices of committed events).
    pub fn wake_on(mut self, notify: Arc<Notify>) -> Deliverer {
        self.wake.push(notify);
        self
    }

    /// Emails the admins of a tenant whose endpoint is disabled, as `provider`.
    pub fn with_mailer(mut self, mailer: Option<Arc<Mailer>>, provider: &str) -> Deliverer {
        self.mailer = mailer.map(|m| (m, provider.to_owned()));
        self
    }

    /// Runs `concurrency` loops until `shutdown` turns true; attempts in progress finish.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let loops: Vec<_> = (0..self.settings.concurrency.max(1))
            .map(|_| tokio::spawn(self.clone().run_loop(shutdown.clone())))
            .collect();
        for l in loops {
            let _ = l.await;
        }
    }

    async fn run_loop(self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            // Listening before looking, so a wake-up between the two is not missed.
            let mut woken: Vec<_> = self.wake.iter().map(|n| Box::pin(n.notified())).collect();
            for n in &mut woken {
                n.as_mut().enable();
            }
            match self.run_once().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::error!(error = ?e, "webhook delivery step failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.idle_poll) => {}
                _ = futures::future::select_all(woken) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Claims and attempts one delivery; false when none was due.
    pub async fn run_once(&self) -> Result<bool, StoreError> {
        let now = now_millis();
        let Some(d) = self
            .store
            .claim_webhook_delivery(
                &self.id,
                now,
                millis(self.settings.lease),
                now - 3_600_000,
                i64::from(self.settings.per_hour),
            )
            .await?
        else {
            return Ok(false);
        };
        let Some((endpoint, message)) = self.store.webhook_delivery_parts(&d).await? else {
            return Ok(true); // deleted meanwhile; its deliveries went with it
        };
        let outcome = self.attempt(&d, &endpoint, &message).await;
        tracing::info!(
            tenant = %d.tenant_id, endpoint = %endpoint.id, message = %message.id,
            attempt = d.attempts, status = ?outcome.status, next = ?outcome.next,
            "webhook attempt"
        );
        let disable_after = millis(self.settings.disable_after);
        let recorded = self
            .store
            .finish_webhook_attempt(&d, &self.id, &outcome, disable_after, now_millis())
            .await?;
        if let Recorded::Disabled { url, reason } = recorded {
            self.tell_admins(&d.tenant_id, &url, &reason).await;
        }
        Ok(true)
    }

    /// Emails the tenant's admins that an endpoint was disabled, when SMTP is configured; a
    /// failure is logged (the audit log and the endpoint already say it).
    async fn tell_admins(&self, tenant: &TenantId, url: &str, reason: &str) {
        let Some((mailer, provider)) = &self.mailer else {
            return;
        };
        let scope = TenantScope::provider(tenant.clone());
        let admins = match self.store.list_members(&scope).await {
            Ok(m) => m.into_iter().filter(|m| m.role == Role::Admin),
            Err(e) => {
                tracing::warn!(error = ?e, "cannot list the admins to tell of a disabled webhook");
                return;
            }
        };
        let subject = format!("A webhook endpoint of {tenant} was disabled on {provider}");
        for admin in admins {
            let body = format!(
                "Hello,\n\n{provider} stopped sending webhooks to {url} because {reason}.\n\n\
                 Deliveries that were waiting are kept. Once the receiver works again, enable \
                 the endpoint on the Webhooks page (or PATCH /api/v1/webhooks with \
                 {{\"enabled\": true}}) and they go out.\n"
            );
            if let Err(e) = mailer
                .send_notice(admin.email.as_str(), &subject, body)
                .await
            {
                tracing::warn!(error = %e, "cannot email an admin of a disabled webhook");
            }
        }
    }

    async fn attempt(
        &self,
        d: &DeliveryRecord,
        endpoint: &EndpointRecord,
        message: &MessageRecord,
    ) -> AttemptOutcome {
        let started = Instant::now();
        let answer = self.send(endpoint, message).await;
        let latency_ms = millis(started.elapsed());
        let (status, response, verdict) = match answer {
            Ok((status, retry_after, body)) => {
                let verdict = webhooks::judge(status, retry_after.as_deref());
                (Some(status), body, verdict)
            }
            Err(why) => (None, why, Verdict::Retry { not_before: None }),
        };
        let next = match verdict {
            Verdict::Delivered => NextStep::Delivered,
            Verdict::Gone => NextStep::Gone,
            Verdict::Retry { not_before } => {
                match webhooks::next_attempt(&self.settings.schedule, d.attempts, not_before) {
                    Some(wait) => NextStep::RetryAt(now_millis() + millis(wait)),
                    None => NextStep::GiveUp,
                }
            }
        };
        AttemptOutcome {
            status,
            latency_ms,
            response,
            next,
        }
    }

    /// Sends one message; the status, `Retry-After` and the first bytes of the body, or why no
    /// answer came.
    async fn send(
        &self,
        endpoint: &EndpointRecord,
        message: &MessageRecord,
    ) -> Result<(u16, Option<String>, String), String> {
        let dest = webhooks::check_url(&endpoint.url, &self.settings.allow)?;
        let url = reqwest::Url::parse(endpoint.url.trim()).map_err(|e| format!("bad URL: {e}"))?;
        // An address in the URL is connected to without resolving: judge it here (the URL
        // parser also reads forms such as http://2130706433/ as an address).
        let literal = url
            .host_str()
            .and_then(|h| h.trim_matches(['[', ']']).parse::<std::net::IpAddr>().ok());
        if let Some(ip) = literal {
            self.settings.allow.check_address(&dest.host, ip)?;
        }
        let now = now_millis();
        let timestamp = now / 1000;
        let body = message.payload.as_bytes();
        let mut signatures = Vec::new();
        for s in endpoint.signing_secrets(now) {
            let secret = Secret::parse(s).map_err(|e| format!("the endpoint's secret: {e}"))?;
            signatures.push(secret.sign(&message.id, timestamp, body));
        }
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, &message.id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signatures.join(" "))
            .body(message.payload.clone())
            .send()
            .await
            .map_err(|e| describe(&e, self.settings.timeout))?;
        let status = sent.status().as_u16();
        let retry_after = sent
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = first_bytes(sent).await;
        Ok((status, retry_after, body))
    }
}

/// Up to [`RESPONSE_KEPT`] bytes of a body, read no further than that.
async fn first_bytes(mut r: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_KEPT {
        match r.chunk().await {
            Ok(Some(c)) => kept.extend_from_slice(&c[..c.len().min(RESPONSE_KEPT - kept.len())]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// Why a request got no answer, in words for the delivery log.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refused>() {
            return format!("refused: {r}; no connection was made");
        }
        source = s.source();
    }
    if e.is_timeout() {
        format!("no answer within {} ms", timeout.as_millis())
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        format!("the request failed: {e}")
    }
}

/// Removes messages past [`RETENTION`], every `every`, until `shutdown`; one replica at a time.
pub async fn prune(store: Store, every: Duration, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        let cutoff = now_millis() - millis(RETENTION);
        match store
            .exclusively(Job::PruneWebhooks, store.prune_webhooks(cutoff))
            .await
        {
            Ok(Some(Ok(0)) | None) => {}
            Ok(Some(Ok(n))) => tracing::info!(removed = n, "removed webhook messages"),
            Ok(Some(Err(e))) | Err(e) => tracing::warn!(error = ?e, "webhook retention failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => {}
        }
    }
}
