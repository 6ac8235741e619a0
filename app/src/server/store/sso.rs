//! Single sign-on state: sign-ins in progress (each used once) and the link from an issuer's
//! `iss` + `sub` to a Portico user. Both are looked up before any tenant is known.

use super::{parse_id, Result, Sql, Store};
use crate::domain::UserId;

/// A sign-in sent to an issuer and not yet back.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SsoLogin {
    pub state_hash: String,
    pub browser_hash: String,
    pub issuer_id: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub expires_at: i64,
}

impl Store {
    pub async fn begin_sso_login(&self, l: &SsoLogin) -> Result<()> {
        self.pooled()
            .await?
            .conn()
            .execute(
                Sql::new(
                    "INSERT INTO sso_login (state_hash, browser_hash, issuer_id, nonce, \
                       pkce_verifier, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&l.state_hash)
                .bind(&l.browser_hash)
                .bind(&l.issuer_id)
                .bind(&l.nonce)
                .bind(&l.pkce_verifier)
                .bind(l.expires_at),
            )
            .await?;
        Ok(())
    }

    /// Removes and returns the sign-in with this state, if it has not expired: a state is good
    /// for one callback only, so a replayed callback finds nothing.
    pub async fn take_sso_login(&self, state_hash: &str, now: i64) -> Result<Option<SsoLogin>> {
        let login: Option<SsoLogin> = self
            .pooled()
            .await?
            .conn()
            .fetch_optional(
                Sql::new(
                    "DELETE FROM sso_login WHERE state_hash = $1 \
                     RETURNING state_hash, browser_hash, issuer_id, nonce, pkce_verifier, \
                       expires_at",
                )
                .bind(state_hash),
            )
            .await?;
        Ok(login.filter(|l| l.expires_at > now))
    }

    /// Forgets sign-ins nobody came back from; returns how many.
    pub async fn delete_expired_sso_logins(&self, now: i64) -> Result<u64> {
        Ok(self
            .pooled()
            .await?
            .conn()
            .execute(Sql::new("DELETE FROM sso_login WHERE expires_at < $1").bind(now))
            .await?)
    }

    /// The user an issuer's subject was linked to, and whether they are disabled.
    pub async fn user_by_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<(UserId, bool)>> {
        let row: Option<(String, bool)> = self
            .pooled()
            .await?
            .conn()
            .fetch_optional(
                Sql::new(
                    "SELECT u.user_id, u.disabled FROM user_identity i \
                     JOIN app_user u ON u.user_id = i.user_id \
                     WHERE i.issuer = $1 AND i.subject = $2",
                )
                .bind(issuer)
                .bind(subject),
            )
            .await?;
        row.map(|(id, disabled)| Ok((parse_id(id)?, disabled)))
            .transpose()
    }

    /// Links an issuer's subject to a user. False when the user is already linked to another
    /// subject at this issuer, or the subject to another user: the email now names someone else.
    pub async fn link_identity(
        &self,
        issuer: &str,
        subject: &str,
        user: &UserId,
        now: i64,
    ) -> Result<bool> {
        let n = self
            .pooled()
            .await?
            .conn()
            .execute(
                Sql::new(
                    "INSERT INTO user_identity (issuer, subject, user_id, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(issuer)
                .bind(subject)
                .bind(user.as_str())
                .bind(now),
            )
            .await?;
        Ok(n == 1)
    }
}
