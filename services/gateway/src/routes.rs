//! The routes of the public API and the JSON shapes they answer.

use std::collections::HashSet;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dossier_contracts::api::{
    EnrichmentBatchRequest, PersonRecord, ResearchRequest, SearchPeopleRequest,
};
use dossier_contracts::v1::{
    CancelOperationRequest, CreateOperationRequest, GetOperationRequest,
    GetOperationResultsRequest, ListOperationsRequest, Operation, OperationError, ResultPage,
    result_ref,
};
use dossier_contracts::{Kind, Status, time_ext};
use dossier_telemetry::propagation;
use serde::Serialize;
use serde_json::Value;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;

use crate::AppState;
use crate::auth::{Caller, X_API_KEY};
use crate::context;
use crate::error::{ApiError, Issue, Meta};
use crate::extract::{ExternalBase, IdempotencyKey, JsonBody, OperationId};
use crate::grpc::{self, map_status, operations_serving};

/// `Retry-After` (seconds) on 202s and on operations that are not finished.
const POLL_RETRY_AFTER_SECS: u64 = 1;
/// Default page size of `GET /api/operations`.
const DEFAULT_LIST_LIMIT: u32 = 20;
/// Largest page size of `GET /api/operations`.
const MAX_LIST_LIMIT: u32 = 100;
/// Longest accepted list cursor.
const MAX_CURSOR_LEN: usize = 1024;
/// Default page size of `GET /api/operations/{id}/results`.
const DEFAULT_RESULTS_LIMIT: u32 = 100;
/// Largest page size of `GET /api/operations/{id}/results`.
const MAX_RESULTS_LIMIT: u32 = 1_000;
/// Header set on a 202 that replays an earlier request's idempotency key.
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

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

    Router::new()
        .route("/api/me", get(me))
        .route("/api/enrichment/person", post(enrich_person))
        .route("/api/enrichment/batch", post(enrich_batch))
        .route("/api/search/people", post(search_people))
        .route("/api/research", post(research))
        .route("/api/operations", get(list_operations))
        .route("/api/operations/{id}", get(get_operation))
        .route("/api/operations/{id}/results", get(get_operation_results))
        .route("/api/operations/{id}/cancel", post(cancel_operation))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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
struct Envelope<T> {
    data: T,
    meta: Meta,
}

