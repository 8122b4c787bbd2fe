//! Accepting work: synchronous enrichment (200) and the operations that run
//! in the background (202).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dossier_contracts::api::{
    EnrichmentBatchRequest, PersonRecord, ResearchRequest, SearchPeopleRequest,
};
use dossier_contracts::v1::CreateOperationRequest;
use dossier_contracts::{Kind, Status};
use serde::Serialize;

use super::envelope;
use crate::AppState;
use crate::auth::Caller;
use crate::context;
use crate::error::{ApiError, Meta};
use crate::extract::{ExternalBase, IdempotencyKey, JsonBody};
use crate::grpc::map_create_status;
use crate::prefer::WaitPreference;
use crate::views::{OperationView, POLL_RETRY_AFTER_SECS, operation_response};
use crate::watch::{self, Waited};

/// Header set on a 202 that replays an earlier request's idempotency key.
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// `POST /api/enrichment/person` (200): one record enriched synchronously
/// by an enrichment worker (NATS request-reply, see [`crate::enrich`]). The
/// answer is the enriched record, status `matched` or `not_found`; when no
/// worker answers in time, or the record's providers fail, 503
/// `enrichment_unavailable` with `Retry-After`.
pub(crate) async fn enrich_person(
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

/// `POST /api/enrichment/batch` (202; 200 when it ends within a `Prefer: wait`).
pub(crate) async fn enrich_batch(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    base: ExternalBase,
    prefer: WaitPreference,
    JsonBody(body): JsonBody<EnrichmentBatchRequest>,
) -> Result<Response, ApiError> {
    tracing::debug!(message = "Batch received.", records = body.records.len());
    let accepted = accept(&state, &caller, key, &base, Kind::EnrichmentBatch, body).await?;
    accepted.answer(&state, &caller, &base, prefer).await
}

/// `POST /api/search/people` (202; 200 when it ends within a `Prefer: wait`).
pub(crate) async fn search_people(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    base: ExternalBase,
    prefer: WaitPreference,
    JsonBody(body): JsonBody<SearchPeopleRequest>,
) -> Result<Response, ApiError> {
    let accepted = accept(&state, &caller, key, &base, Kind::SearchPeople, body).await?;
    accepted.answer(&state, &caller, &base, prefer).await
}

/// `POST /api/research` (202; 200 when it ends within a `Prefer: wait`).
pub(crate) async fn research(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    base: ExternalBase,
    prefer: WaitPreference,
    JsonBody(body): JsonBody<ResearchRequest>,
) -> Result<Response, ApiError> {
    let accepted = accept(&state, &caller, key, &base, Kind::ResearchDeep, body).await?;
    accepted.answer(&state, &caller, &base, prefer).await
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
    state: &AppState,
    caller: &Caller,
    key: IdempotencyKey,
    base: &ExternalBase,
    kind: Kind,
    body: T,
) -> Result<AcceptedOperation, ApiError> {
    let payload_json = serde_json::to_vec(&body)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("re-encode body")))?;
    let request = CreateOperationRequest {
        tenant_id: caller.tenant_id.to_string(),
        kind: kind.to_proto() as i32,
        payload_json,
        idempotency_key: key.0.unwrap_or_default(),
    };
    let response = state
        .operations()
        .create_operation(state.signed(request)?)
        .await
        .map_err(|status| map_create_status(status, state.max_body_bytes()))?
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
    dossier_telemetry::record_operation_id(operation.id.as_str());
    tracing::Span::current().record("dossier.operation.kind", kind.as_str());
    tracing::info!(
        message = if replay { "Operation replayed." } else { "Operation accepted." },
        operation_id = %operation.id,
        kind = %kind,
    );
    state.metrics().record_accepted(kind, replay);

    Ok(AcceptedOperation {
        poll_url: base.poll_url(&operation.id),
        id: operation.id,
        replay,
    })
}

/// An operation the operations service has stored.
struct AcceptedOperation {
    id: String,
    poll_url: String,
    replay: bool,
}

impl AcceptedOperation {
    /// The answer: `202` with the poll URL; or, under `Prefer: wait=N`,
    /// `200` with the finished operation when it ends within the wait
    /// (followed through `WatchOperation`), else the same `202` once the
    /// wait is over. `Preference-Applied` says when the gateway waited.
    /// The operation is stored whatever happens while waiting, so a
    /// failing wait never fails the request: it answers the `202`.
    async fn answer(
        self,
        state: &AppState,
        caller: &Caller,
        base: &ExternalBase,
        prefer: WaitPreference,
    ) -> Result<Response, ApiError> {
        let mut applied = None;
        let mut finished = None;
        if let Some(wait) = prefer.wait(state.request_timeout()) {
            match watch::wait_for_terminal(state, &caller.tenant_id, &self.id, &wait).await {
                Ok(Some(Waited {
                    view,
                    interrupted: None,
                })) => {
                    applied = Some(wait);
                    finished = watch::is_terminal(&view).then_some(view);
                }
                Ok(Some(Waited {
                    interrupted: Some(status),
                    ..
                })) => {
                    tracing::info!(message = "Wait interrupted; answering 202.", error = %status);
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::info!(message = "Cannot wait for the operation; answering 202.", %error);
                }
            }
        }
        let location =
            HeaderValue::from_str(&self.poll_url).map_err(|e| ApiError::Internal(e.into()))?;
        let mut response = match finished {
            Some(view) => {
                let mut response =
                    operation_response(StatusCode::OK, OperationView::new(view, base)?);
                // The body is the operation's representation (RFC 9110
                // section 8.7).
                response
                    .headers_mut()
                    .insert(header::CONTENT_LOCATION, location);
                response
            }
            None => {
                let body = Accepted {
                    id: self.id.clone(),
                    operation_id: self.id,
                    status: Status::Queued.as_str(),
                    poll_url: self.poll_url,
                    meta: Meta::current(),
                };
                let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
                let headers = response.headers_mut();
                headers.insert(header::LOCATION, location);
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(POLL_RETRY_AFTER_SECS),
                );
                response
            }
        };
        let headers = response.headers_mut();
        if self.replay {
            headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        }
        if let Some(wait) = applied {
            let (name, value) = wait.applied();
            headers.insert(name, value);
        }
        Ok(response)
    }
}
