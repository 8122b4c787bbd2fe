//! Reading, listing, paging and cancelling operations.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dossier_contracts::{Kind, Status};

use crate::openapi::components::{self, ProblemDoc};
use crate::views::OperationResponse;
use dossier_contracts::v1::{
    CancelOperationRequest, GetOperationRequest, GetOperationResultsRequest, ListOperationsRequest,
};
use serde_json::Value;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, Issue, Meta};
use crate::extract::{ExternalBase, OperationId};
use crate::grpc::map_status;
use crate::prefer::WaitPreference;
use crate::query::{DEFAULT_RESULTS_LIMIT, parse_list_query, parse_results_query, query_pairs};
use crate::views::{
    ListMeta, ListResponse, OperationView, PageView, ResultsResponse, operation_response,
};
use crate::watch::{self, Waited};

#[utoipa::path(
    get,
    path = "/api/operations/{id}",
    operation_id = "getOperation",
    summary = "Status, progress, result and error of an operation.",
    description = "With `Prefer: wait=N` the answer comes as soon as the operation is terminal, \
or after N seconds with its state then (at once when it is already terminal).",
    params(components::OperationIdPath, components::PreferHeader),
    responses(
        (status = 200, description = "The operation. `Retry-After` is set while it is not \
terminal. A result whose `data` list holds more than 100 items carries only the first 100 and \
`result.page` (`ResultPage`): follow `result.page.next` to read the rest. Smaller results are \
returned whole, without `page`.",
            body = OperationResponse,
            headers(
                ("X-Request-Id" = String, description = "A fresh UUID per request; equals `meta.requestId`."),
                ("Retry-After" = u64, description = "Seconds before polling again (while not terminal)."),
                ("Preference-Applied" = String, description = "`wait=M` when the gateway waited."),
                ("Vary" = String, description = "`Prefer`: the answer depends on it."),
            )),
        (status = 401, response = components::Unauthorized),
        (status = 404, response = components::NotFound),
        (status = 410, response = components::Gone),
        (status = 429, response = components::TooManyRequests),
        (status = 503, response = components::Unavailable),
    ),
)]
/// `GET /api/operations/{id}`. With `Prefer: wait=N` the answer comes when
/// the operation is terminal or the wait is over (see [`crate::prefer`]),
/// following the operation's changes through `WatchOperation`.
pub(crate) async fn get_operation(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    OperationId(id): OperationId,
    prefer: WaitPreference,
) -> Result<Response, ApiError> {
    dossier_telemetry::record_operation_id(id.as_str());
    let wait = prefer.wait(state.request_timeout());
    let waited = match &wait {
        Some(wait) => watch::wait_for_terminal(&state, &caller.tenant_id, &id, wait).await?,
        None => None,
    };
    let applied = waited.as_ref().and(wait);
    let operation = match waited {
        Some(Waited {
            view,
            interrupted: None,
        }) => view,
        Some(Waited {
            interrupted: Some(status),
            ..
        }) => {
            // The watch broke off (e.g. an operations replica restarts):
            // answer with the state as it is now.
            tracing::info!(message = "Wait interrupted; reading the operation.", error = %status);
            read_operation(&state, &caller, id).await?
        }
        None => read_operation(&state, &caller, id).await?,
    };
    let view = OperationView::new(operation, &base)?;
    let mut response = operation_response(StatusCode::OK, view);
    let headers = response.headers_mut();
    // The answer depends on `Prefer` (RFC 7240 section 2), so caches must
    // key on it.
    headers.insert(header::VARY, HeaderValue::from_static("Prefer"));
    if let Some(wait) = applied {
        let (name, value) = wait.applied();
        headers.insert(name, value);
    }
    Ok(response)
}

