//! Reading the tenant's audit log. It cannot be changed through any entry point.

use super::{timestamp, Principal, ServiceError};
use crate::domain::AuditEntry;
use crate::server::state::AppState;
use crate::server::store::{AuditEvent, AuditFilter};

/// The most lines one audit query returns.
pub const LIMIT: i64 = 1000;

/// A filter from form or query values; blank means any.
pub fn filter(instance_id: &str, operation: &str, user: &str, outcome: &str) -> AuditFilter {
    let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    AuditFilter {
        instance_id: some(instance_id),
        operation: some(operation),
        user: some(user),
        outcome: some(outcome),
    }
}

/// Whether this principal may read the audit log: admins and operators, and viewers when the
/// provider configuration allows.
pub fn may_read(state: &AppState, who: &Principal) -> Result<(), ServiceError> {
    if state.provider.audit.may_read(who.role()) {
        Ok(())
    } else {
        Err(ServiceError::denied(
            "Your role may not read the audit log.",
        ))
    }
}

/// The newest [`LIMIT`] lines matching `filter`, newest first.
pub async fn read(
    state: &AppState,
    who: &Principal,
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, ServiceError> {
    may_read(state, who)?;
    let events = state.store.list_audit(&who.scope(), filter, LIMIT).await?;
    Ok(events.into_iter().map(entry).collect())
}

/// One page of the log for an export, newest first, strictly older than `before` (a sequence
/// number from the previous page); each line with its sequence number.
pub async fn page(
    state: &AppState,
    who: &Principal,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<(i64, AuditEntry)>, ServiceError> {
    may_read(state, who)?;
    let page = state
        .store
        .audit_page(&who.scope(), filter, before, limit)
        .await?;
    Ok(page.into_iter().map(|(seq, e)| (seq, entry(e))).collect())
}

fn entry(e: AuditEvent) -> AuditEntry {
    AuditEntry {
        time: timestamp(e.created_at, true),
        actor: e.actor_email.or(e.user_id).unwrap_or_default(),
        role: e.role.unwrap_or_default(),
        instance: e
            .instance_name
            .clone()
            .or(e.instance_id.clone())
            .unwrap_or_default(),
        instance_id: e.instance_id.unwrap_or_default(),
        operation: e.operation.unwrap_or_default(),
        parameters: e.parameters,
        outcome: e.outcome,
        reason: e.reason.unwrap_or_default(),
        request_id: e.request_id.unwrap_or_default(),
    }
}
