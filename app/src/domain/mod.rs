//! Pure types and rules shared by the browser and the server: no IO, no leptos, no cfg.

pub mod api_token;
pub mod events;
pub mod ids;
pub mod instance;
pub mod lifecycle;
pub mod members;
pub mod page;
pub mod policy;
pub mod provider;
pub mod secrets;
pub mod session;
pub mod webhooks;

pub use events::EventKind;
pub use ids::{Email, IdError, InstanceId, InstanceName, TenantId, UserId};
pub use instance::{
    ActionState, AuditEntry, AuditOutcome, CreateOptions, Endpoint, FormParam, InstanceDetail,
    InstanceFilter, InstanceSummary, Me, OperationStatus, ParamEntry, Resources,
};
pub use lifecycle::{Operation, OperationState, Role, Status};
pub use members::{
    EmailDelivery, InvitationInfo, Member, Members, NewInvitation, PendingInvitation, SsoButton,
};
pub use page::{page_href, Page};
pub use provider::{
    AuditSettings, Bounds, Branding, ConfigIssue, Environment, ParamType, ParamValue,
    ParameterSpec, Plan, Provider, ProviderConfig, Region, ResourceBounds, Roles,
};
pub use session::SessionOrigin;

/// Percent-encodes a query or form value (unreserved characters stay as they are).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            super::percent_encode("a+b@x.test ~ok"),
            "a%2Bb%40x.test%20~ok"
        );
    }
}
