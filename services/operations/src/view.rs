//! Stored records → the answers of the gRPC API, in one place.
//!
//! A record (`Operation`, in KV) may reference its result in the object
//! store and keeps what only the service needs (the request id, the highest
//! attempt). An answer (`OperationView`) carries what a caller shows: the
//! result inline, paged when it is long, or no result at all.

use dossier_contracts::v1::{Operation, OperationView, ResultPage, ResultRef, result_ref};

use crate::Shared;
use crate::error::Error;
use crate::results;

/// The answer for `record`, without its result (Create and List answers).
pub(crate) fn without_result(record: Operation) -> OperationView {
    view(record, None, None)
}

/// The answer for `record` with its result inline (Get, Cancel and Watch
/// answers): a result whose `data` array holds more than the first page
/// carries only that page, and `result_page` says where the rest is (see
/// `results.rs`). A result whose object is gone is left out.
pub(crate) async fn with_result(
    shared: &Shared,
    mut record: Operation,
) -> Result<OperationView, Error> {
    let Some(reference) = record.result.take() else {
        return Ok(without_result(record));
    };
    let (json, page) = inline(shared, &record.id, reference).await?.unzip();
    Ok(view(record, json, page.flatten()))
}

/// The result `reference` points to as JSON, with the page it holds when it
/// holds only the first one; `None` when its object is gone.
async fn inline(
    shared: &Shared,
    operation_id: &str,
    reference: ResultRef,
) -> Result<Option<(Vec<u8>, Option<ResultPage>)>, Error> {
    let parsed = results::load(
        &shared.topology.results,
        &shared.results,
        operation_id,
        &reference,
    )
    .await?;
    Ok(match (parsed.as_deref(), reference.location) {
        (None, _) => None,
        // Items that fit the first page are served as stored.
        (Some(results::Parsed::Paged(paged)), _) if paged.total() > results::FIRST_PAGE_ITEMS => {
            let (json, page) = paged.first_page(results::FIRST_PAGE_ITEMS);
            Some((json, Some(page)))
        }
        (_, Some(result_ref::Location::InlineJson(json))) => Some((json, None)),
        (Some(results::Parsed::Whole(json)), _) => Some((json.clone(), None)),
        (Some(results::Parsed::Paged(paged)), _) => Some((paged.first_page(paged.total()).0, None)),
    })
}

fn view(
    record: Operation,
    result_json: Option<Vec<u8>>,
    result_page: Option<ResultPage>,
) -> OperationView {
    OperationView {
        id: record.id,
        tenant_id: record.tenant_id,
        kind: record.kind,
        status: record.status,
        progress: record.progress,
        result_json,
        result_page,
        error: record.error,
        created_at: record.created_at,
        updated_at: record.updated_at,
        started_at: record.started_at,
        completed_at: record.completed_at,
        cancel_requested: record.cancel_requested,
        expires_at: record.expires_at,
    }
}
