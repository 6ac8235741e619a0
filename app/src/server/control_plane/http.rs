//! The `http` driver: the provider's control plane behind control-plane API v1.
//!
//! Commands go out as `POST {base_url}/operations`, polls as `GET {base_url}/operations/{id}`,
//! each signed with the configured secret(s). Answers map onto the worker's terms: `200` is
//! the result, `202` a promise to report later, `409`/`422`/other 4xx a refusal whose message
//! the customer reads, and `429`, `5xx`, timeouts and connection errors transient failures
//! retried after the `Retry-After` the control plane asked for. Redirects are never followed.

use super::contract::{customer_message, OperationCommand, OperationReport, Refusal};
use super::signature::{Keyring, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::{Answer, ControlPlane, DriverError, DriverFuture, ListFuture};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use std::time::Duration;

/// The longest wait a control plane may ask for with `Retry-After`.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The most of a response body read.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Checked by [`check_base_url`]; no trailing slash needed.
    pub base_url: String,
    /// Signs every request (both secrets while rotating).
    pub secrets: Keyring,
    /// The longest a request may take, connection included.
    pub timeout: Duration,
}

pub struct Http {
    client: reqwest::Client,
    base: String,
    secrets: Keyring,
}

/// Commands carry every parameter, secrets included: only HTTPS, or plain HTTP to this very
/// machine (a control plane beside Portico, and the tests).
pub fn check_base_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("{url} names no host"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "{url} is plain HTTP: commands carry secret parameters, so the control plane \
                 must be reached over https (http only to loopback)"
            ))
        }
        other => return Err(format!("{url}: the scheme must be https, not {other}")),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!("{url}: the base URL takes no query or fragment"));
    }
    Ok(())
}

impl Http {
    pub fn new(settings: HttpSettings) -> Result<Http, String> {
        check_base_url(&settings.base_url)?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("Portico/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Http {
            client,
            base: settings.base_url.trim_end_matches('/').to_owned(),
            secrets: settings.secrets,
        })
    }

    fn signed(&self, req: reqwest::RequestBuilder, body: &[u8]) -> reqwest::RequestBuilder {
        let id = format!("msg_{}", crate::server::store::new_id().replace('-', ""));
        let now = crate::server::store::now_millis() / 1000;
        let signature = self.secrets.sign(&id, now, body);
        req.header(ID_HEADER, id)
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(SIGNATURE_HEADER, signature)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Reply, DriverError> {
        let res = req.send().await.map_err(|e| {
            tracing::warn!(error = %e, "control plane request failed");
            DriverError::transient(if e.is_timeout() {
                "the provider's control plane did not answer in time"
            } else {
                "the provider's control plane could not be reached"
            })
        })?;
        let status = res.status();
        let retry_after = retry_after(res.headers());
        let mut res = res;
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|_| {
            DriverError::transient("the provider's control plane broke off its answer")
        })? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY {
                body.truncate(MAX_BODY);
                break;
            }
        }
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}

struct Reply {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl Reply {
    fn report(&self) -> Result<OperationReport, DriverError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            tracing::warn!(status = %self.status, error = %e, "control plane answer unreadable");
            DriverError::transient(
                "the provider's control plane gave an answer Portico cannot read",
            )
        })
    }

    /// What every answer but a success means.
    fn failure(&self) -> DriverError {
        let s = self.status;
        if s.is_redirection() {
            return DriverError::Permanent(
                "the provider's control plane answered with a redirect, which Portico does not \
                 follow"
                    .into(),
            );
        }
        if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() {
            return DriverError::Transient {
                message: format!(
                    "the provider's control plane is unavailable (HTTP {})",
                    s.as_u16()
                ),
                retry_after: self.retry_after,
            };
        }
        if s.is_client_error() {
            let message = serde_json::from_slice::<Refusal>(&self.body)
                .map(|r| customer_message(&r.message))
                .ok()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| {
                    format!("the provider refused this operation (HTTP {})", s.as_u16())
                });
            return DriverError::Permanent(message);
        }
        DriverError::transient(format!(
            "the provider's control plane gave an unexpected answer (HTTP {})",
            s.as_u16()
        ))
    }
}

