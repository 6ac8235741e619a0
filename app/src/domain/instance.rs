//! What the pages show of an instance: the shapes that cross the wire.

use super::{Operation, OperationState, ParamType, ParameterSpec, ResourceBounds, Role, Status};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Resources {
    pub replicas: u32,
    pub cpu_millicores: u32,
    pub memory_mib: u32,
    pub storage_gib: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Endpoint {
    pub label: String,
    pub url: String,
}

/// One configuration value as shown to the customer (secrets already masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamEntry {
    pub name: String,
    pub label: String,
    pub value: String,
    pub customer_editable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSummary {
    pub id: String,
    pub name: String,
    pub plan_name: String,
    pub environment: String,
    pub environment_name: String,
    pub region: String,
    pub status: Status,
    pub replicas: u32,
    pub updated_at: String,
    /// The same moment in milliseconds since the epoch, for the REST API; never sent to the
    /// browser (which shows the text above).
    #[serde(skip)]
    pub updated_millis: i64,
    /// What the signed-in user may do to this instance now, as the policy decides, and why not.
    pub actions: Vec<ActionState>,
    /// The operation queued or running on this instance, if any.
    pub in_flight: Option<OperationStatus>,
    /// When the provider's control plane has not confirmed the status lately (or no longer
    /// lists the instance), a line saying so.
    #[serde(default)]
    pub status_note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceDetail {
    pub id: String,
    pub name: String,
    pub plan_id: String,
    pub plan_name: String,
    pub environment: String,
    pub environment_name: String,
    pub region: String,
    pub region_name: String,
    pub status: Status,
    /// Why the instance is in its status, e.g. the error of a failed operation.
    pub status_reason: Option<String>,
    /// When the provider's control plane has not confirmed the status lately (or no longer
    /// lists the instance), a line saying so.
    #[serde(default)]
    pub status_note: Option<String>,
    pub resources: Resources,
    pub parameters: Vec<ParamEntry>,
    pub endpoints: Vec<Endpoint>,
    /// What the signed-in user may do to this instance now, as the policy decides, and why not.
    pub actions: Vec<ActionState>,
    /// The operation queued or running on this instance, if any.
    pub in_flight: Option<OperationStatus>,
    /// The plan's resource limits, which bound the scale form.
    pub bounds: ResourceBounds,
    /// The parameters the customer may change.
    pub editable: Vec<FormParam>,
    pub created_at: String,
    pub updated_at: String,
    /// The same moments in milliseconds since the epoch, for the REST API; never sent to the
    /// browser (which shows the text above).
    #[serde(skip)]
    pub created_millis: i64,
    #[serde(skip)]
    pub updated_millis: i64,
}

/// One lifecycle action on an instance: allowed, or the reason it is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionState {
    pub operation: Operation,
    pub reason: Option<String>,
}

impl ActionState {
    pub fn allowed(&self) -> bool {
        self.reason.is_none()
    }

    /// A label a person reads, e.g. "Update configuration".
    pub fn label(&self) -> &'static str {
        Self::name(self.operation)
    }

    pub fn name(op: Operation) -> &'static str {
        match op {
            Operation::Create => "Create",
            Operation::Stop => "Stop",
            Operation::Start => "Start",
            Operation::Restart => "Restart",
            Operation::Scale => "Scale",
            Operation::UpdateConfig => "Update configuration",
            Operation::Delete => "Delete",
        }
    }
}

/// Filters of the instance list; every field optional, all must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceFilter {
    pub environment: Option<String>,
    pub status: Option<Status>,
    /// Case-insensitive substring of the instance name.
    pub q: Option<String>,
}

impl InstanceFilter {
    /// Builds a filter from query-string values, treating blanks as "any".
    pub fn from_query(environment: &str, status: &str, q: &str) -> Self {
        let nonblank = |s: &str| {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_owned())
        };
        InstanceFilter {
            environment: nonblank(environment),
            status: Status::parse(status.trim()),
            q: nonblank(q),
        }
    }

    pub fn matches(&self, i: &InstanceSummary) -> bool {
        self.environment
            .as_deref()
            .is_none_or(|e| e == i.environment)
            && self.status.is_none_or(|s| s == i.status)
            && self
                .q
                .as_deref()
                .is_none_or(|q| i.name.contains(&q.to_ascii_lowercase()))
    }
}

