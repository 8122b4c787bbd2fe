//! The worker runtime every Dossier worker service uses. A service implements
//! a [`Handler`] for its kind of job; a [`Worker`] does the rest:
//!
//! - pulls the kind's jobs from its durable consumer (`jobs-<kind>`), at most
//!   [`WorkerConfig::concurrency`] at once, never holding more unacknowledged
//!   jobs than it has free slots, so other replicas take the rest;
//! - takes the operation's lease first ([`lease`]): waits while another run
//!   holds it, acknowledges without running an operation already finished;
//! - skips jobs whose operation was cancelled while queued (`Cancelled`
//!   event, the handler never runs), else loads a payload stored in the
//!   `dossier_payloads` object store when the job refers to one ([`payload`]:
//!   size and SHA-256 checked; a missing or different object fails the
//!   operation at once, `payload_missing` / `payload_corrupt`; an unreadable
//!   store is retried), publishes `Started` and runs the handler in a span
//!   `job <kind>` that continues the request's trace;
//! - heart-beats (`+WPI` and a lease renewal every third of `ack_wait`)
//!   while a job runs, so only a dead or stalled worker's jobs are
//!   redelivered; a run that cannot renew its lease within `ack_wait` is
//!   dropped;
//! - retries retryable failures, panics and time-outs with jittered
//!   exponential backoff (`Nak` with delay) and fails the operation on the
//!   last delivery or on a permanent error;
//! - stops a running job when its cancellation is requested, cooperatively
//!   and, after [`WorkerConfig::cancel_grace`], by dropping the handler;
//! - publishes every event with a fresh id as `Nats-Msg-Id` and waits for it
//!   to be stored; a job is acknowledged only after its terminal event is
//!   stored, else it is handed back (`Nak`);
//! - puts results larger than [`WorkerConfig::inline_result_limit`] in the
//!   `dossier_results` object store as `<operation id>.<run>`;
//! - on shutdown stops pulling, lets running jobs finish within
//!   [`WorkerConfig::shutdown_grace`] and hands the rest back at once;
//! - reports readiness (consumer bound, NATS connected, not shutting down)
//!   and counts jobs started, finished, retried and dead, with their
//!   durations ([`metrics`]).
//!
//! # Delivery guarantees
//!
//! At most one live run at a time, at least one run to the end, one
//! terminal outcome ([`lease`]: a per-run lease in `dossier_leases`). A job
//! runs again (and publishes `Started` again, with a higher `attempt`) when
//! its run dies or stalls past its lease before finishing; the stalled run,
//! if it wakes up, is dropped without a terminal event. The terminal event
//! is committed into the lease before it is published, so only the lease
//! holder's outcome is ever published (a delivery that finds it committed
//! but maybe unpublished publishes it again, same event id), and an
//! operation whose lease says finished is never run again. Handlers should
//! still keep side effects idempotent per operation id (a run that dies
//! mid-way is redone), and name durable writes outside compare-and-set with
//! [`JobContext::run`]. Progress events are best effort.
//!
//! ```no_run
//! use dossier_contracts::{Kind, v1::Job};
//! use dossier_worker::{Handler, JobContext, JobError, Outcome, Worker, WorkerConfig};
//!
//! struct Search;
//!
//! impl Handler for Search {
//!     fn kind(&self) -> Kind {
//!         Kind::SearchPeople
//!     }
//!
//!     async fn handle(&self, ctx: JobContext, job: Job) -> Result<Outcome, JobError> {
//!         let request: serde_json::Value = dossier_worker::decode_payload(&job)?;
//!         ctx.progress(50).await;
//!         if ctx.is_cancelled() {
//!             return Ok(Outcome::Cancelled {
//!                 partial: None,
//!                 progress: None,
//!             });
//!         }
//!         Ok(Outcome::Succeeded(serde_json::json!({ "data": [], "meta": request })))
//!     }
//! }
//!
//! # async fn run(broker: dossier_broker::BrokerConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let client = dossier_broker::connect(&broker, "search-worker").await?;
//! let worker = Worker::new(client, &broker, WorkerConfig::default(), Search).await?;
//! worker.run(dossier_service::shutdown_token()).await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod cancel;
pub mod config;
mod context;
mod events;
mod handler;
pub mod lease;
pub mod metrics;
pub mod payload;
mod service;
mod worker;

pub use config::{
    ENV_CANCEL_GRACE, ENV_INLINE_RESULT_LIMIT, ENV_JOB_TIMEOUT, ENV_PROGRESS_INTERVAL,
    ENV_RETRY_BACKOFF_BASE, ENV_RETRY_BACKOFF_MAX, ENV_SHUTDOWN_GRACE, ENV_WORKER_CONCURRENCY,
    ENV_WORKER_ID, WorkerConfig,
};
pub use context::JobContext;
pub use handler::{ErrorInfo, Handler, JobError, Outcome, decode_payload};
pub use service::{WorkerService, WorkerServiceConfig, WorkerSpec};
pub use worker::{Worker, WorkerError};
