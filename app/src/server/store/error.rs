//! What the store answers when it cannot do what was asked.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The unique constraints a caller can run into, each with a message a person can act on.
///
/// PostgreSQL names the violated constraint (`DatabaseError::constraint`, its default name
/// `<table>_<columns>_key` or `<table>_pkey`); SQLite names none, only the columns in its
/// message: "UNIQUE constraint failed: instance.tenant_id, instance.name".
const CONFLICTS: [Conflict; 5] = [
    Conflict {
        postgres: "tenant_pkey",
        sqlite: "tenant.tenant_id",
        message: "a tenant with this id already exists",
    },
    Conflict {
        postgres: "app_user_email_key",
        sqlite: "app_user.email",
        message: "a user with this email already exists",
    },
    Conflict {
        postgres: "instance_tenant_id_name_key",
        sqlite: "instance.tenant_id, instance.name",
        message: "an instance with this name already exists",
    },
    Conflict {
        postgres: "operation_tenant_id_idempotency_key_key",
        sqlite: "operation.tenant_id, operation.idempotency_key",
        message: "this idempotency key was already used",
    },
    Conflict {
        postgres: "provider_key_name_key",
        sqlite: "provider_key.name",
        message: "a provider key with this name already exists",
    },
];

struct Conflict {
    postgres: &'static str,
    sqlite: &'static str,
    message: &'static str,
}

/// Maps the violation of a unique constraint listed in [`CONFLICTS`] to
/// [`StoreError::Conflict`] with its message; any other error stays a database error.
pub(super) fn on_constraint(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            let sqlite = db.message().strip_prefix("UNIQUE constraint failed: ");
            let known = CONFLICTS
                .iter()
                .find(|c| db.constraint() == Some(c.postgres) || sqlite == Some(c.sqlite));
            if let Some(c) = known {
                return StoreError::Conflict(c.message.into());
            }
        }
    }
    StoreError::Database(e)
}
