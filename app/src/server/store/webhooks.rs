//! Webhooks: a tenant's endpoints, the messages its changes produce for them, and a durable
//! queue of deliveries with the log of every attempt.
//!
//! A change that a webhook reports calls [`publish`] in the change's own transaction: the
//! message, and one pending delivery for each enabled endpoint subscribed to its type, commit
//! with the change or not at all, so nothing is lost between the two. The queue itself (claims,
//! attempts, the delivery log) is `webhook_deliveries`.

use super::audit::insert_audit;
use super::{new_id, Actor, AuditEvent, Result, Sql, Store, StoreError, TenantScope, Tx};
use crate::domain::webhooks::WebhookEvent;
use crate::domain::TenantId;
use serde_json::{json, Value};

/// One endpoint, secrets included (they are needed to sign; pages show them once).
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRecord {
    pub id: String,
    pub tenant_id: TenantId,
    pub url: String,
    pub description: String,
    pub event_types: Vec<WebhookEvent>,
    pub enabled: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<i64>,
    pub failing_since: Option<i64>,
    /// Why Portico disabled it; `None` when enabled, or disabled by a person.
    pub disabled_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl EndpointRecord {
    /// The secrets a delivery at `now` is signed with: the current one, and the previous one
    /// during the day after a rotation.
    pub fn signing_secrets(&self, now: i64) -> Vec<&str> {
        let mut out = vec![self.secret.as_str()];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_secret_until) {
            if until > now {
                out.push(prev);
            }
        }
        out
    }

    pub fn wants(&self, event: WebhookEvent) -> bool {
        self.event_types.contains(&event)
    }
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    webhook_endpoint_id: String,
    tenant_id: String,
    url: String,
    description: String,
    event_types: String,
    enabled: bool,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<i64>,
    failing_since: Option<i64>,
    disabled_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<EndpointRow> for EndpointRecord {
    type Error = StoreError;
    fn try_from(r: EndpointRow) -> Result<EndpointRecord> {
        Ok(EndpointRecord {
            id: r.webhook_endpoint_id,
            tenant_id: super::parse_id(r.tenant_id)?,
            url: r.url,
            description: r.description,
            event_types: parse_types(&r.event_types)?,
            enabled: r.enabled,
            secret: r.secret,
            previous_secret: r.previous_secret,
            previous_secret_until: r.previous_secret_until,
            failing_since: r.failing_since,
            disabled_reason: r.disabled_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

fn parse_types(s: &str) -> Result<Vec<WebhookEvent>> {
    s.split_whitespace()
        .map(|t| {
            WebhookEvent::parse(t)
                .ok_or_else(|| StoreError::Corrupt(format!("webhook event type {t:?}")))
        })
        .collect()
}

fn join_types(types: &[WebhookEvent]) -> String {
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

const ENDPOINT_COLUMNS: &str = "webhook_endpoint_id, tenant_id, url, description, event_types, \
    enabled, secret, previous_secret, previous_secret_until, failing_since, disabled_reason, \
    created_at, updated_at";

/// A new endpoint: enabled, with its first secret.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub id: String,
    pub url: String,
    pub description: String,
    pub event_types: Vec<WebhookEvent>,
    pub secret: String,
}

/// What an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<WebhookEvent>>,
    pub enabled: Option<bool>,
}

/// The audit line of a change to an endpoint (`what`: webhook-create, -update, -delete,
/// -rotate, -disable).
fn endpoint_event(
    scope: &TenantScope,
    actor: &Actor,
    what: &str,
    url: &str,
    now: i64,
) -> AuditEvent {
    AuditEvent::change(scope, actor, what, json!({ "url": url }).to_string(), now)
}

/// Writes a message of `event` with `data` for every enabled endpoint of `tenant` that
/// subscribed to it, in `tx` (the change's own transaction); returns the message id, or
/// `None` when no endpoint wants it (nothing is written).
async fn publish(
    tx: &mut Tx,
    tenant: &str,
    event: WebhookEvent,
    data: Value,
    now: i64,
) -> sqlx::Result<Option<String>> {
    let endpoints: Vec<(String, String)> = tx
        .conn()
        .fetch_all(
            Sql::new(
                "SELECT webhook_endpoint_id, event_types FROM webhook_endpoint \
                 WHERE tenant_id = $1 AND enabled",
            )
            .bind(tenant),
        )
        .await?;
    let targets: Vec<String> = endpoints
        .into_iter()
        .filter(|(_, types)| types.split_whitespace().any(|t| t == event.as_str()))
        .map(|(id, _)| id)
        .collect();
    if targets.is_empty() {
        return Ok(None);
    }
    let id = insert_message(tx, tenant, event, data, now).await?;
    for endpoint in targets {
        insert_delivery(tx, tenant, &endpoint, &id, now).await?;
    }
    Ok(Some(id))
}

async fn insert_message(
    tx: &mut Tx,
    tenant: &str,
    event: WebhookEvent,
    data: Value,
    now: i64,
) -> sqlx::Result<String> {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let body = json!({
        "type": event.as_str(),
        "timestamp": crate::server::control_plane::contract::rfc3339(now),
        "data": data,
    });
    tx.conn()
        .execute(
            Sql::new(
                "INSERT INTO webhook_message (webhook_message_id, tenant_id, event_type, payload, \
                   created_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&id)
            .bind(tenant)
            .bind(event.as_str())
            .bind(body.to_string())
            .bind(now),
        )
        .await?;
    Ok(id)
}

async fn insert_delivery(
    tx: &mut Tx,
    tenant: &str,
    endpoint: &str,
    message: &str,
    now: i64,
) -> sqlx::Result<String> {
    let id = new_id();
    tx.conn()
        .execute(
            Sql::new(
                "INSERT INTO webhook_delivery (webhook_delivery_id, tenant_id, \
                   webhook_endpoint_id, webhook_message_id, state, next_attempt_at, created_at, \
                   updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $5, $5)",
            )
            .bind(&id)
            .bind(tenant)
            .bind(endpoint)
            .bind(message)
            .bind(now),
        )
        .await?;
    Ok(id)
}

/// What an instance looks like in a webhook: no parameters (they may hold secrets), no
/// endpoints; what an admin of the tenant sees on its card. Free text is bounded (2 KB), so a
/// body stays far under the 20 KB a receiver may expect.
fn instance_data(i: &super::InstanceRecord) -> Value {
    json!({
        "id": i.id.as_str(),
        "name": i.name,
        "plan": i.plan_id,
        "environment": i.environment,
        "region": i.region,
        "status": i.status.as_str(),
        "status_reason": i.status_reason.as_deref().map(super::bounded_text),
        "resources": i.resources,
    })
}

/// What an operation looks like in a webhook.
fn operation_data(
    id: &str,
    instance_id: &str,
    kind: crate::domain::Operation,
    state: &str,
    error: Option<&str>,
    requested_by: &str,
) -> Value {
    json!({
        "id": id,
        "instance_id": instance_id,
        "type": kind.as_str(),
        "state": state,
        "error": error.map(super::bounded_text),
        "requested_by": requested_by,
    })
}

/// `operation.requested`, and the instance's status turning to what the operation does.
pub(super) async fn operation_requested(
    tx: &mut Tx,
    instance: &super::InstanceRecord,
    operation_id: &str,
    kind: crate::domain::Operation,
    requested_by: &str,
    now: i64,
) -> sqlx::Result<()> {
    let tenant = instance.tenant_id.as_str();
    let data = json!({
        "operation": operation_data(operation_id, instance.id.as_str(), kind, "queued", None,
            requested_by),
    });
    publish(tx, tenant, WebhookEvent::OperationRequested, data, now).await?;
    Ok(())
}

/// `instance.status_changed` (or `instance.deleted`) when `now_status` differs from `before`.
pub(super) async fn status_changed(
    tx: &mut Tx,
    instance: &super::InstanceRecord,
    before: crate::domain::Status,
    now: i64,
) -> sqlx::Result<()> {
    if instance.status == before {
        return Ok(());
    }
    let tenant = instance.tenant_id.as_str();
    let (event, data) = if instance.status == crate::domain::Status::Deleted {
        (
            WebhookEvent::InstanceDeleted,
            json!({ "instance": instance_data(instance) }),
        )
    } else {
        (
            WebhookEvent::InstanceStatusChanged,
            json!({ "instance": instance_data(instance), "previous_status": before.as_str() }),
        )
    };
    publish(tx, tenant, event, data, now).await?;
    Ok(())
}

/// `instance.created`, with the instance as it starts.
pub(super) async fn instance_created(
    tx: &mut Tx,
    instance: &super::InstanceRecord,
    now: i64,
) -> sqlx::Result<()> {
    let data = json!({ "instance": instance_data(instance) });
    let tenant = instance.tenant_id.as_str();
    publish(tx, tenant, WebhookEvent::InstanceCreated, data, now).await?;
    Ok(())
}

/// `operation.succeeded` or `operation.failed`.
pub(super) async fn operation_ended(
    tx: &mut Tx,
    op: &super::OperationRecord,
    succeeded: bool,
    error: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    let (event, state) = if succeeded {
        (WebhookEvent::OperationSucceeded, "succeeded")
    } else {
        (WebhookEvent::OperationFailed, "failed")
    };
    let data = json!({
        "operation": operation_data(&op.id, op.instance_id.as_str(), op.operation(), state,
            error, op.requested_by.as_str()),
    });
    publish(tx, op.tenant_id.as_str(), event, data, now).await?;
    Ok(())
}

/// `member.added`, `member.removed` or `member.role_changed`.
pub(super) async fn member_changed(
    tx: &mut Tx,
    tenant: &str,
    event: WebhookEvent,
    user: &crate::domain::UserId,
    email: &str,
    role: Option<crate::domain::Role>,
    now: i64,
) -> sqlx::Result<()> {
    let data = json!({
        "member": { "user_id": user.as_str(), "email": email, "role": role.map(|r| r.as_str()) },
    });
    publish(tx, tenant, event, data, now).await?;
    Ok(())
}

impl Store {
    /// What delivery loops wait on, besides their poll interval, to hear of deliveries queued
    /// by this process without an event (see [`Store::send_test_webhook`]).
    pub fn webhooks_due(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.webhooks_due.clone()
    }

    /// Adds an endpoint to the tenant, by `actor`, audited.
    pub async fn create_webhook_endpoint(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        e: &NewEndpoint,
        now: i64,
    ) -> Result<EndpointRecord> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        tx.conn()
            .execute(
                Sql::new(
                    "INSERT INTO webhook_endpoint (webhook_endpoint_id, tenant_id, url, \
                       description, event_types, enabled, secret, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                )
                .bind(&e.id)
                .bind(tenant)
                .bind(&e.url)
                .bind(&e.description)
                .bind(join_types(&e.event_types))
                .bind(true)
                .bind(&e.secret)
                .bind(now),
            )
            .await?;
        let event = endpoint_event(scope, actor, "webhook-create", &e.url, now);
        insert_audit(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(EndpointRecord {
            id: e.id.clone(),
            tenant_id: scope.tenant_id().clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            enabled: true,
            secret: e.secret.clone(),
            previous_secret: None,
            previous_secret_until: None,
            failing_since: None,
            disabled_reason: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// The tenant's endpoints, oldest first.
    pub async fn list_webhook_endpoints(&self, scope: &TenantScope) -> Result<Vec<EndpointRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let rows: Vec<EndpointRow> = tx
            .conn()
            .fetch_all(
                Sql::new(format!(
                    "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint WHERE tenant_id = $1 \
                     ORDER BY created_at, webhook_endpoint_id"
                ))
                .bind(tenant),
            )
            .await?;
        tx.commit().await?;
        rows.into_iter().map(EndpointRecord::try_from).collect()
    }

    /// One of the tenant's endpoints.
    pub async fn webhook_endpoint(
        &self,
        scope: &TenantScope,
        id: &str,
    ) -> Result<Option<EndpointRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let found = endpoint_in(&mut tx, tenant, id).await?;
        tx.commit().await?;
        Ok(found)
    }

    /// Changes an endpoint; re-enabling it clears why Portico disabled it and its failures.
    /// `None` when the tenant has no such endpoint.
    pub async fn update_webhook_endpoint(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        id: &str,
        c: &EndpointChange,
        now: i64,
    ) -> Result<Option<EndpointRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let Some(mut e) = locked_endpoint(&mut tx, tenant, id).await? else {
            return Ok(None);
        };
        if let Some(url) = &c.url {
            e.url = url.clone();
        }
        if let Some(d) = &c.description {
            e.description = d.clone();
        }
        if let Some(t) = &c.event_types {
            e.event_types = t.clone();
        }
        if let Some(enabled) = c.enabled {
            if enabled && !e.enabled {
                e.disabled_reason = None;
                e.failing_since = None;
            }
            e.enabled = enabled;
        }
        e.updated_at = now;
        tx.conn()
            .execute(
                Sql::new(
                    "UPDATE webhook_endpoint SET url = $3, description = $4, event_types = $5, \
                       enabled = $6, disabled_reason = $7, failing_since = $8, updated_at = $9 \
                     WHERE tenant_id = $1 AND webhook_endpoint_id = $2",
                )
                .bind(tenant)
                .bind(id)
                .bind(&e.url)
                .bind(&e.description)
                .bind(join_types(&e.event_types))
                .bind(e.enabled)
                .bind(&e.disabled_reason)
                .bind(e.failing_since)
                .bind(now),
            )
            .await?;
        let event = endpoint_event(scope, actor, "webhook-update", &e.url, now);
        insert_audit(&mut tx, &event).await?;
        tx.commit().await?;
        if e.enabled {
            self.webhooks_due.notify_waiters();
        }
        Ok(Some(e))
    }

    /// Deletes an endpoint with its deliveries and their log; false when there was none.
    pub async fn delete_webhook_endpoint(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        id: &str,
        now: i64,
    ) -> Result<bool> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let Some(e) = locked_endpoint(&mut tx, tenant, id).await? else {
            return Ok(false);
        };
        for sql in [
            "DELETE FROM webhook_attempt WHERE tenant_id = $1 AND webhook_endpoint_id = $2",
            "DELETE FROM webhook_delivery WHERE tenant_id = $1 AND webhook_endpoint_id = $2",
            "DELETE FROM webhook_endpoint WHERE tenant_id = $1 AND webhook_endpoint_id = $2",
        ] {
            tx.conn()
                .execute(Sql::new(sql).bind(tenant).bind(id))
                .await?;
        }
        let event = endpoint_event(scope, actor, "webhook-delete", &e.url, now);
        insert_audit(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives an endpoint a new secret; the old one keeps signing until `keep_until`.
    pub async fn rotate_webhook_secret(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        id: &str,
        secret: &str,
        keep_until: i64,
        now: i64,
    ) -> Result<Option<EndpointRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let Some(mut e) = locked_endpoint(&mut tx, tenant, id).await? else {
            return Ok(None);
        };
        e.previous_secret = Some(std::mem::replace(&mut e.secret, secret.to_owned()));
        e.previous_secret_until = Some(keep_until);
        e.updated_at = now;
        tx.conn()
            .execute(
                Sql::new(
                    "UPDATE webhook_endpoint SET secret = $3, previous_secret = $4, \
                       previous_secret_until = $5, updated_at = $6 \
                     WHERE tenant_id = $1 AND webhook_endpoint_id = $2",
                )
                .bind(tenant)
                .bind(id)
                .bind(&e.secret)
                .bind(&e.previous_secret)
                .bind(keep_until)
                .bind(now),
            )
            .await?;
        let event = endpoint_event(scope, actor, "webhook-rotate", &e.url, now);
        insert_audit(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(Some(e))
    }

    /// Queues a `webhook.test` message for one endpoint (whatever it subscribed to); returns
    /// the message id, `None` when the tenant has no such endpoint.
    pub async fn send_test_webhook(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        endpoint_id: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        if locked_endpoint(&mut tx, tenant, endpoint_id)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let data = json!({ "endpoint_id": endpoint_id, "sent_by": actor.email });
        let id = insert_message(&mut tx, tenant, WebhookEvent::Test, data, now).await?;
        insert_delivery(&mut tx, tenant, endpoint_id, &id, now).await?;
        tx.commit().await?;
        self.webhooks_due.notify_waiters();
        Ok(Some(id))
    }

    /// Queues one more delivery of a message the endpoint was sent before (same `webhook-id`);
    /// `None` when the endpoint or that message of it is unknown.
    pub async fn redeliver_webhook(
        &self,
        scope: &TenantScope,
        endpoint_id: &str,
        message_id: &str,
        now: i64,
    ) -> Result<Option<String>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        if locked_endpoint(&mut tx, tenant, endpoint_id)
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let known: Option<i64> = tx
            .conn()
            .scalar_optional(
                Sql::new(
                    "SELECT 1 FROM webhook_delivery WHERE tenant_id = $1 \
                     AND webhook_endpoint_id = $2 AND webhook_message_id = $3 LIMIT 1",
                )
                .bind(tenant)
                .bind(endpoint_id)
                .bind(message_id),
            )
            .await?;
        if known.is_none() {
            return Ok(None);
        }
        let id = insert_delivery(&mut tx, tenant, endpoint_id, message_id, now).await?;
        tx.commit().await?;
        self.webhooks_due.notify_waiters();
        Ok(Some(id))
    }
}

/// The endpoint, read after taking its row's write lock (and on SQLite the database's), so a
/// read-then-write transaction never has to upgrade its lock while another writer holds it.
async fn locked_endpoint(tx: &mut Tx, tenant: &str, id: &str) -> Result<Option<EndpointRecord>> {
    let found = tx
        .conn()
        .execute(
            Sql::new(
                "UPDATE webhook_endpoint SET updated_at = updated_at \
                 WHERE tenant_id = $1 AND webhook_endpoint_id = $2",
            )
            .bind(tenant)
            .bind(id),
        )
        .await?;
    if found == 0 {
        return Ok(None);
    }
    endpoint_in(tx, tenant, id).await
}

pub(super) async fn endpoint_in(
    tx: &mut Tx,
    tenant: &str,
    id: &str,
) -> Result<Option<EndpointRecord>> {
    let row: Option<EndpointRow> = tx
        .conn()
        .fetch_optional(
            Sql::new(format!(
                "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoint \
                 WHERE tenant_id = $1 AND webhook_endpoint_id = $2"
            ))
            .bind(tenant)
            .bind(id),
        )
        .await?;
    row.map(EndpointRecord::try_from).transpose()
}
