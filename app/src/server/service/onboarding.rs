//! How people come to belong to a tenant: an invitation link, single sign-on, or an embed
//! token from the provider's site. Each finds or creates the account and joins it to the
//! tenant; the membership and its audit line are written together.

use super::ServiceError;
use crate::domain::members::MIN_PASSWORD_CHARS;
use crate::domain::provider::SsoIssuer;
use crate::domain::{Email, InvitationInfo, Role, SessionOrigin, TenantId, UserId};
use crate::server::auth::{self, SignInError};
use crate::server::sso::Identity;
use crate::server::state::AppState;
use crate::server::store::{
    now_millis, InvitationRecord, Store, StoreError, TenantScope, UserCredentials,
};
use std::net::IpAddr;

/// The account for `email`, created (at `now`) without a password (named `name`) when there is
/// none. When two first visits race, the one that loses finds the account the other created.
pub async fn find_or_create_user(
    store: &Store,
    email: &Email,
    name: &str,
    now: i64,
) -> Result<Option<UserCredentials>, StoreError> {
    if let Some(c) = store.user_credentials(email).await? {
        return Ok(Some(c));
    }
    match store.create_user(email, name, None, now).await {
        Ok(user_id) => Ok(Some(UserCredentials {
            user_id,
            password_hash: None,
            disabled: false,
            password_from_invitation: false,
        })),
        Err(StoreError::Conflict(_)) => store.user_credentials(email).await,
        Err(e) => Err(e),
    }
}

/// The member an embed token names: an existing, enabled member of the tenant; or, where the
/// configuration allows members just in time, that person made one with the token's role.
/// An existing member keeps the role their tenant gave them.
pub async fn embedded_member(
    state: &AppState,
    tenant: &TenantId,
    email: &Email,
    name: Option<&str>,
    role: Role,
) -> Result<Option<UserId>, StoreError> {
    let store = &state.store;
    let now = now_millis();
    if !store.tenant_exists(tenant).await? {
        return Ok(None);
    }
    let just_in_time = state
        .provider
        .embed
        .as_ref()
        .is_some_and(|e| e.just_in_time_tenants.iter().any(|t| t == tenant.as_str()));
    let creds = if just_in_time {
        find_or_create_user(store, email, name.unwrap_or(email.as_str()), now).await?
    } else {
        store.user_credentials(email).await?
    };
    let user = match creds {
        Some(c) if !c.disabled => c.user_id,
        _ => return Ok(None),
    };
    // The tenant comes from a token the provider signed, which is as trusted as a session.
    let scope = TenantScope::provider(tenant.clone());
    if store.role_of(&scope, &user).await?.is_some() {
        return Ok(Some(user));
    }
    if !just_in_time {
        return Ok(None);
    }
    let reason = "joined just in time from the provider's site";
    if join(store, tenant, &user, email, role, reason, now).await? {
        tracing::info!(%tenant, %email, role = role.as_str(), "member added just in time");
    }
    Ok(Some(user))
}

/// Makes `user` a member of `tenant` with `role`, auditing why, in one transaction, unless they
/// already are one (their role then stays), at `now`. Returns whether they joined now.
pub async fn join(
    store: &Store,
    tenant: &TenantId,
    user: &UserId,
    email: &Email,
    role: Role,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let scope = TenantScope::provider(tenant.clone());
    store
        .join_tenant(&scope, user, email.as_str(), role, reason, now)
        .await
}

