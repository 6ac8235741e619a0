//! Roles, operations and instance statuses: the words the policy and the UI share.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A member's role within one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    fn only_in_flight_statuses_are_transitional() {
        assert!(Status::Stopping.is_transitional());
        assert!(Status::Deploying.is_transitional());
        assert!(!Status::Running.is_transitional());
        assert!(!Status::Stopped.is_transitional());
        assert!(!Status::Failed.is_transitional());
        assert!(!Status::Deleted.is_transitional());
    }
}
