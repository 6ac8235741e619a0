//! Faults on demand (`POST /_admin/faults`): the next commands answer with an error status or
//! hang first, and callbacks can be switched off so Portico has to poll.
//! `{"clear": true}` forgets the faults still queued.

use serde::Deserialize;
use std::collections::VecDeque;

/// The body of `POST /_admin/faults`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// Answer with this status (a 3xx carries a Location, 409/422 a refusal).
    pub status: Option<u16>,
    /// How many commands (default 1).
    pub count: Option<u32>,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
    pub message: Option<String>,
    /// Wait this long before answering (with `status`, or normally without it).
    pub hang_ms: Option<u64>,
    /// Stop (true) or resume (false) sending callbacks.
    pub drop_callbacks: Option<bool>,
    /// Forget the faults still queued (before queueing this request's).
    pub clear: Option<bool>,
}

/// What to do to one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: Option<u16>,
    pub retry_after: Option<u64>,
    pub message: Option<String>,
    pub hang_ms: Option<u64>,
}

impl Fault {
    /// The message of an error answer.
    pub fn message(&self) -> String {
        self.message.clone().unwrap_or_else(|| match self.status {
            Some(409) => "simulated conflict".into(),
            Some(422) => "simulated refusal".into(),
            Some(s) => format!("simulated HTTP {s}"),
            None => String::new(),
        })
    }
}

#[derive(Debug, Default)]
pub struct FaultQueue {
    queue: VecDeque<(Fault, u32)>,
}

impl FaultQueue {
    /// Queues the faults of a request (after those already queued); whether it held any.
    pub fn push(&mut self, req: &FaultRequest) -> Result<bool, String> {
        if req.status.is_none() && req.hang_ms.is_none() {
            if req.count.is_some() || req.retry_after.is_some() || req.message.is_some() {
                return Err("a fault needs a status or hang_ms".into());
            }
            return Ok(false);
        }
        if let Some(s) = req.status {
            if !(300..600).contains(&s) {
                return Err(format!("status {s} is not a redirect or an error"));
            }
        }
        let count = req.count.unwrap_or(1);
        if count > 0 {
            let fault = Fault {
                status: req.status,
                retry_after: req.retry_after,
                message: req.message.clone(),
                hang_ms: req.hang_ms,
            };
            self.queue.push_back((fault, count));
        }
        Ok(true)
    }

    /// The fault for the next command, if any is queued.
    pub fn next(&mut self) -> Option<Fault> {
        let (fault, left) = self.queue.front_mut()?;
        let fault = fault.clone();
        *left -= 1;
        if *left == 0 {
            self.queue.pop_front();
        }
        Some(fault)
    }

    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> FaultRequest {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn faults_apply_to_the_next_commands_in_order() {
        let mut q = FaultQueue::default();
        assert_eq!(q.next(), None);
        assert_eq!(
            q.push(&req(r#"{"status": 503, "count": 2, "retry_after": 1}"#)),
            Ok(true)
        );
        assert_eq!(q.push(&req(r#"{"hang_ms": 50}"#)), Ok(true));
        let first = q.next().unwrap();
        assert_eq!(first.status, Some(503));
        assert_eq!(first.retry_after, Some(1));
        assert_eq!(first.message(), "simulated HTTP 503");
        assert_eq!(q.next().unwrap().status, Some(503));
        let hang = q.next().unwrap();
        assert_eq!((hang.status, hang.hang_ms), (None, Some(50)));
        assert_eq!(q.next(), None);
    }

    #[test]
    fn refusals_carry_a_message_and_bad_requests_are_refused() {
        let mut q = FaultQueue::default();
        q.push(&req(r#"{"status": 422, "message": "Quota exceeded"}"#))
            .unwrap();
        q.push(&req(r#"{"status": 409}"#)).unwrap();
        assert_eq!(q.next().unwrap().message(), "Quota exceeded");
        assert_eq!(q.next().unwrap().message(), "simulated conflict");
        assert_eq!(q.push(&req(r#"{"drop_callbacks": true}"#)), Ok(false));
        assert!(q.push(&req(r#"{"count": 3}"#)).is_err());
        assert!(q.push(&req(r#"{"status": 200}"#)).is_err());
        assert_eq!(q.push(&req(r#"{"status": 500, "count": 0}"#)), Ok(true));
        assert_eq!(q.next(), None);
        assert!(serde_json::from_str::<FaultRequest>(r#"{"stauts": 500}"#).is_err());
        q.push(&req(r#"{"status": 500}"#)).unwrap();
        q.clear();
        assert_eq!(q.next(), None);
    }
}
