//! The tenant's audit log.

use super::{client, AppError, JsonText};
use crate::domain::AuditEntry;
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{principal, respond},
    crate::server::service::audit,
};

/// The tenant's audit log, newest first, filtered (blank means any). Admins and operators may
/// read it; viewers only when the provider configuration allows. It cannot be changed.
#[server(endpoint = "audit_log", output = JsonText, client = client::SessionClient)]
pub async fn audit_log(
    instance_id: String,
    operation: String,
    user: String,
    outcome: String,
) -> Result<Vec<AuditEntry>, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            let filter = audit::filter(&instance_id, &operation, &user, &outcome);
            Ok(audit::read(&state, &who, &filter).await?)
        }
        .await,
    )
}
