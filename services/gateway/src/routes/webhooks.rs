//! Webhook endpoints and their deliveries (`/api/webhooks`): the gateway
//! validates the body's shape and fields (`dossier_contracts::api::webhooks`)
//! and hands the rest to the webhooks service over gRPC, which checks its
//! own policy (https, public addresses only, the per-tenant limit) and
//! names the field it refuses. Every route is tenant-scoped: another
//! tenant's endpoint is 404, like a missing one.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dossier_contracts::api::webhooks::CreateWebhookRequest;
use dossier_contracts::time_ext;
use dossier_contracts::v1::{
    CreateEndpointRequest, DeliveryAttempt, DeliveryStatus, DeliveryView, EndpointView,
    GetEndpointRequest, ListDeliveriesRequest, ListEndpointsRequest,
};
use http::request::Parts;
use serde::Serialize;

use super::{Envelope, envelope};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ExternalBase, JsonBody};
use crate::grpc::map_webhooks_status;
use crate::query::{parse_deliveries_query, query_pairs};
use crate::views::ListMeta;

/// The `{id}` of a webhook route: a UUID, canonical; anything else is
/// answered as an unknown id (404).
#[derive(Debug)]
pub(crate) struct WebhookId(String);

impl<S: Send + Sync> FromRequestParts<S> for WebhookId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::WebhookNotFound)?;
        uuid::Uuid::try_parse(&raw)
            .map(|id| WebhookId(id.hyphenated().to_string()))
            .map_err(|_| ApiError::WebhookNotFound)
    }
}

/// A webhook endpoint as clients see it (never its secret, but in the
/// answers to create and rotate).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WebhookView {
    id: String,
    url: String,
    event_types: Vec<String>,
    description: Option<String>,
    /// True once the receiver answered 410 Gone: nothing more is sent.
    disabled: bool,
    disabled_reason: Option<String>,
    disabled_at: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
    /// Until when the previous secret also signs, after a rotation.
    previous_secret_expires_at: Option<String>,
    deliveries_url: String,
    /// `whsec_…`: only in the answers to create and rotate.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

