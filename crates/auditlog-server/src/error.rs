//! The one HTTP error type: every failure becomes a status and a JSON body here. Client
//! errors explain themselves; server errors say little to the client and everything to the
//! log.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};

use auditlog_service::access::AccessError;
use auditlog_service::IngestError;
use auditlog_store::StoreError;

/// One validation problem in the reference API's shape.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Detail {
    /// Where: `["query", "limit"]`, `["body", 3, "actor_email"]`, `["header", "x-org-name"]`.
    pub loc: Vec<Value>,
    /// What is wrong, for a person.
    pub msg: String,
    /// A stable machine-readable code.
    #[serde(rename = "type")]
    pub kind: String,
}

impl Detail {
    /// A problem at `loc`.
    pub fn new(loc: Vec<Value>, msg: impl Into<String>, kind: &str) -> Detail {
        Detail {
            loc,
            msg: msg.into(),
            kind: kind.to_string(),
        }
    }

    /// A problem with a query parameter.
    pub fn query(name: &str, msg: impl Into<String>, kind: &str) -> Detail {
        Detail::new(vec![json!("query"), json!(name)], msg, kind)
    }
}

/// The `Retry-After` of a 503: long enough for a restarting database or an operator freeing
/// space, short enough that a client's backlog drains soon after.
pub const UNAVAILABLE_RETRY_SECONDS: u64 = 5;

/// Everything a handler can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// 422 with the reference API's `{"detail": [...]}`.
    Validation(Vec<Detail>),
    /// 400.
    BadRequest(String),
    /// 401.
    Unauthorized(String),
    /// 403.
    Forbidden(String),
    /// 404.
    NotFound(String),
    /// 409.
    Conflict(String),
    /// 413.
    TooLarge(String),
    /// 429, with the seconds to wait.
    TooManyRequests(u64),
    /// 503 with `Retry-After`: the store is shutting down, or cannot write for now (a full
    /// disk, a database restarting); the message says which.
    Unavailable(String),
    /// 500; the message is logged, not shown.
    Internal(String),
}

impl ApiError {
    /// A single validation problem.
    pub fn invalid(detail: Detail) -> ApiError {
        ApiError::Validation(vec![detail])
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::Conflict(message) => ApiError::Conflict(message),
            StoreError::UnknownOrg(id) => {
                ApiError::NotFound(format!("organization {id} does not exist"))
            }
            StoreError::Closed => ApiError::Unavailable("the service is shutting down".into()),
            StoreError::Unavailable(message) => ApiError::Unavailable(message),
            // Fail closed: the action was not taken because its audit record could not be.
            e @ StoreError::Unrecorded(_) => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(error: AccessError) -> ApiError {
        match error {
            AccessError::Unauthenticated(message) => ApiError::Unauthorized(message.to_string()),
            AccessError::Forbidden(message) => ApiError::Forbidden(message),
            e @ AccessError::NotEnrolled(_) => ApiError::Forbidden(e.to_string()),
            e @ AccessError::UnknownOrg(_) => ApiError::NotFound(e.to_string()),
            AccessError::Invalid(e) => ApiError::invalid(Detail::new(
                vec![json!("body"), json!(e.field)],
                e.message,
                e.kind.as_str(),
            )),
            AccessError::Store(e) => e.into(),
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> ApiError {
        match error {
            IngestError::Invalid(errors) => ApiError::Validation(
                errors
                    .into_iter()
                    .map(|e| {
                        let mut loc = vec![json!("body"), json!(e.index)];
                        if !e.error.field.is_empty() {
                            loc.push(json!(e.error.field));
                        }
                        Detail::new(loc, e.error.message, e.error.kind.as_str())
                    })
                    .collect(),
            ),
            e @ IngestError::TooLarge(_) => {
                ApiError::invalid(Detail::new(vec![json!("body")], e.to_string(), "too_long"))
            }
            IngestError::Refused(e) => e.into(),
            IngestError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Validation(details) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "detail": details }),
            ),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, json!({ "detail": m })),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, json!({ "detail": m })),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, json!({ "detail": m })),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({ "detail": m })),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({ "detail": m })),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, json!({ "detail": m })),
            ApiError::TooManyRequests(seconds) => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(
                        json!({ "detail": format!("rate limit exceeded; retry in {seconds} s") }),
                    ),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                return response;
            }
            ApiError::Unavailable(message) => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    axum::Json(json!({ "detail": format!("{message}; retry later") })),
                )
                    .into_response();
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_SECONDS),
                );
                return response;
            }
            ApiError::Internal(message) => {
                tracing::error!(error = %message, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "detail": "internal error; the server log has the details" }),
                )
            }
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_whose_record_cannot_be_made_is_a_503_that_says_so() {
        let refused = StoreError::Unrecorded("token_created: actor_name: is too long".into());
        let response = ApiError::from(refused).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key(header::RETRY_AFTER));
    }
}
