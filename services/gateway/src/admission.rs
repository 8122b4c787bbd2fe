//! Admission control: at most `max_in_flight` API requests run at once; one
//! more is answered `503 overloaded` with `Retry-After` at once instead of
//! waiting in a queue that grows without bound.
//!
//! A queue in front of a saturated service only turns overload into latency
//! for everyone (the bench saw p99 grow past 200 ms at 256 connections) and
//! into timeouts for the requests at its back. Shedding the excess keeps the
//! admitted requests fast, and tells the rest — cheaply, before any
//! authentication, parsing or gRPC work — when to come back; load balancers
//! and clients retry on 503 + `Retry-After`.
//!
//! The probes (`/healthz`, `/readyz`, `/metrics`) are not behind this limit:
//! an overloaded gateway is alive, and its metrics are exactly what an
//! operator needs to see then.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AppState;
use crate::error::ApiError;

/// At most `limit` holders at once; taking a permit never waits.
#[derive(Debug)]
struct Permits {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Permits {
    /// At least one.
    fn new(limit: usize) -> Permits {
        let limit = limit.max(1);
        Permits {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// A permit, held until dropped; `None` when all are taken.
    fn try_take(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }
}

/// The in-flight limit: one permit per running request.
#[derive(Debug)]
pub struct Admission(Permits);

impl Admission {
    /// Admits at most `limit` requests at once (at least one).
    pub fn new(limit: usize) -> Admission {
        Admission(Permits::new(limit))
    }
}

/// The middleware: runs the request while it holds a permit, or sheds it.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let admission = state.admission();
    // `try_acquire` never waits: a full gateway answers now. The permit is
    // held until the handler has produced its response.
    match admission.0.try_take() {
        Some(_permit) => next.run(req).await,
        None => {
            state.metrics().record_shed();
            ApiError::Overloaded {
                limit: admission.0.limit,
            }
            .into_response()
        }
    }
}

/// The limit of long-lived work: open event streams and requests waiting
/// under `Prefer: wait`. Each holds one slot for as long as it is open
/// (a stream's slot lives in its body), and none of them holds a permit of
/// the in-flight limit after its response has begun, so streams can never
/// starve ordinary requests; this limit bounds what they cost instead
/// (one watch on the operations service each, and the gateway's memory).
#[derive(Debug)]
pub struct StreamSlots(Permits);

impl StreamSlots {
    /// At most `limit` at once (at least one).
    pub fn new(limit: usize) -> StreamSlots {
        StreamSlots(Permits::new(limit))
    }

    /// A slot, held until it is dropped; `503 too_many_streams` when every
    /// slot is taken (never waits).
    pub fn try_take(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.0.try_take().ok_or(ApiError::TooManyStreams {
            limit: self.0.limit,
        })
    }
}