fn time(t: &Option<prost_types::Timestamp>) -> Option<String> {
    t.as_ref().and_then(time_ext::to_rfc3339)
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl WebhookView {
    fn new(endpoint: EndpointView, base: &ExternalBase, secret: Option<String>) -> WebhookView {
        WebhookView {
            deliveries_url: format!("{}/api/webhooks/{}/deliveries", base.0, endpoint.id),
            id: endpoint.id,
            url: endpoint.url,
            event_types: endpoint.event_types,
            description: non_empty(endpoint.description),
            disabled: endpoint.disabled,
            disabled_reason: non_empty(endpoint.disabled_reason),
            disabled_at: time(&endpoint.disabled_at),
            created_at: time(&endpoint.created_at),
            updated_at: time(&endpoint.updated_at),
            previous_secret_expires_at: time(&endpoint.previous_secret_expires_at),
            secret,
        }
    }
}

/// One delivery (one event to one endpoint) and its attempts.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryJson {
    /// The `webhook-id` header of every attempt.
    webhook_id: String,
    event_type: String,
    operation_id: String,
    /// `pending`, `delivered` or `failed`.
    status: &'static str,
    attempts: Vec<AttemptJson>,
    created_at: Option<String>,
    updated_at: Option<String>,
    next_attempt_at: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttemptJson {
    attempt: u32,
    attempted_at: Option<String>,
    duration_ms: u32,
    /// The receiver's HTTP status; null when it gave none.
    status_code: Option<u32>,
    /// Null when delivered; else `http_status`, `timeout`, `connect`,
    /// `not_public`, `redirect` or `gone`.
    error: Option<String>,
}

impl DeliveryJson {
    fn new(d: DeliveryView) -> DeliveryJson {
        let status = match DeliveryStatus::try_from(d.status) {
            Ok(DeliveryStatus::Delivered) => "delivered",
            Ok(DeliveryStatus::Failed) => "failed",
            _ => "pending",
        };
        DeliveryJson {
            webhook_id: d.webhook_id,
            event_type: d.event_type,
            operation_id: d.operation_id,
            status,
            attempts: d.attempts.into_iter().map(attempt).collect(),
            created_at: time(&d.created_at),
            updated_at: time(&d.updated_at),
            next_attempt_at: time(&d.next_attempt_at),
        }
    }
}

fn attempt(a: DeliveryAttempt) -> AttemptJson {
    AttemptJson {
        attempt: a.attempt,
        attempted_at: time(&a.attempted_at),
        duration_ms: a.duration_ms,
        status_code: (a.status_code != 0).then_some(a.status_code),
        error: non_empty(a.error),
    }
}

/// A list answer: `{ "data": [...], "meta": { "requestId", "nextCursor" } }`.
#[derive(Serialize)]
pub(crate) struct Listed<T> {
    data: Vec<T>,
    meta: ListMeta,
}

fn listed<T: Serialize>(data: Vec<T>, next_cursor: Option<String>) -> Response {
    Json(Listed {
        data,
        meta: ListMeta {
            meta: crate::error::Meta::current(),
            next_cursor,
        },
    })
    .into_response()
}

#[utoipa::path(
    post,
    path = "/api/webhooks",
    operation_id = "createWebhook",
    summary = "Register a webhook endpoint.",
    description = CREATE_DESCRIPTION,
    request_body = crate::openapi::webhooks::CreateWebhook,
    responses(
        (status = 201, description = "Registered, with its `secret` (shown here and on rotation only). `Location` is the endpoint's URL.",
            body = crate::openapi::webhooks::WebhookResponse,
            headers(("X-Request-Id" = String), ("Location" = String, description = "The endpoint's URL."), ("Cache-Control" = String, description = "`no-store`: the answer holds the secret."))),
        (status = 400, response = crate::openapi::components::BadRequest),
        (status = 401, response = crate::openapi::components::Unauthorized),
        (status = 409, response = crate::openapi::components::Conflict),
        (status = 413, response = crate::openapi::components::PayloadTooLarge),
        (status = 415, response = crate::openapi::components::UnsupportedMediaType),
        (status = 429, response = crate::openapi::components::TooManyRequests),
        (status = 503, response = crate::openapi::components::Unavailable),
    ),
)]
/// `POST /api/webhooks`: 201 with the endpoint and its secret (shown only
/// here and on rotation), `Location` its URL.
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    JsonBody(body): JsonBody<CreateWebhookRequest>,
) -> Result<Response, ApiError> {
    let created = state
        .webhooks()
        .create_endpoint(state.signed_for_webhooks(CreateEndpointRequest {
            tenant_id: caller.tenant_id.to_string(),
            url: body.url,
            event_types: body.event_types,
            description: body.description.unwrap_or_default(),
        })?)
        .await
        .map_err(map_webhooks_status)?
        .into_inner();
    let endpoint = created.endpoint.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("CreateEndpoint answered no endpoint"))
    })?;
    let location = format!("{}/api/webhooks/{}", base.0, endpoint.id);
    let view = WebhookView::new(endpoint, &base, Some(created.secret));
    let mut response = (StatusCode::CREATED, envelope(view)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    // The secret is in this answer: no cache may keep it.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/api/webhooks",
    operation_id = "listWebhooks",
    summary = "The tenant's webhook endpoints, oldest first (never their secrets).",
    responses(
        (status = 200, description = "Every endpoint (at most 20, so never paged).", body = crate::openapi::webhooks::WebhookList,
            headers(("X-Request-Id" = String))),
        (status = 401, response = crate::openapi::components::Unauthorized),
        (status = 429, response = crate::openapi::components::TooManyRequests),
        (status = 503, response = crate::openapi::components::Unavailable),
    ),
)]
/// `GET /api/webhooks`: the tenant's endpoints, oldest first (at most the
/// per-tenant limit, so never paged).
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
) -> Result<Response, ApiError> {
    let listed_endpoints = state
        .webhooks()
        .list_endpoints(state.signed_for_webhooks(ListEndpointsRequest {
            tenant_id: caller.tenant_id.to_string(),
        })?)
        .await
        .map_err(map_webhooks_status)?
        .into_inner();
    let data = listed_endpoints
        .endpoints
        .into_iter()
        .map(|e| WebhookView::new(e, &base, None))
        .collect();
    Ok(listed(data, None))
}

#[utoipa::path(
    get,
    path = "/api/webhooks/{id}",
    operation_id = "getWebhook",
    summary = "One webhook endpoint (404 for another tenant's).",
    params(("id" = String, Path, format = Uuid, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "The endpoint; `disabled` once its receiver answered 410.", body = crate::openapi::webhooks::WebhookResponse,
            headers(("X-Request-Id" = String))),
        (status = 401, response = crate::openapi::components::Unauthorized),
        (status = 404, response = crate::openapi::components::Problem),
        (status = 429, response = crate::openapi::components::TooManyRequests),
        (status = 503, response = crate::openapi::components::Unavailable),
    ),
)]
/// `GET /api/webhooks/{id}`.
pub(crate) async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    WebhookId(id): WebhookId,
) -> Result<Json<Envelope<WebhookView>>, ApiError> {
    let endpoint = state
        .webhooks()
        .get_endpoint(state.signed_for_webhooks(GetEndpointRequest {
            tenant_id: caller.tenant_id.to_string(),
            id,
        })?)
        .await
        .map_err(map_webhooks_status)?
        .into_inner();
    Ok(envelope(WebhookView::new(endpoint, &base, None)))
}

