//! The service's error type and its mapping to gRPC status codes: each
//! variant maps to one code the gateway turns into one HTTP answer —
//! INVALID_ARGUMENT with a `google.rpc.BadRequest` naming the fields (400),
//! NOT_FOUND (404), FAILED_PRECONDITION with reason `WEBHOOK_LIMIT_REACHED`
//! (409), RESOURCE_EXHAUSTED with reason `STORAGE_FULL` and UNAVAILABLE
//! (503). Internal causes are logged here and never sent to the caller.

use dossier_contracts::api::FieldErrors;
use dossier_contracts::reasons;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt as _};

/// Why a request or a delivery step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Fields of the request are invalid: `(field path, why)` each, the
    /// path as protobuf names it (`url`, `event_types[1]`).
    #[error("invalid request: {0:?}")]
    Invalid(Vec<(String, String)>),
    /// No such endpoint for this tenant (missing and foreign look the same).
    #[error("webhook endpoint not found")]
    NotFound,
    /// The tenant has its most endpoints.
    #[error("the tenant has its limit of {0} webhook endpoints")]
    LimitReached(usize),
    /// The broker did not answer, or refused.
    #[error("{what}: {source}")]
    Broker {
        /// What was being done.
        what: &'static str,
        /// The broker's error.
        #[source]
        source: async_nats::Error,
    },
    /// A store of the broker is full.
    #[error("{what}: the broker's storage is full: {source}")]
    StorageFull {
        /// What was being done.
        what: &'static str,
        /// The broker's error.
        #[source]
        source: async_nats::Error,
    },
    /// A compare-and-set kept losing against concurrent writers.
    #[error("too many concurrent updates of {0}")]
    Contention(String),
    /// The service has not bound its part of the topology yet.
    #[error("not ready: the JetStream topology is not bound yet")]
    NotReady,
    /// A stored value cannot be decoded.
    #[error("stored {what} `{key}` cannot be decoded: {reason}")]
    Corrupt {
        /// What kind of value.
        what: &'static str,
        /// Its key.
        key: String,
        /// The decoder's complaint.
        reason: String,
    },
}

impl Error {
    /// Wraps a broker error with what was being done: a store refusing the
    /// write because it is full is [`Error::StorageFull`].
    pub(crate) fn broker<E: Into<async_nats::Error>>(
        what: &'static str,
    ) -> impl FnOnce(E) -> Error {
        move |source| {
            let source = source.into();
            if dossier_broker::is_storage_full(source.as_ref()) {
                Error::StorageFull { what, source }
            } else {
                Error::Broker { what, source }
            }
        }
    }

    /// The [`Error::Invalid`] of body field errors (JSON pointers of the
    /// public API's camelCase body) as protobuf field paths.
    pub(crate) fn from_fields(errors: FieldErrors) -> Error {
        Error::Invalid(
            errors
                .into_iter()
                .map(|e| (field_path(&e.pointer), e.detail))
                .collect(),
        )
    }

    /// One invalid field.
    pub(crate) fn field(path: &str, detail: impl Into<String>) -> Error {
        Error::Invalid(vec![(path.to_owned(), detail.into())])
    }
}

/// `/eventTypes/1` → `event_types[1]`, `/url` → `url`.
fn field_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').filter(|s| !s.is_empty()) {
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
            continue;
        }
        if !path.is_empty() {
            path.push('.');
        }
        for c in segment.chars() {
            if c.is_ascii_uppercase() {
                path.push('_');
                path.push(c.to_ascii_lowercase());
            } else {
                path.push(c);
            }
        }
    }
    path
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(fields) => {
                let violations: Vec<FieldViolation> = fields
                    .into_iter()
                    .map(|(field, why)| FieldViolation::new(field, why))
                    .collect();
                tonic::Status::with_error_details(
                    tonic::Code::InvalidArgument,
                    "invalid request",
                    ErrorDetails::with_bad_request(violations),
                )
            }
            Error::NotFound => tonic::Status::not_found("webhook endpoint not found"),
            Error::LimitReached(limit) => with_reason(
                tonic::Code::FailedPrecondition,
                &format!("the tenant has its limit of {limit} webhook endpoints"),
                reasons::WEBHOOK_LIMIT_REACHED,
            ),
            Error::StorageFull { .. } => {
                tracing::warn!(message = "A store of the broker is full.", error = %error_chain(&error));
                with_reason(
                    tonic::Code::ResourceExhausted,
                    "the broker's storage is full; retry later",
                    reasons::STORAGE_FULL,
                )
            }
            Error::Broker { .. } | Error::Contention(_) | Error::NotReady => {
                tracing::warn!(message = "Request failed on the broker.", error = %error_chain(&error));
                tonic::Status::unavailable("the broker is unavailable; retry in a few seconds")
            }
            Error::Corrupt { .. } => {
                tracing::error!(message = "Stored data cannot be decoded.", error = %error_chain(&error));
                tonic::Status::internal("internal error")
            }
        }
    }
}

/// A status whose `google.rpc.ErrorInfo` names `reason`.
fn with_reason(code: tonic::Code, message: &str, reason: &str) -> tonic::Status {
    let details =
        ErrorDetails::with_error_info(reason, reasons::DOMAIN, std::collections::HashMap::new());
    tonic::Status::with_error_details(code, message, details)
}

pub(crate) use dossier_service::error_chain;

#[cfg(test)]
mod tests {
    #[test]
    fn pointers_become_protobuf_field_paths() {
        assert_eq!(super::field_path("/url"), "url");
        assert_eq!(super::field_path("/eventTypes/1"), "event_types[1]");
        assert_eq!(super::field_path("/description"), "description");
    }
}