/// The signed-in person, as the header shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub email: String,
    pub display_name: String,
    pub tenant_name: String,
    pub role: Role,
    pub provider_name: String,
    pub environments: Vec<(String, String)>,
    /// Whether this person may create instances, and why not.
    pub create: ActionState,
    pub can_read_audit: bool,
    /// Admins invite, change roles and remove members.
    pub can_manage_members: bool,
    /// The provider's logo for the header.
    pub logo_url: String,
    /// Signed in from inside the provider's iframe, whose page has its own navigation: the
    /// portal shows no header or sign-out of its own.
    pub hide_header: bool,
    /// The provider suspended the organisation: everything shows, nothing changes.
    #[serde(default)]
    pub suspended: bool,
}

/// What the create form offers: only the tenant plan's environments, regions, limits and
/// customer-editable parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateOptions {
    pub plan_name: String,
    /// Why this person cannot create an instance now, if they cannot.
    pub denied: Option<String>,
    pub environments: Vec<(String, String)>,
    pub regions: Vec<(String, String)>,
    pub bounds: ResourceBounds,
    pub parameters: Vec<FormParam>,
}

/// A parameter the customer may set, as a form needs it. Forms hold text, so the default is
/// text too: the browser then never decodes a typed value (an untagged enum, costly in wasm).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormParam {
    pub name: String,
    pub label: String,
    pub kind: ParamType,
    pub allowed: Vec<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// The plan's default as text; empty for secrets, which are never sent.
    pub default: String,
    pub secret: bool,
}

impl From<&ParameterSpec> for FormParam {
    fn from(p: &ParameterSpec) -> Self {
        FormParam {
            name: p.name.clone(),
            label: p.label().to_owned(),
            kind: p.kind,
            allowed: p.allowed.clone(),
            min: p.min,
            max: p.max,
            default: if p.secret {
                String::new()
            } else {
                p.default.to_string()
            },
            secret: p.secret,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(name: &str, env: &str, status: Status) -> InstanceSummary {
        InstanceSummary {
            id: format!("{name}-id"),
            name: name.into(),
            plan_name: "Pro".into(),
            environment: env.into(),
            environment_name: env.into(),
            region: "eu-west".into(),
            status,
            replicas: 1,
            updated_at: String::new(),
            updated_millis: 0,
            actions: vec![],
            in_flight: None,
            status_note: None,
        }
    }

    #[test]
    fn blank_query_values_match_everything() {
        let f = InstanceFilter::from_query(" ", "", "");
        assert_eq!(f, InstanceFilter::default());
        assert!(f.matches(&summary("api", "dev", Status::Running)));
    }

    #[test]
    fn filters_combine() {
        let f = InstanceFilter::from_query("production", "running", "API");
        assert!(f.matches(&summary("billing-api", "production", Status::Running)));
        assert!(!f.matches(&summary("billing-api", "dev", Status::Running)));
        assert!(!f.matches(&summary("billing-api", "production", Status::Stopped)));
        assert!(!f.matches(&summary("worker", "production", Status::Running)));
    }

    #[test]
    fn form_params_carry_defaults_as_text_but_never_a_secrets() {
        use crate::domain::ParamValue;
        let mut spec = ParameterSpec {
            name: "api_key".into(),
            label: Some("API key".into()),
            kind: ParamType::String,
            allowed: vec![],
            min: None,
            max: None,
            default: ParamValue::Text("demo-secret".into()),
            customer_editable: true,
            secret: true,
        };
        let f = FormParam::from(&spec);
        assert_eq!((f.label.as_str(), f.default.as_str()), ("API key", ""));
        spec.secret = false;
        spec.default = ParamValue::Int(500);
        assert_eq!(FormParam::from(&spec).default, "500");
    }

    #[test]
    fn operation_status_sends_its_state_as_the_lowercase_word() {
        let status = OperationStatus {
            operation_id: "op".into(),
            instance_id: "i".into(),
            operation: Operation::Stop,
            state: OperationState::Running,
            attempts: 2,
            last_error: Some("timeout".into()),
            instance_status: Status::Stopping,
            progress_message: None,
            progress_percent: None,
            requested_millis: 0,
            finished_millis: None,
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["state"], "running");
        assert_eq!(
            serde_json::from_value::<OperationStatus>(json).unwrap(),
            status
        );
        assert_eq!(status.progress(), "Stop: running (attempt 2) — timeout");
        let reported = OperationStatus {
            attempts: 1,
            progress_message: Some("Draining connections".into()),
            progress_percent: Some(40),
            ..status.clone()
        };
        assert_eq!(
            reported.progress(),
            "Stop: running — Draining connections (40%)"
        );
        assert!(!status.finished());
        assert!(OperationStatus {
            state: OperationState::Failed,
            ..status
        }
        .finished());
    }

    #[test]
    fn audit_outcomes_are_the_words_stored_and_sent() {
        let words: Vec<&str> = AuditOutcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(words, ["requested", "denied", "succeeded", "failed"]);
        for o in AuditOutcome::ALL {
            assert_eq!(AuditOutcome::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_string(&o).unwrap(), format!("\"{o}\""));
            assert_eq!(String::from(o), o.as_str());
        }
        assert_eq!(AuditOutcome::parse("Denied"), None);
    }

    #[test]
    fn unknown_status_in_query_means_any() {
        let f = InstanceFilter::from_query("", "exploded", "");
        assert_eq!(f.status, None);
    }
}

/// Where an operation stands, as the UI polls it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationStatus {
    pub operation_id: String,
    pub instance_id: String,
    pub operation: Operation,
    pub state: OperationState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub instance_status: Status,
    /// The control plane's latest progress report while it works, e.g. "Copying data".
    #[serde(default)]
    pub progress_message: Option<String>,
    #[serde(default)]
    pub progress_percent: Option<u8>,
    /// When it was asked for and when it ended, in milliseconds since the epoch, for the REST
    /// API; never sent to the browser.
    #[serde(skip)]
    pub requested_millis: i64,
    #[serde(skip)]
    pub finished_millis: Option<i64>,
}

impl OperationStatus {
    pub fn finished(&self) -> bool {
        self.state.is_finished()
    }

