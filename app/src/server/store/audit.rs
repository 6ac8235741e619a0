//! The audit log: who did what to which instance or member, written in the same transaction as
//! the change it records.

use super::events::{emit, NewEvent};
use super::page::{read_limit, Seek, Slice};
use super::{new_id, Result, Sql, Store, TenantScope, Tx};
use crate::domain::EventKind;
use crate::domain::{AuditOutcome, InstanceId, Operation, Role, UserId};
use serde::{Deserialize, Serialize};

/// Who asks, as the audit log records them.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
    pub request_id: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct AuditEvent {
    #[sqlx(rename = "audit_event_id")]
    pub id: String,
    pub tenant_id: String,
    pub user_id: Option<String>,
    pub actor_email: Option<String>,
    pub role: Option<String>,
    pub instance_id: Option<String>,
    pub instance_name: Option<String>,
    pub operation_id: Option<String>,
    pub operation: Option<String>,
    /// JSON, secrets redacted.
    pub parameters: String,
    /// requested | denied | succeeded | failed
    pub outcome: String,
    pub reason: Option<String>,
    pub request_id: Option<String>,
    pub created_at: i64,
}

/// An `audit_event` row with its position in the log.
#[derive(sqlx::FromRow)]
struct AuditRow {
    audit_seq: i64,
    #[sqlx(flatten)]
    event: AuditEvent,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub instance_id: Option<String>,
    pub operation: Option<String>,
    pub user: Option<String>,
    pub outcome: Option<String>,
}

/// The most bytes of an audit event's parameters or reason that are stored: a denied request
/// may carry a body of hundreds of kilobytes, which must not become the audit log's.
pub const AUDIT_TEXT_MAX: usize = 2048;

/// Denied requests of one user recorded per minute; further ones are refused unrecorded.
pub const DENIALS_AUDITED_PER_MINUTE: i64 = 20;

/// `s`, cut to at most [`AUDIT_TEXT_MAX`] bytes (on a character boundary) and marked when cut.
pub fn bounded_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.len() <= AUDIT_TEXT_MAX {
        return s.into();
    }
    let mark = format!("… [truncated from {} bytes]", s.len());
    format!("{}{mark}", start_of(s, AUDIT_TEXT_MAX - mark.len())).into()
}

/// The longest start of `s` of at most `max` bytes that ends on a character boundary.
fn start_of(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The parameters' JSON as stored: whole when small, else still JSON, saying it was cut and
/// keeping its start.
pub fn bounded_parameters(json: &str) -> std::borrow::Cow<'_, str> {
    if json.len() <= AUDIT_TEXT_MAX {
        return json.into();
    }
    let start = start_of(json, AUDIT_TEXT_MAX / 2);
    serde_json::json!({ "truncated_from_bytes": json.len(), "start": start })
        .to_string()
        .into()
}

impl AuditEvent {
    /// An event about `actor` acting on an instance at `now`; `parameters` must already be
    /// redacted.
    #[allow(clippy::too_many_arguments)]
    pub fn by(
        scope: &TenantScope,
        actor: &Actor,
        instance: Option<(&InstanceId, &str)>,
        operation: Operation,
        parameters: String,
        outcome: AuditOutcome,
        reason: Option<String>,
        now: i64,
    ) -> AuditEvent {
        AuditEvent {
            id: new_id(),
            tenant_id: scope.tenant_id().to_string(),
            user_id: Some(actor.user_id.to_string()),
            actor_email: Some(actor.email.clone()),
            role: Some(actor.role.as_str().into()),
            instance_id: instance.map(|(id, _)| id.to_string()),
            instance_name: instance.map(|(_, n)| n.to_owned()),
            operation_id: None,
            operation: Some(operation.as_str().into()),
            parameters,
            outcome: outcome.into(),
            reason,
            request_id: actor.request_id.clone(),
            created_at: now,
        }
    }
}

impl AuditEvent {
    /// A change by `actor` at `now` that concerns no instance (a member, a token, the tenant
    /// itself): `what` names it, e.g. "member-invite"; `parameters` is its JSON.
    pub fn change(
        scope: &TenantScope,
        actor: &Actor,
        what: &str,
        parameters: String,
        now: i64,
    ) -> AuditEvent {
        AuditEvent {
            id: new_id(),
            tenant_id: scope.tenant_id().to_string(),
            user_id: Some(actor.user_id.to_string()),
            actor_email: Some(actor.email.clone()),
            role: Some(actor.role.as_str().into()),
            instance_id: None,
            instance_name: None,
            operation_id: None,
            operation: Some(what.into()),
            parameters,
            outcome: AuditOutcome::Succeeded.into(),
            reason: None,
            request_id: actor.request_id.clone(),
            created_at: now,
        }
    }
}

