//! Instances: what a tenant runs. Created and changed through operations
//! (`operations.rs`); inserted directly only by demo seeding and tests.

use super::error::on_constraint;
use super::events::{emit, NewEvent};
use super::page::{read_limit, Seek, Slice};
use super::{parse_id, Conn, Result, Sql, Store, StoreError, TenantScope, Tx};
use crate::domain::lifecycle::Observed;
use crate::domain::policy::InstanceFacts;
use crate::domain::{
    Endpoint, EventKind, InstanceFilter, InstanceId, ParamValue, Plan, Resources, Status, TenantId,
};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub id: InstanceId,
    pub tenant_id: TenantId,
    pub name: String,
    pub plan_id: String,
    pub environment: String,
    pub region: String,
    pub status: Status,
    pub status_reason: Option<String>,
    pub resources: Resources,
    pub parameters: BTreeMap<String, ParamValue>,
    pub endpoints: Vec<Endpoint>,
    pub delete_protected: bool,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The control plane's own id, once it reported one.
    pub external_id: Option<String>,
    /// When the control plane last confirmed the instance's state.
    pub observed_at: Option<i64>,
    /// Since when the control plane's list has lacked this instance it once reported.
    pub missing_since: Option<i64>,
}

impl InstanceRecord {
    /// What the policy needs to know about this instance.
    pub fn facts<'a>(&'a self, plan: &'a Plan, operation_in_flight: bool) -> InstanceFacts<'a> {
        InstanceFacts {
            name: &self.name,
            status: self.status,
            plan,
            resources: self.resources,
            parameters: &self.parameters,
            delete_protected: self.delete_protected,
            operation_in_flight,
        }
    }
}

pub(super) const INSTANCE_COLUMNS: &str =
    "instance_id, tenant_id, name, plan_id, environment, region, status, status_reason, \
     replicas, cpu_millicores, memory_mib, storage_gib, parameters, endpoints, \
     delete_protected, version, created_at, updated_at, external_id, observed_at, missing_since";

/// Live (not deleted) instances of a tenant on a plan, as quotas count them.
pub(super) const LIVE_ON_PLAN: &str = "SELECT COUNT(*) FROM instance \
     WHERE tenant_id = $1 AND plan_id = $2 AND status <> 'deleted'";

/// An `instance` row as stored: [`INSTANCE_COLUMNS`].
#[derive(sqlx::FromRow)]
struct InstanceRow {
    instance_id: String,
    tenant_id: String,
    name: String,
    plan_id: String,
    environment: String,
    region: String,
    status: String,
    status_reason: Option<String>,
    replicas: i64,
    cpu_millicores: i64,
    memory_mib: i64,
    storage_gib: i64,
    parameters: String,
    endpoints: String,
    delete_protected: bool,
    version: i64,
    created_at: i64,
    updated_at: i64,
    external_id: Option<String>,
    observed_at: Option<i64>,
    missing_since: Option<i64>,
}

impl TryFrom<InstanceRow> for InstanceRecord {
    type Error = StoreError;
    fn try_from(r: InstanceRow) -> Result<InstanceRecord> {
        let int = |col: &str, v: i64| -> Result<u32> {
            u32::try_from(v)
                .map_err(|_| StoreError::Corrupt(format!("{col} = {v} is out of range")))
        };
        Ok(InstanceRecord {
            id: parse_id(r.instance_id)?,
            tenant_id: parse_id(r.tenant_id)?,
            name: r.name,
            plan_id: r.plan_id,
            environment: r.environment,
            region: r.region,
            status: Status::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown status {}", r.status)))?,
            status_reason: r.status_reason,
            resources: Resources {
                replicas: int("replicas", r.replicas)?,
                cpu_millicores: int("cpu_millicores", r.cpu_millicores)?,
                memory_mib: int("memory_mib", r.memory_mib)?,
                storage_gib: int("storage_gib", r.storage_gib)?,
            },
            parameters: serde_json::from_str(&r.parameters)
                .map_err(|e| StoreError::Corrupt(format!("parameters: {e}")))?,
            endpoints: serde_json::from_str(&r.endpoints)
                .map_err(|e| StoreError::Corrupt(format!("endpoints: {e}")))?,
            delete_protected: r.delete_protected,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            external_id: r.external_id,
            observed_at: r.observed_at,
            missing_since: r.missing_since,
        })
    }
}

