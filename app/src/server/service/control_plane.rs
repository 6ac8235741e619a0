//! What the provider's control plane reports: progress and completion of operations it took.
//! The caller (the callback route) has verified the report's signature.

use super::ServiceError;
use crate::server::control_plane::contract::{customer_message, OperationEvent, ReportedState};
use crate::server::state::AppState;
use crate::server::store::{now_millis, EventApplied, Reported};

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
