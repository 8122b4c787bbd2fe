//! The one HTTP error type, [`ApiError`], and its RFC 9457 problem-details
//! rendering.
//!
//! Every error response of the gateway is `application/problem+json`:
//!
//! ```json
//! { "type": "https://dossier.dev/problems/validation", "title": "Invalid request",
//!   "status": 400, "detail": "…",
//!   "errors": [ { "pointer": "/records/3/email", "detail": "not an email address" },
//!               { "parameter": "limit", "detail": "must be an integer from 1 to 100" },
//!               { "header": "Idempotency-Key", "detail": "must be 1 to 255 characters" } ],
//!   "errorCount": 3, "meta": { "requestId": "…" } }
//! ```
//!
//! Each entry of `errors` names exactly one location: `pointer` (an RFC 6901
//! JSON pointer into the body), `parameter` (a query parameter) or `header`
//! (a request header). `type` is stable per problem; its last path segment is
//! a snake_case code clients may switch on.
//!
//! An answer stays small whatever the request: at most
//! [`MAX_LISTED_ERRORS`] entries are listed and `errorCount` says how many
//! there were in all; names and values echoed from the request are cut
//! short; and the whole document is kept under [`MAX_PROBLEM_BYTES`].

use std::fmt;

use axum::response::{IntoResponse, Response};
use dossier_contracts::api::{
    FieldError, FieldErrors, MAX_DETAIL_CHARS, MAX_LISTED_ERRORS, MAX_LOCATION_CHARS, clip,
};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use uuid::Uuid;

use crate::context;

/// Prefix of every problem `type`.
pub const PROBLEM_TYPE_BASE: &str = "https://dossier.dev/problems/";
/// The media type of error bodies.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
/// Largest problem document, in bytes: errors past it are counted, not listed.
pub const MAX_PROBLEM_BYTES: usize = 64 * 1024;
/// Most characters of a problem's `detail`, which may quote a dependency.
const MAX_PROBLEM_DETAIL_CHARS: usize = 1024;

/// Where in the request a problem is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Location {
    /// An RFC 6901 JSON pointer into the body (`""` is the whole body).
    Pointer(String),
    /// A query parameter, by name.
    Parameter(String),
    /// A request header, by name.
    Header(String),
}

/// One bad field, parameter or header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// Where.
    #[serde(flatten)]
    pub location: Location,
    /// What is wrong, for a person.
    pub detail: String,
}

impl Issue {
    /// A problem with a body field.
    pub fn pointer(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Location::Pointer, pointer, detail)
    }

    /// A problem with a query parameter.
    pub fn parameter(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Location::Parameter, name, detail)
    }

    /// A problem with a request header.
    pub fn header(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(Location::Header, name, detail)
    }

    /// Names and details come from the client (a parameter's name, a
    /// value quoted in a decoding message): cut short, whatever was sent.
    fn new(
        location: fn(String) -> Location,
        name: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            location: location(clip(name, MAX_LOCATION_CHARS)),
            detail: clip(detail, MAX_DETAIL_CHARS),
        }
    }
}

impl From<FieldError> for Issue {
    fn from(e: FieldError) -> Self {
        Issue::pointer(e.pointer, e.detail)
    }
}