fn envelope<T: Serialize>(data: T) -> Json<Envelope<T>> {
    Json(Envelope {
        data,
        meta: Meta::current(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Me {
    tenant_id: String,
    key_id: String,
}

/// `GET /api/me`: who the key belongs to.
async fn me(caller: Caller) -> Json<Envelope<Me>> {
    envelope(Me {
        tenant_id: caller.tenant_id.to_string(),
        key_id: caller.key_id.to_string(),
    })
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

/// `GET /healthz`: the process is alive.
async fn healthz() -> Json<Envelope<Health>> {
    envelope(Health { status: "ok" })
}

/// `GET /readyz`: ready to take work — not shutting down, connected to NATS
/// (when synchronous enrichment is configured), and the operations service
/// answers its health check `SERVING` within the readiness timeout.
async fn readyz(State(state): State<AppState>) -> Result<Json<Envelope<Health>>, ApiError> {
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

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(dossier_service::metrics::CONTENT_TYPE),
        )],
        state.metrics().render(),
    )
}

/// `POST /api/enrichment/person` (200): one record enriched synchronously
/// by an enrichment worker (NATS request-reply, see [`crate::enrich`]). The
/// answer is the enriched record, status `matched` or `not_found`; when no
/// worker answers in time, or the record's providers fail, 503
/// `enrichment_unavailable` with `Retry-After`.
async fn enrich_person(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(record): JsonBody<PersonRecord>,
) -> Result<Response, ApiError> {
    let Some(enrichment) = state.enrichment() else {
        return Err(ApiError::enrichment_unavailable(
            "Synchronous enrichment is not configured on this gateway; use POST /api/enrichment/batch.",
            None,
        ));
    };
    let request_id = context::request_id().to_string();
    let enriched = enrichment
        .enrich(&caller.tenant_id, &record, &request_id)
        .await?;
    tracing::info!(
        message = "Record enriched.",
        status = enriched["status"].as_str().unwrap_or_default()
    );
    Ok(envelope(enriched).into_response())
}

/// `POST /api/enrichment/batch` (202).
async fn enrich_batch(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    base: ExternalBase,
    JsonBody(body): JsonBody<EnrichmentBatchRequest>,
) -> Result<Response, ApiError> {
    tracing::debug!(message = "Batch received.", records = body.records.len());
    accept(state, caller, key, base, Kind::EnrichmentBatch, body).await
}

/// `POST /api/search/people` (202).
async fn search_people(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    base: ExternalBase,
    JsonBody(body): JsonBody<SearchPeopleRequest>,
) -> Result<Response, ApiError> {
    accept(state, caller, key, base, Kind::SearchPeople, body).await
}

/// `POST /api/research` (202).
async fn research(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    base: ExternalBase,
    JsonBody(body): JsonBody<ResearchRequest>,
) -> Result<Response, ApiError> {
    accept(state, caller, key, base, Kind::ResearchDeep, body).await
}

/// The 202 body, exactly the fields of the contract.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    id: String,
    operation_id: String,
    status: &'static str,
    poll_url: String,
    meta: Meta,
}

/// Accepts an operation of `kind`: the operations service stores the job in
/// JetStream and creates the record before it answers, so the 202 is sent
/// only for a durable job; when it cannot (broker or service down) the
/// client gets 503 and nothing is stored.
///
/// The payload is the validated body re-serialised, so what was accepted is
/// exactly what the worker decodes, and idempotency compares bodies by
/// meaning (field order and whitespace do not matter).
///
/// An idempotent replay (same tenant, key and body: `created == false`)
/// answers the *same* 202 as the first request — same id, `status: "queued"`
/// — plus `Idempotent-Replayed: true`. The contract defines `status` in a 202
/// as "always queued on acceptance", and a replay repeats that acceptance;
/// the operation's current state is one poll away at `pollUrl`.
async fn accept<T: Serialize>(
    state: AppState,
    caller: Caller,
    key: IdempotencyKey,
    base: ExternalBase,
    kind: Kind,
    body: T,
) -> Result<Response, ApiError> {
    let payload_json = serde_json::to_vec(&body)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("re-encode body")))?;
    let request_id = context::request_id();
    let trace = propagation::trace_context(&tracing::Span::current(), &request_id.to_string());
    let request = CreateOperationRequest {
        tenant_id: caller.tenant_id.to_string(),
        kind: kind.to_proto() as i32,
        payload_json,
        idempotency_key: key.0.unwrap_or_default(),
        trace: Some(trace),
    };
    let response = grpc::call(
        state.operations(),
        "CreateOperation",
        request,
        |mut client, request| async move { client.create_operation(request).await },
    )
    .await
    .map_err(map_status)?
    .into_inner();
    let operation = response.operation.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("CreateOperation answered no operation"))
    })?;
    if operation.tenant_id != *caller.tenant_id {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "CreateOperation answered an operation of another tenant"
        )));
    }
    let replay = !response.created;
    let span = tracing::Span::current();
    span.record("dossier.operation.id", operation.id.as_str());
    span.record("dossier.operation.kind", kind.as_str());
    tracing::info!(
        message = if replay { "Operation replayed." } else { "Operation accepted." },
        operation_id = %operation.id,
        kind = %kind,
    );
    state.metrics().record_accepted(kind, replay);

    let poll_url = base.poll_url(&operation.id);
    let body = Accepted {
        id: operation.id.clone(),
        operation_id: operation.id,
        status: Status::Queued.as_str(),
        poll_url: poll_url.clone(),
        meta: Meta::current(),
    };
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&poll_url).map_err(|e| ApiError::Internal(e.into()))?,
    );
    headers.insert(
        header::RETRY_AFTER,
        HeaderValue::from(POLL_RETRY_AFTER_SECS),
    );
    if replay {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// An operation as clients see it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OperationView {
    id: String,
    operation_id: String,
    kind: Kind,
    status: Status,
    progress: Option<u32>,
    result: Option<Value>,
    error: Option<ErrorView>,
    created_at: Option<String>,
    updated_at: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    cancel_requested: bool,
    poll_url: String,
}

#[derive(Debug, Serialize)]
struct ErrorView {
    code: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
}

