//! The `dossier.v1.Operations` gRPC service.
//!
//! Every call is scoped to a tenant: an operation of another tenant answers
//! NOT_FOUND, built from the same error as a missing one, so the two cannot
//! be told apart. Ids that are not UUIDs cannot name an operation and are
//! NOT_FOUND too.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dossier_contracts::v1::operations_server::Operations;
use dossier_contracts::v1::{
    CancelOperationRequest, CancelOperationResponse, CreateOperationRequest,
    CreateOperationResponse, GetOperationRequest, GetOperationResultsRequest,
    GetOperationResultsResponse, ListOperationsRequest, ListOperationsResponse, Operation,
    OperationView, Tenanted,
};
use dossier_contracts::{Kind, Status, time_ext};
use dossier_telemetry::propagation;
use futures::StreamExt as _;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response};
use uuid::Uuid;

use crate::Shared;
use crate::accept::{self, validate_tenant};
use crate::error::Error;
use crate::merge::{CancelDecision, CancelOutcome, cancel, status_of};
use crate::records::{Change, Modified, Versioned};
use crate::{fence, results, retention, view};

/// Page size when the request leaves it at 0.
pub(crate) const DEFAULT_LIMIT: u32 = 20;
/// Largest page.
pub(crate) const MAX_LIMIT: u32 = 100;
/// Records of one page fetched from KV at once.
const FETCH_CONCURRENCY: usize = 100;

/// The gRPC service implementation.
#[derive(Clone)]
pub(crate) struct OperationsService {
    shared: Arc<Shared>,
}

impl OperationsService {
    pub(crate) fn new(shared: Arc<Shared>) -> OperationsService {
        OperationsService { shared }
    }

    /// The tenant's record of `id`; NOT_FOUND, or GONE when it expired
    /// (see `retention.rs` for the rule, which tells nothing of other
    /// tenants' operations).
    async fn load_owned(&self, tenant: &str, id: &str) -> Result<Versioned, Error> {
        validate_tenant(tenant)?;
        // Only a canonical UUID can be a key; anything else names nothing.
        let Ok(uuid) = Uuid::parse_str(id) else {
            return Err(Error::NotFound);
        };
        let retention = self.shared.records.retention();
        let now = std::time::SystemTime::now();
        match self.shared.records.load(&uuid.to_string()).await? {
            // The call's span carries the caller's request id (gRPC
            // metadata), not the one that created the operation.
            Some(found) if found.record.tenant_id == tenant => {
                // Past its expiry, awaiting the broker's TTL.
                if retention::is_expired(&found.record, retention, now) {
                    return Err(Error::Gone);
                }
                Ok(found)
            }
            _ if retention::id_expired(&uuid, retention, now) => Err(Error::Gone),
            _ => Err(Error::NotFound),
        }
    }
}

/// Lets the call act for its tenant only if its service token (checked by
/// the server's `dossier_identity::grpc::authenticate` interceptor) names
/// that tenant, and records the tenant and operation on the call's server
/// span (made by `dossier_telemetry::grpc::ServerTraceLayer`, which runs
/// every call inside it).
fn authorize<T: Tenanted>(
    request: &Request<T>,
    operation_id: impl FnOnce(&T) -> Option<&str>,
) -> Result<(), tonic::Status> {
    let span = tracing::Span::current();
    span.record("tenant.id", request.get_ref().tenant_id());
    if let Some(id) = operation_id(request.get_ref()) {
        dossier_telemetry::record_operation_id(id);
    }
    dossier_identity::grpc::authorized_tenant(request).map(drop)
}