/// Everything a request can fail with. Rendered as a problem response; 5xx
/// causes are logged with their whole chain and never shown to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// Fields, parameters or headers are invalid.
    #[error("invalid request: {detail}")]
    Validation {
        /// Summary.
        detail: String,
        /// One entry per bad field, parameter or header: the first
        /// [`MAX_LISTED_ERRORS`].
        errors: Vec<Issue>,
        /// How many there were in all (`errorCount`), listed or not.
        total: usize,
    },
    /// No API key, or one that is not configured.
    #[error("missing or unknown API key")]
    Unauthorized,
    /// No such operation for this tenant.
    #[error("operation not found")]
    OperationNotFound,
    /// The operation expired and was deleted (or, for an id this tenant
    /// does not have, the id is older than the retention).
    #[error("operation expired")]
    OperationExpired,
    /// No such webhook endpoint for this tenant.
    #[error("webhook endpoint not found")]
    WebhookNotFound,
    /// The tenant has its most webhook endpoints.
    #[error("webhook endpoint limit reached")]
    WebhookLimitReached(String),
    /// No route for the path.
    #[error("no route for the path")]
    RouteNotFound,
    /// The route exists, not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The operation's state does not allow the request (e.g. cancelling a
    /// finished operation).
    #[error("operation state conflict: {0}")]
    OperationConflict(String),
    /// The idempotency key was used before with a different body.
    #[error("idempotency key reused with a different request")]
    IdempotencyConflict,
    /// The body is larger than the configured limit.
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes (0 when unknown).
        limit: usize,
    },
    /// The body is not declared as JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The tenant is over its request rate.
    #[error("rate limited")]
    RateLimited {
        /// Seconds until a request will be accepted.
        retry_after_secs: u64,
        /// The tenant's quota (its burst), when the gateway's own limiter
        /// refused: sent as `RateLimit-Limit`.
        limit: Option<u32>,
    },
    /// The gateway has its limit of requests in flight (admission control);
    /// nothing was done.
    #[error("overloaded: {limit} requests in flight")]
    Overloaded {
        /// The in-flight limit.
        limit: usize,
    },
    /// The gateway has its limit of open event streams and waiting
    /// requests; nothing was done.
    #[error("too many streams: {limit} open")]
    TooManyStreams {
        /// The limit of streams.
        limit: usize,
    },
    /// A dependency (operations service, broker) is unavailable or too slow;
    /// nothing was accepted.
    #[error("service unavailable: {detail}")]
    Unavailable {
        /// Shown to the client.
        detail: String,
        /// The cause, logged.
        #[source]
        source: Option<anyhow::Error>,
    },
    /// An accept whose outcome is not known yet: the operation may have
    /// been stored (the operations service keeps settling it).
    #[error("the outcome of an accept is not known yet")]
    AcceptOutcomeUnknown {
        /// The operation, when the operations service named it.
        operation_id: Option<uuid::Uuid>,
        /// The cause, logged.
        #[source]
        source: anyhow::Error,
    },
    /// Synchronous enrichment could not answer: no enrichment worker, no
    /// reply in time, or the record's providers failed. Nothing changed.
    #[error("synchronous enrichment is unavailable: {detail}")]
    EnrichmentUnavailable {
        /// Shown to the client.
        detail: String,
        /// The cause, logged.
        #[source]
        source: Option<anyhow::Error>,
    },
    /// A store of the broker is full, so nothing new can be stored until
    /// operations expire or queued work drains.
    #[error("storage full")]
    StorageFull {
        /// The cause, logged.
        #[source]
        source: anyhow::Error,
    },
    /// The gateway is shutting down or the operations service is not serving.
    #[error("not ready: {0}")]
    NotReady(String),
    /// Anything else: a bug or an unexpected answer. Logged, never shown.
    #[error(transparent)]
    Internal(anyhow::Error),
}

/// `RateLimit-Limit`: the tenant's request quota (its burst).
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left in the quota (0 on a 429).
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the quota has room again.
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// `Retry-After` for 503s caused by a dependency, in seconds.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;
/// `Retry-After` for a full store, in seconds: room comes back as queued
/// jobs run and operations expire, not within a second.
const STORAGE_FULL_RETRY_AFTER_SECS: u64 = 30;

impl ApiError {
    /// A validation problem from body field errors.
    pub fn invalid_body(errors: FieldErrors) -> Self {
        let total = errors.total();
        let errors: Vec<Issue> = errors.into_iter().map(Issue::from).collect();
        ApiError::Validation {
            detail: listed_detail("The request body", "fields", &errors, total),
            errors,
            total,
        }
    }

    /// A validation problem with query parameters.
    pub fn invalid_parameters(mut errors: Vec<Issue>) -> Self {
        let total = errors.len();
        errors.truncate(MAX_LISTED_ERRORS);
        ApiError::Validation {
            detail: listed_detail("The query", "parameters", &errors, total),
            errors,
            total,
        }
    }

    /// A validation problem with body fields and query parameters another
    /// service named.
    pub fn invalid_fields(mut errors: Vec<Issue>) -> Self {
        let total = errors.len();
        errors.truncate(MAX_LISTED_ERRORS);
        ApiError::Validation {
            detail: listed_detail("The request", "fields", &errors, total),
            errors,
            total,
        }
    }

    /// A validation problem with one header.
    pub fn invalid_header(name: &str, detail: impl Into<String>) -> Self {
        ApiError::Validation {
            detail: format!("The {name} header is invalid."),
            errors: vec![Issue::header(name, detail)],
            total: 1,
        }
    }

