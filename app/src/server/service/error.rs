//! What a use case can answer besides success. Entry points map it to their own wire format
//! (`crate::api::error` for server functions); `Internal` carries the cause for the log only.

use crate::domain::policy::Denial;
use crate::server::auth::SignInError;
use crate::server::password::PasswordError;
use crate::server::store::{MemberError, StoreError, SubmitError};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("incorrect email or password")]
    BadCredentials,
    #[error("the account is not a member of any tenant")]
    NoTenant,
    /// Absent, or another tenant's: the two are never told apart.
    #[error("not found")]
    NotFound,
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    /// A page cursor (`?after=`, `?before=`) this server did not make.
    #[error("malformed page cursor")]
    BadPageLink,
    /// Refused by the policy or a tenant rule; `field` names the form field it concerns.
    #[error("{reason}")]
    Denied {
        reason: String,
        field: Option<String>,
    },
    #[error("the idempotency key was used for a different request")]
    KeyReused,
    #[error("too many failed sign-ins; wait {0:?}")]
    RateLimited(Duration),
    #[error("every password hasher is busy")]
    Busy,
    /// A fault on our side: logged with its cause, shown only as a request id.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: &str, why: impl ToString) -> Self {
        ServiceError::Invalid {
            field: field.into(),
            why: why.to_string(),
        }
    }

    pub fn denied(reason: impl Into<String>) -> Self {
        ServiceError::Denied {
            reason: reason.into(),
            field: None,
        }
    }

    pub fn internal(cause: impl std::fmt::Debug) -> Self {
        ServiceError::Internal(format!("{cause:?}"))
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        ServiceError::internal(e)
    }
}

impl From<Denial> for ServiceError {
    fn from(d: Denial) -> Self {
        ServiceError::Denied {
            reason: d.to_string(),
            field: d.field().map(str::to_owned),
        }
    }
}

impl From<SubmitError> for ServiceError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Denied(d) => d.into(),
            SubmitError::NotFound => ServiceError::NotFound,
            SubmitError::KeyReused => ServiceError::KeyReused,
            SubmitError::Store(e) => e.into(),
        }
    }
}

impl From<MemberError> for ServiceError {
    fn from(e: MemberError) -> Self {
        match e {
            MemberError::NotFound => ServiceError::NotFound,
            MemberError::LastAdmin => ServiceError::denied(
                "The organisation needs at least one admin: make someone else an admin first.",
            ),
            MemberError::Store(e) => e.into(),
        }
    }
}

impl From<SignInError> for ServiceError {
    fn from(e: SignInError) -> Self {
        match e {
            SignInError::BadCredentials => ServiceError::BadCredentials,
            SignInError::NoTenant => ServiceError::NoTenant,
            SignInError::RateLimited(wait) => {
                tracing::warn!("sign-in refused: too many failures");
                ServiceError::RateLimited(wait)
            }
            SignInError::Password(e) => e.into(),
            SignInError::Store(e) => e.into(),
        }
    }
}

impl From<PasswordError> for ServiceError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => ServiceError::Busy,
            e => ServiceError::internal(e),
        }
    }
}