/// `value` as the JSON text the schema stores.
pub(super) fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl InstanceRecord {
    /// Takes what the control plane reports about the instance: its word wins over what
    /// Portico expected. An empty report changes nothing, not even when it was last confirmed.
    pub fn observe(&mut self, seen: &Observed, now: i64) {
        if *seen == Observed::default() {
            return;
        }
        if let Some(status) = seen.status {
            self.status = status;
        }
        if let Some(e) = &seen.endpoints {
            self.endpoints = e.clone();
        }
        if let Some(r) = seen.resources {
            self.resources = r;
        }
        if seen.external_id.is_some() {
            self.external_id = seen.external_id.clone();
        }
        self.observed_at = Some(now);
        self.missing_since = None;
    }
}

/// Writes an instance's state (status, resources, parameters, endpoints, what the control plane
/// last reported) in the caller's transaction, as a new version, and tells the live streams.
pub(super) async fn write_state(tx: &mut Tx, inst: &InstanceRecord, now: i64) -> Result<()> {
    let before: Option<String> = tx
        .conn()
        .scalar_optional(
            Sql::new("SELECT status FROM instance WHERE tenant_id = $1 AND instance_id = $2")
                .bind(inst.tenant_id.as_str())
                .bind(inst.id.as_str()),
        )
        .await?;
    tx.conn()
        .execute(
            Sql::new(
                "UPDATE instance SET status = $3, status_reason = $4, replicas = $5, \
               cpu_millicores = $6, memory_mib = $7, storage_gib = $8, \
               parameters = $9, endpoints = $10, external_id = $11, observed_at = $12, \
               missing_since = $14, version = version + 1, updated_at = $13 \
             WHERE tenant_id = $1 AND instance_id = $2",
            )
            .bind(inst.tenant_id.as_str())
            .bind(inst.id.as_str())
            .bind(inst.status.as_str())
            .bind(&inst.status_reason)
            .bind(i64::from(inst.resources.replicas))
            .bind(i64::from(inst.resources.cpu_millicores))
            .bind(i64::from(inst.resources.memory_mib))
            .bind(i64::from(inst.resources.storage_gib))
            .bind(to_json(&inst.parameters)?)
            .bind(to_json(&inst.endpoints)?)
            .bind(&inst.external_id)
            .bind(inst.observed_at)
            .bind(now)
            .bind(inst.missing_since),
        )
        .await?;
    let kind = if inst.status == Status::Deleted {
        EventKind::InstanceDeleted
    } else {
        EventKind::InstanceChanged
    };
    emit(
        tx,
        inst.tenant_id.as_str(),
        NewEvent::instance(kind, inst.id.as_str()),
        now,
    )
    .await?;
    if let Some(before) = before.as_deref().and_then(Status::parse) {
        super::webhooks::status_changed(tx, inst, before, now).await?;
    }
    Ok(())
}

/// One of the tenant's instances, read on `conn` (inside the caller's transaction).
pub(super) async fn instance_in(
    conn: &mut Conn<'_>,
    tenant: &str,
    id: &InstanceId,
) -> Result<Option<InstanceRecord>> {
    let row: Option<InstanceRow> = conn
        .fetch_optional(
            Sql::new(format!(
                "SELECT {INSTANCE_COLUMNS} FROM instance \
                 WHERE tenant_id = $1 AND instance_id = $2"
            ))
            .bind(tenant)
            .bind(id.as_str()),
        )
        .await?;
    row.map(InstanceRecord::try_from).transpose()
}

impl Store {
    pub async fn insert_instance(&self, scope: &TenantScope, i: &InstanceRecord) -> Result<()> {
        self.insert_instance_audited(scope, i, None).await
    }

