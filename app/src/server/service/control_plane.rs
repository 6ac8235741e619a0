//! What the provider's control plane reports: progress and completion of operations it took,
//! and changes to instances made outside the portal.
//! The caller (the callback route) has verified the report's signature.

use super::ServiceError;
use crate::server::control_plane::contract::{
    customer_message, parse_rfc3339, InstanceEvent, OperationEvent, ReportedState,
};
use crate::server::state::AppState;
use crate::server::store::{now_millis, EventApplied, InstanceReport, Reported};

/// Applies a callback about `operation_id`. A duplicate, an older `seq` or a report about a
/// finished operation changes nothing; an unknown operation is [`ServiceError::NotFound`].
pub async fn operation_event(
    state: &AppState,
    operation_id: &str,
    event: OperationEvent,
) -> Result<EventApplied, ServiceError> {
    let seq = i64::try_from(event.seq).map_err(|_| ServiceError::invalid("seq", "is too large"))?;
    let report = event.report;
    let observed = report.instance.unwrap_or_default();
    let reported = match report.state {
        ReportedState::InProgress => Reported::Progress {
            message: report.message.map(|m| customer_message(&m)),
            percent: report.percent.map(|p| p.min(100)),
        },
        ReportedState::Succeeded => Reported::Succeeded { observed },
        ReportedState::Failed => Reported::Failed {
            error: report
                .message
                .map(|m| customer_message(&m))
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "the provider reported that it failed".into()),
            observed,
        },
    };
    let applied = state
        .store
        .record_operation_event(operation_id, seq, &reported, now_millis())
        .await?;
    match applied {
        EventApplied::Unknown => Err(ServiceError::NotFound),
        other => {
            tracing::info!(operation_id, seq, applied = ?other, "control plane callback");
            Ok(other)
        }
    }
}

/// Applies a report about `instance_id` made outside any operation (the provider's console,
/// a failure, new endpoints). It needs a `seq` or an `observed_at` to be ordered.
pub async fn instance_event(
    state: &AppState,
    instance_id: &str,
    event: InstanceEvent,
) -> Result<EventApplied, ServiceError> {
    let seq = event
        .seq
        .map(i64::try_from)
        .transpose()
        .map_err(|_| ServiceError::invalid("seq", "is too large"))?;
    let observed_at = match &event.observed_at {
        None => None,
        Some(at) => Some(
            parse_rfc3339(at)
                .ok_or_else(|| ServiceError::invalid("observed_at", "is not an RFC 3339 time"))?,
        ),
    };
    if seq.is_none() && observed_at.is_none() {
        return Err(ServiceError::invalid(
            "seq",
            "or observed_at is required: reports are applied in order",
        ));
    }
    let report = InstanceReport {
        seq,
        observed_at,
        message: event
            .message
            .map(|m| customer_message(&m))
            .filter(|m| !m.is_empty()),
        observed: event.instance,
    };
    let applied = state
        .store
        .record_instance_event(instance_id, &report, now_millis())
        .await?;
    match applied {
        EventApplied::Unknown => Err(ServiceError::NotFound),
        other => {
            tracing::info!(instance_id, ?seq, applied = ?other, "control plane instance report");
            Ok(other)
        }
    }
}