impl OperationView {
    /// Converts a record. `result` is shown for `succeeded`,
    /// `partial_success`, and `cancelled` operations that kept partial work;
    /// `error` for `failed` and `cancelled` ones (`{"code": "cancelled"}` when
    /// the record has none); progress is 100 once succeeded or partially
    /// succeeded.
    fn new(op: Operation, base: &ExternalBase) -> Result<OperationView, ApiError> {
        let page = op.result_page.clone();
        let kind = Kind::from_proto(op.kind).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("operation {} has kind {}", op.id, op.kind))
        })?;
        let status = Status::from_proto(op.status).ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "operation {} has status {}",
                op.id,
                op.status
            ))
        })?;
        let result = match status {
            Status::Succeeded | Status::PartialSuccess | Status::Cancelled => op
                .result
                .as_ref()
                .and_then(|r| result_json(&op.id, r))
                .map(|mut result| {
                    // A result with an item list carries its first page and
                    // says where the rest is.
                    if let (Some(page), Some(object)) = (page, result.as_object_mut()) {
                        let view = PageView::new(page, &base.poll_url(&op.id), None);
                        object.insert(
                            "page".to_owned(),
                            serde_json::to_value(view).unwrap_or(Value::Null),
                        );
                    }
                    result
                }),
            _ => None,
        };
        let error = match status {
            Status::Failed | Status::Cancelled => Some(match op.error {
                Some(e) => error_view(e),
                None if status == Status::Cancelled => ErrorView {
                    code: "cancelled".to_owned(),
                    message: "The operation was cancelled.".to_owned(),
                    details: None,
                },
                None => ErrorView {
                    code: "failed".to_owned(),
                    message: "The operation failed.".to_owned(),
                    details: None,
                },
            }),
            _ => None,
        };
        let progress = match status {
            Status::Succeeded | Status::PartialSuccess => Some(100),
            _ => op.progress.map(|p| p.min(100)),
        };
        let time = |t: &Option<prost_types::Timestamp>| t.as_ref().and_then(time_ext::to_rfc3339);
        Ok(OperationView {
            poll_url: base.poll_url(&op.id),
            operation_id: op.id.clone(),
            id: op.id,
            kind,
            status,
            progress,
            result,
            error,
            created_at: time(&op.created_at),
            updated_at: time(&op.updated_at),
            started_at: time(&op.started_at),
            completed_at: time(&op.completed_at),
            cancel_requested: op.cancel_requested,
        })
    }
}

fn result_json(id: &str, result: &dossier_contracts::v1::ResultRef) -> Option<Value> {
    match &result.location {
        Some(result_ref::Location::InlineJson(bytes)) => match serde_json::from_slice(bytes) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(message = "Stored result is not JSON.", operation_id = %id, %error);
                None
            }
        },
        Some(result_ref::Location::ObjectName(name)) => {
            // GetOperation always inlines results; a reference here means
            // the operations service broke that promise.
            tracing::error!(message = "Result was not inlined.", operation_id = %id, object = %name);
            None
        }
        None => None,
    }
}

fn error_view(e: OperationError) -> ErrorView {
    let details = (!e.details_json.is_empty())
        .then(|| serde_json::from_str(&e.details_json).ok())
        .flatten();
    ErrorView {
        code: e.code,
        message: e.message,
        details,
    }
}

/// `GET /api/operations/{id}` with `meta`.
#[derive(Serialize)]
struct OperationResponse {
    #[serde(flatten)]
    operation: OperationView,
    meta: Meta,
}

/// An operation answer: `Retry-After` while it is not finished.
fn operation_response(status: StatusCode, view: OperationView) -> Response {
    let finished = view.status.is_terminal();
    let mut response = (
        status,
        Json(OperationResponse {
            operation: view,
            meta: Meta::current(),
        }),
    )
        .into_response();
    if !finished {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(POLL_RETRY_AFTER_SECS),
        );
    }
    response
}

/// `GET /api/operations/{id}`.
async fn get_operation(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    OperationId(id): OperationId,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("dossier.operation.id", id.as_str());
    let operation = grpc::call(
        state.operations(),
        "GetOperation",
        GetOperationRequest {
            tenant_id: caller.tenant_id.to_string(),
            id,
        },
        |mut client, request| async move { client.get_operation(request).await },
    )
    .await
    .map_err(map_status)?
    .into_inner();
    let view = OperationView::new(operation, &base)?;
    Ok(operation_response(StatusCode::OK, view))
}

/// Where a page of result items is in the whole list, and the link to the
/// next page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PageView {
    /// Index of the page's first item.
    offset: u64,
    /// Items in the page.
    count: u32,
    /// Items in the whole result.
    total: u64,
    /// Cursor of the next page (`null` on the last).
    next_cursor: Option<String>,
    /// `GET` this for the next page (`null` on the last).
    next: Option<String>,
}

