//! A tenant's webhook endpoints, as the portal's Webhooks page manages them. Admins only.

use super::{AppError, JsonText};
use crate::domain::webhooks::{WebhookSecretView, WebhooksView};
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{principal, respond},
    crate::server::service::webhooks,
};

/// The tenant's endpoints, each with its queue and latest attempts.
#[server(endpoint = "list_webhooks", output = JsonText)]
pub async fn list_webhooks() -> Result<WebhooksView, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(webhooks::page(&state, &who).await?)
        }
        .await,
    )
}

/// Adds an endpoint at `url` for `event_types` (names separated by spaces); the answer holds
/// its secret, shown this once.
#[server(endpoint = "create_webhook", output = JsonText)]
pub async fn create_webhook(
    url: String,
    #[server(default)] description: String,
    event_types: String,
) -> Result<WebhookSecretView, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            let types: Vec<String> = event_types.split_whitespace().map(str::to_owned).collect();
            let e = webhooks::create(&state, &who, &url, &description, &types).await?;
            Ok(WebhookSecretView {
                endpoint_id: e.id,
                secret: e.secret,
            })
        }
        .await,
    )
}

/// Enables or disables an endpoint.
#[server(endpoint = "set_webhook_enabled", output = JsonText)]
pub async fn set_webhook_enabled(id: String, enabled: bool) -> Result<(), AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            let change = webhooks::Change {
                enabled: Some(enabled),
                ..Default::default()
            };
            webhooks::update(&state, &who, &id, &change).await?;
            Ok(())
        }
        .await,
    )
}

/// Gives an endpoint a new secret (in the answer, shown once); the old one signs for a day.
#[server(endpoint = "rotate_webhook_secret", output = JsonText)]
pub async fn rotate_webhook_secret(id: String) -> Result<WebhookSecretView, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            let e = webhooks::rotate(&state, &who, &id).await?;
            Ok(WebhookSecretView {
                endpoint_id: e.id,
                secret: e.secret,
            })
        }
        .await,
    )
}

/// Sends a `webhook.test` message to an endpoint.
#[server(endpoint = "send_test_webhook", output = JsonText)]
pub async fn send_test_webhook(id: String) -> Result<(), AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            webhooks::send_test(&state, &who, &id).await?;
            Ok(())
        }
        .await,
    )
}

/// Sends a message the endpoint was sent before once more.
#[server(endpoint = "redeliver_webhook", output = JsonText)]
pub async fn redeliver_webhook(id: String, message_id: String) -> Result<(), AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            webhooks::redeliver(&state, &who, &id, &message_id).await?;
            Ok(())
        }
        .await,
    )
}

/// Removes an endpoint, what waits for it, and its log.
#[server(endpoint = "delete_webhook", output = JsonText)]
pub async fn delete_webhook(id: String) -> Result<(), AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            webhooks::delete(&state, &who, &id).await?;
            Ok(())
        }
        .await,
    )
}
