//! The shapes `/api/v1` sends and accepts: a contract scripts code against, so they change
//! only by adding. Built from the same views the pages show, with times as RFC 3339.

use crate::domain::webhooks::WebhookEvent;
use crate::domain::{
    AuditEntry, EmailDelivery, Endpoint, InstanceDetail, InstanceSummary, Member, Operation,
    OperationState, OperationStatus, PendingInvitation, Resources, Role, Status,
};
use crate::server::control_plane::contract::rfc3339;
use crate::server::store::{ApiTokenRecord, AttemptRecord, EndpointRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One lifecycle action on an instance: whether this caller may request it now, and if not,
/// the policy's reason (the same answer the portal's pages show).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Action {
    pub operation: Operation,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The actions of one instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActionList {
    pub instance_id: String,
    pub actions: Vec<Action>,
}

fn actions(list: &[crate::domain::ActionState]) -> Vec<Action> {
    list.iter()
        .map(|a| Action {
            operation: a.operation,
            allowed: a.allowed(),
            reason: a.reason.clone(),
        })
        .collect()
}

/// An operation: what was asked, where it stands, and the instance's status now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperationView {
    pub id: String,
    pub instance_id: String,
    pub operation: Operation,
    pub state: OperationState,
    /// True once it succeeded or failed.
    pub finished: bool,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub instance_status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_percent: Option<u8>,
    #[schema(format = DateTime)]
    pub requested_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
}

impl From<OperationStatus> for OperationView {
    fn from(o: OperationStatus) -> Self {
        OperationView {
            finished: o.finished(),
            id: o.operation_id,
            instance_id: o.instance_id,
            operation: o.operation,
            state: o.state,
            attempts: o.attempts,
            last_error: o.last_error,
            instance_status: o.instance_status,
            progress_message: o.progress_message,
            progress_percent: o.progress_percent,
            requested_at: rfc3339(o.requested_millis),
            finished_at: o.finished_millis.map(rfc3339),
        }
    }
}

/// An instance as the list shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub plan_name: String,
    pub environment: String,
    pub environment_name: String,
    pub region: String,
    pub status: Status,
    pub replicas: u32,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// The operation queued or running on it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<OperationView>,
    pub actions: Vec<Action>,
    /// Set when the provider's systems have not confirmed the status lately.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_note: Option<String>,
}

impl From<InstanceSummary> for Instance {
    fn from(i: InstanceSummary) -> Self {
        Instance {
            actions: actions(&i.actions),
            id: i.id,
            name: i.name,
            plan_name: i.plan_name,
            environment: i.environment,
            environment_name: i.environment_name,
            region: i.region,
            status: i.status,
            replicas: i.replicas,
            updated_at: rfc3339(i.updated_millis),
            in_flight: i.in_flight.map(OperationView::from),
            status_note: i.status_note,
        }
    }
}

/// A configuration value as the customer sees it (secrets masked).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Parameter {
    pub name: String,
    pub label: String,
    pub value: String,
    pub customer_editable: bool,
}

/// One instance in full.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstanceDetails {
    pub id: String,
    pub name: String,
    pub plan_id: String,
    pub plan_name: String,
    pub environment: String,
    pub environment_name: String,
    pub region: String,
    pub region_name: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_note: Option<String>,
    pub resources: Resources,
    pub parameters: Vec<Parameter>,
    pub endpoints: Vec<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<OperationView>,
    pub actions: Vec<Action>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<InstanceDetail> for InstanceDetails {
    fn from(i: InstanceDetail) -> Self {
        InstanceDetails {
            actions: actions(&i.actions),
            id: i.id,
            name: i.name,
            plan_id: i.plan_id,
            plan_name: i.plan_name,
            environment: i.environment,
            environment_name: i.environment_name,
            region: i.region,
            region_name: i.region_name,
            status: i.status,
            status_reason: i.status_reason,
            status_note: i.status_note,
            resources: i.resources,
            parameters: i
                .parameters
                .into_iter()
                .map(|p| Parameter {
                    name: p.name,
                    label: p.label,
                    value: p.value,
                    customer_editable: p.customer_editable,
                })
                .collect(),
            endpoints: i.endpoints,
            in_flight: i.in_flight.map(OperationView::from),
            created_at: rfc3339(i.created_millis),
            updated_at: rfc3339(i.updated_millis),
        }
    }
}

/// A page of instances, by name.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstancePage {
    pub items: Vec<Instance>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// How many instances match the filters in all.
    pub total: u64,
}

/// A page of an instance's operations, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OperationPage {
    pub items: Vec<OperationView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditLine {
    #[schema(format = DateTime)]
    pub time: String,
    /// A member's email, `token:<name>` for an API token, or `provider`.
    pub actor: String,
    pub role: String,
    pub instance: String,
    pub instance_id: String,
    pub operation: String,
    /// The request's parameters as JSON text, secrets masked.
    pub parameters: String,
    /// requested, denied, succeeded or failed.
    pub outcome: String,
    pub reason: String,
    pub request_id: String,
}

