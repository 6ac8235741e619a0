//! The provider configuration: branding, environments, regions, roles and plans.
//!
//! Parsing from TOML (and pointing at the offending line) lives on the server; this module
//! holds the types ([`types`]) and the rules every configuration must satisfy ([`validate`]).

mod types;
mod validate;

pub use types::{
    AuditSettings, Bounds, Branding, ControlPlaneConfig, Driver, Embed, EmbedAlgorithm, EmbedKey,
    Environment, ParamType, ParamValue, ParameterSpec, Plan, Provider, ProviderConfig, Region,
    ResourceBounds, Roles, Security, SsoIssuer, SsoRule, WebhooksConfig,
};
pub use validate::{is_issuer_url, is_origin, ConfigIssue};
