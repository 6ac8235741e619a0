//! Pure types and rules shared by the browser and the server: no IO, no leptos, no cfg.

pub mod config;
pub mod ids;
pub mod instance;
pub mod lifecycle;
pub mod policy;

pub use config::{
    AuditSettings, Bounds, Branding, ConfigIssue, Environment, ParamType, ParamValue,
    ParameterSpec, Plan, Provider, ProviderConfig, Region, ResourceBounds, Roles,
};
pub use ids::{Email, IdError, InstanceId, InstanceName, TenantId, UserId};
pub use instance::{
    ActionState, AuditEntry, CreateOptions, Endpoint, InstanceDetail, InstanceFilter,
    InstanceSummary, Me, OperationStatus, ParamEntry, Resources,
};
pub use lifecycle::{Operation, Role, Status};
