//! Who is acting: every use case takes one, so a new kind of caller (an API token, the
//! provider, a schedule) plugs in here without new policy code in the services.

use crate::domain::{Role, UserId};
use crate::server::auth::Session;
use crate::server::store::{Actor, ApiTokenRecord, SessionRecord, TenantScope};

#[derive(Debug, Clone)]
pub enum Principal {
    /// A person signed in to one tenant, with the role that tenant gave them.
    Member {
        session: Box<SessionRecord>,
        /// The tenant the session was verified for.
        scope: TenantScope,
        /// The request this action came in on, as the audit log quotes it.
        request_id: String,
    },
    /// A script with one of the tenant's API tokens, acting with the token's role.
    Token {
        token: Box<ApiTokenRecord>,
        /// The tenant the token belongs to.
        scope: TenantScope,
        tenant_name: String,
        /// The id the token acts under (see [`ApiTokenRecord::actor_id`]).
        actor_id: UserId,
        request_id: String,
    },
    /// The provider, with one of its API keys, acting in the tenant a request names.
    Provider {
        key_name: String,
        scope: TenantScope,
        tenant_name: String,
        /// `provider-key-<key id>`.
        actor_id: UserId,
        request_id: String,
    },
}

impl Principal {
    /// The person behind a verified session.
    pub fn member(session: &Session, request_id: String) -> Principal {
        Principal::Member {
            session: Box::new(session.record.clone()),
            scope: session.scope(),
            request_id,
        }
    }

    /// A live API token, as [`crate::server::store::Store::resolve_api_token`] found it.
    pub fn token(token: ApiTokenRecord, tenant_name: String, request_id: String) -> Principal {
        // A token id is a UUID, so its actor id is always a valid user id.
        let actor_id = UserId::parse(&token.actor_id())
            .unwrap_or_else(|_| UserId::parse("token-invalid").expect("a constant, valid user id"));
        Principal::Token {
            scope: TenantScope::provider(token.tenant_id.clone()),
            token: Box::new(token),
            tenant_name,
            actor_id,
            request_id,
        }
    }

    /// The provider's key `key_name` (id `key_id`) acting in `tenant`, whose name is
    /// `tenant_name`.
    pub fn provider(
        key_id: &str,
        key_name: &str,
        tenant: crate::domain::TenantId,
        tenant_name: String,
        request_id: String,
    ) -> Principal {
        let actor_id = UserId::parse(&format!("provider-key-{key_id}"))
            .unwrap_or_else(|_| UserId::parse("provider-key").expect("a constant, valid user id"));
        Principal::Provider {
            key_name: key_name.to_owned(),
            scope: TenantScope::provider(tenant),
            tenant_name,
            actor_id,
            request_id,
        }
    }

    /// The tenant this principal acts in: every query it leads to is confined to it.
    pub fn scope(&self) -> TenantScope {
        match self {
            Principal::Member { scope, .. }
            | Principal::Token { scope, .. }
            | Principal::Provider { scope, .. } => scope.clone(),
        }
    }

    /// The role the policy judges by. The provider runs the tenant's account: an admin's.
    pub fn role(&self) -> Role {
        match self {
            Principal::Member { session, .. } => session.role,
            Principal::Token { token, .. } => token.role,
            Principal::Provider { .. } => Role::Admin,
        }
    }

    /// The user this principal is, or acts under: a token's is its own, never its creator's.
    pub fn user_id(&self) -> &UserId {
        match self {
            Principal::Member { session, .. } => &session.user_id,
            Principal::Token { actor_id, .. } | Principal::Provider { actor_id, .. } => actor_id,
        }
    }

    /// The signed-in person's session, for what only a person has (how the session began);
    /// `None` for a token.
    pub fn session(&self) -> Option<&SessionRecord> {
        match self {
            Principal::Member { session, .. } => Some(session),
            Principal::Token { .. } | Principal::Provider { .. } => None,
        }
    }

    /// Who this is, as a person reads it: a member's name, or the token's.
    pub fn display_name(&self) -> String {
        match self {
            Principal::Member { session, .. } => session.display_name.clone(),
            Principal::Token { token, .. } => format!("the API token {}", token.name),
            Principal::Provider { .. } => "your provider".to_owned(),
        }
    }

    pub fn tenant_name(&self) -> &str {
        match self {
            Principal::Member { session, .. } => &session.tenant_name,
            Principal::Token { tenant_name, .. } | Principal::Provider { tenant_name, .. } => {
                tenant_name
            }
        }
    }

    /// The principal as the audit log records it: a token by its name.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::Member {
                session,
                request_id,
                ..
            } => Actor {
                user_id: session.user_id.clone(),
                email: session.email.clone(),
                role: session.role,
                request_id: Some(request_id.clone()),
            },
            Principal::Token {
                token,
                actor_id,
                request_id,
                ..
            } => Actor {
                user_id: actor_id.clone(),
                email: format!("token:{}", token.name),
                role: token.role,
                request_id: Some(request_id.clone()),
            },
            Principal::Provider {
                key_name,
                actor_id,
                request_id,
                ..
            } => Actor {
                user_id: actor_id.clone(),
                email: format!("provider-key:{key_name}"),
                role: Role::Admin,
                request_id: Some(request_id.clone()),
            },
        }
    }
}
