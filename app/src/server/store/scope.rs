//! The tenant a query is confined to.

use crate::domain::TenantId;

/// The tenant every scoped query is limited to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: TenantId,
}

impl TenantScope {
    /// For callers that act on behalf of the provider, not a signed-in user: the CLI, demo seeding
    /// and tests. Request handlers get their scope from [`crate::server::auth::Session`].
    pub fn trusted(tenant_id: TenantId) -> Self {
        TenantScope { tenant_id }
    }

    pub fn tenant_id(&self) -> &TenantId {
        &self.tenant_id
    }
}
