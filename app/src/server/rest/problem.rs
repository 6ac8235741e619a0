//! Errors as the REST APIs send them: `application/problem+json` (RFC 9457), one stable `type`
//! per kind of error, the field a validation error concerns, and the request id. Never SQL,
//! never a cause chain: an internal error is logged with its cause and answered with the id.

use crate::server::service::ServiceError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const CONTENT_TYPE_PROBLEM: &str = "application/problem+json";

/// The stable kinds of error, each with its `type` URI (`urn:portico:problem:<slug>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Unauthenticated,
    Forbidden,
    NotFound,
    Invalid,
    MalformedRequest,
    BadCursor,
    KeyReused,
    RateLimited,
    Busy,
    Internal,
}

impl Kind {
    pub fn slug(self) -> &'static str {
        match self {
            Kind::Unauthenticated => "unauthenticated",
            Kind::Forbidden => "forbidden",
            Kind::NotFound => "not-found",
            Kind::Invalid => "invalid",
            Kind::MalformedRequest => "malformed-request",
            Kind::BadCursor => "bad-cursor",
            Kind::KeyReused => "idempotency-key-reused",
            Kind::RateLimited => "rate-limited",
            Kind::Busy => "busy",
            Kind::Internal => "internal",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Kind::Unauthenticated => "Authentication required",
            Kind::Forbidden => "Not allowed",
            Kind::NotFound => "Not found",
            Kind::Invalid => "Invalid value",
            Kind::MalformedRequest => "Malformed request",
            Kind::BadCursor => "Malformed page cursor",
            Kind::KeyReused => "Idempotency key reused",
            Kind::RateLimited => "Too many requests",
            Kind::Busy => "Busy",
            Kind::Internal => "Internal error",
        }
    }
}

/// A problem detail (RFC 9457) with Portico's extension members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:portico:problem:<kind>`: stable, for programs to branch on.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind, the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for people.
    pub detail: String,
    /// The request field a validation error or refusal concerns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request's id, as the audit log and the server's log quote it.
    pub request_id: String,
    /// With 429: seconds until a request may succeed again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// A problem on its way out, with its status and headers.
#[derive(Debug)]
pub struct ProblemResponse {
    pub status: StatusCode,
    /// Boxed: every handler's `Result` carries one, and most are `Ok`.
    pub problem: Box<Problem>,
}

impl ProblemResponse {
    pub fn new(kind: Kind, status: StatusCode, detail: impl Into<String>) -> Self {
        ProblemResponse {
            status,
            problem: Box::new(Problem {
                kind: format!("urn:portico:problem:{}", kind.slug()),
                title: kind.title().into(),
                status: status.as_u16(),
                detail: detail.into(),
                field: None,
                request_id: String::new(),
                retry_after: None,
            }),
        }
    }

    pub fn field(mut self, field: Option<String>) -> Self {
        self.problem.field = field;
        self
    }

    /// Quotes the request id (filled in by the API's middleware when not set here).
    pub fn request_id(mut self, id: &str) -> Self {
        self.problem.request_id = id.into();
        self
    }

    pub fn unauthenticated(detail: &str) -> Self {
        Self::new(Kind::Unauthenticated, StatusCode::UNAUTHORIZED, detail)
    }

    pub fn rate_limited(wait: Duration) -> Self {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut p = Self::new(
            Kind::RateLimited,
            StatusCode::TOO_MANY_REQUESTS,
            format!("This token has made too many requests; retry in {secs} s."),
        );
        p.problem.retry_after = Some(secs);
        p
    }