impl PageView {
    /// `operation_url` is the operation's poll URL; `limit` is repeated in
    /// the `next` link when the caller chose one.
    fn new(page: ResultPage, operation_url: &str, limit: Option<u32>) -> PageView {
        let next_cursor = (!page.next_cursor.is_empty()).then_some(page.next_cursor);
        let next = next_cursor.as_ref().map(|cursor| {
            let mut url = format!("{operation_url}/results?cursor={cursor}");
            if let Some(limit) = limit {
                url.push_str(&format!("&limit={limit}"));
            }
            url
        });
        PageView {
            offset: page.offset,
            count: page.count,
            total: page.total,
            next_cursor,
            next,
        }
    }
}

/// `GET /api/operations/{id}/results` page: `{ data, page, meta }`.
#[derive(Serialize)]
struct ResultsResponse {
    data: Value,
    page: PageView,
    meta: Meta,
}

/// The validated query of `GET /api/operations/{id}/results`.
#[derive(Debug, Default, PartialEq)]
struct ResultsQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// A `limit` query parameter from 1 to `max`, or an issue naming it.
fn parse_limit(value: &str, max: u32, errors: &mut Vec<Issue>) -> Option<u32> {
    match value.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Some(n),
        _ => {
            errors.push(Issue::parameter(
                "limit",
                format!("must be an integer from 1 to {max}"),
            ));
            None
        }
    }
}

/// A `cursor` query parameter (opaque, but bounded and printable), or an
/// issue naming it; `source` says where clients get cursors from.
fn parse_cursor(value: &str, source: &str, errors: &mut Vec<Issue>) -> Option<String> {
    let valid = !value.is_empty()
        && value.len() <= MAX_CURSOR_LEN
        && value.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        let detail = format!("must be a cursor from a previous page's {source}");
        errors.push(Issue::parameter("cursor", detail));
        return None;
    }
    Some(value.to_owned())
}

fn parse_results_query(pairs: &[(String, String)]) -> Result<ResultsQuery, ApiError> {
    parse_query(
        pairs,
        ResultsQuery::default(),
        "cursor or limit",
        |query, name, value, errors| {
            match name {
                "limit" => query.limit = parse_limit(value, MAX_RESULTS_LIMIT, errors),
                "cursor" => query.cursor = parse_cursor(value, "nextCursor", errors),
                _ => return false,
            }
            true
        },
    )
}

/// Parses query parameters into `query`, reporting every bad one by name:
/// repeated names, names `field` does not know (it returns false; `expected`
/// lists the known ones), and the values `field` rejects into `errors`.
fn parse_query<Q>(
    pairs: &[(String, String)],
    mut query: Q,
    expected: &str,
    mut field: impl FnMut(&mut Q, &str, &str, &mut Vec<Issue>) -> bool,
) -> Result<Q, ApiError> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (name, value) in pairs {
        if !seen.insert(name.as_str()) {
            errors.push(Issue::parameter(name, "must be given at most once"));
        } else if !field(&mut query, name, value, &mut errors) {
            errors.push(Issue::parameter(
                name,
                format!("unknown parameter; expected {expected}"),
            ));
        }
    }
    if errors.is_empty() {
        Ok(query)
    } else {
        Err(ApiError::invalid_parameters(errors))
    }
}

/// `GET /api/operations/{id}/results?cursor=&limit=`: a page of the items
/// (the `data` list) of a finished operation's result, for results too
/// large for one answer. The first page is also in the operation itself;
/// follow `page.next` to the last page (`next: null`). 409 when the
/// operation has no result (yet) or its result has no item list.
async fn get_operation_results(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    OperationId(id): OperationId,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("dossier.operation.id", id.as_str());
    let pairs = query
        .map_err(|rejection| ApiError::Validation {
            detail: format!("The query string is invalid: {}.", rejection.body_text()),
            errors: Vec::new(),
        })?
        .0;
    let query = parse_results_query(&pairs)?;
    let has_cursor = query.cursor.is_some();
    let response = grpc::call(
        state.operations(),
        "GetOperationResults",
        GetOperationResultsRequest {
            tenant_id: caller.tenant_id.to_string(),
            id: id.clone(),
            cursor: query.cursor.unwrap_or_default(),
            limit: query.limit.unwrap_or(DEFAULT_RESULTS_LIMIT),
        },
        |mut client, request| async move { client.get_operation_results(request).await },
    )
    .await
    .map_err(|status| match status.code() {
        // The only argument the gateway cannot check itself is the
        // opaque cursor.
        tonic::Code::InvalidArgument if has_cursor => {
            ApiError::invalid_parameters(vec![Issue::parameter(
                "cursor",
                "must be a cursor from a previous page's nextCursor",
            )])
        }
        tonic::Code::FailedPrecondition => ApiError::OperationConflict(format!(
            "The operation has no result items to page through: {}.",
            status.message()
        )),
        _ => map_status(status),
    })?
    .into_inner();
    let data: Value = serde_json::from_slice(&response.items_json).map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("result page is not JSON"))
    })?;
    let page = response
        .page
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("result page without its position")))?;
    Ok(Json(ResultsResponse {
        data,
        page: PageView::new(page, &base.poll_url(&id), query.limit),
        meta: Meta::current(),
    })
    .into_response())
}

