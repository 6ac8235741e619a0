//! What the reference control plane keeps: its instances, the operations it took and every
//! command it received. Pure: the routes and the runner lock it, change it and persist it.

use app::domain::lifecycle::{transition, Observed};
use app::domain::{Endpoint, Operation, ParamValue, Resources, Status};
use app::server::control_plane::contract::{
    CommandInstance, InstanceEvent, InstancePage, ListedInstance, OperationCommand,
    OperationReport, OperationType, ReportedState,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The message of an operation that the failure rate picked.
pub const SIMULATED_FAILURE: &str = "simulated failure";
/// The longest page of `GET /instances`.
pub const MAX_PAGE: usize = 500;
pub const DEFAULT_PAGE: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// In creation order (`number` ascending), which is the list's stable order.
    pub instances: Vec<Instance>,
    pub operations: BTreeMap<String, OperationRecord>,
    pub commands: Vec<CommandEntry>,
    /// The last instance number handed out (`cp-<n>`).
    pub last_instance: u64,
    /// How many operations were executed, which spreads the failures.
    pub executed: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub number: u64,
    /// Portico's id.
    pub id: String,
    pub external_id: String,
    pub tenant_id: String,
    pub name: String,
    pub plan: String,
    pub environment: String,
    pub region: String,
    pub status: Status,
    pub endpoints: Vec<Endpoint>,
    pub resources: Option<Resources>,
    pub parameters: BTreeMap<String, ParamValue>,
    pub message: Option<String>,
    /// The `seq` of the last instance event sent about it.
    pub event_seq: u64,
    /// The operation in progress on it, if any.
    pub busy_with: Option<String>,
}

impl Instance {
    pub fn observed(&self) -> Observed {
        Observed {
            status: Some(self.status),
            endpoints: Some(self.endpoints.clone()),
            resources: self.resources,
            external_id: Some(self.external_id.clone()),
        }
    }

    fn listed(&self) -> ListedInstance {
        ListedInstance {
            // Made in the console: Portico has no id for it yet.
            id: (!self.id.is_empty()).then(|| self.id.clone()),
            tenant_id: self.tenant_id.clone(),
            name: self.name.clone(),
            plan: self.plan.clone(),
            environment: self.environment.clone(),
            region: self.region.clone(),
            observed: self.observed(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationRecord {
    pub operation_id: String,
    pub kind: OperationType,
    /// Portico's id of the instance.
    pub instance_id: String,
    pub state: ReportedState,
    pub message: Option<String>,
    pub percent: Option<u8>,
    pub accepted_at_ms: i64,
    /// When it completes.
    pub due_at_ms: i64,
    pub will_fail: bool,
    /// The instance's status before it began (none for a create).
    pub previous_status: Option<Status>,
    pub resources: Resources,
    pub parameters: BTreeMap<String, ParamValue>,
    pub executions: u32,
    /// The `seq` of the last callback made about it (sent or dropped).
    pub seq: u64,
    /// The instance when it finished.
    pub observed: Option<Observed>,
}

impl OperationRecord {
    pub fn report(&self) -> OperationReport {
        OperationReport {
            state: self.state,
            message: self.message.clone(),
            percent: self.percent,
            instance: self.observed.clone(),
        }
    }

    pub fn finished(&self) -> bool {
        self.state != ReportedState::InProgress
    }
}

/// One received command, as `GET /_admin/commands` lists it (with its operation's executions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEntry {
    pub operation_id: String,
    pub idempotency_key: Option<String>,
    #[serde(rename = "type")]
    pub kind: OperationType,
    pub received_at_ms: i64,
    #[serde(default)]
    pub executions: u32,
}

/// What to answer a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Known already: its current report (200 when finished, 202 in progress).
    Known(OperationReport),
    /// New and accepted: run it.
    Accepted,
    /// Refused with this status and message.
    Refused(u16, String),
}

/// How the control plane runs operations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub delay_ms: u64,
    pub failure_rate: f64,
}

fn operation(kind: OperationType) -> Operation {
    match kind {
        OperationType::Create => Operation::Create,
        OperationType::Start => Operation::Start,
        OperationType::Stop => Operation::Stop,
        OperationType::Restart => Operation::Restart,
        OperationType::Scale => Operation::Scale,
        OperationType::UpdateConfig => Operation::UpdateConfig,
        OperationType::Delete => Operation::Delete,
    }
}

/// The word progress messages start with.
pub fn verb(kind: OperationType) -> &'static str {
    match kind {
        OperationType::Create => "Provisioning",
        OperationType::Start => "Starting",
        OperationType::Stop => "Stopping",
        OperationType::Restart => "Restarting",
        OperationType::Scale => "Scaling",
        OperationType::UpdateConfig => "Updating",
        OperationType::Delete => "Deleting",
    }
}

