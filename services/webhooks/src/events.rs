//! The event source: every revision of every operation record, read from a
//! durable consumer on the records bucket's own stream
//! (`KV_dossier_operations`, consumer `webhook-events`), so the operations
//! service needs no change and no second publish. A revision becomes one
//! delivery per endpoint of the record's tenant that asked for its event
//! type: a terminal revision is `operation.completed`, a processing one
//! `operation.progress`.
//!
//! **Once per event.** Each event has a deterministic `webhook-id`
//! (`msg_<operation id>_<status>` when it ends, `msg_<operation
//! id>_progress_<n>` for progress `n`), so a revision delivered twice, or
//! two revisions the endpoint cannot tell apart, make one delivery: the
//! fan-out skips a delivery whose record exists, publishes the job with the
//! record key as its message id (JetStream drops a re-publish within the
//! duplicate window), then creates the record. A crash between the two is
//! healed by the redelivery of the revision: the record is missing, the job
//! is published again (dropped as a duplicate) and the record created.
//!
//! Intermediate revisions may be coalesced (the bucket keeps one revision
//! per key, so a slow consumer finds only the latest); a terminal revision
//! is a record's last, so it is never lost that way.

use std::sync::Arc;

use async_nats::jetstream;
use async_nats::jetstream::AckKind;
use dossier_broker::consume::{ConsumeLoop, DurableStream};
use dossier_contracts::api::webhooks::{EVENT_OPERATION_COMPLETED, EVENT_OPERATION_PROGRESS};
use dossier_contracts::v1::{DeliveryStatus, Operation, WebhookDelivery, WebhookJob};
use dossier_contracts::{Kind, Status, time_ext};
use prost::Message as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::deliveries::key;
use crate::error::{Error, error_chain};

/// Record revisions handled at once.
const CONCURRENCY: usize = 16;
/// Wait before a revision that could not be handled is tried again.
const RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the fan-out until `shutdown`.
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let source = DurableStream::new(
        shared.topology.records.clone(),
        dossier_broker::WEBHOOK_EVENTS_CONSUMER,
        CONCURRENCY * 2,
    );
    let fan_out = ConsumeLoop {
        retry: crate::RECONNECT,
        health: shared.events_health.clone(),
        ..ConsumeLoop::new(dossier_broker::WEBHOOK_EVENTS_CONSUMER, CONCURRENCY)
    };
    fan_out
        .run(source, &shutdown, move |message, _| {
            handle(shared.clone(), message)
        })
        .await;
}

async fn handle(shared: Arc<Shared>, message: jetstream::Message) {
    let ack = match fan_out(&shared, &message).await {
        Ok(()) => AckKind::Ack,
        Err(error) => {
            tracing::warn!(
                message = "Cannot fan a record revision out to webhooks; retrying.",
                subject = %message.subject,
                error = %error_chain(&error),
            );
            AckKind::Nak(Some(RETRY_DELAY))
        }
    };
    if let Err(error) = message.ack_with(ack).await {
        tracing::warn!(message = "Cannot acknowledge a record revision.", %error);
    }
}

/// What an endpoint is told of one record revision.
struct Event {
    event_type: &'static str,
    webhook_id: String,
}

/// The event a record is, if any: terminal → completed; processing →
/// progress; queued → none.
fn event_of(record: &Operation) -> Option<Event> {
    let status = Status::from_proto(record.status)?;
    let id = record.id.replace('-', "");
    if status.is_terminal() {
        return Some(Event {
            event_type: EVENT_OPERATION_COMPLETED,
            webhook_id: format!("msg_{id}_{}", status.as_str()),
        });
    }
    (status == Status::Processing).then(|| Event {
        event_type: EVENT_OPERATION_PROGRESS,
        webhook_id: format!("msg_{id}_progress_{}", record.progress.unwrap_or(0)),
    })
}

