//! The accept path (`CreateOperation`): store the job, then create the
//! record.
//!
//! ## Why the operations service stores jobs (and not the gateway)
//!
//! Accepting an operation is two writes: the job on the jobs stream and the
//! operation record in KV. If two processes made them (the gateway publishing
//! the job, this service creating the record), the order between them — and
//! so read-your-writes and idempotency — would need a distributed
//! transaction or a saga. Here one process does both, always in the order
//! "job stored, then record created", so:
//!
//! - a success answer implies the job is durably stored (the publish ack
//!   came back from file storage) *and* the record exists, so a following
//!   `GetOperation` never misses (read your writes);
//! - an idempotency key is claimed, checked and healed in one place;
//! - only this service needs credentials to publish jobs; the gateway only
//!   speaks gRPC.
//!
//! ## Failure between the two writes
//!
//! The caller always learns what is known:
//!
//! - **Before the job could be stored** (broker disconnected, the payload
//!   not stored): UNAVAILABLE, and the idempotency claim this call made is
//!   released, so a corrected request may use the key at once. Nothing was
//!   stored.
//! - **After** (the publish's ack lost or late, or the record's write
//!   failed): DEADLINE_EXCEEDED with the operation id in the
//!   `dossier-operation-id` metadata: the operation may exist. A background
//!   task settles it — it publishes the job again under the same
//!   `Nats-Msg-Id` (JetStream drops the copy if the first was stored, within
//!   its 2-minute duplicate window) until acknowledged, then creates the
//!   record — so polling the id soon finds the operation, which then runs
//!   once. If the process dies first, a stored job still runs and its
//!   worker's first event creates the record (the projection builds a
//!   record from an event it has never seen).
//! - A retry with the same idempotency key finds the claimed id: with a
//!   record, it answers it (never re-publishing); without one, it
//!   re-publishes the job under the same message id and creates the record,
//!   healing the operation instead of creating a second one.
//!
//! ## Concurrent creates with one idempotency key
//!
//! The key is claimed with `kv.create` on `dossier_idempotency`, which
//! exactly one caller wins; every other caller reads the claim and reuses its
//! operation id. A loser that finds no record yet (the winner is still
//! publishing) publishes the same job under the same message id — deduplicated
//! — and races to `kv.create` the record; whoever loses that race reads the
//! winner's record. So all callers answer the same id, and the stream holds
//! one job. Exactly one of them answers `created = true`.
//!
//! ## Large payloads
//!
//! A payload larger than the inline limit
//! (`dossier_contracts::limits::INLINE_JOB_PAYLOAD_BYTES`) is put in the
//! `dossier_payloads` object store under the operation id *before* the job
//! is published, and the job carries its reference. The order is then
//! "payload stored, job stored, record created": durable accept and read
//! your writes hold as before, and a retry re-puts the same bytes under the
//! same name before it re-publishes.
//!
//! A publish whose ack times out is ambiguous (the job may have been stored
//! late, e.g. flushed on reconnect): the "after" rule above applies.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::kv;
use bytes::Bytes;
use dossier_broker::payloads;
use dossier_contracts::api::{BodyError, check_idempotency_key, check_payload};
use dossier_contracts::v1::{CreateOperationRequest, Job, Operation};
use dossier_contracts::{Kind, Status, time_ext};
use dossier_telemetry::{Traced, propagation, spans};
use prost::Message as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::Shared;
use crate::error::Error;

/// The value stored under an idempotency key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Claim {
    operation_id: String,
    request_hash: String,
}

/// A validated `CreateOperationRequest`.
struct Validated {
    tenant: String,
    kind: Kind,
    payload: Bytes,
    /// SHA-256 of the kind and the canonical JSON of the payload.
    request_hash: String,
    idempotency_key: Option<String>,
    /// The caller's request id (gRPC metadata `x-request-id`).
    request_id: String,
}

/// Checks a tenant id: `[A-Za-z0-9_-]{1,64}`. Tenant ids become parts of KV
/// keys, so anything else is refused.
pub(crate) fn validate_tenant(tenant: &str) -> Result<(), Error> {
    let valid = (1..=64).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidArgument(
            "tenant_id must be 1-64 characters of A-Z, a-z, 0-9, `_` or `-`".to_owned(),
        ))
    }
}