#[utoipa::path(
    delete,
    path = "/api/webhooks/{id}",
    operation_id = "deleteWebhook",
    summary = "Delete a webhook endpoint; deliveries not yet made to it are dropped.",
    params(("id" = String, Path, format = Uuid, description = "The endpoint's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, response = crate::openapi::components::Unauthorized),
        (status = 404, response = crate::openapi::components::Problem),
        (status = 429, response = crate::openapi::components::TooManyRequests),
        (status = 503, response = crate::openapi::components::Unavailable),
    ),
)]
/// `DELETE /api/webhooks/{id}`: 204; deliveries not yet made are dropped.
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    WebhookId(id): WebhookId,
) -> Result<StatusCode, ApiError> {
    state
        .webhooks()
        .delete_endpoint(state.signed_for_webhooks(GetEndpointRequest {
            tenant_id: caller.tenant_id.to_string(),
            id,
        })?)
        .await
        .map_err(map_webhooks_status)?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/webhooks/{id}/rotate-secret",
    operation_id = "rotateWebhookSecret",
    summary = "A new signing secret; the previous one keeps signing for 24 h.",
    description = "Until `previousSecretExpiresAt` every delivery carries two signatures \
(`v1,<new> v1,<old>`), so receivers can switch to the new secret at their pace. The answer \
carries the new `secret`.",
    params(("id" = String, Path, format = Uuid, description = "The endpoint's id.")),
    responses(
        (status = 200, description = "Rotated.", body = crate::openapi::webhooks::WebhookResponse,
            headers(("X-Request-Id" = String), ("Cache-Control" = String, description = "`no-store`: the answer holds the secret."))),
        (status = 401, response = crate::openapi::components::Unauthorized),
        (status = 404, response = crate::openapi::components::Problem),
        (status = 429, response = crate::openapi::components::TooManyRequests),
        (status = 503, response = crate::openapi::components::Unavailable),
    ),
)]
/// `POST /api/webhooks/{id}/rotate-secret`: 200 with the new secret; the
/// previous one keeps signing beside it until `previousSecretExpiresAt`.
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    WebhookId(id): WebhookId,
) -> Result<Response, ApiError> {
    let rotated = state
        .webhooks()
        .rotate_secret(state.signed_for_webhooks(GetEndpointRequest {
            tenant_id: caller.tenant_id.to_string(),
            id,
        })?)
        .await
        .map_err(map_webhooks_status)?
        .into_inner();
    let endpoint = rotated
        .endpoint
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("RotateSecret answered no endpoint")))?;
    let mut response =
        envelope(WebhookView::new(endpoint, &base, Some(rotated.secret))).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[utoipa::path(
    get,
    path = "/api/webhooks/{id}/deliveries",
    operation_id = "listWebhookDeliveries",
    summary = "The endpoint's deliveries and their attempts, newest operation first.",
    params(
        ("id" = String, Path, format = Uuid, description = "The endpoint's id."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Deliveries per page, 1-100 (default 20)."),
        ("cursor" = Option<String>, Query, description = "`meta.nextCursor` of the page before."),
    ),
    responses(
        (status = 200, description = "A page of deliveries.", body = crate::openapi::webhooks::DeliveryList,
            headers(("X-Request-Id" = String))),
        (status = 400, response = crate::openapi::components::BadRequest),
        (status = 401, response = crate::openapi::components::Unauthorized),
        (status = 404, response = crate::openapi::components::Problem),
        (status = 429, response = crate::openapi::components::TooManyRequests),
        (status = 503, response = crate::openapi::components::Unavailable),
    ),
)]
/// `GET /api/webhooks/{id}/deliveries?limit=&cursor=`: the endpoint's
/// deliveries with their attempts, newest operation first.
pub(crate) async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    WebhookId(id): WebhookId,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(query)?;
    let query = parse_deliveries_query(&pairs)?;
    let page = state
        .webhooks()
        .list_deliveries(state.signed_for_webhooks(ListDeliveriesRequest {
            tenant_id: caller.tenant_id.to_string(),
            endpoint_id: id,
            limit: query.limit.unwrap_or(0),
            cursor: query.cursor.unwrap_or_default(),
        })?)
        .await
        .map_err(map_webhooks_status)?
        .into_inner();
    let data = page.deliveries.into_iter().map(DeliveryJson::new).collect();
    Ok(listed(data, non_empty(page.next_cursor)))
}

const CREATE_DESCRIPTION: &str = "Operation events are POSTed to `url`, signed as Standard \
Webhooks v1: `webhook-id` (the same on every retry of one event), `webhook-timestamp` (Unix \
seconds, new on each attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of \
id.timestamp.body>` under the secret; during a rotation one signature per secret, space \
separated). The body is a `WebhookEvent`.

`url` must be `https://` and reach the public internet only: its host, and every address its \
name resolves to, must not be loopback, private, link-local (169.254.169.254), CGNAT or another \
non-public address — checked now and again at every delivery; a redirect is never followed. A \
tenant has at most 20 endpoints (409 `webhook_limit_reached`).

A 2xx answer is delivered. `410 Gone` disables the endpoint. Anything else, a timeout (15 s) or \
a refused connection is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h and 24 h \
(ten attempts over about 2.7 days), then the delivery fails.

The answer carries `secret` (`whsec_…`), shown here and on rotation only.";
