//! The routes of the public API: the router and its middleware stack, with
//! the handlers grouped by what they serve — accepting work
//! ([`accept`]), reading and cancelling operations ([`operations`]),
//! streaming their states ([`events`]), webhook endpoints and their
//! deliveries ([`webhooks`]), and the probes ([`health`]). The
//! JSON shapes they answer are in [`crate::views`], and query parsing in
//! [`crate::query`].

mod accept;
mod events;
mod health;
mod openapi;
mod operations;
mod webhooks;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;

use crate::AppState;
use crate::admission;
use crate::auth::{Caller, X_API_KEY};
use crate::context;
use crate::error::{ApiError, Meta};

use accept::{enrich_batch, enrich_person, research, search_people};
use events::operation_events;
use health::{healthz, metrics, readyz};
use operations::{cancel_operation, get_operation, get_operation_results, list_operations};
use webhooks::{
    create_webhook, delete_webhook, get_webhook, list_deliveries, list_webhooks, rotate_secret,
};

pub(crate) use openapi::api_doc;

/// The gateway's router: every route of the public API, the 404 fallback and
/// the middleware stack, apart from serving so tests can `oneshot` it.
///
/// The stack, outermost first, wraps each route and the fallback (so the
/// matched route is known to the span): sensitive-header marking (the API key
/// headers never reach a log), the request context (request id, span,
/// problem normalisation, access log, metrics), the panic catcher (a panic
/// becomes a 500 problem with the request id), the request timeout (503),
/// and the body limit (413).
pub fn router(state: AppState) -> Router {
    let middleware = ServiceBuilder::new()
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::HeaderName::from_static(X_API_KEY),
        ]))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::request_context,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            state.request_timeout(),
        ))
        .layer(RequestBodyLimitLayer::new(state.max_body_bytes()))
        // The tower-http limit above replaces axum's default 2 MiB one.
        .layer(DefaultBodyLimit::disable());

    // Admission control guards the API, not the probes (see `admission`).
    let api = Router::new()
        .route("/api/me", get(me))
        .route("/api/enrichment/person", post(enrich_person))
        .route("/api/enrichment/batch", post(enrich_batch))
        .route("/api/search/people", post(search_people))
        .route("/api/research", post(research))
        .route("/api/operations", get(list_operations))
        .route("/api/operations/{id}", get(get_operation))
        .route("/api/operations/{id}/results", get(get_operation_results))
        .route("/api/operations/{id}/events", get(operation_events))
        .route("/api/operations/{id}/cancel", post(cancel_operation))
        .route("/api/webhooks", post(create_webhook).get(list_webhooks))
        .route(
            "/api/webhooks/{id}",
            get(get_webhook).delete(delete_webhook),
        )
        .route("/api/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/api/webhooks/{id}/deliveries", get(list_deliveries))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admission::admit,
        ));
    Router::new()
        .merge(api)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(not_found)
        .layer(middleware)
        .with_state(state)
}

pub(crate) fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned());
    ApiError::Internal(anyhow::anyhow!("handler panicked: {detail}")).into_response()
}

async fn not_found() -> ApiError {
    ApiError::RouteNotFound
}

/// A sync envelope: `{ "data": …, "meta": { "requestId": … } }`.
#[derive(Serialize)]
pub(crate) struct Envelope<T> {
    pub(crate) data: T,
    pub(crate) meta: Meta,
}

pub(crate) fn envelope<T: Serialize>(data: T) -> Json<Envelope<T>> {
    Json(Envelope {
        data,
        meta: Meta::current(),
    })
}

/// The caller.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Me {
    /// The tenant the key belongs to.
    tenant_id: String,
    /// The key's id (never the key).
    key_id: String,
}

/// `GET /api/me`'s answer.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Read by the schema derive only.
pub(crate) struct MeResponse {
    /// The caller.
    data: Me,
    /// The request id.
    meta: Meta,
}

#[utoipa::path(
    get,
    path = "/api/me",
    operation_id = "getMe",
    summary = "The caller's tenant and key.",
    responses(
        (status = 200, description = "The caller.", body = MeResponse,
            headers(("X-Request-Id" = String, description = "A fresh UUID per request; equals `meta.requestId`."))),
        (status = 401, response = crate::openapi::components::Unauthorized),
        (status = 429, response = crate::openapi::components::TooManyRequests),
    ),
)]
/// `GET /api/me`: who the key belongs to.
async fn me(caller: Caller) -> Json<Envelope<Me>> {
    envelope(Me {
        tenant_id: caller.tenant_id.to_string(),
        key_id: caller.key_id.to_string(),
    })
}
