//! The tenant's audit log.

use super::{AppError, JsonText};
use crate::domain::{AuditEntry, Page};
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{principal, respond},
    crate::server::service::{audit, page},
};

/// One page of the tenant's audit log, newest first, filtered (blank means any): the newest,
/// or the older lines after the cursor `after`, or the newer ones before the cursor `before`.
/// Admins and operators may read it; viewers only when the provider configuration allows. It
/// cannot be changed.
#[server(endpoint = "audit_log", output = JsonText)]
pub async fn audit_log(
    instance_id: String,
    operation: String,
    user: String,
    outcome: String,
    #[server(default)] after: String,
    #[server(default)] before: String,
) -> Result<Page<AuditEntry>, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            let filter = audit::filter(&instance_id, &operation, &user, &outcome);
            let at = page::seek(&after, &before)?;
            Ok(audit::read(&state, &who, &filter, &at).await?)
        }
        .await,
    )
}
