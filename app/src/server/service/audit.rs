//! Reading the tenant's audit log. It cannot be changed through any entry point.

use super::{page, timestamp, Principal, ServiceError};
use crate::domain::{AuditEntry, Page};
use crate::server::state::AppState;
use crate::server::store::{AuditEvent, AuditFilter, Seek};

/// How many lines a page of the log shows.
pub const PAGE_SIZE: usize = 50;

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

/// One page of the lines matching `filter`, newest first, read from `at` (a line's position,
/// as [`super::page`] encodes it): `After` reads older lines, `Before` newer ones.
pub async fn read(
    state: &AppState,
    who: &Principal,
    filter: &AuditFilter,
    at: &Seek<String>,
) -> Result<Page<AuditEntry>, ServiceError> {
    may_read(state, who)?;
    let position = |key: &String| key.parse::<i64>().map_err(|_| ServiceError::BadPageLink);
    let at = match at {
        Seek::First => Seek::First,
        Seek::After(k) => Seek::After(position(k)?),
        Seek::Before(k) => Seek::Before(position(k)?),
    };
    let slice = state
        .store
        .audit_slice(&who.scope(), filter, &at, PAGE_SIZE)
        .await?;
    // A count would read the whole log; the page says only whether there is more.
    Ok(page::page(
        slice,
        &at,
        None,
        |(seq, _)| seq.to_string(),
        |(_, e)| entry(e),
    ))
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
        time_millis: e.created_at,
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
