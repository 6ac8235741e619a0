//! The provider's API keys: made and revoked on the server's command line, resolved from the
//! SHA-256 of the secret a request sends. They belong to no tenant.

use super::{Result, Sql, Store};

/// One key as stored (never its secret).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ProviderKeyRecord {
    #[sqlx(rename = "provider_key_id")]
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "provider_key_id, name, created_at, last_used_at, revoked_at";

impl Store {
    /// Stores a new key; a name already taken (by a live or revoked key) is a conflict.
    pub async fn create_provider_key(
        &self,
        id: &str,
        name: &str,
        key_hash: &str,
        now: i64,
    ) -> Result<()> {
        self.pooled()
            .await?
            .conn()
            .execute(
                Sql::new(
                    "INSERT INTO provider_key (provider_key_id, name, key_hash, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(name)
                .bind(key_hash)
                .bind(now),
            )
            .await
            .map_err(super::error::on_constraint)?;
        Ok(())
    }

    pub async fn list_provider_keys(&self) -> Result<Vec<ProviderKeyRecord>> {
        Ok(self
            .pooled()
            .await?
            .conn()
            .fetch_all(Sql::new(format!(
                "SELECT {COLUMNS} FROM provider_key ORDER BY created_at, name"
            )))
            .await?)
    }

    /// Revokes the live key named `name`; false when there is none.
    pub async fn revoke_provider_key(&self, name: &str, now: i64) -> Result<bool> {
        let n = self
            .pooled()
            .await?
            .conn()
            .execute(
                Sql::new(
                    "UPDATE provider_key SET revoked_at = $2 \
                     WHERE name = $1 AND revoked_at IS NULL",
                )
                .bind(name)
                .bind(now),
            )
            .await?;
        Ok(n == 1)
    }

    /// The live key whose secret hashes to `key_hash`; marks it used (at most once a minute).
    pub async fn resolve_provider_key(
        &self,
        key_hash: &str,
        now: i64,
    ) -> Result<Option<ProviderKeyRecord>> {
        let mut pooled = self.pooled().await?;
        let mut conn = pooled.conn();
        let key: Option<ProviderKeyRecord> = conn
            .fetch_optional(
                Sql::new(format!(
                    "SELECT {COLUMNS} FROM provider_key WHERE key_hash = $1 AND revoked_at IS NULL"
                ))
                .bind(key_hash),
            )
            .await?;
        if let Some(k) = &key {
            if k.last_used_at.is_none_or(|t| now - t > 60_000) {
                conn.execute(
                    Sql::new(
                        "UPDATE provider_key SET last_used_at = $2 WHERE provider_key_id = $1",
                    )
                    .bind(&k.id)
                    .bind(now),
                )
                .await?;
            }
        }
        Ok(key)
    }
}
