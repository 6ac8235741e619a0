//! Talking to a portal's `/api/v1`: requests with the stored token, and every way one can fail
//! turned into a message and an exit code of its own.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// What went wrong, each with its own exit code (see `--help`).
#[derive(Debug)]
pub enum Failure {
    /// The portal refused: bad or revoked token (401), the policy or a role (403), invalid
    /// input (400, 409, 422) or the request budget (429).
    Refused(String),
    NotFound(String),
    /// No answer: the portal is down, the URL wrong, or the network failed.
    Unreachable(String),
    /// The operation ran and failed.
    OperationFailed(String),
    /// `--wait` gave up before the operation ended.
    TimedOut(String),
    /// Anything else: the portal erred (5xx), or the local set-up is wrong.
    Other(String),
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::OperationFailed(_) => 1,
            Failure::Refused(_) => 3,
            Failure::NotFound(_) => 4,
            Failure::Unreachable(_) => 5,
            Failure::TimedOut(_) => 6,
            Failure::Other(_) => 7,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused(m) => write!(f, "refused: {m}"),
            Failure::NotFound(m) => write!(f, "not found: {m}"),
            Failure::Unreachable(m) => write!(f, "unreachable: {m}"),
            Failure::OperationFailed(m) => write!(f, "failed: {m}"),
            Failure::TimedOut(m) => write!(f, "timed out: {m}"),
            Failure::Other(m) => write!(f, "error: {m}"),
        }
    }
}

pub type Result<T> = std::result::Result<T, Failure>;

pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("portico-ctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::Other(format!("cannot set up HTTP: {e}")))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            http,
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: Value, key: Option<&str>) -> Result<Value> {
        self.send(Method::POST, path, Some(body), key).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Result<Value> {
        self.send(Method::PATCH, path, Some(body), None).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .header("accept", "application/json");
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .map_err(|e| Failure::Unreachable(format!("{} ({})", self.base, root_cause(&e))))?;
        let status = res.status();
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = res
            .text()
            .await
            .map_err(|e| Failure::Unreachable(format!("{} ({})", self.base, root_cause(&e))))?;
        if status.is_success() {
            if text.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .map_err(|e| Failure::Other(format!("the portal's answer is not JSON: {e}")));
        }
        Err(problem(status, &text, retry_after))
    }
}

/// The innermost error's text: reqwest's outer one says only "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// A problem+json answer as a failure: its detail (and field), quoting the request id.
fn problem(status: StatusCode, body: &str, retry_after: Option<String>) -> Failure {
    let p: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let mut message = p["detail"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}"));
    if let Some(field) = p["field"].as_str() {
        if !message.contains(field) {
            message = format!("{field}: {message}");
        }
    }
    if let Some(secs) = retry_after {
        message = format!("{message} (retry after {secs} s)");
    }
    if let Some(id) = p["request_id"].as_str() {
        message = format!("{message} [request {id}]");
    }
    match status.as_u16() {
        404 => Failure::NotFound(message),
        400 | 401 | 403 | 409 | 422 | 429 => Failure::Refused(message),
        _ => Failure::Other(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_keep_their_detail_field_and_request_id() {
        let body = r#"{"type":"urn:portico:problem:forbidden","status":403,
            "detail":"Viewers may not stop instances.","request_id":"r-1"}"#;
        let f = problem(StatusCode::FORBIDDEN, body, None);
        assert_eq!(f.exit_code(), 3);
        assert_eq!(
            f.to_string(),
            "refused: Viewers may not stop instances. [request r-1]"
        );
        let f = problem(StatusCode::NOT_FOUND, "{}", None);
        assert_eq!(f.exit_code(), 4);
        let f = problem(
            StatusCode::TOO_MANY_REQUESTS,
            r#"{"detail":"slow down"}"#,
            Some("7".into()),
        );
        assert_eq!(f.to_string(), "refused: slow down (retry after 7 s)");
        assert_eq!(problem(StatusCode::BAD_GATEWAY, "", None).exit_code(), 7);
    }
}
