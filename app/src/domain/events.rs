//! What the live stream tells a page: which kind of thing changed, and who may be told.
//!
//! Events carry ids, never data. A page that hears of a change re-reads what the event names
//! through the same checks as any other read, so an event can never show more than the page
//! itself could.

/// A kind of change, as stored and as sent (`event:` of the stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An instance was created (its first operation is requested with it).
    InstanceCreated,
    /// An instance's status, resources, parameters or reported state changed.
    InstanceChanged,
    /// An instance is gone.
    InstanceDeleted,
    /// An operation was requested, started, made progress, or ended.
    OperationChanged,
    /// A line was added to the audit log.
    AuditAppended,
    /// A member joined, left, or changed role: open streams of that user check their session.
    MemberChanged,
    /// A session was ended (sign-out, a disabled user): open streams check theirs.
    SessionEnded,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::InstanceCreated,
        EventKind::InstanceChanged,
        EventKind::InstanceDeleted,
        EventKind::OperationChanged,
        EventKind::AuditAppended,
        EventKind::MemberChanged,
        EventKind::SessionEnded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::InstanceCreated => "instance.created",
            EventKind::InstanceChanged => "instance.changed",
            EventKind::InstanceDeleted => "instance.deleted",
            EventKind::OperationChanged => "operation.changed",
            EventKind::AuditAppended => "audit.appended",
            EventKind::MemberChanged => "member.changed",
            EventKind::SessionEnded => "session.ended",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a member is sent this event. Instances and operations are every member's to
    /// see; the audit log only theirs whose role may read it (`may_read_audit`); membership
    /// and session changes are the server's own business (they make a stream check its
    /// session) and go to nobody.
    pub fn visible_to(self, may_read_audit: bool) -> bool {
        match self {
            EventKind::InstanceCreated
            | EventKind::InstanceChanged
            | EventKind::InstanceDeleted
            | EventKind::OperationChanged => true,
            EventKind::AuditAppended => may_read_audit,
            EventKind::MemberChanged | EventKind::SessionEnded => false,
        }
    }

    /// Whether an open stream must check that its session still holds (it may have ended, or
    /// its user's role changed) when it hears of this event about `user`.
    pub fn ends_sessions_of(self) -> bool {
        matches!(self, EventKind::MemberChanged | EventKind::SessionEnded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::parse("instance"), None);
    }

    #[test]
    fn audit_lines_reach_only_those_who_may_read_the_log() {
        assert!(EventKind::AuditAppended.visible_to(true));
        assert!(!EventKind::AuditAppended.visible_to(false));
        for audit in [true, false] {
            assert!(EventKind::OperationChanged.visible_to(audit));
            assert!(EventKind::InstanceChanged.visible_to(audit));
            assert!(!EventKind::MemberChanged.visible_to(audit));
            assert!(!EventKind::SessionEnded.visible_to(audit));
        }
    }
}