    /// As [`Store::insert_instance`], with `audit` written in the same transaction.
    pub async fn insert_instance_audited(
        &self,
        scope: &TenantScope,
        i: &InstanceRecord,
        audit: Option<&super::AuditEvent>,
    ) -> Result<()> {
        if &i.tenant_id != scope.tenant_id() {
            return Err(StoreError::Conflict(
                "instance belongs to another tenant".into(),
            ));
        }
        let params = to_json(&i.parameters)?;
        let endpoints = to_json(&i.endpoints)?;
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        tx.conn()
            .execute(
                Sql::new(format!(
                    "INSERT INTO instance ({INSTANCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, \
                     $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
                ))
                .bind(i.id.as_str())
                .bind(tenant)
                .bind(&i.name)
                .bind(&i.plan_id)
                .bind(&i.environment)
                .bind(&i.region)
                .bind(i.status.as_str())
                .bind(&i.status_reason)
                .bind(i64::from(i.resources.replicas))
                .bind(i64::from(i.resources.cpu_millicores))
                .bind(i64::from(i.resources.memory_mib))
                .bind(i64::from(i.resources.storage_gib))
                .bind(params)
                .bind(endpoints)
                .bind(i.delete_protected)
                .bind(i.version)
                .bind(i.created_at)
                .bind(i.updated_at)
                .bind(&i.external_id)
                .bind(i.observed_at)
                .bind(i.missing_since),
            )
            .await
            .map_err(on_constraint)?;
        let created = NewEvent::instance(EventKind::InstanceCreated, i.id.as_str());
        emit(&mut tx, tenant, created, i.created_at).await?;
        super::webhooks::instance_created(&mut tx, i, i.created_at).await?;
        if let Some(e) = audit {
            super::audit::insert_audit(&mut tx, e).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's instances, excluding deleted ones, by name.
    pub async fn list_instances(&self, scope: &TenantScope) -> Result<Vec<InstanceRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let rows: Vec<InstanceRow> = tx
            .conn()
            .fetch_all(
                Sql::new(format!(
                    "SELECT {INSTANCE_COLUMNS} FROM instance \
                     WHERE tenant_id = $1 AND status <> 'deleted' ORDER BY name"
                ))
                .bind(tenant),
            )
            .await?;
        tx.commit().await?;
        rows.into_iter().map(InstanceRecord::try_from).collect()
    }

    /// One page of the tenant's live instances matching `f`, by name, and how many match in
    /// all. Names are unique within a tenant, so the name alone orders the list totally and
    /// is the page's key; a key taken from another tenant's list only marks a position in
    /// this tenant's.
    pub async fn instance_page(
        &self,
        scope: &TenantScope,
        f: &InstanceFilter,
        at: &Seek<String>,
        limit: usize,
    ) -> Result<(Slice<InstanceRecord>, u64)> {
        // Instance names are lower case: the search is case-insensitive as the filter says.
        let contains = self.per_engine("instr(name, $4) > 0", "strpos(name, $4) > 0");
        let matching = format!(
            "FROM instance WHERE tenant_id = $1 AND status <> 'deleted' \
               AND ($2 IS NULL OR environment = $2) AND ($3 IS NULL OR status = $3) \
               AND ($4 IS NULL OR {contains})"
        );
        let (cmp, order) = if at.backward() {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let tenant = scope.tenant_id().as_str();
        let filtered = |sql: String| {
            Sql::new(sql)
                .bind(tenant)
                .bind(&f.environment)
                .bind(f.status.map(Status::as_str))
                .bind(f.q.as_deref().map(str::to_ascii_lowercase))
        };
        let mut tx = self.begin_in(tenant).await?;
        let rows: Vec<InstanceRow> = tx
            .conn()
            .fetch_all(
                filtered(format!(
                    "SELECT {INSTANCE_COLUMNS} {matching} AND ($5 IS NULL OR name {cmp} $5) \
                     ORDER BY name {order} LIMIT $6"
                ))
                .bind(at.key().map(String::as_str))
                .bind(read_limit(limit)),
            )
            .await?;
        let total: i64 = tx
            .conn()
            .scalar(filtered(format!("SELECT COUNT(*) {matching}")))
            .await?;
        tx.commit().await?;
        let rows = rows
            .into_iter()
            .map(InstanceRecord::try_from)
            .collect::<Result<_>>()?;
        Ok((
            Slice::from_read(rows, limit, at.backward()),
            u64::try_from(total).unwrap_or_default(),
        ))
    }

    /// The id and name of each of the tenant's live instances, by name: what a filter offers.
    pub async fn instance_names(&self, scope: &TenantScope) -> Result<Vec<(String, String)>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let names = tx
            .conn()
            .fetch_all(
                Sql::new(
                    "SELECT instance_id, name FROM instance \
                     WHERE tenant_id = $1 AND status <> 'deleted' ORDER BY name",
                )
                .bind(tenant),
            )
            .await?;
        tx.commit().await?;
        Ok(names)
    }

    /// One of the tenant's instances; another tenant's instance is simply not found.
    pub async fn get_instance(
        &self,
        scope: &TenantScope,
        id: &InstanceId,
    ) -> Result<Option<InstanceRecord>> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let instance = instance_in(&mut tx.conn(), tenant, id).await?;
        tx.commit().await?;
        Ok(instance)
    }

    /// How many live (not deleted) instances the tenant holds on a plan, as quotas count them.
    pub async fn count_live_instances(&self, scope: &TenantScope, plan_id: &str) -> Result<u32> {
        let tenant = scope.tenant_id().as_str();
        let mut tx = self.begin_in(tenant).await?;
        let n: i64 = tx
            .conn()
            .scalar(Sql::new(LIVE_ON_PLAN).bind(tenant).bind(plan_id))
            .await?;
        tx.commit().await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }
}