/// `POST /api/operations/{id}/cancel`: 200 when the operation is now
/// cancelled (it was queued), 202 when its worker was told to stop (it was
/// processing; `cancelRequested: true`), 409 when it had already finished.
async fn cancel_operation(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    OperationId(id): OperationId,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("dossier.operation.id", id.as_str());
    let response = grpc::call(
        state.operations(),
        "CancelOperation",
        CancelOperationRequest {
            tenant_id: caller.tenant_id.to_string(),
            id,
        },
        |mut client, request| async move { client.cancel_operation(request).await },
    )
    .await
    .map_err(map_status)?
    .into_inner();
    let operation = response.operation.ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!("CancelOperation answered no operation"))
    })?;
    let view = OperationView::new(operation, &base)?;
    tracing::info!(message = "Cancellation requested.", status = %view.status);
    let status = if view.status == Status::Cancelled {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(operation_response(status, view))
}

/// `GET /api/operations` page: `{ data, meta: { requestId, nextCursor } }`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListResponse {
    data: Vec<OperationView>,
    meta: ListMeta,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    #[serde(flatten)]
    meta: Meta,
    next_cursor: Option<String>,
}

/// The validated query of `GET /api/operations`.
#[derive(Debug, Default, PartialEq)]
struct ListQuery {
    status: Option<Status>,
    kind: Option<Kind>,
    limit: u32,
    cursor: Option<String>,
}