/// Inserts one audit event in `tx`, the transaction of the change it records, and tells the
/// live streams of those who may read the log.
pub(super) async fn insert_audit(tx: &mut Tx, e: &AuditEvent) -> sqlx::Result<()> {
    tx.conn()
        .execute(
            Sql::new(
                "INSERT INTO audit_event (audit_event_id, tenant_id, user_id, actor_email, role, \
               instance_id, instance_name, operation_id, operation, parameters, outcome, \
               reason, request_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&e.id)
            .bind(&e.tenant_id)
            .bind(&e.user_id)
            .bind(&e.actor_email)
            .bind(&e.role)
            .bind(&e.instance_id)
            .bind(&e.instance_name)
            .bind(&e.operation_id)
            .bind(&e.operation)
            .bind(bounded_parameters(&e.parameters).into_owned())
            .bind(&e.outcome)
            .bind(e.reason.as_deref().map(bounded_text))
            .bind(&e.request_id)
            .bind(e.created_at),
        )
        .await?;
    let appended = NewEvent {
        kind: EventKind::AuditAppended,
        instance_id: e.instance_id.as_deref(),
        operation_id: e.operation_id.as_deref(),
        user_id: e.user_id.as_deref(),
    };
    emit(tx, &e.tenant_id, appended, e.created_at).await?;
    Ok(())
}

impl Store {
    pub async fn record_audit(&self, e: &AuditEvent) -> Result<()> {
        let mut tx = self.begin_in(&e.tenant_id).await?;
        insert_audit(&mut tx, e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's audit log, newest first.
    pub async fn list_audit(
        &self,
        scope: &TenantScope,
        f: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        let page = self.audit_page(scope, f, None, limit).await?;
        Ok(page.into_iter().map(|(_, e)| e).collect())
    }

    /// One page of the tenant's audit log, newest first, from just before the position
    /// `before` (the start when `None`); each event with its position, the next page's
    /// `before`.
    pub async fn audit_page(
        &self,
        scope: &TenantScope,
        f: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(i64, AuditEvent)>> {
        let at = before.map_or(Seek::First, Seek::After);
        let limit = usize::try_from(limit).unwrap_or_default();
        Ok(self.audit_slice(scope, f, &at, limit).await?.rows)
    }

    /// One page of the tenant's audit log in its order, newest first: `Seek::After(seq)` reads
    /// the older events, `Seek::Before(seq)` the newer ones. Each event comes with its
    /// position (`audit_seq`, unique), the page's key.
    pub async fn audit_slice(
        &self,
        scope: &TenantScope,
        f: &AuditFilter,
        at: &Seek<i64>,
        limit: usize,
    ) -> Result<Slice<(i64, AuditEvent)>> {
        let (cmp, order) = if at.backward() {
            (">", "ASC")
        } else {
            ("<", "DESC")
        };
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let rows: Vec<AuditRow> = tx
            .conn()
            .fetch_all(
                Sql::new(format!(
                    "SELECT * FROM audit_event WHERE tenant_id = $1 \
                       AND ($2 IS NULL OR instance_id = $2) AND ($3 IS NULL OR operation = $3) \
                       AND ($4 IS NULL OR actor_email = $4) AND ($5 IS NULL OR outcome = $5) \
                       AND ($7 IS NULL OR audit_seq {cmp} $7) \
                     ORDER BY audit_seq {order} LIMIT $6"
                ))
                .bind(tenant)
                .bind(&f.instance_id)
                .bind(&f.operation)
                .bind(&f.user)
                .bind(&f.outcome)
                .bind(read_limit(limit))
                .bind(at.key().copied()),
            )
            .await?;
        tx.commit().await?;
        let rows = rows.into_iter().map(|r| (r.audit_seq, r.event)).collect();
        Ok(Slice::from_read(rows, limit, at.backward()))
    }

    /// Audits a submitted request that was denied (or reused a key) for `reason`, unless its
    /// actor already had [`DENIALS_AUDITED_PER_MINUTE`] denials recorded in the minute before
    /// `now`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn audit_denial(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        instance: Option<&InstanceId>,
        op: Operation,
        redacted: &str,
        reason: String,
        now: i64,
    ) -> Result<()> {
        // A member sending denied requests in a loop must not fill the log.
        let since = now - 60_000;
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let recent: i64 = tx
            .conn()
            .scalar(
                Sql::new(
                    "SELECT COUNT(*) FROM audit_event \
                     WHERE tenant_id = $1 AND user_id = $2 AND outcome = 'denied' \
                       AND created_at > $3",
                )
                .bind(tenant)
                .bind(actor.user_id.as_str())
                .bind(since),
            )
            .await?;
        tx.commit().await?;
        if recent >= DENIALS_AUDITED_PER_MINUTE {
            tracing::warn!(
                user = %actor.user_id,
                "denied request not audited: too many this minute"
            );
            return Ok(());
        }
        let mut event = AuditEvent::by(
            scope,
            actor,
            None,
            op,
            redacted.to_owned(),
            AuditOutcome::Denied,
            Some(reason),
            now,
        );
        event.instance_id = instance.map(|i| i.to_string());
        self.record_audit(&event).await
    }
}