fn validate(request: CreateOperationRequest, request_id: String) -> Result<Validated, Error> {
    validate_tenant(&request.tenant_id)?;
    let kind = Kind::from_proto(request.kind)
        .ok_or_else(|| Error::InvalidArgument("kind must be specified".to_owned()))?;
    // Checked here whatever the caller checked: only jobs a worker can run
    // are stored, and keys become parts of KV keys.
    check_payload(kind, &request.payload_json).map_err(|error| {
        Error::InvalidArgument(match error {
            BodyError::Malformed(detail) => format!("payload_json is not valid JSON: {detail}"),
            BodyError::Invalid(errors) => {
                let fields: Vec<String> = errors
                    .into_iter()
                    .map(|e| format!("`{}` {}", e.pointer, e.detail))
                    .collect();
                format!(
                    "payload_json is not a valid {kind} request: {}",
                    fields.join("; ")
                )
            }
        })
    })?;
    let json: serde_json::Value = serde_json::from_slice(&request.payload_json)
        .map_err(|e| Error::InvalidArgument(format!("payload_json is not JSON: {e}")))?;
    let idempotency_key = match request.idempotency_key.as_str() {
        "" => None,
        key => Some(
            check_idempotency_key(key.as_bytes())
                .map_err(|detail| Error::InvalidArgument(format!("idempotency_key {detail}")))?,
        ),
    };
    Ok(Validated {
        tenant: request.tenant_id,
        kind,
        request_hash: request_hash(kind, &json),
        payload: Bytes::from(request.payload_json),
        idempotency_key,
        request_id,
    })
}

