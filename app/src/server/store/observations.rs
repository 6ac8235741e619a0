//! What the provider's control plane reports about instances outside any operation: a change
//! made in its own console, a failure, new endpoints, a deletion. Each report is ordered by its
//! `seq` (or, without one, by when it was observed); an older one changes nothing.

use super::audit::insert_audit;
use super::instances::{instance_in, write_state};
use super::{new_id, parse_id, AuditEvent, EventApplied, Result, Sql, Store};
use crate::domain::lifecycle::Observed;
use crate::domain::{InstanceId, TenantId};

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
        write_state(&mut tx.conn(), &inst, now).await?;
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
        let event = AuditEvent {
            id: new_id(),
            tenant_id: tenant.to_string(),
            user_id: None,
            actor_email: Some(PROVIDER_ACTOR.into()),
            role: None,
            instance_id: Some(instance_id.to_owned()),
            instance_name: Some(inst.name.clone()),
            operation_id: None,
            operation: Some("provider-change".into()),
            parameters: "{}".into(),
            outcome: "succeeded".into(),
            reason: Some(what),
            request_id: None,
            created_at: now,
        };
        insert_audit(&mut tx.conn(), &event).await?;
        tx.commit().await?;
        Ok(EventApplied::Changed)
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
