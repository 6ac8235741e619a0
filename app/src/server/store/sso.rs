//! Single sign-on state: sign-ins in progress (each used once) and the link from an issuer's
//! `iss` + `sub` to a Portico user. Both are looked up before any tenant is known.

use super::{parse_id, Pool, Result, Store, StoreError};
use crate::domain::{TenantId, UserId};
use sqlx::Row;

/// A sign-in sent to an issuer and not yet back.
#[derive(Debug, Clone, PartialEq)]
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
        on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO sso_login (state_hash, browser_hash, issuer_id, nonce, pkce_verifier, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(&l.state_hash)
        .bind(&l.browser_hash)
        .bind(&l.issuer_id)
        .bind(&l.nonce)
        .bind(&l.pkce_verifier)
        .bind(l.expires_at)
        .execute(p)
        .await
        .map(|_| ())
        })?;
        Ok(())
    }

    /// Removes and returns the sign-in with this state, if it has not expired: a state is good
    /// for one callback only, so a replayed callback finds nothing.
    pub async fn take_sso_login(&self, state_hash: &str, now: i64) -> Result<Option<SsoLogin>> {
        let row = on_pool!(self, |p| sqlx::query(
            "DELETE FROM sso_login WHERE state_hash = $1 \
             RETURNING state_hash, browser_hash, issuer_id, nonce, pkce_verifier, expires_at"
        )
        .bind(state_hash)
        .fetch_optional(p)
        .await
        .map(|r| r.map(|r| -> Result<SsoLogin> {
            Ok(SsoLogin {
                state_hash: r.try_get("state_hash")?,
                browser_hash: r.try_get("browser_hash")?,
                issuer_id: r.try_get("issuer_id")?,
                nonce: r.try_get("nonce")?,
                pkce_verifier: r.try_get("pkce_verifier")?,
                expires_at: r.try_get("expires_at")?,
            })
        })))?;
        Ok(row.transpose()?.filter(|l| l.expires_at > now))
    }

    /// Forgets sign-ins nobody came back from; returns how many.
    pub async fn delete_expired_sso_logins(&self, now: i64) -> Result<u64> {
        Ok(on_pool!(self, |p| sqlx::query(
            "DELETE FROM sso_login WHERE expires_at < $1"
        )
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// The user an issuer's subject was linked to, and whether they are disabled.
    pub async fn user_by_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<(UserId, bool)>> {
        let row: Option<(String, bool)> = on_pool!(self, |p| sqlx::query_as(
            "SELECT u.user_id, u.disabled FROM user_identity i \
             JOIN app_user u ON u.user_id = i.user_id WHERE i.issuer = $1 AND i.subject = $2"
        )
        .bind(issuer)
        .bind(subject)
        .fetch_optional(p)
        .await)?;
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
        let n = on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO user_identity (issuer, subject, user_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING"
        )
        .bind(issuer)
        .bind(subject)
        .bind(user.as_str())
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Pending invitations for an email in any tenant, oldest first: `(tenant, invitation id)`.
    pub async fn invitations_for_email(
        &self,
        email: &str,
        now: i64,
    ) -> Result<Vec<(TenantId, String)>> {
        let sql = self.per_engine(
            "SELECT tenant_id, invitation_id FROM invitation \
             WHERE email = $1 AND accepted_at IS NULL AND expires_at > $2 \
             ORDER BY created_at, invitation_id",
            "SELECT tenant_id, invitation_id FROM portico_invitations_for_email($1, $2) \
             ORDER BY created_at, invitation_id",
        );
        let rows = on_pool!(self, |p| sqlx::query(sql)
            .bind(email)
            .bind(now)
            .fetch_all(p)
            .await
            .map(|rows| rows
                .into_iter()
                .map(|r| -> Result<(TenantId, String)> {
                    Ok((
                        parse_id(r.try_get("tenant_id")?)?,
                        r.try_get("invitation_id")?,
                    ))
                })
                .collect::<Vec<_>>()))?;
        rows.into_iter().collect::<Result<_, StoreError>>()
    }
}