    /// The service's answer, mapped as the portal's server functions map it.
    pub fn from_service(e: ServiceError, request_id: &str) -> Self {
        let p = match e {
            ServiceError::BadCredentials => Self::unauthenticated("The credentials are not valid."),
            ServiceError::NoTenant => Self::new(
                Kind::Forbidden,
                StatusCode::FORBIDDEN,
                "The account is not a member of any organisation.",
            ),
            ServiceError::NotFound => {
                Self::new(Kind::NotFound, StatusCode::NOT_FOUND, "Not found.")
            }
            ServiceError::Invalid { field, why } => Self::new(
                Kind::Invalid,
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{field}: {why}"),
            )
            .field(Some(field)),
            ServiceError::BadPageLink => Self::new(
                Kind::BadCursor,
                StatusCode::BAD_REQUEST,
                "The cursor is damaged or was not made by this server; start from the first page.",
            )
            .field(Some("cursor".into())),
            ServiceError::Denied {
                reason,
                field: Some(field),
            } => Self::new(Kind::Invalid, StatusCode::UNPROCESSABLE_ENTITY, reason)
                .field(Some(field)),
            ServiceError::Denied {
                reason,
                field: None,
            } => Self::new(Kind::Forbidden, StatusCode::FORBIDDEN, reason),
            ServiceError::KeyReused => Self::new(
                Kind::KeyReused,
                StatusCode::CONFLICT,
                "This Idempotency-Key was already used for a different request.",
            )
            .field(Some("Idempotency-Key".into())),
            ServiceError::RateLimited(wait) => Self::rate_limited(wait),
            ServiceError::Busy => Self::new(
                Kind::Busy,
                StatusCode::SERVICE_UNAVAILABLE,
                "The portal is busy; retry in a few seconds.",
            ),
            ServiceError::Internal(cause) => {
                tracing::error!(%request_id, %cause, "API request failed");
                Self::internal()
            }
        };
        p.request_id(request_id)
    }

    pub fn internal() -> Self {
        Self::new(
            Kind::Internal,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side; if it persists, quote the request id.",
        )
    }
}

impl IntoResponse for ProblemResponse {
    fn into_response(self) -> Response {
        let retry = self.problem.retry_after;
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut res = (self.status, body).into_response();
        let headers = res.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_PROBLEM));
        if let Some(secs) = retry {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// A JSON body, refused as problem+json when it does not parse (the extractor's own text names
/// Rust types; serde's message names the field and what was expected).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ProblemResponse;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let request_id = crate::server::security::request_id(req.headers()).to_owned();
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(malformed(json_detail(&e)).request_id(&request_id)),
        }
    }
}

fn json_detail(e: &JsonRejection) -> String {
    match e {
        JsonRejection::MissingJsonContentType(_) => {
            "The body must be JSON, sent with Content-Type: application/json.".into()
        }
        JsonRejection::JsonDataError(e) => format!("The JSON does not fit: {}", e.body_text()),
        JsonRejection::JsonSyntaxError(e) => format!("The JSON is malformed: {}", e.body_text()),
        other => format!("The body could not be read: {}", other.body_text()),
    }
}

fn malformed(detail: String) -> ProblemResponse {
    ProblemResponse::new(Kind::MalformedRequest, StatusCode::BAD_REQUEST, detail)
}

/// Query parameters, refused as problem+json when they do not parse.
pub struct QueryArgs<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ProblemResponse;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let request_id = crate::server::security::request_id(&parts.headers).to_owned();
        let detail = match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => return Ok(QueryArgs(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                format!("The query string does not fit: {}", e.body_text())
            }
            Err(e) => e.body_text(),
        };
        Err(malformed(detail).request_id(&request_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_error_becomes_a_problem_without_its_cause() {
        let p = ProblemResponse::from_service(
            ServiceError::Internal("syntax error at or near SELECT".into()),
            "req-1",
        );
        assert_eq!(p.status, StatusCode::INTERNAL_SERVER_ERROR);
        let json = serde_json::to_string(&p.problem).unwrap();
        assert!(!json.contains("SELECT"), "{json}");
        assert!(json.contains("req-1"));
        let p = ProblemResponse::from_service(ServiceError::invalid("limit", "too big"), "r");
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.problem.field.as_deref(), Some("limit"));
        assert_eq!(p.problem.kind, "urn:portico:problem:invalid");
        let p = ProblemResponse::from_service(ServiceError::denied("Viewers may not stop."), "r");
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        assert_eq!(p.problem.detail, "Viewers may not stop.");
    }

    #[test]
    fn a_rate_limited_problem_says_when_to_retry() {
        let res = ProblemResponse::rate_limited(Duration::from_millis(1500)).into_response();
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers()[RETRY_AFTER], "2");
        assert_eq!(res.headers()[CONTENT_TYPE], CONTENT_TYPE_PROBLEM);
    }
}