/// `GetOperation`: the operation as it is now.
async fn read_operation(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> Result<dossier_contracts::v1::OperationView, ApiError> {
    Ok(state
        .operations()
        .get_operation(state.signed(GetOperationRequest {
            tenant_id: caller.tenant_id.to_string(),
            id,
        })?)
        .await
        .map_err(map_status)?
        .into_inner())
}

#[utoipa::path(
    get,
    path = "/api/operations/{id}/results",
    operation_id = "getOperationResults",
    summary = "A page of the items of an operation's result.",
    description = "The items of the result's `data` list from `cursor` (the first item when \
absent or empty). Follow `page.next` until it is `null`. Works for every finished operation \
whose result has a `data` list (succeeded, partial_success, and cancelled ones that kept partial \
work); the same tenant rules as `GET /api/operations/{id}` apply (404).",
    params(
        components::OperationIdPath,
        ("cursor" = Option<String>, Query, description = "Opaque; `page.nextCursor` of the previous page. Empty or absent: the first page."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Items per page, 1-1000 (default 100)."),
    ),
    responses(
        (status = 200, description = "A page of items.", body = ResultsResponse,
            headers(("X-Request-Id" = String, description = "A fresh UUID per request; equals `meta.requestId`."))),
        (status = 400, response = components::BadRequest),
        (status = 401, response = components::Unauthorized),
        (status = 404, response = components::NotFound),
        (status = 409, description = "`operation_conflict`: the operation has no result (yet), or its result has no item list.",
            body = ProblemDoc, content_type = "application/problem+json",
            headers(("X-Request-Id" = String))),
        (status = 410, response = components::Gone),
        (status = 429, response = components::TooManyRequests),
        (status = 503, response = components::Unavailable),
    ),
)]
/// `GET /api/operations/{id}/results?cursor=&limit=`: a page of the items
/// (the `data` list) of a finished operation's result, for results too
/// large for one answer. The first page is also in the operation itself;
/// follow `page.next` to the last page (`next: null`). 409 when the
/// operation has no result (yet) or its result has no item list.
pub(crate) async fn get_operation_results(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    OperationId(id): OperationId,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    dossier_telemetry::record_operation_id(id.as_str());
    let pairs = query_pairs(query)?;
    let query = parse_results_query(&pairs)?;
    let has_cursor = query.cursor.is_some();
    let response = state
        .operations()
        .get_operation_results(state.signed(GetOperationResultsRequest {
            tenant_id: caller.tenant_id.to_string(),
            id: id.clone(),
            cursor: query.cursor.unwrap_or_default(),
            limit: query.limit.unwrap_or(DEFAULT_RESULTS_LIMIT),
        })?)
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

#[utoipa::path(
    post,
    path = "/api/operations/{id}/cancel",
    operation_id = "cancelOperation",
    summary = "Request cancellation.",
    description = "`queued`: cancelled at once, the job never runs (200). `processing`: the \
worker is told to stop and stops between steps (202, `cancelRequested: true`); the operation \
then ends `cancelled`. Work already done is discarded, except for `enrichment.batch`: its \
finished chunks are kept as the cancelled operation's `result` (`meta.complete: false`), read \
like any result. Terminal: 409, nothing changes.",
    params(components::OperationIdPath),
    responses(
        (status = 200, description = "Cancelled.", body = OperationResponse,
            headers(("X-Request-Id" = String))),
        (status = 202, description = "Cancellation requested; the worker stops cooperatively.",
            body = OperationResponse, headers(("X-Request-Id" = String))),
        (status = 401, response = components::Unauthorized),
        (status = 404, response = components::NotFound),
        (status = 409, response = components::Conflict),
        (status = 410, response = components::Gone),
        (status = 429, response = components::TooManyRequests),
        (status = 503, response = components::Unavailable),
    ),
)]
/// `POST /api/operations/{id}/cancel`: 200 when the operation is now
/// cancelled (it was queued), 202 when its worker was told to stop (it was
/// processing; `cancelRequested: true`), 409 when it had already finished.
pub(crate) async fn cancel_operation(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    OperationId(id): OperationId,
) -> Result<Response, ApiError> {
    dossier_telemetry::record_operation_id(id.as_str());
    let response = state
        .operations()
        .cancel_operation(state.signed(CancelOperationRequest {
            tenant_id: caller.tenant_id.to_string(),
            id,
        })?)
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

#[utoipa::path(
    get,
    path = "/api/operations",
    operation_id = "listOperations",
    summary = "The tenant's operations, newest first.",
    params(
        ("status" = Option<Status>, Query, description = "Only operations with this status."),
        ("kind" = Option<Kind>, Query, description = "Only operations of this kind."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Operations per page, 1-100 (default 20)."),
        ("cursor" = Option<String>, Query, description = "Opaque; `meta.nextCursor` of the previous page. Empty or absent: the first page."),
    ),
    responses(
        (status = 200, description = "A page of operations (results omitted, no `meta` per item).",
            body = ListResponse,
            headers(("X-Request-Id" = String, description = "A fresh UUID per request; equals `meta.requestId`."))),
        (status = 400, response = components::BadRequest),
        (status = 401, response = components::Unauthorized),
        (status = 429, response = components::TooManyRequests),
        (status = 503, response = components::Unavailable),
    ),
)]
/// `GET /api/operations`: the tenant's operations, newest first. Listings
/// carry no result payloads (`result` is null); get one operation for it.
pub(crate) async fn list_operations(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(query)?;
    let query = parse_list_query(&pairs)?;
    let has_cursor = query.cursor.is_some();
    let response = state
        .operations()
        .list_operations(state.signed(ListOperationsRequest {
            tenant_id: caller.tenant_id.to_string(),
            status: query.status.map_or(0, |s| s.to_proto() as i32),
            kind: query.kind.map_or(0, |k| k.to_proto() as i32),
            limit: query.limit,
            cursor: query.cursor.unwrap_or_default(),
        })?)
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