/// Whether the `k`th executed operation (from 1) fails at `rate`: exactly `floor(k * rate)` of
/// the first `k` do, spread evenly.
pub fn fails(k: u64, rate: f64) -> bool {
    let ppm = (rate.clamp(0.0, 1.0) * 1_000_000.0).round() as u128;
    let k = u128::from(k.max(1));
    (k * ppm) / 1_000_000 > ((k - 1) * ppm) / 1_000_000
}

impl State {
    pub fn instance(&self, id: &str) -> Option<&Instance> {
        self.instances
            .iter()
            .find(|i| i.id == id)
            .or_else(|| self.instances.iter().find(|i| i.external_id == id))
    }

    fn instance_mut(&mut self, id: &str) -> Option<&mut Instance> {
        let at = self
            .instances
            .iter()
            .position(|i| i.id == id)
            .or_else(|| self.instances.iter().position(|i| i.external_id == id))?;
        self.instances.get_mut(at)
    }

    /// Logs a received command (whatever then happens to it).
    pub fn log(&mut self, command: &OperationCommand, key: Option<&str>, now: i64) {
        self.commands.push(CommandEntry {
            operation_id: command.operation_id.clone(),
            idempotency_key: key.map(str::to_owned),
            kind: command.kind,
            received_at_ms: now,
            executions: 0,
        });
    }

    /// The command log with each operation's executions.
    pub fn command_log(&self) -> Vec<CommandEntry> {
        self.commands
            .iter()
            .map(|c| CommandEntry {
                executions: self
                    .operations
                    .get(&c.operation_id)
                    .map_or(0, |o| o.executions),
                ..c.clone()
            })
            .collect()
    }

    /// A new instance as a command describes it (numbered `cp-<n>`), in `status`.
    fn add_from_command(&mut self, inst: &CommandInstance, status: Status) -> &mut Instance {
        self.last_instance += 1;
        self.instances.push(Instance {
            number: self.last_instance,
            id: inst.id.clone(),
            external_id: format!("cp-{}", self.last_instance),
            tenant_id: inst.tenant.id.clone(),
            name: inst.name.clone(),
            plan: inst.plan.clone(),
            environment: inst.environment.clone(),
            region: inst.region.clone(),
            status,
            endpoints: Vec::new(),
            resources: Some(inst.resources),
            parameters: inst.parameters.clone(),
            message: None,
            event_seq: 0,
            busy_with: None,
        });
        self.instances.last_mut().expect("just pushed")
    }

