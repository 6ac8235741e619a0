//! Who is acting: every use case takes one, so a new kind of caller (an API token, the
//! provider, a schedule) plugs in here without new policy code in the services.

use crate::domain::{Role, UserId};
use crate::server::auth::Session;
use crate::server::store::{Actor, SessionRecord, TenantScope};

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

    /// The tenant this principal acts in: every query it leads to is confined to it.
    pub fn scope(&self) -> TenantScope {
        match self {
            Principal::Member { scope, .. } => scope.clone(),
        }
    }

    pub fn role(&self) -> Role {
        match self {
            Principal::Member { session, .. } => session.role,
        }
    }

    pub fn user_id(&self) -> &UserId {
        match self {
            Principal::Member { session, .. } => &session.user_id,
        }
    }

    /// The signed-in person's session, for what only a person has (name, tenant name, how
    /// the session began).
    pub fn session(&self) -> &SessionRecord {
        match self {
            Principal::Member { session, .. } => session,
        }
    }

    /// The principal as the audit log records it.
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
        }
    }
}
