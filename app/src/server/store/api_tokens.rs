//! A tenant's API tokens: created, listed and revoked by its admins, resolved from the SHA-256
//! of the secret a script sends. Creating and revoking are audited in the same transaction.

use super::audit::insert_audit;
use super::{parse_role, Actor, AuditEvent, Result, Sql, Store, StoreError, TenantScope};
use crate::domain::{Role, TenantId};

/// One token as stored (never its secret).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiTokenRecord {
    pub id: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    /// The email of the admin who created it.
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiTokenRecord {
    /// Whether it may act at `now`: not revoked, not expired.
    pub fn live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }

    /// The id a token acts under in operations and the audit log (a valid user id that no
    /// person has: user ids are UUIDs).
    pub fn actor_id(&self) -> String {
        format!("token-{}", self.id)
    }
}

/// A new token's row; the secret's hash goes with it.
#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub token_hash: String,
    pub expires_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    api_token_id: String,
    tenant_id: String,
    name: String,
    role: String,
    created_by: String,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<TokenRow> for ApiTokenRecord {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<ApiTokenRecord> {
        Ok(ApiTokenRecord {
            id: r.api_token_id,
            tenant_id: super::parse_id(r.tenant_id)?,
            name: r.name,
            role: parse_role(r.role)?,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        })
    }
}

const COLUMNS: &str = "api_token_id, tenant_id, name, role, created_by, created_at, expires_at, \
                       last_used_at, revoked_at";

/// The audit line of a change to a token: `what` is "token-create" or "token-revoke".
fn token_event(
    scope: &TenantScope,
    actor: &Actor,
    what: &str,
    name: &str,
    role: Role,
    now: i64,
) -> AuditEvent {
    let parameters = serde_json::json!({ "name": name, "role": role.as_str() });
    AuditEvent::change(scope, actor, what, parameters.to_string(), now)
}

impl Store {
    /// Stores a new token for the tenant, by `actor`, and audits it.
    pub async fn create_api_token(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        t: &NewApiToken,
        now: i64,
    ) -> Result<ApiTokenRecord> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        tx.conn()
            .execute(
                Sql::new(
                    "INSERT INTO api_token (api_token_id, tenant_id, name, role, token_hash, \
                       created_by, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&t.id)
                .bind(tenant)
                .bind(&t.name)
                .bind(t.role.as_str())
                .bind(&t.token_hash)
                .bind(&actor.email)
                .bind(now)
                .bind(t.expires_at),
            )
            .await?;
        let event = token_event(scope, actor, "token-create", &t.name, t.role, now);
        insert_audit(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(ApiTokenRecord {
            id: t.id.clone(),
            tenant_id: scope.tenant_id().clone(),
            name: t.name.clone(),
            role: t.role,
            created_by: actor.email.clone(),
            created_at: now,
            expires_at: t.expires_at,
            last_used_at: None,
            revoked_at: None,
        })
    }

    /// The tenant's tokens, revoked ones included, newest first.
    pub async fn list_api_tokens(&self, scope: &TenantScope) -> Result<Vec<ApiTokenRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let rows: Vec<TokenRow> = tx
            .conn()
            .fetch_all(
                Sql::new(format!(
                    "SELECT {COLUMNS} FROM api_token WHERE tenant_id = $1 \
                     ORDER BY created_at DESC, api_token_id"
                ))
                .bind(tenant),
            )
            .await?;
        tx.commit().await?;
        rows.into_iter().map(ApiTokenRecord::try_from).collect()
    }

    /// One of the tenant's tokens by id.
    pub async fn api_token(&self, scope: &TenantScope, id: &str) -> Result<Option<ApiTokenRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let row: Option<TokenRow> = tx
            .conn()
            .fetch_optional(
                Sql::new(format!(
                    "SELECT {COLUMNS} FROM api_token WHERE tenant_id = $1 AND api_token_id = $2"
                ))
                .bind(tenant)
                .bind(id),
            )
            .await?;
        tx.commit().await?;
        row.map(ApiTokenRecord::try_from).transpose()
    }

    /// Revokes one of the tenant's live tokens and audits it; the token is refused from the
    /// next request on. `None` when there is no such live token.
    pub async fn revoke_api_token(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        id: &str,
        now: i64,
    ) -> Result<Option<ApiTokenRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let row: Option<TokenRow> = tx
            .conn()
            .fetch_optional(
                Sql::new(format!(
                    "UPDATE api_token SET revoked_at = $3 \
                     WHERE tenant_id = $1 AND api_token_id = $2 AND revoked_at IS NULL \
                     RETURNING {COLUMNS}"
                ))
                .bind(tenant)
                .bind(id)
                .bind(now),
            )
            .await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        let record = ApiTokenRecord::try_from(row)?;
        let event = token_event(scope, actor, "token-revoke", &record.name, record.role, now);
        insert_audit(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    /// The live token whose secret hashes to `token_hash`, with its tenant's name; marks it
    /// used at `now` (at most once a minute, as sessions are touched).
    pub async fn resolve_api_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<(ApiTokenRecord, String)>> {
        let sql = self.per_engine(
            "SELECT (SELECT tenant_id FROM api_token WHERE token_hash = $1)",
            "SELECT portico_api_token_tenant($1)",
        );
        let tenant: Option<String> = self
            .pooled()
            .await?
            .conn()
            .scalar(Sql::new(sql).bind(token_hash))
            .await?;
        let Some(tenant) = tenant else {
            return Ok(None);
        };
        let mut tx = self.begin_in(&tenant).await?;
        let row: Option<TokenWithTenant> = tx
            .conn()
            .fetch_optional(
                Sql::new(
                    "SELECT k.api_token_id, k.tenant_id, k.name, k.role, k.created_by, \
                       k.created_at, k.expires_at, k.last_used_at, k.revoked_at, \
                       t.name AS tenant_name \
                     FROM api_token k JOIN tenant t ON t.tenant_id = k.tenant_id \
                     WHERE k.token_hash = $1 AND k.tenant_id = $2",
                )
                .bind(token_hash)
                .bind(&tenant),
            )
            .await?;
        let Some(TokenWithTenant {
            token: row,
            tenant_name,
        }) = row
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let record = ApiTokenRecord::try_from(row)?;
        if !record.live(now) {
            tx.commit().await?;
            return Ok(None);
        }
        if record.last_used_at.is_none_or(|t| now - t > 60_000) {
            tx.conn()
                .execute(
                    Sql::new(
                        "UPDATE api_token SET last_used_at = $3 \
                         WHERE tenant_id = $1 AND api_token_id = $2",
                    )
                    .bind(&tenant)
                    .bind(&record.id)
                    .bind(now),
                )
                .await?;
        }
        tx.commit().await?;
        Ok(Some((record, tenant_name)))
    }
}

#[derive(sqlx::FromRow)]
struct TokenWithTenant {
    #[sqlx(flatten)]
    token: TokenRow,
    tenant_name: String,
}
