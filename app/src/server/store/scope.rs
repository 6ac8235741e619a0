//! The tenant a query is confined to, and who may name one.

use crate::domain::TenantId;

/// The tenant every scoped query is limited to.
///
/// Request handlers get theirs from a verified [`crate::server::auth::Session`]; the only other
/// constructors are [`TenantScope::provider`], for code acting on the provider's behalf, and,
/// with the `test-support` feature, [`TenantScope::for_tests`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: TenantId,
}

impl TenantScope {
    /// For callers that act on behalf of the provider, not a signed-in user: the CLI, demo
    /// seeding, embed tokens the provider signed, invitation links, the worker. Nothing
    /// outside `crate::server` can call it: server functions reach tenants only through a
    /// service and the principal's verified session.
    pub(in crate::server) fn provider(tenant_id: TenantId) -> Self {
        TenantScope { tenant_id }
    }

    /// Any tenant, for integration tests and benchmarks; absent from the portal's build.
    #[cfg(feature = "test-support")]
    pub fn for_tests(tenant_id: TenantId) -> Self {
        TenantScope { tenant_id }
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
}
