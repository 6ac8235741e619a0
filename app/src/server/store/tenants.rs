//! Tenants: created by the provider (CLI, demo seeding), read within their own scope.

use super::error::on_constraint;
use super::{parse_id, Result, Sql, Store, StoreError, TenantScope};
use crate::domain::TenantId;

#[derive(Debug, Clone, PartialEq)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub plan_id: String,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    tenant_id: String,
    name: String,
    plan_id: String,
}

impl TryFrom<TenantRow> for TenantRecord {
    type Error = StoreError;
    fn try_from(r: TenantRow) -> Result<TenantRecord> {
        Ok(TenantRecord {
            id: parse_id(r.tenant_id)?,
            name: r.name,
            plan_id: r.plan_id,
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
                Sql::new("SELECT tenant_id, name, plan_id FROM tenant WHERE tenant_id = $1")
                    .bind(tenant),
            )
            .await?;
        tx.commit().await?;
        row.try_into()
    }
}