/// Hex SHA-256 of the kind and the canonical JSON of the payload, so that
/// whitespace and key order do not make "the same body" different.
pub(crate) fn request_hash(kind: Kind, payload: &serde_json::Value) -> String {
    let mut canonical = String::new();
    write_canonical(payload, &mut canonical);
    let mut hasher = Sha256::new();
    hasher.update(kind.as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// Writes `value` as compact JSON with object keys sorted. Written out
/// rather than relying on `serde_json::Map` being a `BTreeMap`: any crate in
/// the build enabling serde_json's `preserve_order` would silently change
/// that and every stored hash with it.
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The idempotency bucket key of a tenant's key: `<tenant>.<hex sha256>`.
/// Hashing keeps any caller-chosen key inside the KV key alphabet.
fn idempotency_kv_key(tenant: &str, key: &str) -> String {
    format!("{tenant}.{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// Accepts an operation for the request `request_id`; returns it and
/// whether this call created it.
///
/// Failures say what is known (see the module docs, "Failure between the
/// two writes"): before the job could be stored, the key's claim is
/// released and the error is UNAVAILABLE (nothing was stored); after, the
/// error is [`Error::OutcomeUnknown`] with the operation id, and a
/// background task keeps settling the accept (re-publishing the job under
/// the same message id while JetStream still de-duplicates it, then
/// creating the record), so polling the id soon tells the truth.
pub(crate) async fn create(
    shared: &Arc<Shared>,
    request: CreateOperationRequest,
    request_id: String,
) -> Result<(Operation, bool), Error> {
    let request = validate(request, request_id)?;
    // Fail fast: a disconnected client would queue the publish and the
    // caller would wait a whole ack timeout for a 503.
    if !dossier_nats::is_connected(&shared.client) {
        return Err(Error::Disconnected);
    }

    let (id, fresh) = match &request.idempotency_key {
        None => (Uuid::now_v7(), true),
        Some(key) => claim(shared, &request, key).await?,
    };
    let id_text = id.to_string();
    dossier_telemetry::record_operation_id(id_text.as_str());
    // Until the job may have been stored, a failure leaves nothing behind:
    // a claim this call made is released, so a corrected request may use
    // the key at once.
    let release = |error: Error| async {
        if fresh && let Some(key) = &request.idempotency_key {
            release_claim(shared, &request.tenant, key).await;
        }
        error
    };

    if !fresh {
        match shared.records.load(&id_text).await {
            // An idempotent replay of a complete accept: never re-publish.
            Ok(Some(existing)) => return Ok((existing.record, false)),
            Ok(None) => {}
            Err(error) => return Err(error),
        }
    }

    let now = time_ext::now();
    let job = match prepare_job(shared, &request, &id_text, now).await {
        Ok(job) => job,
        Err(error) => return Err(release(error).await),
    };
    let record = Operation {
        id: id_text.clone(),
        tenant_id: request.tenant.clone(),
        kind: request.kind.to_proto() as i32,
        status: Status::Queued.to_proto() as i32,
        created_at: Some(now),
        updated_at: Some(now),
        request_id: request.request_id.clone(),
        attempt: 0,
        expires_at: Some(prost_types::Timestamp::from(
            std::time::SystemTime::try_from(now).unwrap_or_else(|_| std::time::SystemTime::now())
                + shared.records.retention(),
        )),
        ..Operation::default()
    };
    let unknown = |source: Error| Error::OutcomeUnknown {
        operation_id: id_text.clone(),
        source: Box::new(source),
    };
    if let Err(error) = job.publish(shared).await {
        // The jobs stream refused it for want of room: a definite answer,
        // nothing was stored, so the caller hears "storage full".
        if matches!(error, Error::StorageFull { .. }) {
            return Err(release(error).await);
        }
        // The job may have been stored (an ack lost or late): settle it.
        tokio::spawn(settle(shared.clone(), job, record));
        return Err(unknown(error));
    }
    match create_record(shared, &record).await {
        Ok(created) => {
            tracing::info!(message = "Operation accepted.", operation_id = %id_text, kind = %request.kind);
            Ok((created, fresh))
        }
        Err(error) => {
            // The job is stored and will run; the record follows.
            tokio::spawn(settle(shared.clone(), job, record));
            Err(unknown(error))
        }
    }
}

/// Creates the record (or finds the one a worker's event or a concurrent
/// replay created first) and indexes it.
async fn create_record(shared: &Shared, record: &Operation) -> Result<Operation, Error> {
    match shared.records.create(record).await? {
        Some(revision) => {
            shared.index.upsert_record(record, revision);
            Ok(record.clone())
        }
        None => match shared.records.load(&record.id).await? {
            Some(existing) => Ok(existing.record),
            // Created and deleted in between: only an operator does that.
            None => Err(Error::NotFound),
        },
    }
}

/// How long an unsettled accept keeps re-publishing its job: within
/// JetStream's duplicate window (2 minutes), so that a job stored late is
/// never stored twice.
const SETTLE_FOR: Duration = Duration::from_secs(100);

/// Settles an accept whose answer was "outcome unknown": publishes the job
/// again (same message id: a copy stored late is dropped as a duplicate)
/// until it is acknowledged, then creates the record. Gives up at shutdown
/// or after [`SETTLE_FOR`]; the job, if stored, still runs and its first
/// event creates the record.
async fn settle(shared: Arc<Shared>, job: PreparedJob, record: Operation) {
    let deadline = tokio::time::Instant::now() + SETTLE_FOR;
    let mut published = false;
    let mut attempt = 0;
    loop {
        if !published {
            published = job.publish(&shared).await.is_ok();
        }
        if published && create_record(&shared, &record).await.is_ok() {
            tracing::info!(message = "Accept settled: the operation is stored.", operation_id = %record.id);
            return;
        }
        attempt += 1;
        let wait = crate::RECONNECT.delay(attempt);
        if tokio::time::Instant::now() + wait > deadline {
            tracing::error!(message = "Accept not settled; its job, if stored, creates the record.", operation_id = %record.id, published);
            return;
        }
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Deletes the claim of `key` (best effort: a claim that stays expires
/// with the bucket's 24 hours).
async fn release_claim(shared: &Shared, tenant: &str, key: &str) {
    let kv_key = idempotency_kv_key(tenant, key);
    if let Err(error) = shared.topology.idempotency.delete(&kv_key).await {
        tracing::warn!(message = "Cannot release an idempotency claim.", %error);
    }
}

/// Claims `key` for a new operation id, or finds the id an earlier request
/// claimed it for. Returns the id and whether this call claimed it.
async fn claim(shared: &Shared, request: &Validated, key: &str) -> Result<(Uuid, bool), Error> {
    let kv_key = idempotency_kv_key(&request.tenant, key);
    let candidate = Uuid::now_v7();
    let value = serde_json::to_vec(&Claim {
        operation_id: candidate.to_string(),
        request_hash: request.request_hash.clone(),
    })
    .map_err(|e| Error::Corrupt {
        what: "idempotency claim",
        key: kv_key.clone(),
        reason: e.to_string(),
    })?;
    let idempotency = &shared.topology.idempotency;
    // Normally one round: either the create wins or the claim is there to
    // read. The loop only repeats if the claim expired between the two.
    for _ in 0..3 {
        match idempotency
            .create(&kv_key, Bytes::from(value.clone()))
            .await
        {
            Ok(_) => return Ok((candidate, true)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::broker("claiming the idempotency key")(e.into())),
        }
        let existing = idempotency
            .get(&kv_key)
            .await
            .map_err(|e| Error::broker("reading the idempotency key")(e.into()))?;
        let Some(existing) = existing else { continue };
        let existing: Claim = serde_json::from_slice(&existing).map_err(|e| Error::Corrupt {
            what: "idempotency claim",
            key: kv_key.clone(),
            reason: e.to_string(),
        })?;
        if existing.request_hash != request.request_hash {
            return Err(Error::IdempotencyConflict);
        }
        let id = Uuid::parse_str(&existing.operation_id).map_err(|e| Error::Corrupt {
            what: "idempotency claim",
            key: kv_key.clone(),
            reason: e.to_string(),
        })?;
        return Ok((id, false));
    }
    Err(Error::Contention(kv_key))
}

/// A job ready to publish: its subject, headers (message id, trace
/// context) and bytes, kept so that it can be published again unchanged.
struct PreparedJob {
    subject: String,
    headers: HeaderMap,
    bytes: Bytes,
    span: Traced,
    id: String,
}

/// Builds the job. A payload past the inline limit is stored in the
/// payloads object store first (under the operation id, so a retry re-puts
/// the same bytes) and the job carries its reference: a stored job always
/// finds its payload.
async fn prepare_job(
    shared: &Shared,
    request: &Validated,
    id: &str,
    created_at: prost_types::Timestamp,
) -> Result<PreparedJob, Error> {
    let subject = dossier_broker::job_subject(request.kind);
    // The producer span: the job's headers carry its context, so the
    // worker's span is its child (none when the trace is not recorded:
    // the headers carry the call's context then).
    let span = Traced::current_child(|| spans::nats_publish(&subject, id));
    span.record("dossier.operation.id", id);
    let inline_limit = payloads::inline_limit(shared.client.server_info().max_payload);
    let (payload_json, payload_ref) = if request.payload.len() <= inline_limit {
        (request.payload.to_vec(), None)
    } else {
        let stored = span
            .wrap(payloads::store(
                &shared.topology.payloads,
                id,
                &request.payload,
            ))
            .await
            .map_err(|e| Error::broker("storing the job's payload")(e.into()))?;
        tracing::debug!(message = "Stored a large job payload.", operation_id = %id, bytes = stored.size);
        (Vec::new(), Some(stored))
    };
    let job = Job {
        operation_id: id.to_owned(),
        tenant_id: request.tenant.clone(),
        kind: request.kind.to_proto() as i32,
        payload_json,
        created_at: Some(created_at),
        payload_ref,
    };
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
    propagation::inject_nats_traced(&span, &request.request_id, &mut headers);
    Ok(PreparedJob {
        subject,
        headers,
        bytes: Bytes::from(job.encode_to_vec()),
        span,
        id: id.to_owned(),
    })
}

impl PreparedJob {
    /// Publishes the job and waits for JetStream's ack: only then is it
    /// stored. A failure is ambiguous: the job may have been stored anyway.
    async fn publish(&self, shared: &Shared) -> Result<(), Error> {
        let publish = async {
            shared
                .topology
                .jetstream
                .publish_with_headers(
                    self.subject.clone(),
                    self.headers.clone(),
                    self.bytes.clone(),
                )
                .await
                .map_err(|e| Error::broker("publishing the job")(e.into()))?
                .await
                .map_err(|e| Error::broker("storing the job")(e.into()))
        };
        // The context's own timeout bounds the ack; this also bounds a
        // publish stuck behind a full outgoing buffer.
        let timeout = shared.request_timeout + Duration::from_millis(500);
        let ack = self
            .span
            .wrap(tokio::time::timeout(timeout, publish))
            .await
            .map_err(|_| Error::broker("storing the job")("publish ack timed out".into()))
            .and_then(|stored| stored)
            .inspect_err(|_| {
                self.span.record("otel.status_code", "ERROR");
            })?;
        if ack.duplicate {
            tracing::debug!(message = "Job was already stored; the re-publish was dropped.", operation_id = %self.id);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_whitespace_and_key_order_but_not_kind_or_values() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b": [1, {"y":1,"x":2}], "a": "z"}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":"z","b":[1,{"x":2,"y":1}]}"#).unwrap();
        let c: serde_json::Value =
            serde_json::from_str(r#"{"a":"z","b":[{"x":2,"y":1},1]}"#).unwrap();
        assert_eq!(
            request_hash(Kind::SearchPeople, &a),
            request_hash(Kind::SearchPeople, &b)
        );
        assert_ne!(
            request_hash(Kind::SearchPeople, &a),
            request_hash(Kind::ResearchDeep, &a)
        );
        assert_ne!(
            request_hash(Kind::SearchPeople, &a),
            request_hash(Kind::SearchPeople, &c)
        );
    }

    #[test]
    fn tenants_and_keys() {
        assert!(validate_tenant("acme_1-x").is_ok());
        assert!(validate_tenant("").is_err());
        assert!(validate_tenant("a.b").is_err());
        assert!(validate_tenant(&"a".repeat(65)).is_err());
        let key = idempotency_kv_key("acme", "any key / with . dots");
        assert!(key.starts_with("acme."));
        assert_eq!(key.len(), "acme.".len() + 64);
    }
}
