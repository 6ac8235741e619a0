//! What the provider's control plane reports about instances outside any operation: a change
//! made in its own console, a failure, new endpoints, a deletion. Each report is ordered by its
//! `seq` (or, without one, by when it was observed); an older one changes nothing.

use super::audit::insert_audit;
use super::events::{emit, NewEvent};
use super::instances::{instance_in, write_state};
use super::{
    new_id, parse_id, AuditEvent, EventApplied, InstanceRecord, Result, Sql, Store, StoreError,
    TenantScope,
};
use crate::domain::lifecycle::Observed;
use crate::domain::{EventKind, InstanceId, TenantId};

/// The actor the audit log names for changes the provider made.
pub const PROVIDER_ACTOR: &str = "provider";

/// A report about one instance, as the store applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceReport {
    /// Ordering: a `seq` above the last applied one, or else an `observed_at` (milliseconds)
    /// later than the last confirmation.
    pub seq: Option<i64>,
    pub observed_at: Option<i64>,
    /// Why it changed, as the tenant reads it.
    pub message: Option<String>,
    pub observed: Observed,
}

impl Store {
    /// The tenant of an instance, looked up before any tenant is known (the report names only
    /// the instance, and is verified before this is asked).
    pub async fn instance_tenant(&self, instance_id: &str) -> Result<Option<TenantId>> {
        let sql = self.per_engine(
            "SELECT (SELECT tenant_id FROM instance WHERE instance_id = $1)",
            "SELECT portico_instance_tenant($1)",
        );
        let tenant: Option<String> = self
            .pooled()
            .await?
            .conn()
            .scalar(Sql::new(sql).bind(instance_id))
            .await?;
        tenant.map(parse_id).transpose()
    }

    /// Applies the control plane's report about an instance at `now`, with an audit entry
    /// naming the provider as the actor, in one transaction.
    pub async fn record_instance_event(
        &self,
        instance_id: &str,
        report: &InstanceReport,
        now: i64,
    ) -> Result<EventApplied> {
        let Some(tenant) = self.instance_tenant(instance_id).await? else {
            return Ok(EventApplied::Unknown);
        };
        let Ok(id) = InstanceId::parse(instance_id) else {
            return Ok(EventApplied::Unknown);
        };
        let mut tx = self.begin_in(tenant.as_str()).await?;
        // Reports about one instance take turns: its row is locked until this one commits.
        if let Some(lock) = self.lock_row_sql() {
            tx.conn()
                .execute(Sql::new(lock).bind(tenant.as_str()).bind(instance_id))
                .await?;
        }
        let Some(mut inst) = instance_in(&mut tx.conn(), tenant.as_str(), &id).await? else {
            tx.rollback().await?;
            return Ok(EventApplied::Unknown);
        };
        let last_seq: i64 = tx
            .conn()
            .scalar(
                Sql::new(
                    "SELECT last_event_seq FROM instance WHERE tenant_id = $1 AND instance_id = $2",
                )
                .bind(tenant.as_str())
                .bind(instance_id),
            )
            .await?;
        let newer = match (report.seq, report.observed_at) {
            (Some(seq), _) => seq > last_seq,
            (None, Some(at)) => inst.observed_at.is_none_or(|last| at > last),
            (None, None) => true,
        };
        if !newer {
            tx.rollback().await?;
            return Ok(EventApplied::Stale);
        }
        let before = inst.status;
        inst.observe(&report.observed, report.observed_at.unwrap_or(now).min(now));
        inst.status_reason = report.message.clone();
        write_state(&mut tx, &inst, now).await?;
        if let Some(seq) = report.seq {
            tx.conn()
                .execute(
                    Sql::new(
                        "UPDATE instance SET last_event_seq = $3 \
                         WHERE tenant_id = $1 AND instance_id = $2",
                    )
                    .bind(tenant.as_str())
                    .bind(instance_id)
                    .bind(seq),
                )
                .await?;
        }
        let mut what = if before == inst.status {
            format!("the provider reported the instance {}", inst.status)
        } else {
            format!(
                "the provider changed the status from {before} to {}",
                inst.status
            )
        };
        if let Some(m) = &report.message {
            what += &format!(": {m}");
        }
        insert_audit(
            &mut tx,
            &provider_event(&inst, "provider-change", what, now),
        )
        .await?;
        tx.commit().await?;
        Ok(EventApplied::Changed)
    }

