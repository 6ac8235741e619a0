//! Reading the tenant's instances.

use super::{client, AppError, JsonText};
use crate::domain::{CreateOptions, InstanceDetail, InstanceSummary};
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{principal, respond},
    crate::domain::InstanceFilter,
    crate::server::service::instances,
};

/// The tenant's instances matching the filters (blank means any).
#[server(endpoint = "list_instances", output = JsonText, client = client::SessionClient)]
pub async fn list_instances(
    environment: String,
    status: String,
    q: String,
) -> Result<Vec<InstanceSummary>, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            let filter = InstanceFilter::from_query(&environment, &status, &q);
            Ok(instances::list(&state, &who, &filter).await?)
        }
        .await,
    )
}

/// One of the tenant's instances; any other id is not found.
#[server(endpoint = "get_instance", output = JsonText, client = client::SessionClient)]
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
#[server(endpoint = "create_options", output = JsonText, client = client::SessionClient)]
pub async fn get_create_options() -> Result<CreateOptions, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(instances::create_options(&state, &who).await?)
        }
        .await,
    )
}
