//! What a worker service implements: a [`Handler`] for one kind of job, and
//! the outcomes and errors it reports.

use std::future::Future;

use dossier_contracts::Kind;
use dossier_contracts::v1::Job;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::JobContext;

/// Runs the jobs of one kind. The runtime calls [`Handler::handle`] once per
/// delivery of a job, in a task of its own, so a panic is contained (and
/// treated as a retryable failure) and the future can be dropped at any await
/// point: on timeout, on cancellation after the grace, and on shutdown.
/// Handlers must therefore keep their side effects idempotent per operation
/// id — a job can run more than once (see the crate documentation).
pub trait Handler: Send + Sync + 'static {
    /// The kind of job this handler runs; the worker pulls only these.
    fn kind(&self) -> Kind;

    /// Runs one job. `job.payload_json` is the validated request body (see
    /// [`decode_payload`]), also when it travelled in the object store: the
    /// runtime has loaded it by then.
    fn handle(
        &self,
        ctx: JobContext,
        job: Job,
    ) -> impl Future<Output = Result<Outcome, JobError>> + Send;
}

/// How a job ended, when the handler got to decide.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; the value is the kind's result payload.
    Succeeded(Value),
    /// Done, but some sub-tasks failed; `error` summarises them.
    PartialSuccess {
        /// The kind's result payload.
        result: Value,
        /// What failed, if the kind reports it.
        error: Option<ErrorInfo>,
    },
    /// The handler saw [`JobContext::is_cancelled`] and stopped.
    Cancelled {
        /// Work finished before the stop, where the kind keeps it.
        partial: Option<Value>,
        /// How much of the work `partial` holds, 0–100, when the kind
        /// knows: the operation's final progress.
        progress: Option<u32>,
    },
}

/// A machine-readable error summary (becomes `OperationError`).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorInfo {
    /// snake_case code, e.g. `provider_unavailable`.
    pub code: String,
    /// A message a user can read.
    pub message: String,
    /// Optional JSON details.
    pub details: Option<Value>,
}

impl ErrorInfo {
    /// An error summary without details.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }
}

/// Why a handler could not finish a job.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobError {
    /// Might work on another delivery (a provider is down, a time-out). The
    /// job is redelivered with backoff while deliveries are left; after the
    /// last one the operation fails with this code and message.
    #[error("{code}: {message}")]
    Retryable {
        /// snake_case code.
        code: String,
        /// A message a user can read.
        message: String,
    },
    /// Will never work (bad input, a missing subject). The operation fails at
    /// once.
    #[error("{code}: {message}")]
    Permanent {
        /// snake_case code.
        code: String,
        /// A message a user can read.
        message: String,
        /// Optional JSON details for the client.
        details: Option<Value>,
    },
}

impl JobError {
    /// A failure worth retrying.
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        JobError::Retryable {
            code: code.into(),
            message: message.into(),
        }
    }

    /// A failure not worth retrying.
    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        JobError::Permanent {
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }

    /// Attaches JSON details (kept only on [`JobError::Permanent`]).
    pub fn with_details(mut self, value: Value) -> Self {
        if let JobError::Permanent { details, .. } = &mut self {
            *details = Some(value);
        }
        self
    }

    /// The snake_case code.
    pub fn code(&self) -> &str {
        match self {
            JobError::Retryable { code, .. } | JobError::Permanent { code, .. } => code,
        }
    }

    /// Whether another delivery might succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, JobError::Retryable { .. })
    }
}

/// Parses a job's payload as the kind's request type; a payload that does not
/// parse is a permanent `invalid_payload` failure (the gateway validated it,
/// so this means a version mismatch, not bad user input).
pub fn decode_payload<T: DeserializeOwned>(job: &Job) -> Result<T, JobError> {
    serde_json::from_slice(&job.payload_json).map_err(|error| {
        JobError::permanent(
            "invalid_payload",
            format!("The job's payload is not a valid request: {error}"),
        )
    })
}