/// The tenant and pending invitation a link's token names; expired, used, revoked and made-up
/// links (as of `now`) are all simply not found.
async fn pending(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<(TenantScope, InvitationRecord), ServiceError> {
    let id = auth::token_hash(token.trim());
    let Some(tenant) = state.store.invitation_tenant(&id).await? else {
        return Err(ServiceError::NotFound);
    };
    let tenant = TenantId::parse(&tenant).map_err(ServiceError::internal)?;
    // The tenant comes from the link's token, which only its admin was given.
    let scope = TenantScope::provider(tenant);
    let invitation = state
        .store
        .invitation(&scope, &id, now)
        .await?
        .ok_or(ServiceError::NotFound)?;
    Ok((scope, invitation))
}

/// What an invitation link offers; anyone holding the link may ask.
pub async fn invitation_info(
    state: &AppState,
    token: &str,
) -> Result<InvitationInfo, ServiceError> {
    let (scope, invitation) = pending(state, token, now_millis()).await?;
    // Not whether the email has an account: whoever holds the link (the inviting admin too)
    // has not proved the email, and the answer would tell them about other tenants.
    Ok(InvitationInfo {
        tenant_name: state.store.tenant(&scope).await?.name,
        email: invitation.email,
        role: invitation.role,
    })
}

/// Accepts an invitation: with the account's password when the email has one (checked like a
/// sign-in from `addr`), or creating the account with `display_name` and `password`. Returns
/// the new session's cookie token.
pub async fn accept_invitation(
    state: &AppState,
    addr: Option<IpAddr>,
    token: &str,
    display_name: &str,
    password: String,
) -> Result<String, ServiceError> {
    let now = now_millis();
    let (scope, invitation) = pending(state, token, now).await?;
    let email = Email::parse(&invitation.email).map_err(ServiceError::internal)?;
    let user = match state.store.user_credentials(&email).await? {
        Some(creds) => {
            match auth::check_password(state, addr, &email, password, Some(&creds)).await {
                Ok(()) => creds.user_id,
                Err(SignInError::BadCredentials) => {
                    return Err(ServiceError::Denied {
                        reason: "Incorrect password for this account.".into(),
                        field: Some("password".into()),
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
        None => {
            let name = display_name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                return Err(ServiceError::invalid(
                    "display_name",
                    "must be between 1 and 100 characters",
                ));
            }
            if password.chars().count() < MIN_PASSWORD_CHARS {
                return Err(ServiceError::invalid(
                    "password",
                    format!("must be at least {MIN_PASSWORD_CHARS} characters"),
                ));
            }
            let hash = state.passwords.hash(password).await?;
            match state
                .store
                .create_invited_user(&email, name, &hash, now)
                .await
            {
                Ok(user) => user,
                // Accepted at the same moment elsewhere: that acceptance used the link.
                Err(StoreError::Conflict(_)) => return Err(ServiceError::NotFound),
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !state
        .store
        .accept_invitation(&scope, &invitation.id, &user, now)
        .await?
    {
        return Err(ServiceError::NotFound);
    }
    let session =
        auth::start_session(state, &user, scope.tenant_id(), SessionOrigin::Password).await?;
    tracing::info!(email = %email, tenant = %scope.tenant_id(), "invitation accepted");
    Ok(session)
}

// ---- single sign-on ----

/// Why a verified identity gets no session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAccess {
    /// No tenant has this person, and no rule or invitation admits them.
    NoTenant(String),
    /// Nothing links the identity to a user, and the issuer did not verify the email.
    Unverified,
    /// The account is disabled.
    Disabled,
    /// The email's account is linked to another identity at this issuer.
    LinkedElsewhere,
    /// The email's account has a password, which must be proved (by signing in with it in
    /// this browser) before an identity is linked to it.
    PasswordFirst,
}

impl NoAccess {
    pub fn message(&self) -> &'static str {
        match self {
            NoAccess::NoTenant(_) => "You signed in, but you have no access to any organisation on this portal. Ask an administrator of your organisation to invite you, then sign in again.",
            NoAccess::Unverified => "You signed in, but your identity provider has not verified your email address, so you have no access to this portal yet. Verify your email address there, or ask an administrator of your organisation for help.",
            NoAccess::Disabled => "You signed in, but your account on this portal is disabled, so you have no access. Contact an administrator of your organisation.",
            NoAccess::LinkedElsewhere => "You signed in, but your email address belongs to an account that is linked to another identity, so you have no access. Contact an administrator of your organisation.",
            NoAccess::PasswordFirst => "Your email address already has an account on this portal with a password. To use this sign-in method from now on, sign in with your password first, then choose this sign-in method again in the same browser.",
        }
    }
}

/// Where an admitted identity goes in.
enum Entry {
    /// A tenant the user already belongs to.
    Member(TenantId),
    /// A pending invitation: `(tenant, invitation id)`.
    Invitation(TenantId, String),
    /// A configured rule of the issuer.
    Rule(TenantId, Role),
}

/// The user and tenant a verified identity signs in to. An issuer vouches only for the
/// tenants (and email domains) its configuration names, unless it is declared provider-wide:
/// everything below looks only inside those. In this order: a tenant of the user its `iss` +
/// `sub` is linked to; a tenant of the user with its verified email (linked now, which needs
/// that account's password proved by a session in this browser, unless the account has none
/// or only one chosen through an invitation link); a pending invitation for that email; the
/// first configured rule that admits it.
pub async fn admit_identity(
    state: &AppState,
    cfg: &SsoIssuer,
    id: &Identity,
    signed_in: Option<&UserId>,
) -> Result<Result<(UserId, TenantId), NoAccess>, StoreError> {
    let store = &state.store;
    let now = now_millis();
    let served_membership = |memberships: Vec<(TenantId, Role)>| {
        memberships
            .into_iter()
            .map(|(t, _)| t)
            .find(|t| cfg.serves_tenant(t.as_str()))
    };
    let linked = match store.user_by_identity(&id.issuer, &id.subject).await? {
        Some((_, true)) => return Ok(Err(NoAccess::Disabled)),
        Some((u, false)) => Some(u),
        None => None,
    };
    if let Some(u) = &linked {
        if let Some(tenant) = served_membership(store.memberships(u).await?) {
            return Ok(Ok((u.clone(), tenant)));
        }
    }
    // Anything further needs an email the issuer verified and may vouch for.
    let Some(email) = &id.verified_email else {
        return Ok(Err(NoAccess::Unverified));
    };
    if !cfg.vouches_for_email(email.as_str()) {
        return Ok(Err(NoAccess::NoTenant(email.to_string())));
    }
    let existing = match &linked {
        Some(_) => None,
        None => store.user_credentials(email).await?,
    };
    if existing.as_ref().is_some_and(|c| c.disabled) {
        return Ok(Err(NoAccess::Disabled));
    }
    let mut entry = None;
    if let Some(c) = &existing {
        entry = served_membership(store.memberships(&c.user_id).await?).map(Entry::Member);
    }
    if entry.is_none() {
        entry = store
            .invitations_for_email(email.as_str(), now)
            .await?
            .into_iter()
            .find(|(t, _)| cfg.serves_tenant(t.as_str()))
            .map(|(t, i)| Entry::Invitation(t, i));
    }
    if entry.is_none() {
        for r in cfg
            .rules
            .iter()
            .filter(|r| r.admits(email.as_str(), &id.claims))
        {
            if let Ok(t) = TenantId::parse(&r.tenant) {
                if cfg.serves_tenant(t.as_str()) && store.tenant_exists(&t).await? {
                    entry = Some(Entry::Rule(t, r.role));
                    break;
                }
            }
        }
    }
    let Some(entry) = entry else {
        return Ok(Err(NoAccess::NoTenant(email.to_string())));
    };

    let user = match (linked, existing) {
        (Some(u), _) => u,
        (None, Some(c)) => {
            // A password proves more than the issuer's word, except one chosen by whoever held
            // an invitation link: that one is cleared once the email's owner links.
            let proved = signed_in == Some(&c.user_id);
            if c.password_hash.is_some() && !c.password_from_invitation && !proved {
                return Ok(Err(NoAccess::PasswordFirst));
            }
            if !store
                .link_identity(&id.issuer, &id.subject, &c.user_id, now)
                .await?
            {
                return Ok(Err(NoAccess::LinkedElsewhere));
            }
            if c.password_from_invitation {
                store.set_password(&c.user_id, None, now).await?;
                tracing::info!(user = %c.user_id, "the password chosen through an invitation link is cleared");
            }
            tracing::info!(user = %c.user_id, issuer = %id.issuer, "identity linked by verified email");
            c.user_id
        }
        (None, None) => {
            let name = id.name.as_deref().unwrap_or(email.as_str());
            // Signed in twice at once, the other sign-in may have created the account; one
            // with a password is not this identity's to take.
            let u = match find_or_create_user(store, email, name, now).await? {
                Some(c) if c.password_hash.is_none() => c.user_id,
                _ => return Ok(Err(NoAccess::NoTenant(email.to_string()))),
            };
            if !store
                .link_identity(&id.issuer, &id.subject, &u, now)
                .await?
                && store
                    .user_by_identity(&id.issuer, &id.subject)
                    .await?
                    .map(|(linked, _)| linked)
                    .as_ref()
                    != Some(&u)
            {
                return Ok(Err(NoAccess::LinkedElsewhere));
            }
            u
        }
    };
    match entry {
        Entry::Member(tenant) => Ok(Ok((user, tenant))),
        Entry::Invitation(tenant, invitation) => {
            let scope = TenantScope::provider(tenant.clone());
            if !store
                .accept_invitation(&scope, &invitation, &user, now)
                .await?
            {
                // Taken or revoked in the meantime.
                return Ok(Err(NoAccess::NoTenant(email.to_string())));
            }
            tracing::info!(%tenant, %user, "invitation accepted by single sign-on");
            Ok(Ok((user, tenant)))
        }
        Entry::Rule(tenant, role) => {
            let reason = format!("joined by single sign-on, a rule of issuer {}", cfg.id);
            join(store, &tenant, &user, email, role, &reason, now).await?;
            tracing::info!(%tenant, %user, role = role.as_str(), "member added by a single sign-on rule");
            Ok(Ok((user, tenant)))
        }
    }
}
