//! The provider's control plane, behind one interface the worker drives.
//!
//! Two drivers implement it: [`Simulated`], the embedded default, which takes a configurable
//! time per step and can fail or hang on demand; and [`http::Http`], which speaks the
//! documented control-plane API v1 ([`contract`]) to the provider's own systems, signed as
//! [`signature`] describes. The worker and the policy do not depend on which one runs.

pub mod contract;
pub mod http;
pub mod openapi;
pub mod signature;
mod simulated;

pub use simulated::{Simulated, SimulatedSettings};

use crate::domain::lifecycle::Observed;
use contract::{InstancePage, OperationCommand, OperationReport, ReportedState};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What the control plane said about an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It finished: `report.state` is succeeded or failed.
    Finished(OperationReport),
    /// Accepted or still running; a callback will tell, or ask again after `retry_after`.
    Pending {
        retry_after: Option<Duration>,
        message: Option<String>,
        percent: Option<u8>,
        /// The instance as the control plane sees it meanwhile, if it said.
        instance: Option<Observed>,
    },
    /// It does not know the operation: the command never reached it.
    Unknown,
}

impl Answer {
    /// The answer a report gives, with the `Retry-After` that came with it.
    pub fn from_report(report: OperationReport, retry_after: Option<Duration>) -> Answer {
        match report.state {
            ReportedState::InProgress => Answer::Pending {
                retry_after,
                message: report.message,
                percent: report.percent,
                instance: report.instance,
            },
            ReportedState::Succeeded | ReportedState::Failed => Answer::Finished(report),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// Worth retrying: a timeout, a connection error, a 429 or a 5xx; not before
    /// `retry_after` when the control plane said so.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying will not help: the control plane refused the command, for this reason (a
    /// message the customer reads).
    #[error("{0}")]
    Permanent(String),
}

impl DriverError {
    pub fn transient(message: impl Into<String>) -> DriverError {
        DriverError::Transient {
            message: message.into(),
            retry_after: None,
        }
    }
}

pub type DriverFuture<'a> = Pin<Box<dyn Future<Output = Result<Answer, DriverError>> + Send + 'a>>;
pub type ListFuture<'a> =
    Pin<Box<dyn Future<Output = Result<InstancePage, DriverError>> + Send + 'a>>;

/// A control plane. `execute` must be idempotent: the worker runs each operation at least once
/// and sends a command again, with the same operation id, whenever it never recorded an answer.
pub trait ControlPlane: Send + Sync + 'static {
    /// Sends a command.
    fn execute<'a>(&'a self, command: &'a OperationCommand) -> DriverFuture<'a>;
    /// Asks where an accepted operation stands.
    fn poll<'a>(&'a self, operation_id: &'a str) -> DriverFuture<'a>;
    /// One page of the instances it runs, for reconciliation.
    fn instances<'a>(&'a self, cursor: Option<&'a str>) -> ListFuture<'a>;
}
