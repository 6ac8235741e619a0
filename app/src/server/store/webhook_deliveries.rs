//! The webhook delivery queue: due deliveries claimed by workers under an expiring lease (as
//! operations are), each attempt recorded with what follows it (delivered, retried, given up,
//! the endpoint disabled), and the delivery log the Webhooks page and the API read.

use super::audit::insert_audit;
use super::webhooks::endpoint_in;
use super::{
    new_id, AuditEvent, EndpointRecord, Pool, Result, Sql, Store, StoreError, TenantScope, Tx,
};
use crate::domain::TenantId;
use serde_json::json;

/// A delivery claimed by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    pub id: String,
    pub tenant_id: TenantId,
    pub endpoint_id: String,
    pub message_id: String,
    /// Attempts made, this one included.
    pub attempts: u32,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    webhook_delivery_id: String,
    tenant_id: String,
    webhook_endpoint_id: String,
    webhook_message_id: String,
    attempts: i64,
    created_at: i64,
}

impl TryFrom<DeliveryRow> for DeliveryRecord {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<DeliveryRecord> {
        Ok(DeliveryRecord {
            id: r.webhook_delivery_id,
            tenant_id: super::parse_id(r.tenant_id)?,
            endpoint_id: r.webhook_endpoint_id,
            message_id: r.webhook_message_id,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            created_at: r.created_at,
        })
    }
}

const DELIVERY_COLUMNS: &str =
    "webhook_delivery_id, tenant_id, webhook_endpoint_id, webhook_message_id, attempts, created_at";

/// A message as stored: its body is sent as is.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MessageRecord {
    #[sqlx(rename = "webhook_message_id")]
    pub id: String,
    pub event_type: String,
    pub payload: String,
    pub created_at: i64,
}

/// One attempt, as the delivery log lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AttemptRecord {
    #[sqlx(rename = "webhook_attempt_id")]
    pub id: String,
    #[sqlx(rename = "webhook_message_id")]
    pub message_id: String,
    pub event_type: String,
    pub attempted_at: i64,
    pub status: Option<i64>,
    pub latency_ms: i64,
    pub response: String,
    /// The delivery's state now: pending, sending, delivered or failed.
    pub delivery_state: String,
}

/// How an attempt ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptOutcome {
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// The first bytes of the answer, or why none came.
    pub response: String,
    pub next: NextStep,
}

/// What follows an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum NextStep {
    Delivered,
    /// Try again at this time.
    RetryAt(i64),
    /// No attempt is left.
    GiveUp,
    /// The receiver answered 410: disable the endpoint, and end this delivery.
    Gone,
}

/// What recording an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Done,
    /// The worker no longer held the lease: another recorded it, nothing was written.
    LeaseLost,
    /// Recorded, and the endpoint (at `url`) disabled for `reason`.
    Disabled {
        url: String,
        reason: String,
    },
}

/// How many attempts an endpoint's deliveries have left, for the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub pending: i64,
    pub failed: i64,
}

