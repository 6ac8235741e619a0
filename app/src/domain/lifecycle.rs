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
    fn only_in_flight_statuses_are_transitional() {
        assert!(Status::Stopping.is_transitional());
        assert!(Status::Deploying.is_transitional());
        assert!(!Status::Running.is_transitional());
        assert!(!Status::Stopped.is_transitional());
        assert!(!Status::Failed.is_transitional());
        assert!(!Status::Deleted.is_transitional());
    }
}
