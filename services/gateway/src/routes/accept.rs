//! Accepting work: synchronous enrichment (200) and the operations that run
//! in the background (202).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dossier_contracts::api::{
    EnrichmentBatchRequest, PersonRecord, ResearchRequest, SearchPeopleRequest,
};

use crate::openapi::components::{self, ProblemDoc};
use crate::openapi::results::EnrichedRecord;
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

#[utoipa::path(
    post,
    path = "/api/enrichment/person",
    operation_id = "enrichPerson",
    summary = "Enrich one person record synchronously.",
    description = ENRICH_PERSON,
    request_body = PersonRecord,
    responses(
        (status = 200, description = "The enriched record (`status` `matched` or `not_found`).",
            body = EnrichPersonResponse,
            headers(("X-Request-Id" = String, description = "A fresh UUID per request; equals `meta.requestId`.")),
            example = json!({
                "data": {
                    "externalId": "crm-1", "status": "matched", "matchedBy": "email", "confidence": 0.99,
                    "person": { "id": "p-acme-01", "fullName": "Jane Doe", "title": "CTO", "seniority": "c_suite",
                        "department": "engineering", "email": "jane.doe@acme.com",
                        "linkedinUrl": "https://www.linkedin.com/in/jane-doe-acme/", "currentCompanyText": "Acme Corp" },
                    "company": { "id": "c-acme", "name": "Acme Corp", "domain": "acme.com", "linkedinHandle": "acme-corp" },
                    "companyEvidence": "email_domain"
                },
                "meta": { "requestId": "0193a5d2-7c1e-7d3a-9f3e-2b8c4d5e6f70" }
            })),
        (status = 400, response = components::BadRequest),
        (status = 401, response = components::Unauthorized),
        (status = 413, response = components::PayloadTooLarge),
        (status = 415, response = components::UnsupportedMediaType),
        (status = 429, response = components::TooManyRequests),
        (status = 503, description = "`enrichment_unavailable`: no enrichment worker answered in time, or the directory providers failed for this record. Nothing changed; retry after `Retry-After` seconds (or use the batch endpoint). Also the shared causes of `Unavailable`.",
            body = ProblemDoc, content_type = "application/problem+json",
            headers(("X-Request-Id" = String), ("Retry-After" = u64, description = "Seconds before retrying."))),
    ),
)]
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

#[utoipa::path(
    post,
    path = "/api/enrichment/batch",
    operation_id = "enrichBatch",
    summary = "Enrich 1 to 10,000 person records in the background (kind `enrichment.batch`).",
    description = ENRICH_BATCH,
    params(components::CreateHeaders),
    request_body = EnrichmentBatchRequest,
    responses(components::CreateResponses),
)]
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

#[utoipa::path(
    post,
    path = "/api/search/people",
    operation_id = "searchPeople",
    summary = "People search scoped to a target account (kind `search.people`).",
    description = SEARCH_PEOPLE,
    params(components::CreateHeaders),
    request_body = SearchPeopleRequest,
    responses(components::CreateResponses),
)]
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

#[utoipa::path(
    post,
    path = "/api/research",
    operation_id = "research",
    summary = "Multi-step research on a company or a person (kind `research.deep`).",
    description = RESEARCH,
    params(components::CreateHeaders),
    request_body = ResearchRequest,
    responses(components::CreateResponses),
)]
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
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = AcceptedOperation)]
pub(crate) struct Accepted {
    /// The operation's id.
    #[schema(format = Uuid)]
    id: String,
    /// Equal to `id`.
    #[schema(format = Uuid)]
    operation_id: String,
    /// `queued`, always, on acceptance (also on an idempotent replay).
    #[schema(value_type = Status)]
    status: &'static str,
    /// Poll this URL (`GET`) for status and result; fully qualified.
    #[schema(format = "uri")]
    poll_url: String,
    /// The request id.
    meta: Meta,
}

/// The answer of `POST /api/enrichment/person`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Read by the schema derive only: the handler answers the worker's JSON.
pub(crate) struct EnrichPersonResponse {
    /// The record's answer.
    data: EnrichedRecord,
    /// The request id.
    meta: Meta,
}

const ENRICH_PERSON: &str = "Matches the record to one person of the directory and answers at \
once (an enrichment worker answers over NATS request-reply; the gateway waits at most \
`DOSSIER_ENRICH_TIMEOUT`, 5 s by default).

The record is matched by the strongest identifier it has: `email` (exact, case-insensitive; \
confidence 0.99), then `linkedinUrl` (any common form, normalised to the profile handle; 0.97), \
then `fullName` with `companyDomain` or `companyName` (name variants tolerated: case, \
diacritics, punctuation, honorifics, German transliterations). A name match is scored by how \
the candidate is linked to the company (company page or work email 0.95, profile company text \
0.9, a past position 0.75); the confidence is the best score times its share of all \
candidates' scores. Below 0.7 the record is `not_found` with `reason: ambiguous` and the \
candidates counted — never a coin toss. `not_found` is a clean answer (200), not an error.";

const ENRICH_BATCH: &str = "Records are matched as by `POST /api/enrichment/person`, in chunks \
(250 records by default) that are checkpointed as they finish: a worker that dies mid-batch is \
replaced and the batch continues from the last finished chunk. `progress` follows records done \
/ total.

One invalid record refuses the whole batch (400, each bad record named `/records/{i}/{field}`) \
unless the body says `\"onInvalidRecord\": \"skip\"`: then each invalid record is answered in \
its place with `status: invalid` and its `errors` (`field`, `detail`), never looked up, and the \
others run; they count in `processed`, `progress` and `counts.invalid`, and do not make the \
operation `partial_success`. A batch with no valid record is refused either way (nothing would \
run).

The result (`EnrichmentResult`) holds one `EnrichedRecord` per input record, in input order, \
each with its `index`, and the counts per status. Status of the operation: `succeeded` when no \
record is `error`; `partial_success` when some are (the result holds every record); `failed` \
(code `providers_unavailable`) when all that were looked up are.

Results larger than one page (100 records) are stored outside the status events and served in \
pages: `GET /api/operations/{id}` holds the counts and the first 100 records, and \
`result.page.next` leads to `GET /api/operations/{id}/results?cursor=…`.

Cancelling a `processing` batch stops it between chunks: the chunk in flight is dropped, the \
finished ones are kept, and the operation ends `cancelled` with them as its `result` \
(`meta.complete: false`, `meta.processed` < `meta.total`), readable in pages like any result.";

const SEARCH_PEOPLE: &str = "Resolves the target account (its LinkedIn company page when one is \
known or can be verified, else the company names its profiles use), finds the people in it \
matching the filters, and ranks them: title match first, then seniority. The result \
(`SearchResult`) says how the account was resolved and searched, how many people match in all \
(`meta.total`) and whether the list holds all of them (`meta.complete`; false when `limit` cut \
it).";

const RESEARCH: &str = "Resolves the subject (exactly one of `company` or `person`), gathers \
directory evidence (profile, leadership, look-alikes) and web evidence (the company's own site, \
robots.txt honoured, public addresses only), answers the questions from it, and writes a cited \
Markdown report (`ResearchResult`). Up to 30 s at `standard` depth, 90 s at `deep`; a step that \
fails makes the operation `partial_success` with the rest of the report.";

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
