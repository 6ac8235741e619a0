//! Tenants: created by the provider (CLI, demo seeding), read within their own scope.

use super::error::on_constraint;
use super::{parse_id, Result, Sql, Store, StoreError, TenantScope};
use crate::domain::TenantId;

#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub plan_id: String,
    /// When the provider suspended it: its people may look but not act.
    pub suspended_at: Option<i64>,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    tenant_id: String,
    name: String,
    plan_id: String,
    suspended_at: Option<i64>,
    created_at: i64,
}

/// What the provider changes about a tenant; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantChange {
    pub name: Option<String>,
    pub plan_id: Option<String>,
    pub suspended: Option<bool>,
}

impl TryFrom<TenantRow> for TenantRecord {
    type Error = StoreError;
    fn try_from(r: TenantRow) -> Result<TenantRecord> {
        Ok(TenantRecord {
            id: parse_id(r.tenant_id)?,
            name: r.name,
            plan_id: r.plan_id,
            suspended_at: r.suspended_at,
            created_at: r.created_at,
        })
    }
}

impl Store {
    // ---- provider-level writes (CLI, demo seeding) ----

    pub async fn create_tenant(
        &self,
        id: &TenantId,
        name: &str,
        plan_id: &str,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.begin_in(id.as_str()).await?;
        tx.conn()
            .execute(
                Sql::new(
                    "INSERT INTO tenant (tenant_id, name, plan_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(id.as_str())
                .bind(name)
                .bind(plan_id)
                .bind(now),
            )
            .await
            .map_err(on_constraint)?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn tenant_exists(&self, id: &TenantId) -> Result<bool> {
        let mut tx = self.begin_in(id.as_str()).await?;
        let n: i64 = tx
            .conn()
            .scalar(Sql::new("SELECT COUNT(*) FROM tenant WHERE tenant_id = $1").bind(id.as_str()))
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    /// How many tenants exist, across all of them (the demo loads only into an empty database).
    pub async fn count_tenants(&self) -> Result<i64> {
        let sql = self.per_engine(
            "SELECT COUNT(*) FROM tenant",
            "SELECT portico_tenant_count()",
        );
        Ok(self.pooled().await?.conn().scalar(Sql::new(sql)).await?)
    }

    /// Every tenant's id, across all of them (reconciliation visits each in turn).
    pub async fn tenant_ids(&self) -> Result<Vec<TenantId>> {
        let sql = self.per_engine(
            "SELECT tenant_id FROM tenant ORDER BY tenant_id",
            "SELECT portico_tenant_ids()",
        );
        let ids: Vec<(String,)> = self.pooled().await?.conn().fetch_all(Sql::new(sql)).await?;
        ids.into_iter().map(|(id,)| parse_id(id)).collect()
    }

    // ---- tenant-scoped reads ----

    pub async fn tenant(&self, scope: &TenantScope) -> Result<TenantRecord> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let row: TenantRow = tx
            .conn()
            .fetch_one(
                Sql::new(
                    "SELECT tenant_id, name, plan_id, suspended_at, created_at FROM tenant \
                     WHERE tenant_id = $1",
                )
                .bind(tenant),
            )
            .await?;
        tx.commit().await?;
        row.try_into()
    }

    /// Applies the provider's `change` to the tenant and audits it (by `actor`, as
    /// "tenant-update" with what changed); answers the tenant as it now is.
    pub async fn update_tenant(
        &self,
        scope: &TenantScope,
        actor: &super::Actor,
        change: &TenantChange,
        now: i64,
    ) -> Result<TenantRecord> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let suspended_at = change.suspended.map(|s| if s { Some(now) } else { None });
        tx.conn()
            .execute(
                Sql::new(
                    "UPDATE tenant SET name = COALESCE($2, name), plan_id = COALESCE($3, plan_id), \
                       suspended_at = CASE WHEN $4 THEN COALESCE(suspended_at, $5) \
                                           WHEN $6 THEN NULL ELSE suspended_at END, \
                       updated_at = $5 \
                     WHERE tenant_id = $1",
                )
                .bind(tenant)
                .bind(change.name.as_deref())
                .bind(change.plan_id.as_deref())
                .bind(suspended_at == Some(Some(now)))
                .bind(now)
                .bind(suspended_at == Some(None)),
            )
            .await?;
        let mut parameters = serde_json::Map::new();
        if let Some(n) = &change.name {
            parameters.insert("name".into(), n.clone().into());
        }
        if let Some(p) = &change.plan_id {
            parameters.insert("plan".into(), p.clone().into());
        }
        if let Some(s) = change.suspended {
            parameters.insert("suspended".into(), s.into());
        }
        let event = super::AuditEvent {
            role: None,
            ..super::AuditEvent::change(
                scope,
                actor,
                "tenant-update",
                serde_json::Value::Object(parameters).to_string(),
                now,
            )
        };
        super::audit::insert_audit(&mut tx, &event).await?;
        let row: TenantRow = tx
            .conn()
            .fetch_one(
                Sql::new(
                    "SELECT tenant_id, name, plan_id, suspended_at, created_at FROM tenant \
                     WHERE tenant_id = $1",
                )
                .bind(tenant),
            )
            .await?;
        tx.commit().await?;
        row.try_into()
    }
}
