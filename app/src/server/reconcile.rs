//! Reconciliation: every few minutes, page through the control plane's own list of instances
//! and repair what drifted from it. A listed instance the portal knows takes the status,
//! endpoints and resources reported (unless an operation is in flight on it); one of a known
//! tenant that the portal lacks is imported, so a provider's existing fleet appears; one the
//! control plane once reported and no longer lists is marked missing, never deleted.

use super::control_plane::contract::ListedInstance;
use super::control_plane::ControlPlane;
use super::store::{
    new_id, now_millis, InstanceRecord, Job, Repair, Store, StoreError, TenantScope,
};
use crate::domain::{InstanceId, ParamValue, ProviderConfig, Resources, Status, TenantId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The most pages one pass reads: a guard against a control plane whose cursor never ends.
const MAX_PAGES: usize = 10_000;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    pub listed: usize,
    pub repaired: usize,
    pub imported: usize,
    pub missing: usize,
    /// Listed instances left alone: an operation in flight, an unknown tenant or plan, a name
    /// already taken.
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("the control plane's list could not be read: {0}")]
    List(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Reconciler {
    store: Store,
    provider: Arc<ProviderConfig>,
    driver: Arc<dyn ControlPlane>,
}

impl Reconciler {
    pub fn new(
        store: Store,
        provider: Arc<ProviderConfig>,
        driver: Arc<dyn ControlPlane>,
    ) -> Reconciler {
        Reconciler {
            store,
            provider,
            driver,
        }
    }

    /// A pass every `every` until `shutdown` turns true. With several replicas, one at a time
    /// reconciles ([`Job::Reconcile`]).
    pub async fn run(self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            match self
                .store
                .exclusively(Job::Reconcile, self.run_once())
                .await
            {
                Ok(Some(Ok(pass))) => tracing::info!(?pass, "reconciled with the control plane"),
                Ok(None) => tracing::debug!("another replica is reconciling"),
                Ok(Some(Err(e))) => tracing::warn!(error = %e, "reconciliation pass failed"),
                Err(e) => tracing::warn!(error = %e, "reconciliation pass could not start"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// One pass over the control plane's whole list. Missing instances are marked only when
    /// the list was read to its end.
    pub async fn run_once(&self) -> Result<Pass, ReconcileError> {
        let mut pass = Pass::default();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut tenants: BTreeSet<TenantId> = BTreeSet::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .driver
                .instances(cursor.as_deref())
                .await
                .map_err(|e| ReconcileError::List(e.to_string()))?;
            for listed in &page.instances {
                pass.listed += 1;
                if let Some(ext) = &listed.observed.external_id {
                    seen.insert(ext.clone());
                }
                if let Some(id) = &listed.id {
                    seen.insert(id.clone());
                }
                let Ok(tenant) = TenantId::parse(&listed.tenant_id) else {
                    pass.skipped += 1;
                    continue;
                };
                if !self.store.tenant_exists(&tenant).await? {
                    pass.skipped += 1;
                    continue;
                }
                tenants.insert(tenant.clone());
                match self.one(&tenant, listed).await? {
                    Some(Repair::Repaired) => pass.repaired += 1,
                    Some(Repair::Confirmed) => {}
                    Some(Repair::Busy) | Some(Repair::Unknown) => pass.skipped += 1,
                    None => pass.imported += 1,
                }
            }
            match page.next_cursor {
                Some(next) if !page.instances.is_empty() => cursor = Some(next),
                _ => {
                    pass.missing = self.mark_missing(&seen).await?;
                    return Ok(pass);
                }
            }
        }
        Err(ReconcileError::List(format!(
            "more than {MAX_PAGES} pages; stopped"
        )))
    }

    /// Repairs or imports one listed instance: `None` when it was imported.
    async fn one(
        &self,
        tenant: &TenantId,
        listed: &ListedInstance,
    ) -> Result<Option<Repair>, StoreError> {
        let scope = TenantScope::provider(tenant.clone());
        let now = now_millis();
        let by_id = match listed.id.as_deref().map(InstanceId::parse) {
            Some(Ok(id)) if self.store.get_instance(&scope, &id).await?.is_some() => Some(id),
            _ => None,
        };
        let known = match (by_id, &listed.observed.external_id) {
            (Some(id), _) => Some(id),
            (None, Some(ext)) => self.store.instance_by_external_id(&scope, ext).await?,
            (None, None) => None,
        };
        if let Some(id) = known {
            return Ok(Some(
                self.store
                    .repair_instance(tenant, &id, &listed.observed, now)
                    .await?,
            ));
        }
        let Some(record) = self.import(tenant, listed, now) else {
            return Ok(Some(Repair::Unknown));
        };
        Ok(if self.store.import_instance(&scope, &record).await? {
            tracing::info!(tenant = %tenant, name = %record.name, "imported an instance");
            None
        } else {
            Some(Repair::Unknown)
        })
    }

    /// The portal's record of an instance it lacked, on the plan's defaults where the list is
    /// silent; `None` when the plan is unknown.
    fn import(
        &self,
        tenant: &TenantId,
        listed: &ListedInstance,
        now: i64,
    ) -> Option<InstanceRecord> {
        let plan = self.provider.plan(&listed.plan)?;
        let r = &plan.resources;
        let parameters: BTreeMap<String, ParamValue> = plan
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.default.clone()))
            .collect();
        Some(InstanceRecord {
            id: InstanceId::parse(&new_id()).ok()?,
            tenant_id: tenant.clone(),
            name: listed.name.clone(),
            plan_id: plan.id.clone(),
            environment: listed.environment.clone(),
            region: listed.region.clone(),
            status: listed.observed.status.unwrap_or(Status::Running),
            status_reason: None,
            resources: listed.observed.resources.unwrap_or(Resources {
                replicas: r.replicas.default,
                cpu_millicores: r.cpu_millicores.default,
                memory_mib: r.memory_mib.default,
                storage_gib: r.storage_gib.default,
            }),
            parameters,
            endpoints: listed.observed.endpoints.clone().unwrap_or_default(),
            delete_protected: false,
            version: 1,
            created_at: now,
            updated_at: now,
            external_id: listed.observed.external_id.clone(),
            observed_at: Some(now),
            missing_since: None,
        })
    }

    /// Marks every instance the control plane once reported (it has an external id) and did
    /// not list this pass. Returns how many were newly marked.
    async fn mark_missing(&self, seen: &BTreeSet<String>) -> Result<usize, StoreError> {
        let mut marked = 0;
        let now = now_millis();
        for tenant in self.store.tenant_ids().await? {
            let scope = TenantScope::provider(tenant);
            for inst in self.store.list_instances(&scope).await? {
                let Some(ext) = &inst.external_id else {
                    continue;
                };
                if seen.contains(ext) || seen.contains(inst.id.as_str()) {
                    continue;
                }
                if self.store.mark_missing(&inst, now).await? {
                    marked += 1;
                }
            }
        }
        Ok(marked)
    }
}