fn one_of<T: std::fmt::Display>(all: &[T]) -> String {
    all.iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses the list query, reporting every bad parameter by name: unknown
/// names, repeated ones, and values out of their domain.
fn parse_list_query(pairs: &[(String, String)]) -> Result<ListQuery, ApiError> {
    let query = ListQuery {
        limit: DEFAULT_LIST_LIMIT,
        ..ListQuery::default()
    };
    parse_query(
        pairs,
        query,
        "status, kind, limit or cursor",
        |query, name, value, errors| {
            match name {
                "status" => match value.parse::<Status>() {
                    Ok(s) => query.status = Some(s),
                    Err(_) => errors.push(Issue::parameter(
                        "status",
                        format!("must be one of {}", one_of(&Status::ALL)),
                    )),
                },
                "kind" => match value.parse::<Kind>() {
                    Ok(k) => query.kind = Some(k),
                    Err(_) => errors.push(Issue::parameter(
                        "kind",
                        format!("must be one of {}", one_of(&Kind::ALL)),
                    )),
                },
                "limit" => {
                    if let Some(n) = parse_limit(value, MAX_LIST_LIMIT, errors) {
                        query.limit = n;
                    }
                }
                "cursor" => query.cursor = parse_cursor(value, "meta.nextCursor", errors),
                _ => return false,
            }
            true
        },
    )
}

/// `GET /api/operations`: the tenant's operations, newest first. Listings
/// carry no result payloads (`result` is null); get one operation for it.
async fn list_operations(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let pairs = query
        .map_err(|rejection| ApiError::Validation {
            detail: format!("The query string is invalid: {}.", rejection.body_text()),
            errors: Vec::new(),
        })?
        .0;
    let query = parse_list_query(&pairs)?;
    let has_cursor = query.cursor.is_some();
    let response = grpc::call(
        state.operations(),
        "ListOperations",
        ListOperationsRequest {
            tenant_id: caller.tenant_id.to_string(),
            status: query.status.map_or(0, |s| s.to_proto() as i32),
            kind: query.kind.map_or(0, |k| k.to_proto() as i32),
            limit: query.limit,
            cursor: query.cursor.unwrap_or_default(),
        },
        |mut client, request| async move { client.list_operations(request).await },
    )
    .await
    .map_err(|status| {
        // The only argument the gateway cannot check itself is the
        // opaque cursor.
        if status.code() == tonic::Code::InvalidArgument && has_cursor {
            ApiError::invalid_parameters(vec![Issue::parameter(
                "cursor",
                "must be a cursor from a previous page's meta.nextCursor",
            )])
        } else {
            map_status(status)
        }
    })?
    .into_inner();
    let data = response
        .operations
        .into_iter()
        .map(|op| {
            OperationView::new(op, &base).map(|mut view| {
                view.result = None;
                view
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = (!response.next_cursor.is_empty()).then_some(response.next_cursor);
    Ok(Json(ListResponse {
        data,
        meta: ListMeta {
            meta: Meta::current(),
            next_cursor,
        },
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parameters(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation { errors, .. } => errors
                .into_iter()
                .map(|i| match i.location {
                    crate::error::Location::Parameter(p) => p,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn list_query_defaults_and_values() {
        assert_eq!(
            parse_list_query(&[]).unwrap(),
            ListQuery {
                limit: 20,
                ..ListQuery::default()
            }
        );
        let q = parse_list_query(&pairs(&[
            ("status", "partial_success"),
            ("kind", "search.people"),
            ("limit", "100"),
            ("cursor", "abc"),
        ]))
        .unwrap();
        assert_eq!(q.status, Some(Status::PartialSuccess));
        assert_eq!(q.kind, Some(Kind::SearchPeople));
        assert_eq!(q.limit, 100);
        assert_eq!(q.cursor.as_deref(), Some("abc"));
    }

    #[test]
    fn list_query_names_every_bad_parameter() {
        let err = parse_list_query(&pairs(&[
            ("status", "done"),
            ("kind", "search"),
            ("limit", "0"),
            ("cursor", ""),
            ("color", "red"),
        ]))
        .unwrap_err();
        assert_eq!(
            parameters(err),
            ["status", "kind", "limit", "cursor", "color"]
        );
        for limit in ["101", "-1", "ten", ""] {
            let err = parse_list_query(&pairs(&[("limit", limit)])).unwrap_err();
            assert_eq!(parameters(err), ["limit"], "{limit}");
        }
        let err = parse_list_query(&pairs(&[("limit", "5"), ("limit", "6")])).unwrap_err();
        assert_eq!(parameters(err), ["limit"]);
    }

    fn op(status: Status) -> Operation {
        Operation {
            id: "0190b7a0-0000-7000-8000-000000000001".to_owned(),
            tenant_id: "acme".to_owned(),
            kind: Kind::SearchPeople.to_proto() as i32,
            status: status.to_proto() as i32,
            progress: Some(40),
            result: Some(dossier_contracts::v1::ResultRef {
                location: Some(result_ref::Location::InlineJson(br#"{"data":[]}"#.to_vec())),
                size_bytes: 11,
            }),
            error: None,
            created_at: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            ..Operation::default()
        }
    }

    #[test]
    fn views_follow_the_contract() {
        let base = ExternalBase("https://h".to_owned());
        let v = OperationView::new(op(Status::Processing), &base).unwrap();
        assert_eq!(v.result, None, "no result before the end");
        assert_eq!(v.progress, Some(40));
        assert!(v.error.is_none());
        assert_eq!(v.created_at.as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(v.started_at, None);
        assert_eq!(
            v.poll_url,
            "https://h/api/operations/0190b7a0-0000-7000-8000-000000000001"
        );

        let v = OperationView::new(op(Status::Succeeded), &base).unwrap();
        assert_eq!(v.result, Some(serde_json::json!({"data": []})));
        assert_eq!(v.progress, Some(100));

        let v = OperationView::new(op(Status::Cancelled), &base).unwrap();
        assert_eq!(v.error.unwrap().code, "cancelled");

        let mut failed = op(Status::Failed);
        failed.error = Some(OperationError {
            code: "provider_down".to_owned(),
            message: "m".to_owned(),
            details_json: r#"{"attempts":3}"#.to_owned(),
        });
        let v = OperationView::new(failed, &base).unwrap();
        assert_eq!(v.result, None);
        let json = serde_json::to_value(v.error.unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "provider_down", "message": "m", "details": {"attempts": 3}})
        );

        let mut unknown = op(Status::Queued);
        unknown.status = 0;
        assert!(OperationView::new(unknown, &base).is_err());
    }
}
