//! Executes queued operations against the control plane: claims one under a lease, re-checks
//! the policy (a role demoted or a plan changed since the request takes effect), sends the
//! command while renewing the lease, and records the outcome, retrying transient failures
//! with exponential backoff (or after the `Retry-After` the control plane asked for).
//!
//! A control plane may take an operation and report later (202). The operation then waits,
//! `running` with no lease owner, for a callback (`service::control_plane`); its lease expires
//! when it is due to be polled, so the same claim that hands out queued work hands it to a
//! worker, which asks the control plane where it stands. A restart resumes it the same way.
//! Past its deadline an operation fails with a reason the customer can read.

use super::control_plane::contract::{
    customer_message, rfc3339, CommandInstance, OperationCommand, OperationReport, ReportedState,
    RequestedBy, TenantRef,
};
use super::control_plane::{Answer, ControlPlane, DriverError};
use super::store::{now_millis, InstanceRecord, Store, StoreError, TenantScope};
use super::store::{Finish, OperationRecord};
use crate::domain::lifecycle::Observed;
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
    /// How long after a 202 without `Retry-After` (or after the last poll) the control plane
    /// is asked again, unless a callback came first.
    pub poll_interval: Duration,
    /// How long an operation may take from its request; after it, it fails.
    pub deadline: Duration,
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
            poll_interval: Duration::from_secs(30),
            deadline: Duration::from_secs(3600),
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

    /// Sends (or follows up) one claimed operation and records where it stands.
    async fn process(&self, op: &OperationRecord) -> Result<(), StoreError> {
        let deadline = op.created_at + ms(self.settings.deadline);
        let finish = match self.load(op).await? {
            Err(reason) if op.dispatched_at.is_none() => Finish::Denied { reason },
            // The control plane already has it; what it does now is for it to report.
            Err(reason) => Finish::Failed {
                error: reason,
                observed: Observed::default(),
            },
            Ok(loaded) => {
                let answer = if op.dispatched_at.is_some() {
                    match self.leased(op, self.driver.poll(&op.id)).await? {
                        // Accepted, then forgotten (or never recorded there): send it again.
                        Some(Ok(Answer::Unknown)) => {
                            let command = loaded.command(op, deadline);
                            self.leased(op, self.driver.execute(&command)).await?
                        }
                        other => other,
                    }
                } else if let Some(reason) = loaded.refusal {
                    tracing::info!(%reason, "refused at execution time");
                    self.record(op, Finish::Denied { reason }).await?;
                    return Ok(());
                } else {
                    let command = loaded.command(op, deadline);
                    self.leased(op, self.driver.execute(&command)).await?
                };
                let Some(answer) = answer else {
                    tracing::warn!("lease lost while executing; another worker takes over");
                    return Ok(());
                };
                self.conclude(op, answer, deadline)
            }
        };
        self.record(op, finish).await
    }

    async fn record(&self, op: &OperationRecord, finish: Finish) -> Result<(), StoreError> {
        let recorded = self
            .store
            .finish_operation(op, &self.id, &finish, now_millis())
            .await?;
        if recorded {
            tracing::info!(outcome = ?finish, "operation step recorded");
        } else {
            tracing::warn!("lease lost (or a callback finished it) first; nothing written");
        }
        Ok(())
    }

    /// What an answer means for the operation.
    fn conclude(
        &self,
        op: &OperationRecord,
        answer: Result<Answer, DriverError>,
        deadline: i64,
    ) -> Finish {
        let now = now_millis();
        let late = now >= deadline;
        let waited = |retry_after: Option<Duration>| {
            let wait = retry_after.unwrap_or(self.settings.poll_interval);
            (now + ms(wait)).min(deadline.max(now))
        };
        match answer {
            Ok(Answer::Finished(report)) => finished(report),
            Ok(Answer::Pending { instance, .. }) if late => past_deadline(op, instance),
            Ok(Answer::Unknown) if late => past_deadline(op, None),
            Ok(Answer::Pending {
                retry_after,
                message,
                percent,
                ..
            }) => Finish::Dispatched {
                poll_at: waited(retry_after),
                message: message.map(|m| customer_message(&m)),
                percent: percent.map(|p| p.min(100)),
            },
            // A poll answered "unknown" and the command sent again answered the same.
            Ok(Answer::Unknown) => Finish::Dispatched {
                poll_at: waited(None),
                message: None,
                percent: None,
            },
            Err(DriverError::Permanent(error)) => Finish::Failed {
                error,
                observed: Observed::default(),
            },
            Err(DriverError::Transient { .. }) if late => past_deadline(op, None),
            // Taken already: keep waiting for it, asking again later.
            Err(DriverError::Transient { retry_after, .. }) if op.dispatched_at.is_some() => {
                Finish::Dispatched {
                    poll_at: waited(Some(retry_after.unwrap_or(self.backoff(op.attempts)))),
                    message: None,
                    percent: None,
                }
            }
            Err(DriverError::Transient {
                message,
                retry_after,
            }) if op.attempts < self.settings.max_attempts => {
                let delay = self
                    .backoff(op.attempts)
                    .max(retry_after.unwrap_or_default());
                Finish::Retry {
                    error: message,
                    not_before: now + ms(delay),
                }
            }
            Err(DriverError::Transient { message, .. }) => Finish::Failed {
                error: format!("{message} (gave up after {} attempts)", op.attempts),
                observed: Observed::default(),
            },
        }
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        self.settings
            .base_backoff
            .saturating_mul(factor)
            .min(self.settings.max_backoff)
    }

    /// Reads what the command needs and asks the policy again with today's role and plan.
    /// `Err` when the operation cannot go on at all (the instance or plan is gone).
    async fn load(&self, op: &OperationRecord) -> Result<Result<Loaded, String>, StoreError> {
        let scope = TenantScope::provider(op.tenant_id.clone());
        let Some(inst) = self.store.get_instance(&scope, &op.instance_id).await? else {
            return Ok(Err("the instance no longer exists".into()));
        };
        let Some(plan) = self.provider.plan(&inst.plan_id) else {
            return Ok(Err(format!("the plan {} no longer exists", inst.plan_id)));
        };
        let tenant = self.store.tenant(&scope).await?;
        // The requester must still be allowed: a member still in the tenant, or a token
        // still live; judged with their role now, not the one they asked with.
        let requester = self.requester(&scope, op).await?;
        let refusal = match &requester {
            None => Some(
                if op.requested_by.as_str().starts_with("token-") {
                    "the API token that asked was revoked or has expired"
                } else {
                    "the requester is no longer a member of the organisation"
                }
                .to_owned(),
            ),
            Some((role, _)) => {
                let roles = &self.provider.roles;
                let decision = match &op.request {
                    OperationRequest::Create(_) => {
                        policy::permitted(roles, *role, Operation::Create, plan)
                    }
                    OperationRequest::Change(req) => {
                        // Judge against the status the request started from, without itself
                        // in flight.
                        let facts = InstanceFacts {
                            status: op.previous_status,
                            ..inst.facts(plan, false)
                        };
                        policy::check(roles, *role, &facts, req)
                    }
                };
                decision.err().map(|d| d.to_string())
            }
        };
        let requested_by = match requester {
            Some((_, who)) => who,
            None => RequestedBy::User {
                user_id: op.requested_by.to_string(),
                email: String::new(),
                role: op.requested_role,
            },
        };
        Ok(Ok(Loaded {
            inst,
            tenant: TenantRef {
                id: tenant.id.to_string(),
                name: tenant.name,
            },
            requested_by,
            refusal,
        }))
    }

    /// Who asked for `op`, if they may still act: their role now and how the control plane
    /// hears of them.
    async fn requester(
        &self,
        scope: &TenantScope,
        op: &OperationRecord,
    ) -> Result<Option<(crate::domain::Role, RequestedBy)>, StoreError> {
        if let Some(token_id) = op.requested_by.as_str().strip_prefix("token-") {
            let token = self.store.api_token(scope, token_id).await?;
            return Ok(token.filter(|t| t.live(now_millis())).map(|t| {
                (
                    t.role,
                    RequestedBy::ApiToken {
                        token_id: t.id,
                        name: t.name,
                        role: t.role,
                    },
                )
            }));
        }
        let member = self.store.member(scope, &op.requested_by).await?;
        Ok(member.map(|m| {
            (
                m.role,
                RequestedBy::User {
                    user_id: m.user_id.to_string(),
                    email: m.email,
                    role: op.requested_role,
                },
            )
        }))
    }

    /// Runs a driver call while renewing the lease; `None` when the lease was lost.
    async fn leased(
        &self,
        op: &OperationRecord,
        call: super::control_plane::DriverFuture<'_>,
    ) -> Result<Option<Result<Answer, DriverError>>, StoreError> {
        let lease = self.settings.lease;
        let renew_every = lease / 3;
        let run = tokio::time::timeout(self.settings.command_timeout, call);
        tokio::pin!(run);
        loop {
            tokio::select! {
                r = &mut run => {
                    return Ok(Some(match r {
                        Ok(result) => result,
                        Err(_) => Err(DriverError::transient(format!(
                            "the control plane did not answer within {} s",
                            self.settings.command_timeout.as_secs()
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

/// What the worker read to build a command.
struct Loaded {
    inst: InstanceRecord,
    tenant: TenantRef,
    requested_by: RequestedBy,
    /// Why the policy refuses the operation now, if it does.
    refusal: Option<String>,
}

impl Loaded {
    /// The command for `op`: the same every time it is sent, so the control plane can tell a
    /// repeat by its operation id.
    fn command(&self, op: &OperationRecord, deadline: i64) -> OperationCommand {
        let inst = &self.inst;
        let mut resources = inst.resources;
        let mut parameters = inst.parameters.clone();
        let (environment, region) = match &op.request {
            OperationRequest::Create(c) => {
                resources = c.resources;
                (c.environment.clone(), c.region.clone())
            }
            OperationRequest::Change(Request::Scale { resources: r }) => {
                resources = *r;
                (inst.environment.clone(), inst.region.clone())
            }
            OperationRequest::Change(Request::UpdateConfig { changes }) => {
                parameters.extend(changes.clone());
                (inst.environment.clone(), inst.region.clone())
            }
            OperationRequest::Change(_) => (inst.environment.clone(), inst.region.clone()),
        };
        OperationCommand {
            operation_id: op.id.clone(),
            kind: op.operation().into(),
            instance: CommandInstance {
                id: inst.id.to_string(),
                external_id: inst.external_id.clone(),
                tenant: self.tenant.clone(),
                name: inst.name.clone(),
                plan: inst.plan_id.clone(),
                environment,
                region,
                resources,
                parameters,
            },
            requested_by: self.requested_by.clone(),
            requested_at: rfc3339(op.created_at),
            deadline: rfc3339(deadline),
        }
    }
}

/// A final report as the operation's end.
fn finished(report: OperationReport) -> Finish {
    let observed = report.instance.unwrap_or_default();
    match report.state {
        ReportedState::Failed => Finish::Failed {
            error: report
                .message
                .map(|m| customer_message(&m))
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "the provider reported that it failed".into()),
            observed,
        },
        _ => Finish::Succeeded { observed },
    }
}

/// The end of an operation past its deadline. The instance takes the status the control plane
/// last reported with it, unless that is still a transitional one; otherwise the state
/// machine's failure status stands, unconfirmed (the page says "status as of") until
/// reconciliation reads the control plane's list.
fn past_deadline(op: &OperationRecord, instance: Option<Observed>) -> Finish {
    let mut observed = instance.unwrap_or_default();
    if observed.status.is_some_and(|s| s.is_transitional()) {
        observed.status = None;
    }
    Finish::Failed {
        error: format!(
            "the provider's systems did not finish this {} in time; check the instance's \
             status, and try again or contact the provider",
            op.operation()
        ),
        observed,
    }
}
