//! Asking for lifecycle operations and following them.

use super::{AppError, JsonText};
use crate::domain::policy::{CreateRequest, Request};
use crate::domain::OperationStatus;
use leptos::prelude::*;
#[cfg(feature = "ssr")]
use {
    super::context::{principal, respond},
    crate::server::service::operations,
};

/// Asks for a lifecycle operation on one of the tenant's instances. Returns at once with the
/// queued operation; the same `idempotency_key` with the same request returns the first answer.
#[server(endpoint = "request_operation", input = JsonText, output = JsonText)]
pub async fn request_operation(
    instance_id: String,
    request: Request,
    idempotency_key: String,
) -> Result<OperationStatus, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(operations::request(&state, &who, &instance_id, request, &idempotency_key).await?)
        }
        .await,
    )
}

/// Asks for a new instance on the tenant's plan.
#[server(endpoint = "create_instance", input = JsonText, output = JsonText)]
pub async fn create_instance(
    request: CreateRequest,
    idempotency_key: String,
) -> Result<OperationStatus, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(operations::create(&state, &who, request, &idempotency_key).await?)
        }
        .await,
    )
}

/// Where an operation stands.
#[server(endpoint = "operation_status", output = JsonText)]
pub async fn get_operation_status(operation_id: String) -> Result<OperationStatus, AppError> {
    respond(
        async {
            let (state, who) = principal().await?;
            Ok(operations::status(&state, &who, &operation_id).await?)
        }
        .await,
    )
}