#[tonic::async_trait]
impl Operations for OperationsService {
    async fn create_operation(
        &self,
        request: Request<CreateOperationRequest>,
    ) -> Result<Response<CreateOperationResponse>, tonic::Status> {
        // The caller's request id names the operation's request for good
        // (the record keeps it; the job carries it to the worker).
        let request_id = request
            .metadata()
            .get(propagation::REQUEST_ID_METADATA)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        authorize(&request, |_| None)?;
        let request = request.into_inner();
        let (operation, created) = accept::create(&self.shared, request, request_id).await?;
        dossier_telemetry::record_operation_id(operation.id.as_str());
        Ok(Response::new(CreateOperationResponse {
            operation: Some(view::without_result(operation)),
            created,
        }))
    }

    async fn get_operation(
        &self,
        request: Request<GetOperationRequest>,
    ) -> Result<Response<OperationView>, tonic::Status> {
        authorize(&request, |r| Some(&r.id))?;
        let request = request.into_inner();
        let found = self.load_owned(&request.tenant_id, &request.id).await?;
        let operation = view::with_result(&self.shared, found.record).await?;
        Ok(Response::new(operation))
    }

    async fn list_operations(
        &self,
        request: Request<ListOperationsRequest>,
    ) -> Result<Response<ListOperationsResponse>, tonic::Status> {
        authorize(&request, |_| None)?;
        let request = request.into_inner();
        Ok(Response::new(list(&self.shared, request).await?))
    }

    async fn cancel_operation(
        &self,
        request: Request<CancelOperationRequest>,
    ) -> Result<Response<CancelOperationResponse>, tonic::Status> {
        authorize(&request, |r| Some(&r.id))?;
        let request = request.into_inner();
        let found = self.load_owned(&request.tenant_id, &request.id).await?;
        let operation = cancel_operation(&self.shared, &request.tenant_id, found).await?;
        Ok(Response::new(CancelOperationResponse {
            operation: Some(operation),
        }))
    }

    async fn get_operation_results(
        &self,
        request: Request<GetOperationResultsRequest>,
    ) -> Result<Response<GetOperationResultsResponse>, tonic::Status> {
        authorize(&request, |r| Some(&r.id))?;
        let request = request.into_inner();
        let found = self.load_owned(&request.tenant_id, &request.id).await?;
        let page = result_items(&self.shared, &found.record, &request).await?;
        Ok(Response::new(page))
    }

    type WatchOperationStream = ReceiverStream<Result<OperationView, tonic::Status>>;

