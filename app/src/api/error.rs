//! The error that crosses the wire: only what the user may see.

use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    #[error("Please sign in to continue.")]
    Unauthenticated,
    #[error("Incorrect email or password.")]
    BadCredentials,
    #[error("This account is not a member of any organisation. Ask your administrator for an invitation.")]
    NoTenant,
    #[error("Not found.")]
    NotFound,
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    #[error("This page link is damaged or out of date. Start again from the first page.")]
    BadPageLink,
    /// The policy refused the request; `field` names the form field it concerns, if any.
    #[error("{reason}")]
    Denied {
        reason: String,
        field: Option<String>,
    },
    #[error("This request was already made with different details; reload and try again.")]
    KeyReused,
    #[error("Too many failed sign-ins. Try again in {} minute(s).", retry_after_secs.div_ceil(60))]
    RateLimited { retry_after_secs: u64 },
    #[error("The portal is busy. Try again in a few seconds.")]
    Busy,
    #[error("Something went wrong on our side. If it persists, quote request id {request_id}.")]
    Internal { request_id: String },
    #[error("The request could not be completed: {0}")]
    Transport(String),
}

impl AppError {
    pub fn invalid(field: &str, why: impl ToString) -> Self {
        AppError::Invalid {
            field: field.into(),
            why: why.to_string(),
        }
    }

    /// The form field this error concerns, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Denied { field: Some(f), .. } | AppError::Invalid { field: f, .. } => Some(f),
            _ => None,
        }
    }

    /// What to show next to the field this error concerns.
    pub fn message_for(&self, name: &str) -> Option<String> {
        match self {
            _ if self.field() != Some(name) => None,
            AppError::Invalid { why, .. } => Some(why.clone()),
            other => Some(other.to_string()),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated | AppError::BadCredentials => 401,
            AppError::NoTenant => 403,
            AppError::NotFound => 404,
            AppError::Invalid { .. } => 422,
            AppError::Denied { field: Some(_), .. } => 422,
            AppError::Denied { field: None, .. } => 403,
            AppError::KeyReused => 409,
            AppError::RateLimited { .. } => 429,
            AppError::Transport(_) | AppError::BadPageLink => 400,
            AppError::Busy => 503,
            AppError::Internal { .. } => 500,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = super::codec::JsonTextEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        // On the server this is a request that could not be decoded: its details (serde's
        // messages name Rust types) are logged, not returned.
        #[cfg(feature = "ssr")]
        {
            tracing::info!(error = %value, "malformed server-function request");
            AppError::Transport(
                "the request is malformed (expected JSON with this function's fields)".into(),
            )
        }
        #[cfg(not(feature = "ssr"))]
        AppError::Transport(value.to_string())
    }
}

/// Every conversion of a server-side error into the wire error lives here.
#[cfg(feature = "ssr")]
mod from_server {
    use super::AppError;
    use crate::server::service::ServiceError;
    use crate::server::store::StoreError;

    impl From<ServiceError> for AppError {
        fn from(e: ServiceError) -> Self {
            match e {
                ServiceError::BadCredentials => AppError::BadCredentials,
                ServiceError::NoTenant => AppError::NoTenant,
                ServiceError::NotFound => AppError::NotFound,
                ServiceError::Invalid { field, why } => AppError::Invalid { field, why },
                ServiceError::BadPageLink => AppError::BadPageLink,
                ServiceError::Denied { reason, field } => AppError::Denied { reason, field },
                ServiceError::KeyReused => AppError::KeyReused,
                ServiceError::RateLimited(wait) => AppError::RateLimited {
                    retry_after_secs: wait.as_secs().max(1),
                },
                ServiceError::Busy => AppError::Busy,
                ServiceError::Internal(cause) => internal(&cause),
            }
        }
    }

    impl From<StoreError> for AppError {
        fn from(e: StoreError) -> Self {
            internal(&e)
        }
    }

    /// Logs the full cause with the request id and returns an error that shows only the id.
    pub fn internal(e: &dyn std::fmt::Debug) -> AppError {
        let request_id = super::super::context::request_id();
        tracing::error!(%request_id, error = ?e, "request failed");
        AppError::Internal { request_id }
    }
}
#[cfg(feature = "ssr")]
pub use from_server::internal;