    /// A validation problem that names no field, parameter or header.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        ApiError::Validation {
            detail: detail.into(),
            errors: Vec::new(),
            total: 0,
        }
    }

    /// A 503 of synchronous enrichment.
    pub fn enrichment_unavailable(
        detail: impl Into<String>,
        source: Option<anyhow::Error>,
    ) -> Self {
        ApiError::EnrichmentUnavailable {
            detail: detail.into(),
            source,
        }
    }

    /// A 503 caused by `source`.
    pub fn unavailable(detail: impl Into<String>, source: impl Into<anyhow::Error>) -> Self {
        ApiError::Unavailable {
            detail: detail.into(),
            source: Some(source.into()),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) | ApiError::Validation { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::OperationNotFound | ApiError::WebhookNotFound | ApiError::RouteNotFound => {
                StatusCode::NOT_FOUND
            }
            ApiError::OperationExpired => StatusCode::GONE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::OperationConflict(_)
            | ApiError::IdempotencyConflict
            | ApiError::WebhookLimitReached(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded { .. }
            | ApiError::TooManyStreams { .. }
            | ApiError::Unavailable { .. }
            | ApiError::AcceptOutcomeUnknown { .. }
            | ApiError::EnrichmentUnavailable { .. }
            | ApiError::StorageFull { .. }
            | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable snake_case code, the last segment of the problem `type`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::Validation { .. } => "validation",
            ApiError::Unauthorized => "unauthorized",
            ApiError::OperationNotFound => "operation_not_found",
            ApiError::WebhookNotFound => "webhook_not_found",
            ApiError::WebhookLimitReached(_) => "webhook_limit_reached",
            ApiError::OperationExpired => "operation_expired",
            ApiError::RouteNotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::OperationConflict(_) => "operation_conflict",
            ApiError::IdempotencyConflict => "idempotency_key_reused",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Overloaded { .. } => "overloaded",
            ApiError::TooManyStreams { .. } => "too_many_streams",
            ApiError::Unavailable { .. } => "service_unavailable",
            ApiError::AcceptOutcomeUnknown { .. } => "accept_outcome_unknown",
            ApiError::EnrichmentUnavailable { .. } => "enrichment_unavailable",
            ApiError::StorageFull { .. } => "storage_full",
            ApiError::NotReady(_) => "not_ready",
            ApiError::Internal(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "Malformed JSON",
            ApiError::Validation { .. } => "Invalid request",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::OperationNotFound => "Operation not found",
            ApiError::WebhookNotFound => "Webhook not found",
            ApiError::WebhookLimitReached(_) => "Webhook limit reached",
            ApiError::OperationExpired => "Operation expired",
            ApiError::RouteNotFound => "Not found",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::OperationConflict(_) => "Operation state conflict",
            ApiError::IdempotencyConflict => "Idempotency key reused",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::UnsupportedMediaType => "Unsupported media type",
            ApiError::RateLimited { .. } => "Too many requests",
            ApiError::Overloaded { .. } => "Overloaded",
            ApiError::TooManyStreams { .. } => "Too many streams",
            ApiError::Unavailable { .. } => "Service unavailable",
            ApiError::AcceptOutcomeUnknown { .. } => "Accept outcome unknown",
            ApiError::EnrichmentUnavailable { .. } => "Enrichment unavailable",
            ApiError::StorageFull { .. } => "Storage full",
            ApiError::NotReady(_) => "Not ready",
            ApiError::Internal(_) => "Internal error",
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::MalformedJson(e) => format!("The request body is not valid JSON: {e}."),
            ApiError::Validation { detail, .. } => detail.clone(),
            ApiError::Unauthorized => "Send a valid API key as `Authorization: Bearer <key>` \
                                       or `X-API-Key: <key>`."
                .to_owned(),
            ApiError::OperationNotFound => "No operation with this id exists.".to_owned(),
            ApiError::WebhookNotFound => "No webhook endpoint with this id exists.".to_owned(),
            ApiError::WebhookLimitReached(detail) => {
                format!("{detail}; delete an endpoint before registering another.")
            }
            ApiError::OperationExpired => "This operation has expired: operations and their \
                                           results are deleted at their expiresAt."
                .to_owned(),
            ApiError::RouteNotFound => "No resource exists at this path.".to_owned(),
            ApiError::MethodNotAllowed => {
                "The resource does not support this method; see the Allow header.".to_owned()
            }
            ApiError::OperationConflict(detail) => detail.clone(),
            ApiError::IdempotencyConflict => "This Idempotency-Key was already used with a \
                                              different request body; use a new key."
                .to_owned(),
            ApiError::PayloadTooLarge { limit: 0 } => "The request body is too large.".to_owned(),
            ApiError::PayloadTooLarge { limit } => {
                format!("The request body is larger than the limit of {limit} bytes.")
            }
            ApiError::UnsupportedMediaType => {
                "Send the request body as JSON with `Content-Type: application/json`.".to_owned()
            }
            ApiError::RateLimited { .. } => {
                "Too many requests for this tenant; retry after the Retry-After delay.".to_owned()
            }
            ApiError::Overloaded { limit } => format!(
                "The gateway is at its limit of {limit} requests in flight and did nothing with \
                 this one; retry after the Retry-After delay."
            ),
            ApiError::TooManyStreams { limit } => format!(
                "The gateway has its limit of {limit} open event streams and waiting requests; \
                 retry after the Retry-After delay, or poll GET /api/operations/{{id}}."
            ),
            ApiError::Unavailable { detail, .. } => detail.clone(),
            ApiError::AcceptOutcomeUnknown {
                operation_id: Some(id),
                ..
            } => format!(
                "The service was interrupted: the request may have been accepted as \
                 operation {id}. GET /api/operations/{id} tells (404: it was not); a retry \
                 with the same Idempotency-Key returns that operation without running it \
                 twice."
            ),
            ApiError::AcceptOutcomeUnknown { .. } => "The service was interrupted: the request \
                 may have been accepted. A retry with the same Idempotency-Key returns the \
                 operation if it was, without running it twice; without a key, list your \
                 operations before retrying."
                .to_owned(),
            ApiError::EnrichmentUnavailable { detail, .. } => detail.clone(),
            ApiError::StorageFull { .. } => "The service's storage is full, so it cannot take \
                                             new work now; retry after the Retry-After delay."
                .to_owned(),
            ApiError::NotReady(detail) => detail.clone(),
            ApiError::Internal(_) => {
                "An unexpected error occurred; quote the request id to support.".to_owned()
            }
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited {
                retry_after_secs, ..
            } => Some((*retry_after_secs).max(1)),
            ApiError::Overloaded { .. }
            | ApiError::TooManyStreams { .. }
            | ApiError::Unavailable { .. }
            | ApiError::AcceptOutcomeUnknown { .. }
            | ApiError::EnrichmentUnavailable { .. }
            | ApiError::NotReady(_) => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            ApiError::StorageFull { .. } => Some(STORAGE_FULL_RETRY_AFTER_SECS),
            _ => None,
        }
    }

    fn log(&self) {
        match self {
            ApiError::Internal(error) => {
                tracing::error!(message = "Request failed.", error = %ErrorChain(error.as_ref()));
            }
            ApiError::Unavailable {
                detail,
                source: Some(error),
            } => {
                tracing::warn!(message = "Dependency unavailable.", %detail, error = %ErrorChain(error.as_ref()));
            }
            ApiError::Unavailable { detail, .. } => {
                tracing::warn!(message = "Service unavailable.", %detail);
            }
            ApiError::AcceptOutcomeUnknown {
                operation_id,
                source,
            } => {
                tracing::warn!(message = "Accept outcome not known.", operation_id = ?operation_id, error = %ErrorChain(source.as_ref()));
            }
            ApiError::EnrichmentUnavailable {
                detail,
                source: Some(error),
            } => {
                tracing::warn!(message = "Synchronous enrichment unavailable.", %detail, error = %ErrorChain(error.as_ref()));
            }
            ApiError::EnrichmentUnavailable { detail, .. } => {
                tracing::warn!(message = "Synchronous enrichment unavailable.", %detail);
            }
            ApiError::StorageFull { source } => {
                tracing::warn!(message = "Storage full.", error = %ErrorChain(source.as_ref()));
            }
            // Probes ask every few seconds; the operations service logs its
            // own readiness changes.
            ApiError::NotReady(detail) => {
                tracing::debug!(message = "Not ready.", %detail);
            }
            _ => {}
        }
    }

    /// Builds the problem response for the request `request_id`.
    pub fn to_response(&self, request_id: Uuid) -> Response {
        self.log();
        let status = self.status();
        let (errors, error_count) = match self {
            ApiError::Validation { errors, total, .. } => {
                (errors.clone(), Some(*total).filter(|n| *n > 0))
            }
            _ => (Vec::new(), None),
        };
        let body = Problem {
            r#type: format!("{PROBLEM_TYPE_BASE}{}", self.code()),
            title: self.title(),
            status: status.as_u16(),
            detail: clip(self.detail(), MAX_PROBLEM_DETAIL_CHARS),
            errors,
            error_count,
            operation_id: match self {
                ApiError::AcceptOutcomeUnknown { operation_id, .. } => *operation_id,
                _ => None,
            },
            meta: Meta { request_id },
        };
        let mut response = (status, body.into_bytes()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ApiError::RateLimited {
            retry_after_secs,
            limit: Some(limit),
        } = self
        {
            // The quota, none of it left, and when a request fits again.
            headers.insert(RATELIMIT_LIMIT, HeaderValue::from(*limit));
            headers.insert(RATELIMIT_REMAINING, HeaderValue::from(0));
            headers.insert(
                RATELIMIT_RESET,
                HeaderValue::from((*retry_after_secs).max(1)),
            );
        }
        response
    }

    /// The generic problem for a bare error status produced outside the
    /// handlers (by the router, a tower-http layer or the panic catcher), so
    /// that every error response is a problem document.
    pub(crate) fn for_bare_status(status: StatusCode, headers: &HeaderMap) -> ApiError {
        match status {
            StatusCode::NOT_FOUND => ApiError::RouteNotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: 0 },
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited {
                retry_after_secs: headers
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(1),
                limit: None,
            },
            StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
                ApiError::Unavailable {
                    detail: "The request took too long; retry shortly.".to_owned(),
                    source: None,
                }
            }
            s if s.is_client_error() => ApiError::invalid_request("The request is invalid."),
            s => ApiError::Internal(anyhow::anyhow!("bare {s} response")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.to_response(context::request_id())
    }
}

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge { limit: 0 }
        } else {
            ApiError::invalid_request(format!(
                "Cannot read the request body: {}.",
                rejection.body_text()
            ))
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Problem {
    r#type: String,
    title: &'static str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<Issue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_count: Option<usize>,
    /// The operation an accept of unknown outcome was for.
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_id: Option<Uuid>,
    meta: Meta,
}

impl Problem {
    /// The JSON document, under [`MAX_PROBLEM_BYTES`]: when the listed
    /// errors (each already cut short, but quoting the client can still
    /// take six bytes a character once escaped) do not fit, fewer are
    /// listed; `errorCount` still counts them all.
    fn into_bytes(mut self) -> Vec<u8> {
        loop {
            // Strings and integers always serialize.
            let bytes = serde_json::to_vec(&self).unwrap_or_default();
            if bytes.len() <= MAX_PROBLEM_BYTES || self.errors.is_empty() {
                return bytes;
            }
            // Keep the share that fits, at least one fewer each round.
            let fits = self.errors.len() * MAX_PROBLEM_BYTES / bytes.len();
            self.errors.truncate(fits.min(self.errors.len() - 1));
            if let Some(total) = self.error_count {
                self.detail = format!(
                    "The request has {total} errors; the first {} are listed.",
                    self.errors.len()
                );
            }
        }
    }
}

/// The detail of a validation problem about `what` (`fields`) of `whole`
/// (`The request body`), saying so when only the first of `total` errors
/// are `listed`.
fn listed_detail(whole: &str, what: &str, listed: &[Issue], total: usize) -> String {
    if listed.len() < total {
        format!(
            "{whole} has {total} invalid {what}; the first {} are listed.",
            listed.len()
        )
    } else {
        format!("{whole} has invalid {what}.")
    }
}

/// `meta` of every JSON body.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// The request id, as in `X-Request-Id`.
    pub request_id: Uuid,
}

impl Meta {
    /// The current request's meta.
    pub fn current() -> Self {
        Meta {
            request_id: context::request_id(),
        }
    }
}

/// Formats an error and its sources as `outer: inner: root`.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_name_exactly_one_location() {
        let json = serde_json::to_value([
            Issue::pointer("/a", "x"),
            Issue::parameter("limit", "y"),
            Issue::header("Idempotency-Key", "z"),
        ])
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"pointer": "/a", "detail": "x"},
                {"parameter": "limit", "detail": "y"},
                {"header": "Idempotency-Key", "detail": "z"},
            ])
        );
    }

    #[test]
    fn error_chain_lists_every_cause() {
        let error = anyhow::anyhow!("root").context("middle").context("outer");
        assert_eq!(
            ErrorChain(error.as_ref()).to_string(),
            "outer: middle: root"
        );
    }
}
