//! Users: accounts across tenants, looked up by email before any tenant is known.

use super::error::on_constraint;
use super::{new_id, parse_id, Result, Sql, Store, StoreError, Tx};
use crate::domain::{Email, UserId};

#[derive(Debug, Clone, PartialEq)]
pub struct UserCredentials {
    pub user_id: UserId,
    pub password_hash: Option<String>,
    pub disabled: bool,
    /// The password was chosen by whoever held an invitation link, and the email's owner has
    /// not proved the email since.
    pub password_from_invitation: bool,
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    user_id: String,
    password_hash: Option<String>,
    disabled: bool,
    password_from_invitation: bool,
}

impl TryFrom<CredentialsRow> for UserCredentials {
    type Error = StoreError;
    fn try_from(r: CredentialsRow) -> Result<UserCredentials> {
        Ok(UserCredentials {
            user_id: parse_id(r.user_id)?,
            password_hash: r.password_hash,
            disabled: r.disabled,
            password_from_invitation: r.password_from_invitation,
        })
    }
}

impl Store {
    pub async fn create_user(
        &self,
        email: &Email,
        display_name: &str,
        password_hash: Option<&str>,
        now: i64,
    ) -> Result<UserId> {
        self.insert_user(email, display_name, password_hash, false, now)
            .await
    }

    /// A user created by accepting an invitation link with a password: the link proves only
    /// that its holder received it, so the password is cleared when the email's owner first
    /// signs in through an identity provider that verified the email.
    pub async fn create_invited_user(
        &self,
        email: &Email,
        display_name: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<UserId> {
        self.insert_user(email, display_name, Some(password_hash), true, now)
            .await
    }

    async fn insert_user(
        &self,
        email: &Email,
        display_name: &str,
        password_hash: Option<&str>,
        password_from_invitation: bool,
        now: i64,
    ) -> Result<UserId> {
        let id = UserId::parse(&new_id()).expect("uuids are valid ids");
        self.pooled()
            .await?
            .conn()
            .execute(
                Sql::new(
                    "INSERT INTO app_user (user_id, email, display_name, password_hash, \
                       password_from_invitation, disabled, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, FALSE, $6, $6)",
                )
                .bind(id.as_str())
                .bind(email.as_str())
                .bind(display_name)
                .bind(password_hash)
                .bind(password_from_invitation)
                .bind(now),
            )
            .await
            .map_err(on_constraint)?;
        Ok(id)
    }

    /// A disabled user cannot sign in, and their sessions stop resolving at once.
    pub async fn set_user_disabled(&self, user: &UserId, disabled: bool, now: i64) -> Result<()> {
        self.pooled()
            .await?
            .conn()
            .execute(
                Sql::new("UPDATE app_user SET disabled = $2, updated_at = $3 WHERE user_id = $1")
                    .bind(user.as_str())
                    .bind(disabled)
                    .bind(now),
            )
            .await?;
        Ok(())
    }

    /// Sets a user's password hash (`None` clears it: no password sign-in) and, in the same
    /// transaction, ends every session they hold in any tenant: whoever knew the old password
    /// is signed out at once. Returns the sessions ended.
    pub async fn set_password(
        &self,
        user: &UserId,
        password_hash: Option<&str>,
        now: i64,
    ) -> Result<u64> {
        let mut tx = self.begin().await?;
        tx.conn()
            .execute(
                Sql::new(
                    "UPDATE app_user SET password_hash = $2, password_from_invitation = FALSE, \
                     updated_at = $3 WHERE user_id = $1",
                )
                .bind(user.as_str())
                .bind(password_hash)
                .bind(now),
            )
            .await?;
        // Sessions span tenants: PostgreSQL ends them in a SECURITY DEFINER function.
        let ended = match tx {
            Tx::Sqlite(..) => {
                tx.conn()
                    .execute(Sql::new("DELETE FROM session WHERE user_id = $1").bind(user.as_str()))
                    .await?
            }
            Tx::Postgres(_) => {
                let n: i64 = tx
                    .conn()
                    .scalar(Sql::new("SELECT portico_end_user_sessions($1)").bind(user.as_str()))
                    .await?;
                u64::try_from(n).unwrap_or_default()
            }
        };
        tx.commit().await?;
        Ok(ended)
    }

    // ---- authentication (looked up before a tenant is known) ----

    pub async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>> {
        let row: Option<CredentialsRow> = self
            .pooled()
            .await?
            .conn()
            .fetch_optional(
                Sql::new(
                    "SELECT user_id, password_hash, disabled, password_from_invitation \
                     FROM app_user WHERE email = $1",
                )
                .bind(email.as_str()),
            )
            .await?;
        row.map(UserCredentials::try_from).transpose()
    }
}
