//! Embed tokens: single use, recorded before any tenant is trusted.

use super::{Result, Sql, Store};

impl Store {
    /// Records an embed token's `jti` as used until `expires_at`; false when it already was.
    pub async fn use_embed_token(&self, jti: &str, expires_at: i64, now: i64) -> Result<bool> {
        let n = self
            .pooled()
            .await?
            .conn()
            .execute(
                Sql::new(
                    "INSERT INTO embed_token (jti, expires_at, used_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (jti) DO NOTHING",
                )
                .bind(jti)
                .bind(expires_at)
                .bind(now),
            )
            .await?;
        Ok(n == 1)
    }

    /// Forgets used tokens that would be refused as expired anyway; returns how many.
    pub async fn delete_expired_embed_tokens(&self, now: i64) -> Result<u64> {
        Ok(self
            .pooled()
            .await?
            .conn()
            .execute(Sql::new("DELETE FROM embed_token WHERE expires_at < $1").bind(now))
            .await?)
    }
}