async fn fan_out(shared: &Shared, message: &jetstream::Message) -> Result<(), Error> {
    // Delete markers (an expired record, a purge) carry no record.
    let deleted = message
        .headers
        .as_ref()
        .and_then(|h| h.get("KV-Operation"))
        .is_some_and(|op| op.as_str() != "PUT");
    if deleted || message.payload.is_empty() {
        return Ok(());
    }
    let record = match Operation::decode(message.payload.clone()) {
        Ok(record) => record,
        Err(error) => {
            // Nothing a retry could change: logged and skipped.
            tracing::error!(message = "An operation record does not decode; no webhook for it.", subject = %message.subject, %error);
            return Ok(());
        }
    };
    let Some(event) = event_of(&record) else {
        return Ok(());
    };
    if !crate::is_valid_tenant(&record.tenant_id) {
        return Ok(());
    }
    let endpoints = shared.endpoints.load(&record.tenant_id).await?;
    // An endpoint hears only of what happened after it was registered.
    let written = message
        .info()
        .map(|info| info.published)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let chosen: Vec<_> = endpoints
        .iter()
        .filter(|e| e.disabled_at.is_none())
        .filter(|e| e.event_types.iter().any(|t| t == event.event_type))
        .filter(|e| {
            e.created_at
                .as_ref()
                .and_then(time_ext::from_timestamp)
                .is_some_and(|created| created <= written)
        })
        .collect();
    if chosen.is_empty() {
        return Ok(());
    }
    let body = serde_json::to_vec(&body(event.event_type, &record, &shared.public_base_url))
        .map_err(|e| Error::Corrupt {
            what: "operation record",
            key: record.id.clone(),
            reason: e.to_string(),
        })?;
    let now = time_ext::now();
    for endpoint in chosen {
        let key = key(&endpoint.id, &event.webhook_id);
        if shared.deliveries.exists(&key).await? {
            continue;
        }
        let job = WebhookJob {
            tenant_id: record.tenant_id.clone(),
            endpoint_id: endpoint.id.clone(),
            webhook_id: event.webhook_id.clone(),
            event_type: event.event_type.to_owned(),
            operation_id: record.id.clone(),
            body_json: body.clone(),
            created_at: Some(now),
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", key.as_str());
        shared
            .topology
            .jetstream
            .publish_with_headers(
                dossier_broker::webhook_subject(&record.tenant_id),
                headers,
                job.encode_to_vec().into(),
            )
            .await
            .map_err(Error::broker("publish a webhook delivery"))?
            .await
            .map_err(Error::broker("publish a webhook delivery"))?;
        let pending = WebhookDelivery {
            webhook_id: event.webhook_id.clone(),
            endpoint_id: endpoint.id.clone(),
            tenant_id: record.tenant_id.clone(),
            event_type: event.event_type.to_owned(),
            operation_id: record.id.clone(),
            status: DeliveryStatus::Pending as i32,
            attempts: Vec::new(),
            created_at: Some(now),
            updated_at: Some(now),
            next_attempt_at: Some(now),
        };
        // The delivery may have run (and written its record) already.
        shared.deliveries.create(&key, &pending).await?;
        metrics::counter!(crate::metrics::EVENTS, "type" => event.event_type).increment(1);
    }
    Ok(())
}

/// The body of a delivery (Standard Webhooks' recommended shape: `type`,
/// `timestamp`, `data`): the operation as `GET /api/operations/{id}`
/// answers it, but without its result, which `data.pollUrl` leads to (a
/// result may be megabytes; a receiver fetches it with its API key).
fn body(event_type: &str, record: &Operation, base: &str) -> Value {
    let status = Status::from_proto(record.status);
    let time = |t: &Option<prost_types::Timestamp>| t.as_ref().and_then(time_ext::to_rfc3339);
    let progress = match status {
        Some(Status::Succeeded | Status::PartialSuccess) => Some(100),
        _ => record.progress.map(|p| p.min(100)),
    };
    let error = match (&record.error, status) {
        (Some(e), Some(Status::Failed | Status::Cancelled)) => {
            json!({ "code": e.code, "message": e.message })
        }
        (None, Some(Status::Cancelled)) => {
            json!({ "code": "cancelled", "message": "The operation was cancelled." })
        }
        (None, Some(Status::Failed)) => {
            json!({ "code": "failed", "message": "The operation failed." })
        }
        _ => Value::Null,
    };
    json!({
        "type": event_type,
        "timestamp": time(&record.updated_at),
        "data": {
            "id": record.id,
            "operationId": record.id,
            "kind": Kind::from_proto(record.kind).map(Kind::as_str),
            "status": status.map(Status::as_str),
            "progress": progress,
            "error": error,
            "createdAt": time(&record.created_at),
            "updatedAt": time(&record.updated_at),
            "startedAt": time(&record.started_at),
            "completedAt": time(&record.completed_at),
            "cancelRequested": record.cancel_requested,
            "expiresAt": time(&record.expires_at),
            "pollUrl": format!("{base}/api/operations/{}", record.id),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_ids_are_one_per_terminal_status_and_progress_value() {
        let record = |status: Status, progress| Operation {
            id: "0193-abcd".to_owned(),
            status: status.to_proto() as i32,
            progress,
            ..Default::default()
        };
        assert!(event_of(&record(Status::Queued, None)).is_none());
        let done = event_of(&record(Status::Succeeded, Some(100))).unwrap();
        assert_eq!(done.event_type, EVENT_OPERATION_COMPLETED);
        assert_eq!(done.webhook_id, "msg_0193abcd_succeeded");
        let progress = event_of(&record(Status::Processing, Some(40))).unwrap();
        assert_eq!(progress.event_type, EVENT_OPERATION_PROGRESS);
        assert_eq!(progress.webhook_id, "msg_0193abcd_progress_40");
        assert_eq!(
            event_of(&record(Status::Processing, Some(40)))
                .unwrap()
                .webhook_id,
            progress.webhook_id,
            "the same state is the same event"
        );
    }
}
