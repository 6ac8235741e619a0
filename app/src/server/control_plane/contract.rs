//! Control-plane API v1: the JSON Portico and a provider's control plane exchange. Both this
//! server and the reference control plane (`portico-control-plane`) use these types; the
//! OpenAPI document describes them for everyone else.
//!
//! Shaped after the Open Service Broker API's asynchronous operations: Portico sends a command,
//! the control plane answers with the result (200) or accepts it (202) and reports later by
//! signed callback; Portico polls when no callback comes.

use crate::domain::lifecycle::Observed;
use crate::domain::{Operation, ParamValue, Resources, Role};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where callbacks arrive, under the portal's public URL.
pub const CALLBACK_PREFIX: &str = "/control-plane/v1";

/// The operation types of the contract (snake_case on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OperationType {
    Create,
    Start,
    Stop,
    Restart,
    Scale,
    UpdateConfig,
    Delete,
}

impl From<Operation> for OperationType {
    fn from(op: Operation) -> Self {
        match op {
            Operation::Create => OperationType::Create,
            Operation::Start => OperationType::Start,
            Operation::Stop => OperationType::Stop,
            Operation::Restart => OperationType::Restart,
            Operation::Scale => OperationType::Scale,
            Operation::UpdateConfig => OperationType::UpdateConfig,
            Operation::Delete => OperationType::Delete,
        }
    }
}

/// `POST {base_url}/operations`. Sent again, unchanged, until the control plane answers; the
/// `operation_id` (also the `Idempotency-Key` header) makes a repeat harmless.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperationCommand {
    pub operation_id: String,
    #[serde(rename = "type")]
    pub kind: OperationType,
    pub instance: CommandInstance,
    pub requested_by: RequestedBy,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub requested_at: String,
    /// RFC 3339: after this, Portico fails the operation and asks the control plane for the
    /// instance's status.
    #[schema(format = DateTime)]
    pub deadline: String,
}

/// The instance a command is about, with everything a control plane needs to act on it.
/// `parameters` holds every value, secrets included, which is why the driver sends commands
/// only over HTTPS (or to loopback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandInstance {
    /// Portico's id of the instance.
    pub id: String,
    /// The control plane's own id, once it has reported one.
    pub external_id: Option<String>,
    pub tenant: TenantRef,
    pub name: String,
    pub plan: String,
    pub environment: String,
    pub region: String,
    /// What the instance should have after this operation (a scale carries the new values).
    pub resources: Resources,
    /// Every configuration value after this operation (an update carries the new values).
    pub parameters: BTreeMap<String, ParamValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TenantRef {
    pub id: String,
    pub name: String,
}

/// Who asked for the operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RequestedBy {
    /// A member of the tenant, in the portal.
    User {
        user_id: String,
        email: String,
        role: Role,
    },
    /// A script with one of the tenant's API tokens, acting with the token's role.
    ApiToken {
        token_id: String,
        name: String,
        role: Role,
    },
    /// The provider itself.
    Provider,
    /// A schedule.
    Schedule,
}

/// Where an operation stands at the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportedState {
    InProgress,
    Succeeded,
    Failed,
}

/// The body of a `200` answer to a command and of `GET {base_url}/operations/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperationReport {
    pub state: ReportedState,
    /// Progress while in progress; the reason a customer reads when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// 0 to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 100)]
    pub percent: Option<u8>,
    /// The instance as the control plane now sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Observed>,
}

/// `POST {public_url}/control-plane/v1/operations/{operation_id}/events`: a report with a
/// sequence number. Only a `seq` above the last one applied changes anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OperationEvent {
    pub seq: u64,
    #[serde(flatten)]
    pub report: OperationReport,
}

/// The body of a refusal (`409`, `422` or another 4xx): `message` is what the customer reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refusal {
    pub message: String,
}

/// Portico's answer to a callback it accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallbackAnswer {
    /// Whether the report changed anything: false when a later one (a higher `seq`) had
    /// already been applied.
    pub applied: bool,
}