    /// Reconciliation's view of one instance the control plane lists: takes what it reports
    /// unless an operation is in flight on it (that operation's end settles it). A drift is
    /// written with an audit entry naming the provider; a plain confirmation only records when.
    pub async fn repair_instance(
        &self,
        tenant: &TenantId,
        id: &InstanceId,
        seen: &Observed,
        now: i64,
    ) -> Result<Repair> {
        let t = tenant.as_str();
        let mut tx = self.begin_in(t).await?;
        if let Some(lock) = self.lock_row_sql() {
            tx.conn()
                .execute(Sql::new(lock).bind(t).bind(id.as_str()))
                .await?;
        }
        let Some(mut inst) = instance_in(&mut tx.conn(), t, id).await? else {
            tx.rollback().await?;
            return Ok(Repair::Unknown);
        };
        let busy: i64 = tx
            .conn()
            .scalar(
                Sql::new(
                    "SELECT COUNT(*) FROM operation WHERE tenant_id = $1 AND instance_id = $2 \
                     AND state IN ('queued', 'running')",
                )
                .bind(t)
                .bind(id.as_str()),
            )
            .await?;
        if busy > 0 {
            tx.rollback().await?;
            return Ok(Repair::Busy);
        }
        let before = inst.clone();
        inst.observe(seen, now);
        let mut drift = Vec::new();
        if before.status != inst.status {
            drift.push(format!("status {} → {}", before.status, inst.status));
        }
        if before.endpoints != inst.endpoints {
            drift.push("endpoints".to_owned());
        }
        if before.resources != inst.resources {
            drift.push("resources".to_owned());
        }
        if before.missing_since.is_some() {
            drift.push("listed again".to_owned());
        }
        if before.external_id != inst.external_id && before.external_id.is_some() {
            drift.push("external id".to_owned());
        }
        write_state(&mut tx, &inst, now).await?;
        let repaired = !drift.is_empty();
        if repaired {
            let what = format!("reconciled with the provider: {}", drift.join(", "));
            insert_audit(
                &mut tx,
                &provider_event(&inst, "provider-reconcile", what, now),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(if repaired {
            Repair::Repaired
        } else {
            Repair::Confirmed
        })
    }

    /// The tenant's instance the control plane knows by `external_id`.
    pub async fn instance_by_external_id(
        &self,
        scope: &TenantScope,
        external_id: &str,
    ) -> Result<Option<InstanceId>> {
        let t = scope.tenant_id().as_str();
        let mut tx = self.begin_in(t).await?;
        let id: Option<String> = tx
            .conn()
            .scalar_optional(
                Sql::new(
                    "SELECT instance_id FROM instance WHERE tenant_id = $1 AND external_id = $2",
                )
                .bind(t)
                .bind(external_id),
            )
            .await?;
        tx.commit().await?;
        id.map(parse_id).transpose()
    }

    /// Adds an instance the control plane runs and the portal lacked, with an audit entry
    /// naming the provider. False when the tenant already has an instance of that name.
    pub async fn import_instance(
        &self,
        scope: &TenantScope,
        inst: &InstanceRecord,
    ) -> Result<bool> {
        match self.insert_instance(scope, inst).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        let t = scope.tenant_id().as_str();
        let mut tx = self.begin_in(t).await?;
        let what = format!(
            "imported from the provider's control plane (its id {})",
            inst.external_id.as_deref().unwrap_or("unknown")
        );
        let event = provider_event(inst, "provider-import", what, inst.created_at);
        insert_audit(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks an instance the control plane once reported and no longer lists; it is kept, never
    /// deleted. True when newly marked (and audited).
    pub async fn mark_missing(&self, inst: &InstanceRecord, now: i64) -> Result<bool> {
        let t = inst.tenant_id.as_str();
        let mut tx = self.begin_in(t).await?;
        let n = tx
            .conn()
            .execute(
                Sql::new(
                    "UPDATE instance SET missing_since = $3 WHERE tenant_id = $1 \
                     AND instance_id = $2 AND missing_since IS NULL AND status <> 'deleted'",
                )
                .bind(t)
                .bind(inst.id.as_str())
                .bind(now),
            )
            .await?;
        if n == 1 {
            let what = "the provider's control plane no longer lists this instance".to_owned();
            insert_audit(
                &mut tx,
                &provider_event(inst, "provider-missing", what, now),
            )
            .await?;
            let changed = NewEvent::instance(EventKind::InstanceChanged, inst.id.as_str());
            emit(&mut tx, t, changed, now).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// On PostgreSQL, a statement that locks one instance row for the transaction.
    fn lock_row_sql(&self) -> Option<&'static str> {
        let sql = self.per_engine(
            "",
            "SELECT 1 FROM instance WHERE tenant_id = $1 AND instance_id = $2 FOR UPDATE",
        );
        (!sql.is_empty()).then_some(sql)
    }
}

/// What reconciliation did to one listed instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// No such instance.
    Unknown,
    /// An operation is in flight on it; left to that operation.
    Busy,
    /// As the portal knew it; only the time of confirmation changed.
    Confirmed,
    /// It had drifted and was repaired.
    Repaired,
}

/// An audit entry for something the provider did to `inst`.
fn provider_event(inst: &InstanceRecord, what: &str, reason: String, now: i64) -> AuditEvent {
    AuditEvent {
        id: new_id(),
        tenant_id: inst.tenant_id.to_string(),
        user_id: None,
        actor_email: Some(PROVIDER_ACTOR.into()),
        role: None,
        instance_id: Some(inst.id.to_string()),
        instance_name: Some(inst.name.clone()),
        operation_id: None,
        operation: Some(what.into()),
        parameters: "{}".into(),
        outcome: "succeeded".into(),
        reason: Some(reason),
        request_id: None,
        created_at: now,
    }
}