    /// One line for people: "Stop: running (attempt 2) — timeout", or with the control
    /// plane's progress while it works: "Stop: running — Draining connections (40%)".
    pub fn progress(&self) -> String {
        let mut s = format!("{}: {}", ActionState::name(self.operation), self.state);
        if self.attempts > 1 {
            s += &format!(" (attempt {})", self.attempts);
        }
        let working = !self.finished();
        match (&self.progress_message, self.progress_percent) {
            (Some(m), Some(p)) if working => s += &format!(" — {m} ({p}%)"),
            (Some(m), None) if working => s += &format!(" — {m}"),
            (None, Some(p)) if working => s += &format!(" — {p}%"),
            _ => {
                if let Some(e) = &self.last_error {
                    s += &format!(" — {e}");
                }
            }
        }
        s
    }
}

/// How the event an audit log line records ended. Stored and sent as the lowercase word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// A request was accepted and its operation queued.
    Requested,
    /// The policy refused a request (or an operation at execution time).
    Denied,
    Succeeded,
    Failed,
}

impl AuditOutcome {
    /// In the order the audit page offers them as filters.
    pub const ALL: [AuditOutcome; 4] = [
        AuditOutcome::Requested,
        AuditOutcome::Denied,
        AuditOutcome::Succeeded,
        AuditOutcome::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Requested => "requested",
            AuditOutcome::Denied => "denied",
            AuditOutcome::Succeeded => "succeeded",
            AuditOutcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<AuditOutcome> {
        AuditOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl std::fmt::Display for AuditOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<AuditOutcome> for String {
    fn from(o: AuditOutcome) -> String {
        o.as_str().to_owned()
    }
}

/// One audit log line as the portal shows and exports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time: String,
    /// The same moment in milliseconds since the epoch, for the REST API; never sent to the
    /// browser (which shows the text above).
    #[serde(skip)]
    pub time_millis: i64,
    pub actor: String,
    pub role: String,
    pub instance: String,
    pub instance_id: String,
    pub operation: String,
    pub parameters: String,
    pub outcome: String,
    pub reason: String,
    pub request_id: String,
}
