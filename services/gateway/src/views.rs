//! The JSON shapes the gateway answers about operations: an operation as
//! clients see it, its error, a page of result items, and the list page.
//! Built from the operations service's answers in one place, so every route
//! shows an operation the same way.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dossier_contracts::v1::{self, OperationError, ResultPage};
use dossier_contracts::{Kind, Status, time_ext};
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, Meta};
use crate::extract::ExternalBase;

/// `Retry-After` (seconds) on 202s and on operations that are not finished.
pub(crate) const POLL_RETRY_AFTER_SECS: u64 = 1;

/// An operation: its status, progress, result and error. In a list the
/// operations carry no `meta` (the page has it) and `result` is null.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Operation)]
pub(crate) struct OperationView {
    /// The operation's id (a UUIDv7: it sorts by creation time).
    #[schema(format = Uuid)]
    pub(crate) id: String,
    /// Equal to `id`.
    #[schema(format = Uuid)]
    pub(crate) operation_id: String,
    /// What it does.
    pub(crate) kind: Kind,
    /// Where it is.
    pub(crate) status: Status,
    /// 0-100, or null while not tracked. Never decreases; 100 once
    /// `succeeded` or `partial_success`.
    #[schema(required = true, minimum = 0, maximum = 100)]
    pub(crate) progress: Option<u32>,
    /// The kind's payload when `succeeded` or `partial_success` (and when
    /// `cancelled` with partial work kept, as `enrichment.batch` does);
    /// else null. An `EnrichmentResult`, a `SearchResult` or a
    /// `ResearchResult`; a payload whose `data` list exceeds one page (100
    /// items) holds the first page and `page`.
    #[schema(required = true, schema_with = result_schema)]
    pub(crate) result: Option<Value>,
    /// Why it failed (`failed`), or `{"code": "cancelled"}` (`cancelled`);
    /// else null.
    #[schema(required = true)]
    pub(crate) error: Option<ErrorView>,
    /// When it was accepted.
    #[schema(value_type = String, format = DateTime)]
    pub(crate) created_at: Option<String>,
    /// When it last changed.
    #[schema(value_type = String, format = DateTime)]
    pub(crate) updated_at: Option<String>,
    /// When a worker started it.
    #[schema(required = true, format = DateTime)]
    pub(crate) started_at: Option<String>,
    /// When it ended.
    #[schema(required = true, format = DateTime)]
    pub(crate) completed_at: Option<String>,
    /// Whether cancellation was requested (the worker stops between
    /// steps).
    pub(crate) cancel_requested: bool,
    /// When the operation and its result are deleted; reads answer 410 after.
    #[schema(value_type = String, format = DateTime)]
    pub(crate) expires_at: Option<String>,
    /// Where to poll it (`GET`), fully qualified.
    #[schema(format = "uri")]
    pub(crate) poll_url: String,
}

/// `Operation.result`: one of the kinds' payloads, or null.
fn result_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Ref, Schema, Type};
    Schema::AnyOf(
        AnyOfBuilder::new()
            .item(Ref::from_schema_name("EnrichmentResult"))
            .item(Ref::from_schema_name("SearchResult"))
            .item(Ref::from_schema_name("ResearchResult"))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    )
}

/// Why an operation failed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OperationError)]
pub(crate) struct ErrorView {
    /// snake_case, e.g. `providers_unavailable`, `max_deliveries_exceeded`,
    /// `cancelled`.
    pub(crate) code: String,
    /// For a person.
    pub(crate) message: String,
    /// More, by code (e.g. the counts of a failed batch).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, value_type = Option<Object>)]
    pub(crate) details: Option<Value>,
}

impl OperationView {
    /// Converts the operations service's answer. `result` is shown for
    /// `succeeded`, `partial_success`, and `cancelled` operations that kept
    /// partial work; `error` for `failed` and `cancelled` ones
    /// (`{"code": "cancelled"}` when the answer has none); progress is 100
    /// once succeeded or partially succeeded.
    pub(crate) fn new(
        op: v1::OperationView,
        base: &ExternalBase,
    ) -> Result<OperationView, ApiError> {
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
                .result_json
                .as_deref()
                .and_then(|json| result_json(&op.id, json))
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
            expires_at: time(&op.expires_at),
        })
    }
}

fn result_json(id: &str, json: &[u8]) -> Option<Value> {
    match serde_json::from_slice(json) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::error!(message = "Stored result is not JSON.", operation_id = %id, %error);
            None
        }
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

/// An operation with the request's `meta`: the answer of
/// `GET /api/operations/{id}`, of a cancel, of a creating POST that
/// finished within `Prefer: wait`, and each event's `data`.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct OperationResponse {
    #[serde(flatten)]
    pub(crate) operation: OperationView,
    pub(crate) meta: Meta,
}

/// An operation answer: `Retry-After` while it is not finished.
pub(crate) fn operation_response(status: StatusCode, view: OperationView) -> Response {
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

/// Where a page of result items is in the whole list, and the link to the
/// next page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ResultPage)]
pub(crate) struct PageView {
    /// Index of the page's first item.
    pub(crate) offset: u64,
    /// Items in the page.
    pub(crate) count: u32,
    /// Items in the whole result.
    pub(crate) total: u64,
    /// Cursor of the next page (`null` on the last).
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
    /// `GET` this for the next page (`null` on the last).
    #[schema(required = true, format = "uri")]
    pub(crate) next: Option<String>,
}

impl PageView {
    /// `operation_url` is the operation's poll URL; `limit` is repeated in
    /// the `next` link when the caller chose one.
    pub(crate) fn new(page: ResultPage, operation_url: &str, limit: Option<u32>) -> PageView {
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
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ResultsResponse {
    /// The kind's items, e.g. `EnrichedRecord`s.
    #[schema(value_type = Vec<Object>)]
    pub(crate) data: Value,
    /// Where the page is.
    pub(crate) page: PageView,
    /// The request id.
    pub(crate) meta: Meta,
}

/// `GET /api/operations` page: `{ data, meta: { requestId, nextCursor } }`.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListResponse {
    /// The operations, newest first, without results or `meta`.
    pub(crate) data: Vec<OperationView>,
    /// The request id and the next page's cursor.
    pub(crate) meta: ListMeta,
}

/// `meta` of a list page.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListMeta {
    #[serde(flatten)]
    pub(crate) meta: Meta,
    /// Pass as `cursor` for the next page; null on the last.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(status: Status) -> v1::OperationView {
        v1::OperationView {
            id: "0190b7a0-0000-7000-8000-000000000001".to_owned(),
            tenant_id: "acme".to_owned(),
            kind: Kind::SearchPeople.to_proto() as i32,
            status: status.to_proto() as i32,
            progress: Some(40),
            result_json: Some(br#"{"data":[]}"#.to_vec()),
            error: None,
            created_at: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            ..v1::OperationView::default()
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
