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
use tokio::sync::Semaphore;

use crate::AppState;
use crate::error::ApiError;

/// The in-flight limit: one permit per running request.
#[derive(Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Admission {
    /// Admits at most `limit` requests at once (at least one).
    pub fn new(limit: usize) -> Admission {
        let limit = limit.max(1);
        Admission {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

/// The middleware: runs the request while it holds a permit, or sheds it.
pub async fn admit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let admission = state.admission();
    // `try_acquire` never waits: a full gateway answers now. The permit is
    // held until the handler has produced its response.
    match admission.permits.clone().try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => {
            state.metrics().record_shed();
            ApiError::Overloaded {
                limit: admission.limit,
            }
            .into_response()
        }
    }
}
