//! Executes queued operations against the control plane: claims one under a lease, re-checks
//! the policy (a role demoted or a plan changed since the request takes effect), runs the
//! command while renewing the lease, and records the outcome, retrying transient failures
//! with exponential backoff.

use super::control_plane::{Command, ControlPlane, DriverError};
use super::store::{now_millis, Store, StoreError, TenantScope};
use super::store::{Finish, OperationRecord};
use crate::domain::policy::{self, InstanceFacts, OperationRequest, Request};
use crate::domain::{Operation, ProviderConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How long a claim lasts without renewal; a worker that dies is replaced after this.
    pub lease: Duration,
    /// Pause between polls when the queue is empty.
    pub idle_poll: Duration,
    /// Attempts before an operation fails with its last error.
    pub max_attempts: u32,
    /// First retry delay; doubled each attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// A command that takes longer than this counts as a transient failure.
    pub command_timeout: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(500),
            max_attempts: 5,
            base_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
            command_timeout: Duration::from_secs(300),
        }
    }
}

#[derive(Clone)]
pub struct Worker {
    pub id: String,
    store: Store,
    provider: Arc<ProviderConfig>,
    driver: Arc<dyn ControlPlane>,
    settings: WorkerSettings,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Worker {
    pub fn new(
        store: Store,
        provider: Arc<ProviderConfig>,
        driver: Arc<dyn ControlPlane>,
        settings: WorkerSettings,
    ) -> Worker {
        Worker {
            id: format!("worker-{}", super::store::new_id()),
            store,
            provider,
            driver,
            settings,
        }
    }

    /// Polls until `shutdown` turns true; an operation in progress is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(worker = %self.id, "worker started");
        while !*shutdown.borrow() {
            match self.run_once().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::error!(worker = %self.id, error = ?e, "worker step failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.idle_poll) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!(worker = %self.id, "worker stopped");
    }

    /// Claims and processes one operation; false when none was due.
    pub async fn run_once(&self) -> Result<bool, StoreError> {
        let Some(op) = self
            .store
            .claim_operation(&self.id, now_millis(), ms(self.settings.lease))
            .await?
        else {
            return Ok(false);
        };
        let span = tracing::info_span!("operation", operation_id = %op.id, tenant = %op.tenant_id,
            instance = %op.instance_id, kind = %op.operation(), attempt = op.attempts);
        // Entered only while this future is polled: a guard held across an await would stay
        // entered on the thread while other tasks run there, and nest with every operation.
        self.process(&op).instrument(span).await?;
        Ok(true)
    }

    /// Re-checks, executes and records one claimed operation.
    async fn process(&self, op: &OperationRecord) -> Result<(), StoreError> {
        let finish = match self.recheck(op).await? {
            Err(reason) => Finish::Denied { reason },
            Ok(command) => match self.execute_leased(op, &command).await? {
                None => {
                    tracing::warn!("lease lost while executing; another worker takes over");
                    return Ok(());
                }
                Some(Ok(applied)) => Finish::Succeeded {
                    endpoints: applied.endpoints,
                },
                Some(Err(e)) => self.after_failure(op, e),
            },
        };
        let recorded = self
            .store
            .finish_operation(op, &self.id, &finish, now_millis())
            .await?;
        if recorded {
            tracing::info!(outcome = ?finish, "operation step recorded");
        } else {
            tracing::warn!("lease lost before the outcome was recorded; nothing written");
        }
        Ok(())
    }

    fn after_failure(&self, op: &OperationRecord, e: DriverError) -> Finish {
        match e {
            DriverError::Transient(error) if op.attempts < self.settings.max_attempts => {
                let factor = 2u32.saturating_pow(op.attempts.saturating_sub(1));
                let delay = self
                    .settings
                    .base_backoff
                    .saturating_mul(factor)
                    .min(self.settings.max_backoff);
                Finish::Retry {
                    error,
                    not_before: now_millis() + ms(delay),
                }
            }
            DriverError::Transient(error) => Finish::Failed {
                error: format!("{error} (gave up after {} attempts)", op.attempts),
            },
            DriverError::Permanent(error) => Finish::Failed { error },
        }
    }

    /// Asks the policy again with today's role and plan; returns the command to run.
    async fn recheck(&self, op: &OperationRecord) -> Result<Result<Command, String>, StoreError> {
        let scope = TenantScope::provider(op.tenant_id.clone());
        let Some(role) = self.store.role_of(&scope, &op.requested_by).await? else {
            return Ok(Err(
                "the requester is no longer a member of the organisation".into(),
            ));
        };
        let Some(inst) = self.store.get_instance(&scope, &op.instance_id).await? else {
            return Ok(Err("the instance no longer exists".into()));
        };
        let Some(plan) = self.provider.plan(&inst.plan_id) else {
            return Ok(Err(format!("the plan {} no longer exists", inst.plan_id)));
        };
        let roles = &self.provider.roles;
        let id = inst.id.clone();
        let decision = match &op.request {
            OperationRequest::Create(_) => policy::permitted(roles, role, Operation::Create, plan),
            OperationRequest::Change(req) => {
                // Judge against the status the request started from, without itself in flight.
                let facts = InstanceFacts {
                    status: op.previous_status,
                    ..inst.facts(plan, false)
                };
                policy::check(roles, role, &facts, req)
            }
        };
        if let Err(d) = decision {
            return Ok(Err(d.to_string()));
        }
        Ok(Ok(match &op.request {
            OperationRequest::Create(c) => Command::Provision {
                instance: id,
                name: inst.name.clone(),
                environment: c.environment.clone(),
                region: c.region.clone(),
                resources: c.resources,
                parameters: inst.parameters.clone(),
            },
            OperationRequest::Change(Request::Stop) => Command::Stop { instance: id },
            OperationRequest::Change(Request::Start) => Command::Start { instance: id },
            OperationRequest::Change(Request::Restart) => Command::Restart { instance: id },
            OperationRequest::Change(Request::Scale { resources }) => Command::Scale {
                instance: id,
                resources: *resources,
            },
            OperationRequest::Change(Request::UpdateConfig { changes }) => {
                let mut parameters = inst.parameters.clone();
                parameters.extend(changes.clone());
                Command::UpdateConfig {
                    instance: id,
                    parameters,
                }
            }
            OperationRequest::Change(Request::Delete { .. }) => Command::Delete { instance: id },
        }))
    }

    /// Runs the command while renewing the lease; `None` when the lease was lost.
    async fn execute_leased(
        &self,
        op: &OperationRecord,
        command: &Command,
    ) -> Result<Option<Result<super::control_plane::Applied, DriverError>>, StoreError> {
        let lease = self.settings.lease;
        let renew_every = lease / 3;
        let run = tokio::time::timeout(self.settings.command_timeout, self.driver.execute(command));
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => {
                    return Ok(Some(match r {
                        Ok(result) => result,
                        Err(_) => Err(DriverError::Transient(format!(
                            "the control plane did not answer within {} s", self.settings.command_timeout.as_secs()
                        ))),
                    }));
                }
                _ = tokio::time::sleep(renew_every) => {
                    if !self.store.renew_lease(op, &self.id, now_millis() + ms(lease)).await? {
                        return Ok(None);
                    }
                }
            }
        }
    }
}
