//! Signing in and out, and who the signed-in person is.

use super::{Principal, ServiceError};
use crate::domain::policy::Denial;
use crate::domain::{members::may_manage_members, policy, ActionState, Email, Me, Operation};
use crate::domain::{Plan, SsoButton};
use crate::server::auth;
use crate::server::state::AppState;
use crate::server::store::SessionRecord;
use std::net::IpAddr;

/// Checks email and password from the client `addr` (rate-limited) and starts a session in the
/// person's first tenant; returns the cookie token and the session.
pub async fn sign_in(
    state: &AppState,
    addr: Option<IpAddr>,
    email: &str,
    password: String,
) -> Result<(String, SessionRecord), ServiceError> {
    let email = Email::parse(email).map_err(|e| ServiceError::invalid("email", e))?;
    if password.is_empty() {
        return Err(ServiceError::invalid("password", "must not be empty"));
    }
    let (token, record) = auth::sign_in_with_password(state, addr, &email, password).await?;
    tracing::info!(user = %record.user_id, tenant = %record.tenant_id, "signed in");
    Ok((token, record))
}

/// Ends the session whose cookie token is `token`.
pub async fn sign_out(state: &AppState, token: &str) -> Result<(), ServiceError> {
    state.store.delete_session(&auth::token_hash(token)).await?;
    Ok(())
}

/// The single sign-on buttons the sign-in page offers.
pub fn sign_in_options(state: &AppState) -> Vec<SsoButton> {
    state
        .sso
        .as_ref()
        .map(|sso| {
            sso.buttons()
                .into_iter()
                .map(|(id, label)| SsoButton { id, label })
                .collect()
        })
        .unwrap_or_default()
}

/// The signed-in person, their tenant and what the shell may offer them.
pub async fn me(state: &AppState, who: &Principal) -> Result<Me, ServiceError> {
    let Some(r) = who.session() else {
        return Err(ServiceError::internal(
            "me() asked for a principal without a session",
        ));
    };
    let plan = tenant_plan(state, who).await?;
    let suspended = suspended(state, who).await?;
    let p = &state.provider;
    Ok(Me {
        create: ActionState {
            operation: Operation::Create,
            reason: policy::permitted(&p.roles, who.role(), Operation::Create, plan)
                .and(if suspended {
                    Err(Denial::TenantSuspended)
                } else {
                    Ok(())
                })
                .err()
                .map(|d| d.to_string()),
        },
        suspended,
        can_read_audit: p.audit.may_read(who.role()),
        can_manage_members: may_manage_members(who.role()),
        logo_url: p
            .provider
            .branding
            .logo_url
            .clone()
            .unwrap_or_else(|| "/logo.svg".into()),
        hide_header: r.origin.is_embedded() && !p.embed.as_ref().is_some_and(|e| e.show_header),
        email: r.email.clone(),
        display_name: r.display_name.clone(),
        tenant_name: r.tenant_name.clone(),
        role: who.role(),
        provider_name: p.provider.name.clone(),
        environments: p
            .environments
            .iter()
            .map(|e| (e.id.clone(), e.name.clone()))
            .collect(),
    })
}

/// Refused when the provider has suspended the principal's tenant: its people may look but
/// not act.
pub(super) async fn ensure_active(state: &AppState, who: &Principal) -> Result<(), ServiceError> {
    if suspended(state, who).await? {
        return Err(Denial::TenantSuspended.into());
    }
    Ok(())
}

/// Whether the provider has suspended the principal's tenant.
pub(super) async fn suspended(state: &AppState, who: &Principal) -> Result<bool, ServiceError> {
    Ok(state
        .store
        .tenant(&who.scope())
        .await?
        .suspended_at
        .is_some())
}

/// The plan the principal's tenant is on.
pub(super) async fn tenant_plan<'a>(
    state: &'a AppState,
    who: &Principal,
) -> Result<&'a Plan, ServiceError> {
    let tenant = state.store.tenant(&who.scope()).await?;
    state.provider.plan(&tenant.plan_id).ok_or_else(|| {
        ServiceError::internal(format!("tenant plan {} is not configured", tenant.plan_id))
    })
}