/// `POST {public_url}/control-plane/v1/instances/{instance_id}/events`: a change made outside
/// the portal (the provider's console stopped it, it failed, its endpoints changed, it was
/// deleted). Ordered by `seq` when given, else by `observed_at`; an older report changes
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceEvent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub observed_at: Option<String>,
    /// Why it changed, as the tenant may read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub instance: Observed,
}

/// One page of `GET {base_url}/instances?cursor=…`, which reconciliation reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstancePage {
    pub instances: Vec<ListedInstance>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// An instance in the control plane's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ListedInstance {
    /// Portico's id, for instances Portico created; absent for ones made elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub tenant_id: String,
    pub name: String,
    pub plan: String,
    pub environment: String,
    pub region: String,
    #[serde(flatten)]
    pub observed: Observed,
}

/// A longest message kept from a control plane, in characters.
pub const MESSAGE_LIMIT: usize = 300;

/// A control plane's message as a customer may read it: control characters and runs of
/// whitespace become one space, and it is cut to [`MESSAGE_LIMIT`] characters. (Pages and the
/// audit export escape it as they do all text.)
pub fn customer_message(raw: &str) -> String {
    let mut out = String::new();
    for word in raw
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > MESSAGE_LIMIT {
        out = out.chars().take(MESSAGE_LIMIT - 1).collect::<String>() + "…";
    }
    out
}

/// Milliseconds since the epoch as RFC 3339 (UTC).
pub fn rfc3339(millis: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// RFC 3339 as milliseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;

    #[test]
    fn operation_types_are_snake_case_on_the_wire() {
        let all = [
            (Operation::Create, "create"),
            (Operation::Start, "start"),
            (Operation::Stop, "stop"),
            (Operation::Restart, "restart"),
            (Operation::Scale, "scale"),
            (Operation::UpdateConfig, "update_config"),
            (Operation::Delete, "delete"),
        ];
        for (op, word) in all {
            let json = serde_json::to_string(&OperationType::from(op)).unwrap();
            assert_eq!(json, format!("\"{word}\""));
        }
    }

    #[test]
    fn a_callback_reads_flat_with_its_instance() {
        let body = r#"{"seq": 3, "state": "succeeded", "message": "done",
            "instance": {"status": "running", "external_id": "cp-9",
                         "endpoints": [{"label": "HTTPS", "url": "https://x.example"}]}}"#;
        let ev: OperationEvent = serde_json::from_str(body).unwrap();
        assert_eq!(ev.seq, 3);
        assert_eq!(ev.report.state, ReportedState::Succeeded);
        let inst = ev.report.instance.unwrap();
        assert_eq!(inst.status, Some(Status::Running));
        assert_eq!(inst.external_id.as_deref(), Some("cp-9"));
        assert_eq!(inst.resources, None);
    }

    #[test]
    fn who_asked_is_tagged_by_kind() {
        let user = RequestedBy::User {
            user_id: "u-1".into(),
            email: "a@b.test".into(),
            role: Role::Operator,
        };
        let json = serde_json::to_value(&user).unwrap();
        assert_eq!(json["kind"], "user");
        assert_eq!(json["role"], "operator");
        let provider = serde_json::to_value(RequestedBy::Provider).unwrap();
        assert_eq!(provider, serde_json::json!({"kind": "provider"}));
    }

    #[test]
    fn messages_are_one_line_and_bounded() {
        assert_eq!(
            customer_message("  Quota\u{0}exceeded:\n\n try\tlater  "),
            "Quota exceeded: try later"
        );
        let long = "é".repeat(1000);
        let cut = customer_message(&long);
        assert_eq!(cut.chars().count(), MESSAGE_LIMIT);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let millis = 1_764_166_205_123;
        let s = rfc3339(millis);
        assert_eq!(s, "2025-11-26T14:10:05.123Z");
        assert_eq!(parse_rfc3339(&s), Some(millis));
        assert_eq!(
            parse_rfc3339("2025-11-26T15:10:05+01:00"),
            Some(1_764_166_205_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
