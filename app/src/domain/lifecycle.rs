//! Roles, operations and instance statuses: the words the policy and the UI share.

use super::policy::{OperationRequest, Request};
use super::{ParamValue, Resources};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A member's role within one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Operator,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lifecycle operation a plan may enable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Create,
    Stop,
    Start,
    Restart,
    Scale,
    UpdateConfig,
    Delete,
}

impl Operation {
    pub const ALL: [Operation; 7] = [
        Operation::Create,
        Operation::Stop,
        Operation::Start,
        Operation::Restart,
        Operation::Scale,
        Operation::UpdateConfig,
        Operation::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Stop => "stop",
            Operation::Start => "start",
            Operation::Restart => "restart",
            Operation::Scale => "scale",
            Operation::UpdateConfig => "update-config",
            Operation::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an instance is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Deploying,
    Running,
    Stopping,
    Stopped,
    Starting,
    Restarting,
    Scaling,
    Updating,
    Deleting,
    Deleted,
    Failed,
}

impl Status {
    pub const ALL: [Status; 11] = [
        Status::Deploying,
        Status::Running,
        Status::Stopping,
        Status::Stopped,
        Status::Starting,
        Status::Restarting,
        Status::Scaling,
        Status::Updating,
        Status::Deleting,
        Status::Deleted,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Deploying => "deploying",
            Status::Running => "running",
            Status::Stopping => "stopping",
            Status::Stopped => "stopped",
            Status::Starting => "starting",
            Status::Restarting => "restarting",
            Status::Scaling => "scaling",
            Status::Updating => "updating",
            Status::Deleting => "deleting",
            Status::Deleted => "deleted",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A transitional status means an operation is under way.
    pub fn is_transitional(self) -> bool {
        matches!(
            self,
            Status::Deploying
                | Status::Stopping
                | Status::Starting
                | Status::Restarting
                | Status::Scaling
                | Status::Updating
                | Status::Deleting
        )
    }

    /// A label a person reads, e.g. "Running".
    pub fn label(self) -> &'static str {
        match self {
            Status::Deploying => "Deploying",
            Status::Running => "Running",
            Status::Stopping => "Stopping",
            Status::Stopped => "Stopped",
            Status::Starting => "Starting",
            Status::Restarting => "Restarting",
            Status::Scaling => "Scaling",
            Status::Updating => "Updating",
            Status::Deleting => "Deleting",
            Status::Deleted => "Deleted",
            Status::Failed => "Failed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an operation stands: queued, running under a worker's lease, or finished. Stored and
/// sent as the lowercase word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OperationState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl OperationState {
    pub const ALL: [OperationState; 4] = [
        OperationState::Queued,
        OperationState::Running,
        OperationState::Succeeded,
        OperationState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Queued => "queued",
            OperationState::Running => "running",
            OperationState::Succeeded => "succeeded",
            OperationState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<OperationState> {
        OperationState::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Succeeded or failed: nothing more will happen to it.
    pub fn is_finished(self) -> bool {
        matches!(self, OperationState::Succeeded | OperationState::Failed)
    }
}

impl fmt::Display for OperationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finished operation leaves the instance in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settles {
    /// A fixed status.
    To(Status),
    /// The status it had before the operation (scale and update-config keep a stopped
    /// instance stopped).
    Previous,
}

/// One row of the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub operation: Operation,
    /// Statuses the operation may start from (empty for create: there is no instance yet).
    pub from: &'static [Status],
    /// The transitional status while it runs.
    pub during: Status,
    pub on_success: Settles,
    pub on_failure: Settles,
}

/// The state machine: every status change an operation may make. The policy refuses an
/// operation from any other status and the worker moves instances only along these rows; a
/// failed operation never leaves an instance in a transitional status.
///
/// | operation     | from                     | during     | success  | failure  |
/// |---------------|--------------------------|------------|----------|----------|
/// | create        | (new)                    | deploying  | running  | failed   |
/// | stop          | running, failed          | stopping   | stopped  | previous |
/// | start         | stopped, failed          | starting   | running  | previous |
/// | restart       | running, failed          | restarting | running  | failed   |
/// | scale         | running, stopped         | scaling    | previous | previous |
/// | update-config | running, stopped         | updating   | previous | previous |
/// | delete        | running, stopped, failed | deleting   | deleted  | previous |
pub const TRANSITIONS: [Transition; 7] = [
    Transition {
        operation: Operation::Create,
        from: &[],
        during: Status::Deploying,
        on_success: Settles::To(Status::Running),
        on_failure: Settles::To(Status::Failed),
    },
    Transition {
        operation: Operation::Stop,
        from: &[Status::Running, Status::Failed],
        during: Status::Stopping,
        on_success: Settles::To(Status::Stopped),
        on_failure: Settles::Previous,
    },
    Transition {
        operation: Operation::Start,
        from: &[Status::Stopped, Status::Failed],
        during: Status::Starting,
        on_success: Settles::To(Status::Running),
        on_failure: Settles::Previous,
    },
    Transition {
        operation: Operation::Restart,
        from: &[Status::Running, Status::Failed],
        during: Status::Restarting,
        on_success: Settles::To(Status::Running),
        on_failure: Settles::To(Status::Failed),
    },
    Transition {
        operation: Operation::Scale,
        from: &[Status::Running, Status::Stopped],
        during: Status::Scaling,
        on_success: Settles::Previous,
        on_failure: Settles::Previous,
    },
    Transition {
        operation: Operation::UpdateConfig,
        from: &[Status::Running, Status::Stopped],
        during: Status::Updating,
        on_success: Settles::Previous,
        on_failure: Settles::Previous,
    },
    Transition {
        operation: Operation::Delete,
        from: &[Status::Running, Status::Stopped, Status::Failed],
        during: Status::Deleting,
        on_success: Settles::To(Status::Deleted),
        on_failure: Settles::Previous,
    },
];

/// The state-machine row of an operation.
pub fn transition(op: Operation) -> &'static Transition {
    TRANSITIONS
        .iter()
        .find(|t| t.operation == op)
        .expect("every operation has a row")
}

impl Settles {
    pub fn resolve(self, previous: Status) -> Status {
        match self {
            Settles::To(s) => s,
            Settles::Previous => previous,
        }
    }
}

/// How an operation the worker ran ended, as far as the instance is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// The provider reported this error.
    Failed(String),
    /// The policy refused the operation at execution time, for this reason.
    Denied(String),
}

/// An instance as the provider's control plane reports it, in an answer, a callback or its
/// instance list. Every field is optional: what is absent stays as Portico last knew it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Observed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<super::Endpoint>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// The provider's own id of the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// The status an instance settles in after `operation` ended with `outcome`, having been in
/// `previous` before it began, and the reason shown with that status (none after success).
///
/// Success and failure follow the operation's row in [`TRANSITIONS`]. A denied create leaves
/// an instance that never existed at the provider, so it is failed; any other denied operation
/// changed nothing, so the instance keeps its previous status.
pub fn settle(
    operation: Operation,
    previous: Status,
    outcome: &Outcome,
) -> (Status, Option<String>) {
    let t = transition(operation);
    match outcome {
        Outcome::Succeeded => (t.on_success.resolve(previous), None),
        Outcome::Failed(error) => (
            t.on_failure.resolve(previous),
            Some(format!("{operation} failed: {error}")),
        ),
        Outcome::Denied(reason) => (
            if operation == Operation::Create {
                Status::Failed
            } else {
                previous
            },
            Some(format!("{operation} refused: {reason}")),
        ),
    }
}

/// Makes a successful request's changes to an instance's resources and parameters: scale sets
/// the resources, update-config sets each changed parameter (others keep their values). Other
/// requests change neither.
pub fn apply(
    resources: &mut Resources,
    parameters: &mut BTreeMap<String, ParamValue>,
    request: &OperationRequest,
) {
    match request {
        OperationRequest::Change(Request::Scale { resources: r }) => *resources = *r,
        OperationRequest::Change(Request::UpdateConfig { changes }) => {
            for (k, v) in changes {
                parameters.insert(k.clone(), v.clone());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips_through_parse() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        for o in Operation::ALL {
            assert_eq!(Operation::parse(o.as_str()), Some(o));
        }
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        for st in OperationState::ALL {
            assert_eq!(OperationState::parse(st.as_str()), Some(st));
        }
        assert_eq!(OperationState::parse("Queued"), None);
        assert_eq!(Status::parse("Running"), None);
        assert_eq!(Operation::parse("update_config"), None);
    }

    #[test]
    fn serde_uses_the_same_words_as_parse() {
        for o in Operation::ALL {
            let json = serde_json::to_string(&o).unwrap();
            assert_eq!(json, format!("\"{}\"", o.as_str()));
        }
        for s in Status::ALL {
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        for st in OperationState::ALL {
            let json = serde_json::to_string(&st).unwrap();
            assert_eq!(json, format!("\"{}\"", st.as_str()));
            assert_eq!(serde_json::from_str::<OperationState>(&json).unwrap(), st);
        }
    }

    #[test]
    fn every_operation_has_one_row_and_rows_are_consistent() {
        for op in Operation::ALL {
            let rows: Vec<_> = TRANSITIONS.iter().filter(|t| t.operation == op).collect();
            assert_eq!(rows.len(), 1, "{op}");
            let t = rows[0];
            assert!(
                t.during.is_transitional(),
                "{op} runs in a transitional status"
            );
            for from in t.from {
                assert!(!from.is_transitional(), "{op} cannot start while {from}");
                for end in [t.on_success.resolve(*from), t.on_failure.resolve(*from)] {
                    assert!(
                        !end.is_transitional(),
                        "{op} from {from} must not end in {end}"
                    );
                }
            }
        }
        assert_eq!(
            transition(Operation::Create)
                .on_failure
                .resolve(Status::Deploying),
            Status::Failed
        );
        assert_eq!(
            transition(Operation::Scale)
                .on_success
                .resolve(Status::Stopped),
            Status::Stopped
        );
    }

    #[test]
    fn only_succeeded_and_failed_operations_are_finished() {
        assert!(OperationState::Succeeded.is_finished());
        assert!(OperationState::Failed.is_finished());
        assert!(!OperationState::Queued.is_finished());
        assert!(!OperationState::Running.is_finished());
    }

    #[test]
    fn only_in_flight_statuses_are_transitional() {
        assert!(Status::Stopping.is_transitional());
        assert!(Status::Deploying.is_transitional());
        assert!(!Status::Running.is_transitional());
        assert!(!Status::Stopped.is_transitional());
        assert!(!Status::Failed.is_transitional());
        assert!(!Status::Deleted.is_transitional());
    }

    fn resources(replicas: u32) -> Resources {
        Resources {
            replicas,
            cpu_millicores: 500,
            memory_mib: 1024,
            storage_gib: 10,
        }
    }

    #[test]
    fn success_settles_as_the_state_machine_says_without_a_reason() {
        let cases = [
            (Operation::Create, Status::Deploying, Status::Running),
            (Operation::Stop, Status::Running, Status::Stopped),
            (Operation::Start, Status::Stopped, Status::Running),
            (Operation::Restart, Status::Failed, Status::Running),
            (Operation::Scale, Status::Stopped, Status::Stopped),
            (Operation::Scale, Status::Running, Status::Running),
            (Operation::UpdateConfig, Status::Stopped, Status::Stopped),
            (Operation::Delete, Status::Running, Status::Deleted),
        ];
        for (op, previous, expected) in cases {
            assert_eq!(
                settle(op, previous, &Outcome::Succeeded),
                (expected, None),
                "{op} from {previous}"
            );
        }
    }

    #[test]
    fn failure_settles_as_the_state_machine_says_and_names_the_error() {
        let cases = [
            (Operation::Create, Status::Deploying, Status::Failed),
            (Operation::Stop, Status::Running, Status::Running),
            (Operation::Start, Status::Stopped, Status::Stopped),
            (Operation::Restart, Status::Running, Status::Failed),
            (Operation::Scale, Status::Stopped, Status::Stopped),
            (Operation::UpdateConfig, Status::Running, Status::Running),
            (Operation::Delete, Status::Stopped, Status::Stopped),
        ];
        for (op, previous, expected) in cases {
            let (status, reason) = settle(op, previous, &Outcome::Failed("timeout".into()));
            assert_eq!(status, expected, "{op} from {previous}");
            assert_eq!(
                reason.as_deref(),
                Some(format!("{op} failed: timeout").as_str())
            );
        }
        assert_eq!(
            settle(
                Operation::UpdateConfig,
                Status::Running,
                &Outcome::Failed("bad value".into())
            )
            .1
            .as_deref(),
            Some("update-config failed: bad value")
        );
    }

    #[test]
    fn a_denied_create_fails_and_any_other_denial_keeps_the_previous_status() {
        assert_eq!(
            settle(
                Operation::Create,
                Status::Deploying,
                &Outcome::Denied("quota reached".into())
            ),
            (Status::Failed, Some("create refused: quota reached".into()))
        );
        assert_eq!(
            settle(
                Operation::Stop,
                Status::Running,
                &Outcome::Denied("role forbids".into())
            ),
            (Status::Running, Some("stop refused: role forbids".into()))
        );
        for op in Operation::ALL
            .into_iter()
            .filter(|o| *o != Operation::Create)
        {
            let (status, _) = settle(op, Status::Stopped, &Outcome::Denied("no".into()));
            assert_eq!(status, Status::Stopped, "{op}");
        }
    }

    #[test]
    fn scale_sets_the_resources_and_leaves_parameters() {
        let mut res = resources(1);
        let mut params = BTreeMap::from([("tier".to_string(), ParamValue::Text("a".into()))]);
        let before = params.clone();
        apply(
            &mut res,
            &mut params,
            &OperationRequest::Change(Request::Scale {
                resources: resources(3),
            }),
        );
        assert_eq!(res, resources(3));
        assert_eq!(params, before);
    }

    #[test]
    fn update_config_merges_the_changes_and_leaves_resources() {
        let mut res = resources(2);
        let mut params = BTreeMap::from([
            ("tier".to_string(), ParamValue::Text("a".into())),
            ("max_connections".to_string(), ParamValue::Int(100)),
        ]);
        apply(
            &mut res,
            &mut params,
            &OperationRequest::Change(Request::UpdateConfig {
                changes: BTreeMap::from([
                    ("max_connections".to_string(), ParamValue::Int(500)),
                    ("debug".to_string(), ParamValue::Bool(true)),
                ]),
            }),
        );
        assert_eq!(res, resources(2));
        assert_eq!(
            params,
            BTreeMap::from([
                ("tier".to_string(), ParamValue::Text("a".into())),
                ("max_connections".to_string(), ParamValue::Int(500)),
                ("debug".to_string(), ParamValue::Bool(true)),
            ])
        );
    }

    #[test]
    fn other_requests_change_nothing() {
        let requests = [
            OperationRequest::Change(Request::Stop),
            OperationRequest::Change(Request::Start),
            OperationRequest::Change(Request::Restart),
            OperationRequest::Change(Request::Delete {
                confirm_name: "db".into(),
            }),
            OperationRequest::Create(super::super::policy::CreateRequest {
                name: "db".into(),
                environment: "production".into(),
                region: "eu".into(),
                resources: resources(5),
                parameters: BTreeMap::from([("tier".to_string(), ParamValue::Text("b".into()))]),
            }),
        ];
        for request in requests {
            let mut res = resources(1);
            let mut params = BTreeMap::from([("tier".to_string(), ParamValue::Text("a".into()))]);
            let before = params.clone();
            apply(&mut res, &mut params, &request);
            assert_eq!((res, &params), (resources(1), &before), "{request:?}");
        }
    }
}
