//! `GET /openapi.json`, and the list of what the document covers: every
//! route's `#[utoipa::path]`, the schemas and the shared components.

use axum::Json;
use serde_json::Value;
use utoipa::OpenApi;

use crate::openapi::components::{self, Shared};
use crate::openapi::results;
use crate::views;

/// The derive's document (before [`crate::openapi::document`] refines it).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Dossier API",
        version = "0.1.0",
        description = DESCRIPTION,
    ),
    servers((url = "http://127.0.0.1:8080", description = "`cargo xtask up`")),
    security(("bearer" = []), ("apiKey" = [])),
    paths(
        super::me,
        super::accept::enrich_person,
        super::accept::enrich_batch,
        super::accept::search_people,
        super::accept::research,
        super::operations::list_operations,
        super::operations::get_operation,
        super::events::operation_events,
        super::operations::get_operation_results,
        super::operations::cancel_operation,
        super::webhooks::create_webhook,
        super::webhooks::list_webhooks,
        super::webhooks::get_webhook,
        super::webhooks::delete_webhook,
        super::webhooks::rotate_secret,
        super::webhooks::list_deliveries,
        super::health::healthz,
        super::health::metrics,
        super::health::readyz,
        openapi_json,
    ),
    components(schemas(
        dossier_contracts::Kind,
        dossier_contracts::Status,
        dossier_contracts::api::PersonRecord,
        dossier_contracts::api::CompanyRef,
        dossier_contracts::api::ResearchSubject,
        dossier_contracts::api::OnInvalidRecord,
        components::ProblemDoc,
        super::accept::Accepted,
        views::OperationView,
        views::OperationResponse,
        views::PageView,
        results::SearchResult,
        results::EnrichmentResult,
        results::EnrichedRecord,
        results::ResearchResult,
        crate::openapi::webhooks::WebhookEvent,
    )),
    modifiers(&Shared),
)]
pub(crate) struct ApiDoc;

const DESCRIPTION: &str = "Enrich people and company records, search people inside a target \
account, and run deep research. Long-running calls answer `202 Accepted` with a `pollUrl`; poll \
`GET /api/operations/{id}` until the status is terminal (`succeeded`, `failed`, \
`partial_success`, `cancelled`), follow it live at `GET /api/operations/{id}/events` \
(server-sent events), or wait in one request with `Prefer: wait=N`.

Every response carries `X-Request-Id` (a UUID, also `meta.requestId` in JSON bodies). Without an \
incoming `traceparent` it is also the trace id of the request. Errors are RFC 9457 problem \
details.

Every operation has an `expiresAt` (30 days after `createdAt` by default; the operations \
service's `DOSSIER_OPERATION_RETENTION`). Then it is deleted with its result, and reads of it \
answer `410 Gone` (`operation_expired`). An id the caller's tenant does not have answers 410 when \
the id (a UUIDv7, which carries its creation time) is older than the retention, else 404: the \
answer depends only on the id and the caller's own operations, never on another tenant's.

This document is generated from the gateway's code (`GET /openapi.json`; `docs/openapi.yaml` is \
the same document).";

/// The document before refinement.
pub(crate) fn api_doc() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    summary = "This document (OpenAPI 3.1, JSON).",
    security(()),
    responses((status = 200, description = "The OpenAPI document.", body = Object)),
)]
pub(crate) async fn openapi_json() -> Json<Value> {
    // Built once: the document is a function of the code.
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    Json(DOCUMENT.get_or_init(crate::openapi::document).clone())
}