impl Store {
    /// The endpoint's latest attempts, newest first, at most `limit`.
    pub async fn webhook_attempts(
        &self,
        scope: &TenantScope,
        endpoint_id: &str,
        limit: i64,
    ) -> Result<Vec<AttemptRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let rows: Vec<AttemptRecord> = tx
            .conn()
            .fetch_all(
                Sql::new(
                    "SELECT a.webhook_attempt_id, a.webhook_message_id, m.event_type, \
                       a.attempted_at, a.status, a.latency_ms, a.response, \
                       d.state AS delivery_state \
                     FROM webhook_attempt a \
                     JOIN webhook_message m ON m.webhook_message_id = a.webhook_message_id \
                     JOIN webhook_delivery d ON d.webhook_delivery_id = a.webhook_delivery_id \
                     WHERE a.tenant_id = $1 AND a.webhook_endpoint_id = $2 \
                     ORDER BY a.attempted_at DESC, a.webhook_attempt_id DESC LIMIT $3",
                )
                .bind(tenant)
                .bind(endpoint_id)
                .bind(limit),
            )
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// How many of the endpoint's deliveries wait, and how many ran out of attempts.
    pub async fn webhook_backlog(&self, scope: &TenantScope, endpoint_id: &str) -> Result<Backlog> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let (pending, failed): (i64, i64) = tx
            .conn()
            .fetch_one(
                Sql::new(
                    "SELECT \
                       (SELECT COUNT(*) FROM webhook_delivery WHERE tenant_id = $1 \
                          AND webhook_endpoint_id = $2 AND state IN ('pending', 'sending')), \
                       (SELECT COUNT(*) FROM webhook_delivery WHERE tenant_id = $1 \
                          AND webhook_endpoint_id = $2 AND state = 'failed')",
                )
                .bind(tenant)
                .bind(endpoint_id),
            )
            .await?;
        tx.commit().await?;
        Ok(Backlog { pending, failed })
    }

    /// Attempts the tenant made since `since`: what its hourly limit counts.
    pub async fn webhook_attempts_since(&self, scope: &TenantScope, since: i64) -> Result<i64> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let n: i64 = tx
            .conn()
            .scalar(
                Sql::new(
                    "SELECT COUNT(*) FROM webhook_attempt WHERE tenant_id = $1 \
                     AND attempted_at > $2",
                )
                .bind(tenant)
                .bind(since),
            )
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Claims the oldest due delivery of any tenant (see the PostgreSQL function of migration
    /// 0012): to an enabled endpoint, of a tenant with fewer than `limit` attempts since
    /// `since`.
    pub async fn claim_webhook_delivery(
        &self,
        worker: &str,
        now: i64,
        lease_ms: i64,
        since: i64,
        limit: i64,
    ) -> Result<Option<DeliveryRecord>> {
        let sql = match self.pool {
            Pool::Postgres(_) => format!(
                "SELECT {DELIVERY_COLUMNS} FROM portico_claim_webhook_delivery($1, $2, $3, $4, $5)"
            ),
            Pool::Sqlite(_) => format!(
                "UPDATE webhook_delivery SET state = 'sending', lease_owner = $1, \
                   lease_expires_at = $2, attempts = attempts + 1, updated_at = $3 \
                 WHERE webhook_delivery_id = ( \
                   SELECT c.webhook_delivery_id FROM webhook_delivery c \
                   JOIN webhook_endpoint e ON e.webhook_endpoint_id = c.webhook_endpoint_id \
                   WHERE ((c.state = 'pending' AND c.next_attempt_at <= $3) \
                       OR (c.state = 'sending' AND c.lease_expires_at < $3)) \
                     AND e.enabled \
                     AND (SELECT COUNT(*) FROM webhook_attempt a \
                          WHERE a.tenant_id = c.tenant_id AND a.attempted_at > $4) < $5 \
                   ORDER BY c.next_attempt_at, c.webhook_delivery_id LIMIT 1) \
                 RETURNING {DELIVERY_COLUMNS}"
            ),
        };
        let row: Option<DeliveryRow> = self
            .pooled()
            .await?
            .conn()
            .fetch_optional(
                Sql::new(sql)
                    .bind(worker)
                    .bind(now + lease_ms)
                    .bind(now)
                    .bind(since)
                    .bind(limit),
            )
            .await?;
        row.map(DeliveryRecord::try_from).transpose()
    }

    /// What a claimed delivery sends, and where: its endpoint and message, read in its tenant.
    pub async fn webhook_delivery_parts(
        &self,
        d: &DeliveryRecord,
    ) -> Result<Option<(EndpointRecord, MessageRecord)>> {
        let tenant = d.tenant_id.as_str();
        let mut tx = self.begin_in(tenant).await?;
        let endpoint = endpoint_in(&mut tx, tenant, &d.endpoint_id).await?;
        let message: Option<MessageRecord> = tx
            .conn()
            .fetch_optional(
                Sql::new(
                    "SELECT webhook_message_id, event_type, payload, created_at \
                     FROM webhook_message WHERE tenant_id = $1 AND webhook_message_id = $2",
                )
                .bind(tenant)
                .bind(&d.message_id),
            )
            .await?;
        tx.commit().await?;
        Ok(endpoint.zip(message))
    }

    /// Records an attempt of a claimed delivery and what follows it, fenced by the lease
    /// (nothing is written when the worker lost it). A failure that leaves the endpoint failing
    /// for `disable_after_ms`, or a 410, disables the endpoint and audits why.
    pub async fn finish_webhook_attempt(
        &self,
        d: &DeliveryRecord,
        worker: &str,
        outcome: &AttemptOutcome,
        disable_after_ms: i64,
        now: i64,
    ) -> Result<Recorded> {
        let tenant = d.tenant_id.as_str();
        let mut tx = self.begin_in(tenant).await?;
        let (state, next_at) = match outcome.next {
            NextStep::Delivered => ("delivered", now),
            NextStep::RetryAt(at) => ("pending", at),
            NextStep::GiveUp | NextStep::Gone => ("failed", now),
        };
        let fenced = tx
            .conn()
            .execute(
                Sql::new(
                    "UPDATE webhook_delivery SET state = $4, next_attempt_at = $5, \
                       lease_owner = NULL, lease_expires_at = NULL, last_status = $6, \
                       last_error = $7, updated_at = $8 \
                     WHERE tenant_id = $1 AND webhook_delivery_id = $2 AND lease_owner = $3 \
                       AND state = 'sending'",
                )
                .bind(tenant)
                .bind(&d.id)
                .bind(worker)
                .bind(state)
                .bind(next_at)
                .bind(outcome.status.map(i64::from))
                .bind((outcome.next != NextStep::Delivered).then(|| outcome.response.clone()))
                .bind(now),
            )
            .await?;
        if fenced != 1 {
            tx.rollback().await?;
            return Ok(Recorded::LeaseLost);
        }
        tx.conn()
            .execute(
                Sql::new(
                    "INSERT INTO webhook_attempt (webhook_attempt_id, tenant_id, \
                       webhook_delivery_id, webhook_endpoint_id, webhook_message_id, \
                       attempted_at, status, latency_ms, response) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(new_id())
                .bind(tenant)
                .bind(&d.id)
                .bind(&d.endpoint_id)
                .bind(&d.message_id)
                .bind(now)
                .bind(outcome.status.map(i64::from))
                .bind(outcome.latency_ms)
                .bind(outcome.response.clone()),
            )
            .await?;
        if outcome.next == NextStep::Delivered {
            tx.conn()
                .execute(
                    Sql::new(
                        "UPDATE webhook_endpoint SET failing_since = NULL \
                         WHERE tenant_id = $1 AND webhook_endpoint_id = $2",
                    )
                    .bind(tenant)
                    .bind(&d.endpoint_id),
                )
                .await?;
        } else {
            let since: Option<i64> = tx
                .conn()
                .scalar_optional(
                    Sql::new(
                        "UPDATE webhook_endpoint SET failing_since = COALESCE(failing_since, $3) \
                         WHERE tenant_id = $1 AND webhook_endpoint_id = $2 AND enabled \
                         RETURNING failing_since",
                    )
                    .bind(tenant)
                    .bind(&d.endpoint_id)
                    .bind(now),
                )
                .await?;
            let reason = if outcome.next == NextStep::Gone {
                Some("the receiver answered 410 Gone".to_owned())
            } else if since.is_some_and(|s| now - s >= disable_after_ms) {
                since.map(|s| {
                    format!(
                        "every attempt has failed since {}",
                        crate::server::control_plane::contract::rfc3339(s)
                    )
                })
            } else {
                None
            };
            if let (Some(reason), Some(_)) = (reason, since) {
                let url = disable(&mut tx, tenant, &d.endpoint_id, &reason, now).await?;
                tx.commit().await?;
                return Ok(Recorded::Disabled { url, reason });
            }
        }
        tx.commit().await?;
        Ok(Recorded::Done)
    }

    /// Removes messages written before `before` (with their deliveries and attempts), except
    /// those still waiting to be delivered; returns how many.
    pub async fn prune_webhooks(&self, before: i64) -> Result<u64> {
        let mut pooled = self.pooled().await?;
        let mut conn = pooled.conn();
        Ok(match self.pool {
            Pool::Sqlite(_) => {
                conn.execute(
                    Sql::new(
                        "DELETE FROM webhook_message WHERE created_at < $1 AND NOT EXISTS ( \
                           SELECT 1 FROM webhook_delivery d \
                           WHERE d.webhook_message_id = webhook_message.webhook_message_id \
                             AND d.state IN ('pending', 'sending'))",
                    )
                    .bind(before),
                )
                .await?
            }
            Pool::Postgres(_) => {
                let n: i64 = conn
                    .scalar(Sql::new("SELECT portico_prune_webhooks($1)").bind(before))
                    .await?;
                u64::try_from(n).unwrap_or_default()
            }
        })
    }
}

/// Disables an endpoint in `tx` because of `reason`, and says so in the audit log (the actor
/// is Portico itself).
async fn disable(
    tx: &mut Tx,
    tenant: &str,
    endpoint: &str,
    reason: &str,
    now: i64,
) -> Result<String> {
    let url: String = tx
        .conn()
        .scalar(
            Sql::new(
                "UPDATE webhook_endpoint SET enabled = FALSE, disabled_reason = $3, \
                   updated_at = $4 WHERE tenant_id = $1 AND webhook_endpoint_id = $2 \
                 RETURNING url",
            )
            .bind(tenant)
            .bind(endpoint)
            .bind(reason)
            .bind(now),
        )
        .await?;
    let event = AuditEvent {
        id: new_id(),
        tenant_id: tenant.to_owned(),
        user_id: None,
        actor_email: Some("portico".into()),
        role: None,
        instance_id: None,
        instance_name: None,
        operation_id: None,
        operation: Some("webhook-disable".into()),
        parameters: json!({ "url": url }).to_string(),
        outcome: "succeeded".into(),
        reason: Some(format!("Portico disabled this webhook endpoint: {reason}.")),
        request_id: None,
        created_at: now,
    };
    insert_audit(tx, &event).await?;
    tracing::warn!(tenant, endpoint, reason, "webhook endpoint disabled");
    Ok(url)
}
