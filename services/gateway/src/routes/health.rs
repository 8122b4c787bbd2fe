//! The probes: liveness, readiness and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use serde::Serialize;

use super::{Envelope, envelope};
use crate::AppState;
use crate::error::ApiError;
use crate::grpc::operations_serving;

/// A probe's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    status: &'static str,
}

/// A probe's answer with `meta`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Read by the schema derive only.
pub(crate) struct HealthResponse {
    /// `{"status": "ok"}`.
    data: Health,
    /// The request id.
    meta: crate::error::Meta,
}

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    summary = "Liveness.",
    security(()),
    responses((status = 200, description = "Alive.", body = HealthResponse)),
)]
/// `GET /healthz`: the process is alive.
pub(crate) async fn healthz() -> Json<Envelope<Health>> {
    envelope(Health { status: "ok" })
}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    summary = "Readiness (the operations service answers, NATS is connected, not shutting down).",
    security(()),
    responses(
        (status = 200, description = "Ready.", body = HealthResponse),
        (status = 503, description = "Not ready (`not_ready`).", body = crate::openapi::components::ProblemDoc,
            content_type = "application/problem+json"),
    ),
)]
/// `GET /readyz`: ready to take work — not shutting down, connected to NATS
/// (when synchronous enrichment is configured), and the operations service
/// answers its health check `SERVING` within the readiness timeout.
pub(crate) async fn readyz(
    State(state): State<AppState>,
) -> Result<Json<Envelope<Health>>, ApiError> {
    if !state.readiness().is_ready() {
        return Err(ApiError::NotReady(
            "The gateway is shutting down.".to_owned(),
        ));
    }
    // Only synchronous enrichment needs NATS, but a gateway without it
    // would answer those 503: better to send the traffic to one that has it.
    if state.enrichment().is_some_and(|e| !e.is_connected()) {
        return Err(ApiError::NotReady(
            "The gateway is not connected to NATS.".to_owned(),
        ));
    }
    if !operations_serving(state.channel(), state.readiness_timeout()).await {
        return Err(ApiError::NotReady(
            "The operations service is not reachable or not serving.".to_owned(),
        ));
    }
    Ok(envelope(Health { status: "ready" }))
}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    summary = "Prometheus metrics (text exposition format).",
    security(()),
    responses((status = 200, description = "Metrics.", body = String, content_type = "text/plain")),
)]
/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(dossier_service::metrics::CONTENT_TYPE),
        )],
        state.metrics().render(),
    )
}