/// `Retry-After` in seconds (an HTTP date is not accepted), capped at an hour.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

impl ControlPlane for Http {
    fn execute<'a>(&'a self, command: &'a OperationCommand) -> DriverFuture<'a> {
        Box::pin(async move {
            let body = serde_json::to_vec(command).map_err(|e| {
                DriverError::Permanent(format!("the command could not be encoded: {e}"))
            })?;
            let req = self
                .client
                .post(format!("{}/operations", self.base))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("idempotency-key", &command.operation_id);
            let reply = self.send(self.signed(req, &body).body(body)).await?;
            match reply.status {
                StatusCode::OK => Ok(Answer::from_report(reply.report()?, reply.retry_after)),
                StatusCode::ACCEPTED => {
                    // A 202 may carry a first progress report; none is as good.
                    let report = serde_json::from_slice::<OperationReport>(&reply.body).ok();
                    Ok(Answer::Pending {
                        retry_after: reply.retry_after,
                        message: report.as_ref().and_then(|r| r.message.clone()),
                        percent: report.as_ref().and_then(|r| r.percent),
                        instance: report.and_then(|r| r.instance),
                    })
                }
                _ => Err(reply.failure()),
            }
        })
    }

    fn poll<'a>(&'a self, operation_id: &'a str) -> DriverFuture<'a> {
        Box::pin(async move {
            let url = format!(
                "{}/operations/{}",
                self.base,
                crate::domain::percent_encode(operation_id)
            );
            let reply = self.send(self.signed(self.client.get(url), b"")).await?;
            match reply.status {
                StatusCode::OK => Ok(Answer::from_report(reply.report()?, reply.retry_after)),
                StatusCode::NOT_FOUND => Ok(Answer::Unknown),
                _ => Err(reply.failure()),
            }
        })
    }

    fn instances<'a>(&'a self, cursor: Option<&'a str>) -> ListFuture<'a> {
        Box::pin(async move {
            let mut url = format!("{}/instances", self.base);
            if let Some(c) = cursor {
                url += &format!("?cursor={}", crate::domain::percent_encode(c));
            }
            let reply = self.send(self.signed(self.client.get(url), b"")).await?;
            if reply.status != StatusCode::OK {
                return Err(reply.failure());
            }
            serde_json::from_slice(&reply.body).map_err(|e| {
                tracing::warn!(error = %e, "control plane instance list unreadable");
                DriverError::transient(
                    "the provider's control plane sent a list Portico cannot read",
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        assert!(check_base_url("https://cp.example.com/portico/v1").is_ok());
        assert!(check_base_url("http://127.0.0.1:9000").is_ok());
        assert!(check_base_url("http://localhost:9000/").is_ok());
        assert!(check_base_url("http://[::1]:9000").is_ok());
        let plain = check_base_url("http://cp.example.com").unwrap_err();
        assert!(plain.contains("https"), "{plain}");
        assert!(check_base_url("ftp://127.0.0.1").is_err());
        assert!(check_base_url("https://cp.example.com/?x=1").is_err());
        assert!(check_base_url("not a url").is_err());
    }

    #[test]
    fn retry_after_reads_seconds_and_is_capped() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, "999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: None,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn answers_map_to_transient_or_permanent_failures() {
        let refusal = reply(422, r#"{"message": "Quota\nexceeded for region eu-west"}"#);
        assert_eq!(
            refusal.failure(),
            DriverError::Permanent("Quota exceeded for region eu-west".into())
        );
        assert_eq!(
            reply(409, "not json").failure(),
            DriverError::Permanent("the provider refused this operation (HTTP 409)".into())
        );
        assert!(matches!(
            reply(503, "").failure(),
            DriverError::Transient { .. }
        ));
        assert!(matches!(
            reply(429, "").failure(),
            DriverError::Transient { .. }
        ));
        assert!(matches!(
            reply(302, "").failure(),
            DriverError::Permanent(_)
        ));
    }
}