    /// Decides about a command and, when it is new and valid, starts it: the instance takes
    /// the operation's transitional status and the operation is due `delay_ms` from `now`.
    pub fn command(
        &mut self,
        cmd: &OperationCommand,
        key: Option<&str>,
        now: i64,
        settings: Settings,
    ) -> Decision {
        if key != Some(cmd.operation_id.as_str()) {
            return Decision::Refused(
                422,
                "the Idempotency-Key header must equal the operation_id".into(),
            );
        }
        if let Some(known) = self.operations.get(&cmd.operation_id) {
            return Decision::Known(known.report());
        }
        let inst = &cmd.instance;
        let during = transition(operation(cmd.kind)).during;
        let previous_status = if cmd.kind == OperationType::Create {
            if let Some(old) = self.instance(&inst.id) {
                if !matches!(old.status, Status::Deleted | Status::Failed) {
                    return Decision::Refused(409, format!("instance {} already exists", inst.id));
                }
                let id = old.id.clone();
                self.instances.retain(|i| i.id != id);
            }
            let created = self.add_from_command(inst, during);
            created.resources = None;
            created.parameters = BTreeMap::new();
            created.busy_with = Some(cmd.operation_id.clone());
            None
        } else {
            let id = match &inst.external_id {
                Some(ext) if self.instance(&inst.id).is_none() => ext.clone(),
                _ => inst.id.clone(),
            };
            if self.instance_mut(&id).is_none() {
                // An instance Portico knew before this control plane was connected (a demo's
                // seed, a provider's existing fleet): taken over as the command describes it,
                // in the first status the operation may start from.
                let status = transition(operation(cmd.kind))
                    .from
                    .first()
                    .copied()
                    .unwrap_or(Status::Running);
                self.add_from_command(inst, status);
            }
            let target = self.instance_mut(&id).expect("known or just taken over");
            if target.status == Status::Deleted {
                return Decision::Refused(422, format!("instance {} is deleted", inst.id));
            }
            if let Some(busy) = &target.busy_with {
                return Decision::Refused(
                    409,
                    format!(
                        "instance {} is busy: operation {busy} is in progress",
                        inst.id
                    ),
                );
            }
            let previous = target.status;
            target.status = during;
            target.busy_with = Some(cmd.operation_id.clone());
            Some(previous)
        };
        self.executed += 1;
        let instance_id = self
            .instance(&inst.id)
            .or_else(|| inst.external_id.as_deref().and_then(|e| self.instance(e)))
            .map_or_else(|| inst.id.clone(), |i| i.id.clone());
        self.operations.insert(
            cmd.operation_id.clone(),
            OperationRecord {
                operation_id: cmd.operation_id.clone(),
                kind: cmd.kind,
                instance_id,
                state: ReportedState::InProgress,
                message: None,
                percent: None,
                accepted_at_ms: now,
                due_at_ms: now + i64::try_from(settings.delay_ms).unwrap_or(i64::MAX / 2),
                will_fail: fails(self.executed, settings.failure_rate),
                previous_status,
                resources: inst.resources,
                parameters: inst.parameters.clone(),
                executions: 1,
                seq: 0,
                observed: None,
            },
        );
        Decision::Accepted
    }

    /// Records progress step `step` of `steps`; the report and `seq` of its callback.
    pub fn progress(
        &mut self,
        op_id: &str,
        step: u32,
        steps: u32,
    ) -> Option<(u64, OperationReport)> {
        let op = self.operations.get(op_id)?;
        let name = self
            .instance(&op.instance_id)
            .map_or_else(|| op.instance_id.clone(), |i| i.name.clone());
        let op = self.operations.get_mut(op_id)?;
        if op.finished() {
            return None;
        }
        let percent = u8::try_from(u64::from(step) * 100 / (u64::from(steps) + 1)).unwrap_or(99);
        op.percent = Some(percent);
        op.message = Some(format!("{} {name}", verb(op.kind)));
        op.seq += 1;
        let report = OperationReport {
            instance: None,
            ..op.report()
        };
        Some((op.seq, report))
    }

    /// Ends an operation (once): applies it to its instance, or fails it when the failure rate
    /// picked it. The final report and the `seq` of its callback.
    pub fn complete(&mut self, op_id: &str) -> Option<(u64, OperationReport)> {
        let op = self.operations.get(op_id)?.clone();
        if op.finished() {
            return Some((op.seq, op.report()));
        }
        let t = transition(operation(op.kind));
        let inst = self.instance_mut(&op.instance_id)?;
        let previous = op.previous_status.unwrap_or(inst.status);
        inst.busy_with = None;
        if op.will_fail {
            inst.status = t.on_failure.resolve(previous);
            if op.kind == OperationType::Create {
                inst.endpoints.clear();
            }
        } else {
            inst.status = t.on_success.resolve(previous);
            inst.message = None;
            match op.kind {
                OperationType::Create => {
                    inst.endpoints = vec![Endpoint {
                        label: "HTTPS".into(),
                        url: format!("https://{}.{}.example.test", inst.name, inst.region),
                    }];
                    inst.resources = Some(op.resources);
                    inst.parameters = op.parameters.clone();
                }
                OperationType::Scale => inst.resources = Some(op.resources),
                OperationType::UpdateConfig => inst.parameters = op.parameters.clone(),
                OperationType::Delete => inst.endpoints.clear(),
                _ => {}
            }
        }
        let observed = inst.observed();
        let rec = self.operations.get_mut(op_id)?;
        rec.state = if op.will_fail {
            ReportedState::Failed
        } else {
            ReportedState::Succeeded
        };
        rec.message = op.will_fail.then(|| SIMULATED_FAILURE.to_owned());
        rec.percent = None;
        rec.observed = Some(observed);
        rec.seq += 1;
        Some((rec.seq, rec.report()))
    }

