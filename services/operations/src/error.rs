//! The service's error type and its mapping to gRPC status codes.
//!
//! The gateway turns codes into HTTP statuses, so each variant maps to
//! exactly one code with a fixed meaning: NOT_FOUND (404), ALREADY_EXISTS
//! (409, idempotency key reused with another body), FAILED_PRECONDITION
//! (409, cancel of a terminal operation, or result pages of an operation
//! without a paged result), INVALID_ARGUMENT (400),
//! UNAVAILABLE (503, retry later: nothing was stored), DEADLINE_EXCEEDED
//! (503, an accept whose outcome is not known yet; the operation id is in
//! the `dossier-operation-id` metadata). Two answers also carry a reason
//! (`google.rpc.ErrorInfo`, `dossier_contracts::reasons`): NOT_FOUND with
//! `OPERATION_EXPIRED` (410) and RESOURCE_EXHAUSTED with `STORAGE_FULL`
//! (503, storage full). Internal causes are logged here and never sent to
//! the caller.

use dossier_contracts::Status as OpStatus;
use dossier_contracts::reasons;
use dossier_contracts::v1::OPERATION_ID_METADATA;
use tonic_types::{ErrorDetails, StatusExt as _};

/// Why a request or a projection step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    InvalidArgument(String),
    /// No such operation for this tenant (missing and foreign look the same).
    #[error("operation not found")]
    NotFound,
    /// The operation expired: its record is past `expires_at`, or this
    /// tenant has no operation with the id and the id is older than the
    /// retention (see `retention.rs`).
    #[error("the operation has expired")]
    Gone,
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was used with a different request")]
    IdempotencyConflict,
    /// The operation is terminal, so it cannot be cancelled.
    #[error("the operation is already {0}")]
    Terminal(OpStatus),
    /// The operation has no result to page through (yet, or any more, or
    /// its result has no item list); the message says which.
    #[error("{0}")]
    NoResultItems(&'static str),
    /// The broker is not connected, or did not answer in time.
    #[error("{what}: {source}")]
    Broker {
        /// What was being done.
        what: &'static str,
        /// The broker's error.
        #[source]
        source: async_nats::Error,
    },
    /// A store of the broker is full and refused the write (JetStream
    /// `discard: new`).
    #[error("{what}: the broker's storage is full: {source}")]
    StorageFull {
        /// What was being done.
        what: &'static str,
        /// The broker's error.
        #[source]
        source: async_nats::Error,
    },
    /// The broker is not connected right now.
    #[error("the broker is not connected")]
    Disconnected,
    /// An accept failed after its job may have been stored: the operation
    /// may exist. The service keeps settling it in the background (see
    /// `accept.rs`), so polling the id tells the truth shortly.
    #[error("the outcome of accepting operation {operation_id} is not known yet: {source}")]
    OutcomeUnknown {
        /// The operation the accept was for.
        operation_id: String,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
    /// The service is starting and cannot answer this yet.
    #[error("{0}")]
    NotReady(&'static str),
    /// A compare-and-set kept losing against concurrent writers.
    #[error("too many concurrent updates of operation {0}")]
    Contention(String),
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
    /// Wraps a broker error with what was being done: a store refusing
    /// the write because it is full is [`Error::StorageFull`].
    pub(crate) fn broker(what: &'static str) -> impl FnOnce(async_nats::Error) -> Error {
        move |source| {
            if dossier_broker::is_storage_full(source.as_ref()) {
                Error::StorageFull { what, source }
            } else {
                Error::Broker { what, source }
            }
        }
    }

    /// Whether retrying the same step later may succeed (nak rather than term).
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Broker { .. }
                | Error::StorageFull { .. }
                | Error::Disconnected
                | Error::Contention(_)
                | Error::NotReady(_)
        )
    }
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(message) => tonic::Status::invalid_argument(message),
            Error::NotFound => tonic::Status::not_found("operation not found"),
            Error::Gone => with_reason(
                tonic::Code::NotFound,
                "the operation has expired and was deleted",
                reasons::OPERATION_EXPIRED,
            ),
            Error::StorageFull { .. } => {
                tracing::warn!(message = "A store of the broker is full.", error = %error_chain(&error));
                with_reason(
                    tonic::Code::ResourceExhausted,
                    "the broker's storage is full; retry later",
                    reasons::STORAGE_FULL,
                )
            }
            Error::IdempotencyConflict => tonic::Status::already_exists(
                "the idempotency key was already used with a different request body",
            ),
            Error::Terminal(status) => tonic::Status::failed_precondition(format!(
                "the operation is already {status} and cannot be cancelled"
            )),
            Error::NoResultItems(why) => tonic::Status::failed_precondition(why),
            Error::OutcomeUnknown {
                ref operation_id, ..
            } => {
                tracing::warn!(message = "Accept outcome not known yet.", error = %error_chain(&error));
                // DEADLINE_EXCEEDED: "may have completed" (gRPC's meaning);
                // the id lets the caller look.
                let mut status = tonic::Status::deadline_exceeded(
                    "the operation may have been accepted; poll its id",
                );
                if let Ok(value) = operation_id.parse() {
                    status.metadata_mut().insert(OPERATION_ID_METADATA, value);
                }
                status
            }
            Error::Disconnected | Error::Broker { .. } | Error::Contention(_) => {
                tracing::warn!(message = "Request failed on the broker.", error = %error_chain(&error));
                tonic::Status::unavailable("the broker is unavailable; retry in a few seconds")
            }
            Error::NotReady(what) => {
                tonic::Status::unavailable(format!("{what}; retry in a few seconds"))
            }
            Error::Corrupt { .. } => {
                tracing::error!(message = "Stored data cannot be decoded.", error = %error_chain(&error));
                tonic::Status::internal("internal error")
            }
        }
    }
}

/// A status whose `google.rpc.ErrorInfo` names `reason` (domain
/// `reasons::DOMAIN`), for the gateway to tell it from others of its code.
fn with_reason(code: tonic::Code, message: &str, reason: &str) -> tonic::Status {
    let details =
        ErrorDetails::with_error_info(reason, reasons::DOMAIN, std::collections::HashMap::new());
    tonic::Status::with_error_details(code, message, details)
}

pub(crate) use dossier_service::error_chain;
