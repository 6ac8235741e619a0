//! A tenant's API tokens, as the portal's page manages them. Admins only.

use super::{AppError, JsonText};
use crate::domain::api_token::{ApiTokenView, CreatedApiToken};
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{principal, respond},
    crate::server::service::tokens,
};

/// The tenant's API tokens, ended ones included, newest first.
#[server(endpoint = "list_api_tokens", output = JsonText)]
pub async fn list_api_tokens() -> Result<Vec<ApiTokenView>, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            let list = tokens::list(&state, &who).await?;
            Ok(list.iter().map(tokens::view).collect())
        }
        .await,
    )
}

/// Creates a token named `name` acting as `role` (no higher than the admin's own), expiring
/// after `expires_in_days` days (blank: never). The answer holds the secret, shown this once.
#[server(endpoint = "create_api_token", output = JsonText)]
pub async fn create_api_token(
    name: String,
    role: String,
    #[server(default)] expires_in_days: String,
) -> Result<CreatedApiToken, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            let days = match expires_in_days.trim() {
                "" => None,
                d => Some(d.parse::<u32>().map_err(|_| {
                    AppError::invalid("expires_in_days", "must be a whole number of days")
                })?),
            };
            let (token, secret) = tokens::create(&state, &who, &name, &role, days).await?;
            Ok(CreatedApiToken {
                token: tokens::view(&token),
                secret,
            })
        }
        .await,
    )
}

/// Revokes a token: it is refused from its next request on.
#[server(endpoint = "revoke_api_token", output = JsonText)]
pub async fn revoke_api_token(id: String) -> Result<(), AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            tokens::revoke(&state, &who, &id).await?;
            Ok(())
        }
        .await,
    )
}