    /// Operations still in progress, with when each is due.
    pub fn unfinished(&self) -> Vec<(String, i64)> {
        self.operations
            .values()
            .filter(|o| !o.finished())
            .map(|o| (o.operation_id.clone(), o.due_at_ms))
            .collect()
    }

    /// One page of the instance list: those numbered after `cursor`.
    pub fn page(&self, cursor: Option<&str>, limit: Option<usize>) -> Result<InstancePage, String> {
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => 0,
            Some(c) => c
                .parse::<u64>()
                .map_err(|_| format!("cursor {c} is not one this control plane gave"))?,
        };
        let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let mut rest = self.instances.iter().filter(|i| i.number > after);
        let instances: Vec<&Instance> = rest.by_ref().take(limit).collect();
        let next_cursor = match (rest.next(), instances.last()) {
            (Some(_), Some(last)) => Some(last.number.to_string()),
            _ => None,
        };
        Ok(InstancePage {
            instances: instances.into_iter().map(Instance::listed).collect(),
            next_cursor,
        })
    }

    /// A change made "in the provider's console"; the event that reports it.
    pub fn console_change(
        &mut self,
        id: &str,
        change: &ConsoleChange,
        now_iso: String,
    ) -> Option<(String, InstanceEvent)> {
        let inst = self.instance_mut(id)?;
        if let Some(status) = change.status {
            inst.status = status;
        }
        if let Some(endpoints) = &change.endpoints {
            inst.endpoints = endpoints.clone();
        }
        if change.message.is_some() {
            inst.message = change.message.clone();
        }
        inst.event_seq += 1;
        Some((
            inst.id.clone(),
            InstanceEvent {
                seq: Some(inst.event_seq),
                observed_at: Some(now_iso),
                message: change.message.clone(),
                instance: inst.observed(),
            },
        ))
    }
}

/// The body of `POST /_admin/instances/{id}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleChange {
    pub status: Option<Status>,
    pub endpoints: Option<Vec<Endpoint>>,
    pub message: Option<String>,
    /// False: change it without telling Portico (only reconciliation will notice).
    pub notify: Option<bool>,
}

/// The body of `POST /_admin/instances`: an instance made in the provider's console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleCreate {
    pub tenant_id: String,
    pub name: String,
    pub plan: String,
    pub environment: String,
    pub region: String,
    pub status: Option<Status>,
}

impl State {
    /// Adds an instance Portico never asked for; returns its external id.
    pub fn console_create(&mut self, c: &ConsoleCreate) -> String {
        self.last_instance += 1;
        let external_id = format!("cp-{}", self.last_instance);
        self.instances.push(Instance {
            number: self.last_instance,
            id: String::new(),
            external_id: external_id.clone(),
            tenant_id: c.tenant_id.clone(),
            name: c.name.clone(),
            plan: c.plan.clone(),
            environment: c.environment.clone(),
            region: c.region.clone(),
            status: c.status.unwrap_or(Status::Running),
            endpoints: vec![Endpoint {
                label: "HTTPS".into(),
                url: format!("https://{}.{}.example.test", c.name, c.region),
            }],
            resources: None,
            parameters: BTreeMap::new(),
            message: None,
            event_seq: 0,
            busy_with: None,
        });
        external_id
    }

    /// Forgets an instance, as if removed behind Portico's back; false when unknown.
    pub fn console_remove(&mut self, id: &str) -> bool {
        let before = self.instances.len();
        self.instances.retain(|i| i.id != id && i.external_id != id);
        self.instances.len() < before
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
pub(crate) mod tests;
