//! Reading the tenant's instances.

use super::{AppError, JsonText};
use crate::domain::{CreateOptions, InstanceDetail, InstanceSummary, Page};
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{principal, respond},
    crate::domain::InstanceFilter,
    crate::server::service::{instances, page},
};

/// One page of the tenant's instances matching the filters (blank means any), by name: the
/// first, or the one after the cursor `after` or before the cursor `before` (from a previous
/// page's `next` and `previous`).
#[server(endpoint = "list_instances", output = JsonText)]
pub async fn list_instances(
    environment: String,
    status: String,
    q: String,
    #[server(default)] after: String,
    #[server(default)] before: String,
) -> Result<Page<InstanceSummary>, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            let filter = InstanceFilter::from_query(&environment, &status, &q);
            let at = page::seek(&after, &before)?;
            Ok(instances::list(&state, &who, &filter, &at, instances::PAGE_SIZE).await?)
        }
        .await,
    )
}

/// The id and name of each of the tenant's instances, by name, for a filter to offer.
#[server(endpoint = "instance_names", output = JsonText)]
pub async fn instance_names() -> Result<Vec<(String, String)>, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(instances::names(&state, &who).await?)
        }
        .await,
    )
}

/// One of the tenant's instances; any other id is not found.
#[server(endpoint = "get_instance", output = JsonText)]
pub async fn get_instance(id: String) -> Result<InstanceDetail, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(instances::get(&state, &who, &id).await?)
        }
        .await,
    )
}

/// What the create form may offer this person: the tenant plan's environments, regions,
/// limits and editable parameters, or why they cannot create an instance.
/// One instance as the list shows it: what a card reloads after an operation, so the list's
/// code in the browser never decodes the whole detail.
#[server(endpoint = "instance_summary", output = JsonText)]
pub async fn get_instance_summary(id: String) -> Result<InstanceSummary, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(instances::get_summary(&state, &who, &id).await?)
        }
        .await,
    )
}

#[server(endpoint = "create_options", output = JsonText)]
pub async fn get_create_options() -> Result<CreateOptions, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(instances::create_options(&state, &who).await?)
        }
        .await,
    )
}