impl From<AuditEntry> for AuditLine {
    fn from(e: AuditEntry) -> Self {
        AuditLine {
            time: rfc3339(e.time_millis),
            actor: e.actor,
            role: e.role,
            instance: e.instance,
            instance_id: e.instance_id,
            operation: e.operation,
            parameters: e.parameters,
            outcome: e.outcome,
            reason: e.reason,
            request_id: e.request_id,
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub role: Role,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        MemberView {
            user_id: m.user_id,
            email: m.email,
            display_name: m.display_name,
            role: m.role,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

impl From<PendingInvitation> for InvitationView {
    fn from(i: PendingInvitation) -> Self {
        InvitationView {
            id: i.id,
            email: i.email,
            role: i.role,
            invited_by: i.invited_by,
            expires_at: rfc3339(i.expires_at),
        }
    }
}

/// The tenant's members and pending invitations.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    pub members: Vec<MemberView>,
    pub invitations: Vec<InvitationView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    pub email: String,
    pub role: Role,
}

/// A new invitation: the link to pass on (when it was not emailed).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InvitationCreated {
    /// The link's path on the portal, e.g. `/invite/…`.
    pub path: String,
    /// Whether the portal also emailed it.
    pub email: EmailDelivery,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    pub role: Role,
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

impl From<ApiTokenRecord> for TokenView {
    fn from(t: ApiTokenRecord) -> Self {
        TokenView {
            id: t.id,
            name: t.name,
            role: t.role,
            created_by: t.created_by,
            created_at: rfc3339(t.created_at),
            expires_at: t.expires_at.map(rfc3339),
            last_used_at: t.last_used_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    /// 1 to 64 characters, unique among the tenant's live tokens.
    pub name: String,
    /// No higher than the creator's own role.
    pub role: Role,
    /// Days until it stops working (1 to 3650); without it, it works until revoked.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A new token with its secret: shown this once, never again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenCreated {
    pub token: TokenView,
    /// `ptk_…`: send as `Authorization: Bearer <secret>`.
    pub secret: String,
}

/// A webhook endpoint as listed: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    pub description: String,
    pub event_types: Vec<WebhookEvent>,
    /// Disabled endpoints are sent nothing; their waiting deliveries resume when re-enabled.
    pub enabled: bool,
    /// Why Portico disabled it (a 410 answer, or five days of failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Since when every attempt has failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub failing_since: Option<String>,
    /// After a rotation, until when the previous secret also signs every delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub previous_secret_valid_until: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<&EndpointRecord> for WebhookView {
    fn from(e: &EndpointRecord) -> Self {
        let now = crate::server::store::now_millis();
        WebhookView {
            id: e.id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            event_types: e.event_types.clone(),
            enabled: e.enabled,
            disabled_reason: e.disabled_reason.clone(),
            failing_since: e.failing_since.map(rfc3339),
            previous_secret_valid_until: e.previous_secret_until.filter(|t| *t > now).map(rfc3339),
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

/// One endpoint with its queue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookDetail {
    pub endpoint: WebhookView,
    /// Deliveries waiting for their next attempt.
    pub pending_deliveries: i64,
    /// Deliveries that ran out of attempts (they can be sent again).
    pub failed_deliveries: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// `https://…` (plain http only to hosts the provider allows).
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// At least one.
    pub event_types: Vec<WebhookEvent>,
}

/// What to change; a field left out stays as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<WebhookEvent>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A new endpoint with its signing secret: shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookCreated {
    pub endpoint: WebhookView,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks).
    pub secret: String,
}

/// An endpoint's new secret, shown this once; the previous one signs too until the time given.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookSecret {
    pub secret: String,
    #[schema(format = DateTime)]
    pub previous_secret_valid_until: String,
}

/// A message queued for an endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookQueued {
    /// Its `webhook-id`.
    pub message_id: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Sending,
    Delivered,
    Failed,
}

/// One attempt of a delivery, as the endpoint's log shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookAttempt {
    pub id: String,
    /// The message's `webhook-id`: send it again with
    /// `POST /api/v1/webhooks/{id}/messages/{message_id}/redeliver`.
    pub message_id: String,
    pub event_type: WebhookEvent,
    #[schema(format = DateTime)]
    pub attempted_at: String,
    /// The HTTP status; absent when no answer came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// The first bytes of the answer, or why none came.
    pub response: String,
    /// Where the delivery this attempt belongs to stands now.
    pub delivery_state: DeliveryState,
}

impl TryFrom<AttemptRecord> for WebhookAttempt {
    type Error = String;
    fn try_from(a: AttemptRecord) -> Result<Self, String> {
        Ok(WebhookAttempt {
            id: a.id,
            message_id: a.message_id,
            event_type: WebhookEvent::parse(&a.event_type)
                .ok_or_else(|| format!("event type {:?}", a.event_type))?,
            attempted_at: rfc3339(a.attempted_at),
            status: a.status.and_then(|s| u16::try_from(s).ok()),
            latency_ms: a.latency_ms,
            response: a.response,
            delivery_state: match a.delivery_state.as_str() {
                "pending" => DeliveryState::Pending,
                "sending" => DeliveryState::Sending,
                "delivered" => DeliveryState::Delivered,
                "failed" => DeliveryState::Failed,
                other => return Err(format!("delivery state {other:?}")),
            },
        })
    }
}
