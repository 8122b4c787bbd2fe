//! The webhook endpoints' request and answers, and the body of a delivery,
//! as the OpenAPI document types them (the answers are built in
//! `routes::webhooks`, deliveries by the webhooks service).
#![allow(dead_code)] // Read by the schema derives only.

use utoipa::ToSchema;

use crate::error::Meta;

/// `POST /api/webhooks`.
#[derive(ToSchema)]
#[schema(as = CreateWebhookRequest, rename_all = "camelCase")]
pub(crate) struct CreateWebhook {
    /// Where deliveries are POSTed: `https://`, public addresses only.
    #[schema(format = "uri", max_length = 2048)]
    url: String,
    /// The events to deliver (default: `operation.completed` only), each
    /// once.
    #[schema(required = false, min_items = 1, max_items = 2)]
    event_types: Vec<WebhookEventType>,
    /// A note for your own use.
    #[schema(required = false, value_type = String, max_length = 500)]
    description: Option<String>,
}

/// `operation.completed`: the operation ended (`succeeded`,
/// `partial_success`, `failed`, `cancelled`). `operation.progress`: it is
/// processing and its progress changed (states passed while a delivery was
/// pending may be coalesced into the latest; the completed event never
/// is).
#[derive(ToSchema)]
pub(crate) enum WebhookEventType {
    #[schema(rename = "operation.completed")]
    Completed,
    #[schema(rename = "operation.progress")]
    Progress,
}

/// A webhook endpoint (never its secret, but in the answers to create and
/// rotate).
#[derive(ToSchema)]
#[schema(as = Webhook, rename_all = "camelCase")]
pub(crate) struct WebhookDoc {
    /// The endpoint's id.
    #[schema(format = Uuid)]
    id: String,
    /// Where deliveries go.
    #[schema(format = "uri")]
    url: String,
    /// The events delivered.
    event_types: Vec<WebhookEventType>,
    /// Your note.
    #[schema(required = true)]
    description: Option<String>,
    /// True once the receiver answered 410 Gone: nothing more is sent.
    disabled: bool,
    /// Why it was disabled.
    #[schema(required = true)]
    disabled_reason: Option<String>,
    /// When it was disabled.
    #[schema(required = true, format = DateTime)]
    disabled_at: Option<String>,
    /// When it was registered.
    #[schema(format = DateTime)]
    created_at: String,
    /// When it last changed.
    #[schema(format = DateTime)]
    updated_at: String,
    /// Until when the previous secret also signs, after a rotation.
    #[schema(required = true, format = DateTime)]
    previous_secret_expires_at: Option<String>,
    /// `GET` this for its deliveries.
    #[schema(format = "uri")]
    deliveries_url: String,
    /// The signing secret: `whsec_` and the base64 key (32 bytes). Only in
    /// the answers to create and rotate: keep it then.
    #[schema(required = false, value_type = String, pattern = "^whsec_")]
    secret: Option<String>,
}

/// One endpoint with `meta`.
#[derive(ToSchema)]
pub(crate) struct WebhookResponse {
    /// The endpoint.
    data: WebhookDoc,
    /// The request id.
    meta: Meta,
}

/// The tenant's endpoints (at most 20, so never paged).
#[derive(ToSchema)]
pub(crate) struct WebhookList {
    /// Oldest first.
    data: Vec<WebhookDoc>,
    /// The request id (and `nextCursor`, always null).
    meta: crate::views::ListMeta,
}

/// One delivery (one event to one endpoint) and its attempts.
#[derive(ToSchema)]
#[schema(as = WebhookDelivery, rename_all = "camelCase")]
pub(crate) struct Delivery {
    /// The `webhook-id` of every attempt: `msg_<operation id without
    /// dashes>_<status>` or `…_progress_<n>`.
    webhook_id: String,
    /// The event.
    event_type: WebhookEventType,
    /// The operation.
    #[schema(format = Uuid)]
    operation_id: String,
    /// Where it is.
    status: DeliveryStatus,
    /// Every attempt, in order.
    attempts: Vec<Attempt>,
    /// When the event was queued.
    #[schema(format = DateTime)]
    created_at: String,
    /// When it last changed.
    #[schema(format = DateTime)]
    updated_at: String,
    /// When the next attempt is due (null once delivered or failed).
    #[schema(required = true, format = DateTime)]
    next_attempt_at: Option<String>,
}

/// `pending` (an attempt is due), `delivered` (a 2xx answer), `failed`
/// (every attempt failed, or the endpoint was disabled).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

/// One attempt of a delivery.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
pub(crate) struct Attempt {
    /// 1 for the first.
    #[schema(minimum = 1)]
    attempt: u32,
    /// When it was made.
    #[schema(format = DateTime)]
    attempted_at: String,
    /// How long it took.
    duration_ms: u32,
    /// The receiver's HTTP status; null when it gave none.
    #[schema(required = true)]
    status_code: Option<u32>,
    /// Null when delivered; else why the attempt failed: `http_status` (a
    /// non-2xx answer), `timeout`, `connect`, `not_public` (the address is
    /// not on the public internet), `redirect` (never followed), `gone`
    /// (410: the endpoint is disabled).
    #[schema(required = true)]
    error: Option<String>,
}

/// A page of deliveries.
#[derive(ToSchema)]
pub(crate) struct DeliveryList {
    /// Newest operation first.
    data: Vec<Delivery>,
    /// The request id and the next page's cursor.
    meta: crate::views::ListMeta,
}

/// The body of every delivery (Standard Webhooks' `type`, `timestamp`,
/// `data`): the operation as `GET /api/operations/{id}` answers it, but
/// without `result` (fetch it at `data.pollUrl` with your API key) and
/// `meta`.
#[derive(ToSchema)]
pub(crate) struct WebhookEvent {
    /// The event.
    r#type: WebhookEventType,
    /// When the operation reached this state.
    #[schema(format = DateTime)]
    timestamp: String,
    /// The operation (`result` null).
    data: crate::views::OperationView,
}
