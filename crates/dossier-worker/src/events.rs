//! Building and publishing `OperationEvent`s, and placing results inline or
//! in the object store.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::object_store::{ObjectStore, PutErrorKind};
use async_nats::jetstream::{self, context::PublishError};
use bytes::Bytes;
use dossier_backoff::Backoff;
use dossier_contracts::v1::{OperationEvent, ResultRef, operation_event, result_ref};
use dossier_contracts::{Kind, time_ext};
use dossier_telemetry::{Traced, propagation, spans};
use prost::Message as _;
use serde_json::Value;

/// Publishing an event gives up after this many tries; the caller then hands
/// the job back to the broker rather than acknowledge it.
pub(crate) const PUBLISH_TRIES: u32 = 3;
/// Waits between the tries of one publish: 100 ms, then 200 ms.
const PUBLISH_RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));

/// What every event of one job delivery repeats.
#[derive(Debug)]
pub(crate) struct JobMeta {
    pub(crate) operation_id: String,
    pub(crate) tenant_id: String,
    pub(crate) kind: Kind,
    pub(crate) attempt: u32,
    pub(crate) operation_created_at: Option<prost_types::Timestamp>,
    /// The request id the job's headers carried (empty when none); every
    /// event's headers carry it on.
    pub(crate) request_id: String,
    /// The job's span (or untraced scope): every event's headers carry a
    /// child's context, so the projection joins the trace.
    pub(crate) traced: Traced,
    /// When this delivery was taken, for the job duration metric.
    pub(crate) taken_at: std::time::Instant,
}

impl JobMeta {
    pub(crate) fn new(
        operation_id: String,
        tenant_id: String,
        kind: Kind,
        attempt: u32,
        operation_created_at: Option<prost_types::Timestamp>,
        request_id: String,
        traced: Traced,
    ) -> Self {
        Self {
            operation_id,
            tenant_id,
            kind,
            attempt,
            operation_created_at,
            request_id,
            traced,
            taken_at: std::time::Instant::now(),
        }
    }
}

/// Publishes the events of one worker.
#[derive(Clone)]
pub(crate) struct Events {
    jetstream: jetstream::Context,
    results: ObjectStore,
    worker_id: Arc<str>,
    inline_limit: usize,
}

/// An event could not be stored, or its result could not be placed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EventError {
    #[error("cannot publish the event: {0}")]
    Publish(#[from] PublishError),
    #[error("cannot store the result in the object store: {0}")]
    Result(#[from] async_nats::jetstream::object_store::PutError),
    #[error("cannot encode the result as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl Events {
    pub(crate) fn new(
        jetstream: jetstream::Context,
        results: ObjectStore,
        worker_id: Arc<str>,
        inline_limit: usize,
    ) -> Self {
        Self {
            jetstream,
            results,
            worker_id,
            inline_limit,
        }
    }

    /// Publishes one event and waits for JetStream to store it, trying up to
    /// `tries` times. The event id is fixed before the first try and sent as
    /// `Nats-Msg-Id`, so a try whose ack was lost is not stored twice.
    pub(crate) async fn publish(
        &self,
        meta: &JobMeta,
        event: operation_event::Event,
        tries: u32,
    ) -> Result<(), EventError> {
        let message = self.prepare(meta, event);
        self.publish_message(meta, &message, tries).await
    }

    /// The event as it will be stored: a fresh event id, this worker, now.
    /// A terminal event is prepared first, committed into the run's lease,
    /// and only then published ([`Events::publish_message`]).
    pub(crate) fn prepare(&self, meta: &JobMeta, event: operation_event::Event) -> OperationEvent {
        OperationEvent {
            event_id: uuid::Uuid::now_v7().to_string(),
            operation_id: meta.operation_id.clone(),
            tenant_id: meta.tenant_id.clone(),
            kind: meta.kind.to_proto() as i32,
            attempt: meta.attempt,
            worker_id: self.worker_id.to_string(),
            occurred_at: Some(time_ext::now()),
            operation_created_at: meta.operation_created_at,
            event: Some(event),
        }
    }

    /// Publishes a prepared event (its own id as `Nats-Msg-Id`) and waits
    /// for JetStream to store it, trying up to `tries` times.
    pub(crate) async fn publish_message(
        &self,
        meta: &JobMeta,
        message: &OperationEvent,
        tries: u32,
    ) -> Result<(), EventError> {
        let event_id = message.event_id.as_str();
        let subject = dossier_broker::event_subject(meta.kind);
        // A child of the job's span, wherever the handler calls from; the
        // event's headers carry this span's context, so the projection is
        // its child (or the job's untraced context).
        let span = meta
            .traced
            .child(|| spans::nats_publish(&subject, event_id));
        span.record("dossier.operation.id", meta.operation_id.as_str());
        if let Some(event) = &message.event {
            span.record("dossier.event.type", event.type_name());
        }
        span.record("dossier.job.attempt", message.attempt);
        let payload = Bytes::from(message.encode_to_vec());
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event_id);
        propagation::inject_nats_traced(&span, &meta.request_id, &mut headers);

        let published = self.publish_tries(meta, &subject, headers, payload, tries);
        let published = span.wrap(published).await;
        if published.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        published
    }

    /// Publishes a prepared event, up to `tries` times.
    async fn publish_tries(
        &self,
        meta: &JobMeta,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
        tries: u32,
    ) -> Result<(), EventError> {
        let mut try_number = 1;
        loop {
            let result = async {
                self.jetstream
                    .publish_with_headers(subject.to_owned(), headers.clone(), payload.clone())
                    .await?
                    .await
            }
            .await;
            match result {
                Ok(_) => return Ok(()),
                Err(error) if try_number < tries => {
                    tracing::debug!(
                        message = "Retrying an event publish.",
                        operation_id = %meta.operation_id,
                        try_number,
                        %error
                    );
                    tokio::time::sleep(PUBLISH_RETRY.delay(try_number)).await;
                    try_number += 1;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The result as a `ResultRef`: inline when it fits the limit, else
    /// written to the object store as `<operation id>.<run>`: named by the
    /// run's lease (its fencing token), so a stale run of the same job never
    /// overwrites the object the holder's terminal event refers to.
    pub(crate) async fn result_ref(
        &self,
        operation_id: &str,
        run: u64,
        value: &Value,
    ) -> Result<ResultRef, EventError> {
        let json = serde_json::to_vec(value)?;
        let size_bytes = json.len() as u64;
        if json.len() <= self.inline_limit {
            return Ok(ResultRef {
                location: Some(result_ref::Location::InlineJson(json)),
                size_bytes,
            });
        }
        let name = format!("{operation_id}.{run}");
        match self.results.put(name.as_str(), &mut json.as_slice()).await {
            Ok(_) => {}
            // The new object is stored; only the chunks of the one it
            // replaced could not be purged (a worker's NATS user may not
            // purge the store). They expire with the store's max age.
            Err(error) if error.kind() == PutErrorKind::PurgeOldChunks => {
                tracing::debug!(
                    message = "Replaced a result object; its old chunks stay until they expire.",
                    operation_id,
                    %error
                );
            }
            Err(error) => return Err(error.into()),
        }
        tracing::debug!(
            message = "Stored a large result in the object store.",
            operation_id,
            size_bytes
        );
        Ok(ResultRef {
            location: Some(result_ref::Location::ObjectName(name)),
            size_bytes,
        })
    }
}
