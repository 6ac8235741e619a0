//! Server functions: thin. Session -> tenant scope -> store -> typed error.

mod error;
pub use error::AppError;

use crate::domain::{InstanceDetail, InstanceSummary, Me};
use leptos::prelude::*;

#[cfg(feature = "ssr")]
mod imp;

/// Signs in with email and password; on success sets the session cookie and goes to the list.
#[server(endpoint = "sign_in")]
pub async fn sign_in(email: String, password: String) -> Result<(), AppError> {
    imp::respond(imp::sign_in(email, password).await)
}

/// Ends the session on the server and clears the cookie.
#[server(endpoint = "sign_out")]
pub async fn sign_out() -> Result<(), AppError> {
    imp::respond(imp::sign_out().await)
}

/// The signed-in user and their tenant.
#[server(endpoint = "current_user")]
pub async fn current_user() -> Result<Me, AppError> {
    imp::respond(imp::current_user().await)
}

/// The tenant's instances matching the filters (blank means any).
#[server(endpoint = "list_instances")]
pub async fn list_instances(
    environment: String,
    status: String,
    q: String,
) -> Result<Vec<InstanceSummary>, AppError> {
    imp::respond(imp::list_instances(environment, status, q).await)
}

/// One of the tenant's instances; any other id is not found.
#[server(endpoint = "get_instance")]
pub async fn get_instance(id: String) -> Result<InstanceDetail, AppError> {
    imp::respond(imp::get_instance(id).await)
}