    async fn watch_operation(
        &self,
        request: Request<GetOperationRequest>,
    ) -> Result<Response<Self::WatchOperationStream>, tonic::Status> {
        authorize(&request, |r| Some(&r.id))?;
        let request = request.into_inner();
        validate_tenant(&request.tenant_id)?;
        let Ok(id) = Uuid::parse_str(&request.id) else {
            return Err(Error::NotFound.into());
        };
        let id = id.to_string();
        // Subscribe first, then read: a change between the two is then
        // seen by the subscription, and revisions tell what was already
        // sent. The changes come from the replica's one bucket watch (see
        // `watchers.rs`), not from a JetStream consumer per call.
        let watch = self.shared.watchers.subscribe(&id);
        let current = self.load_owned(&request.tenant_id, &id).await?;
        let (tx, rx) = mpsc::channel(16);
        let shared = self.shared.clone();
        // The stream outlives the call: its task stays in the call's span
        // (or its untraced scope).
        tokio::spawn(
            dossier_telemetry::Traced::current()
                .wrap(forward_changes(shared, id, current, watch, tx)),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Sends `current`, then every newer version of the record, until it is
/// terminal, the caller goes away, or the service shuts down (tonic's
/// graceful shutdown waits for open streams, so they must end).
async fn forward_changes(
    shared: Arc<Shared>,
    id: String,
    current: Versioned,
    mut watch: crate::watchers::Subscription,
    tx: mpsc::Sender<Result<OperationView, tonic::Status>>,
) {
    let mut last_revision = current.revision;
    let mut record = current.record;
    loop {
        let terminal = status_of(&record).is_terminal();
        let message = view::with_result(&shared, record)
            .await
            .map_err(tonic::Status::from);
        let failed = message.is_err();
        if tx.send(message).await.is_err() || terminal || failed {
            return;
        }
        record = loop {
            let next = tokio::select! {
                _ = shared.shutdown.cancelled() => {
                    let _ = tx.send(Err(tonic::Status::unavailable("the service is shutting down; watch again"))).await;
                    return;
                }
                _ = tx.closed() => return,
                next = watch.recv() => next,
            };
            match next {
                Ok(change) if change.revision > last_revision => {
                    last_revision = change.revision;
                    match shared.records.decode(&id, &change.value) {
                        Ok(record) => break record,
                        Err(error) => {
                            let _ = tx.send(Err(error.into())).await;
                            return;
                        }
                    }
                }
                Ok(_) => {}
                // Changes were missed while the caller read slowly: the
                // record as it is now is what the caller needs next.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    match shared.records.load(&id).await {
                        Ok(Some(found)) if found.revision > last_revision => {
                            last_revision = found.revision;
                            break found.record;
                        }
                        Ok(_) => {}
                        Err(error) => {
                            let _ = tx.send(Err(error.into())).await;
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    let _ = tx
                        .send(Err(tonic::Status::unavailable(
                            "the watch was interrupted; watch again",
                        )))
                        .await;
                    return;
                }
            }
        };
    }
}

/// A page of the items of the operation's result.
async fn result_items(
    shared: &Shared,
    operation: &Operation,
    request: &GetOperationResultsRequest,
) -> Result<GetOperationResultsResponse, Error> {
    let limit = match request.limit {
        0 => results::DEFAULT_PAGE_ITEMS,
        limit @ 1..=results::MAX_PAGE_ITEMS => limit,
        _ => {
            return Err(Error::InvalidArgument(format!(
                "limit must be 1-{}",
                results::MAX_PAGE_ITEMS
            )));
        }
    } as usize;
    let offset = match request.cursor.as_str() {
        "" => 0,
        cursor => results::decode_cursor(cursor)?,
    };
    let Some(reference) = &operation.result else {
        return Err(Error::NoResultItems("the operation has no result (yet)"));
    };
    let parsed = results::load(
        &shared.topology.results,
        &shared.results,
        &operation.id,
        reference,
    )
    .await?;
    let paged = match parsed.as_deref() {
        Some(results::Parsed::Paged(paged)) => paged,
        Some(results::Parsed::Whole(_)) => {
            return Err(Error::NoResultItems("the result has no item list to page"));
        }
        None => return Err(Error::NoResultItems("the result is no longer stored")),
    };
    if offset > paged.total() {
        return Err(Error::InvalidArgument("cursor is not valid".to_owned()));
    }
    let (items_json, page) = paged.page(offset, limit);
    Ok(GetOperationResultsResponse {
        items_json,
        page: Some(page),
    })
}

async fn list(
    shared: &Shared,
    request: ListOperationsRequest,
) -> Result<ListOperationsResponse, Error> {
    validate_tenant(&request.tenant_id)?;
    let status = match request.status {
        0 => None,
        value => Some(
            Status::from_proto(value)
                .ok_or_else(|| Error::InvalidArgument(format!("status {value} is unknown")))?,
        ),
    };
    let kind = match request.kind {
        0 => None,
        value => Some(
            Kind::from_proto(value)
                .ok_or_else(|| Error::InvalidArgument(format!("kind {value} is unknown")))?,
        ),
    };
    let limit = match request.limit {
        0 => DEFAULT_LIMIT,
        limit @ 1..=MAX_LIMIT => limit,
        _ => {
            return Err(Error::InvalidArgument(format!(
                "limit must be 1-{MAX_LIMIT}"
            )));
        }
    } as usize;
    let before = match request.cursor.as_str() {
        "" => None,
        cursor => Some(decode_cursor(cursor)?),
    };
    if !shared.index.is_caught_up() {
        return Err(Error::NotReady("the list index is still loading"));
    }

    let mut ids = shared
        .index
        .page(&request.tenant_id, status, kind, before, limit + 1);
    let next_cursor = if ids.len() > limit {
        ids.truncate(limit);
        ids.last().map(encode_cursor).unwrap_or_default()
    } else {
        String::new()
    };

    let loaded: Vec<Result<Option<Versioned>, Error>> = futures::stream::iter(ids)
        .map(|id| async move { shared.records.load(&id.to_string()).await })
        .buffered(FETCH_CONCURRENCY)
        .collect()
        .await;
    let mut operations = Vec::with_capacity(loaded.len());
    let now = std::time::SystemTime::now();
    for found in loaded {
        let Some(Versioned { record, .. }) = found? else {
            continue;
        };
        // The index may lag the record by a moment; never show another
        // tenant's record, one that no longer matches the filter, or one
        // past its expiry whose TTL has not fired yet.
        if record.tenant_id != request.tenant_id
            || status.is_some_and(|s| s != status_of(&record))
            || kind.is_some_and(|k| Kind::from_proto(record.kind) != Some(k))
            || retention::is_expired(&record, shared.records.retention(), now)
        {
            continue;
        }
        operations.push(view::without_result(record));
    }
    Ok(ListOperationsResponse {
        operations,
        next_cursor,
    })
}

/// The cursor: base64url (no padding) of the last listed id's 16 bytes.
fn encode_cursor(id: &Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<Uuid, Error> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| Error::InvalidArgument("cursor is not valid".to_owned()))
}

/// Cancels `found`. The decision is taken through the operation's lease
/// (`fence.rs`), ordered with the runs' own commits; the record follows it,
/// by compare-and-set, and the cancellations marker tells a running worker
/// at once (else it finds the flag at its next lease renewal).
async fn cancel_operation(
    shared: &Shared,
    tenant: &str,
    found: Versioned,
) -> Result<OperationView, Error> {
    if let Some(status) = Some(status_of(&found.record)).filter(|s| s.is_terminal()) {
        return Err(Error::Terminal(status));
    }
    let id = found.record.id.clone();
    let kind = Kind::from_proto(found.record.kind).ok_or_else(|| Error::Corrupt {
        what: "operation",
        key: id.clone(),
        reason: format!("unknown kind {}", found.record.kind),
    })?;
    let now = time_ext::now();
    let event = fence::cancelled_event(&found.record, now);
    let decision = fence::cancel(&shared.topology.leases, kind, &id, &event).await?;
    if decision == CancelDecision::Requested {
        let marker = serde_json::json!({
            "requestedAt": time_ext::to_rfc3339(&now).unwrap_or_default(),
        });
        if let Err(error) = shared
            .topology
            .cancellations
            .put(&id, marker.to_string().into())
            .await
        {
            // Decided already: the run finds the flag on its lease instead.
            tracing::warn!(message = "Cannot write the cancellation marker; the run finds the request at its next lease renewal.", operation_id = %id, %error);
        }
    }

    let modified = shared
        .records
        .modify(&id, |current| match current {
            Some(record) if record.tenant_id == tenant => match cancel(record, decision, now) {
                CancelOutcome::Cancelled(next) | CancelOutcome::Requested(next) => {
                    Ok(Change::Write(next))
                }
                CancelOutcome::Unchanged => Ok(Change::Keep(record.clone())),
                CancelOutcome::Terminal(status) => Err(Error::Terminal(status)),
            },
            _ => Err(Error::NotFound),
        })
        .await?;
    let operation = match modified {
        Modified::Written { record, revision } => {
            shared.index.upsert_record(&record, revision);
            tracing::info!(message = "Cancellation requested.", operation_id = %id, status = %status_of(&record), ?decision);
            record
        }
        Modified::Unchanged(record) => record,
    };
    view::with_result(shared, operation).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(&id)).unwrap(), id);
        assert!(decode_cursor("!!!").is_err());
        assert!(decode_cursor("AAAA").is_err());
    }
}
