//! The projection: worker events → operation records, and dead letters →
//! failed operations.
//!
//! ## Several replicas
//!
//! Every replica pulls from the same durable consumer (`projector` on
//! `DOSSIER_EVENTS`), so JetStream hands each event to one replica at a time
//! and redelivers it if that replica dies before acking. Two events of one
//! operation may still be projected at the same moment by two replicas (or
//! by two tasks of one replica, which processes up to [`CONCURRENCY`] events
//! at once): both read the record, merge, and write with compare-and-set;
//! the loser re-reads and merges again on top of the winner's write. Since
//! the merge only moves records up (see `merge.rs`), the result is the same
//! as any sequential order, and nothing needs a leader or a partition.
//!
//! An event is acked only after its write succeeded, so a crash between the
//! two means a redelivery, which the merge absorbs as a duplicate. A failed
//! write for a transient reason is naked with a delay; an event that can
//! never be applied (undecodable) is terminated so it does not loop.
//!
//! Both consumers here run the shared consume loop
//! (`dossier_broker::consume`) on a long-lived pull stream: bounded
//! concurrency, backoff while the consumer cannot be bound, and on shutdown
//! no more pulls and every event in hand finished.
//!
//! ## Dead letters
//!
//! When a job's consumer has delivered it `max_deliver` times and the last
//! delivery was never acked (the worker died each time), JetStream stops and
//! publishes a max-deliveries advisory, which `DOSSIER_ADVISORIES` keeps. The
//! `dead-letters` consumer turns each into a `Failed` event
//! (`max_deliveries_exceeded`) through the same merge path, then deletes the
//! job from the work-queue stream, where it would otherwise stay forever. A
//! redelivered advisory finds the job already gone and is simply acked.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, AckKind, stream};
use dossier_broker::consume::{ConsumeLoop, DurableStream};
use dossier_contracts::v1::{Failed, Job, OperationError, OperationEvent, operation_event};
use dossier_contracts::{Kind, time_ext};
use dossier_telemetry::propagation;
use prost::Message as _;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::accept::validate_tenant;
use crate::error::{Error, error_chain};
use crate::fence::DeadLetter;
use crate::merge::{MAX_DELIVERIES_CODE, merge, status_of};
use crate::records::{Change, Modified};
use crate::{RECONNECT, Shared};

/// Events one replica projects at once.
pub(crate) const CONCURRENCY: usize = 64;
/// Delay before a naked event is redelivered.
const NAK_DELAY: Duration = Duration::from_secs(1);

/// Runs the projector until `shutdown`, then finishes the events in flight.
pub(crate) async fn run_projector(shared: Arc<Shared>, shutdown: CancellationToken) {
    let source = DurableStream::new(
        shared.topology.events.clone(),
        dossier_broker::PROJECTOR_CONSUMER,
        CONCURRENCY.max(8),
    );
    let projector = ConsumeLoop {
        retry: RECONNECT,
        // Readiness: a replica that cannot consume events serves stale reads.
        health: shared.projector.clone(),
        ..ConsumeLoop::new(dossier_broker::PROJECTOR_CONSUMER, CONCURRENCY)
    };
    projector
        .run(source, &shutdown, move |message, _| {
            handle_event(shared.clone(), message)
        })
        .await;
}

/// Runs the dead-letter handler until `shutdown`.
pub(crate) async fn run_dead_letters(shared: Arc<Shared>, shutdown: CancellationToken) {
    let source = DurableStream::new(
        shared.topology.advisories.clone(),
        dossier_broker::DEAD_LETTER_CONSUMER,
        8,
    );
    let dead_letters = ConsumeLoop {
        retry: RECONNECT,
        ..ConsumeLoop::new(dossier_broker::DEAD_LETTER_CONSUMER, 4)
    };
    dead_letters
        .run(source, &shutdown, move |message, _| {
            handle_advisory(shared.clone(), message)
        })
        .await;
}

async fn handle_event(shared: Arc<Shared>, message: jetstream::Message) {
    let event = match OperationEvent::decode(message.payload.clone()) {
        Ok(event) => event,
        Err(error) => {
            tracing::warn!(message = "Dropping an undecodable event.", subject = %message.subject, %error);
            settle(&message, AckKind::Term).await;
            return;
        }
    };
    if let Err(reason) = check_event(&event) {
        tracing::warn!(message = "Dropping an invalid event.", operation_id = %event.operation_id, reason);
        settle(&message, AckKind::Term).await;
        return;
    }
    // Built by hand rather than with `#[instrument]`: the parent (the
    // worker's publish span) must be set before the span is first entered,
    // and none is built when the event's trace is not recorded.
    let (span, request_id) = propagation::nats_consume(
        message.subject.as_str(),
        &event.event_id,
        message.headers.as_ref(),
    );
    span.record(
        "messaging.consumer.group.name",
        dossier_broker::PROJECTOR_CONSUMER,
    );
    span.record_operation_id(event.operation_id.as_str());
    span.record("dossier.job.attempt", event.attempt);
    span.record("tenant.id", event.tenant_id.as_str());
    if let Some(kind) = &event.event {
        span.record("dossier.event.type", kind.type_name());
    }
    span.wrap(async {
        match project(&shared, &event, request_id).await {
            Ok(()) => {
                if let (Some(kind), Ok(info)) = (Kind::from_proto(event.kind), message.info()) {
                    crate::metrics::projected(kind, SystemTime::from(info.published));
                }
                settle(&message, AckKind::Ack).await;
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(message = "Cannot project the event now; it will be redelivered.", operation_id = %event.operation_id, error = %error_chain(&error));
                settle(&message, AckKind::Nak(Some(NAK_DELAY))).await;
            }
            Err(error) => {
                tracing::error!(message = "Cannot project the event; dropping it.", operation_id = %event.operation_id, error = %error_chain(&error));
                settle(&message, AckKind::Term).await;
            }
        }
    })
    .await;
}

fn check_event(event: &OperationEvent) -> Result<(), &'static str> {
    if Uuid::parse_str(&event.operation_id).is_err() {
        return Err("operation_id is not a UUID");
    }
    if validate_tenant(&event.tenant_id).is_err() {
        return Err("tenant_id is invalid");
    }
    if Kind::from_proto(event.kind).is_none() {
        return Err("kind is unspecified");
    }
    Ok(())
}

async fn settle(message: &jetstream::Message, kind: AckKind) {
    if let Err(error) = message.ack_with(kind).await {
        // The broker redelivers what it did not see acked; the merge
        // absorbs the duplicate.
        tracing::warn!(message = "Cannot acknowledge a message.", error = %error_chain(&*error));
    }
}

/// Merges `event`, which the request `request_id` caused, into its record
/// (creating it when absent) with compare-and-set, and tells the local list
/// index.
pub(crate) async fn project(
    shared: &Shared,
    event: &OperationEvent,
    request_id: &str,
) -> Result<(), Error> {
    let modified = shared
        .records
        .modify(&event.operation_id, |current| {
            Ok(match merge(current.cloned(), event, request_id) {
                Some(next) => Change::Write(next),
                None => Change::Keep(()),
            })
        })
        .await;
    let modified = match modified {
        // A late event (or dead letter) of an expired operation: it must
        // not bring the record back, and there is nothing left to update.
        Err(Error::Gone) => {
            tracing::debug!(message = "Event of an expired operation dropped.", operation_id = %event.operation_id);
            return Ok(());
        }
        other => other?,
    };
    match modified {
        Modified::Written { record, revision } => {
            let status = status_of(&record);
            shared.index.upsert_record(&record, revision);
            tracing::debug!(message = "Event projected.", operation_id = %record.id, %status, progress = record.progress.unwrap_or(0));
        }
        Modified::Unchanged(()) => {
            tracing::debug!(message = "Event changed nothing.", operation_id = %event.operation_id);
        }
    }
    Ok(())
}

/// `io.nats.jetstream.advisory.v1.max_deliver`, the fields used here.
#[derive(Debug, Deserialize)]
struct MaxDeliverAdvisory {
    #[serde(default)]
    stream: String,
    #[serde(default)]
    consumer: String,
    stream_seq: u64,
    #[serde(default)]
    deliveries: u64,
}

async fn handle_advisory(shared: Arc<Shared>, message: jetstream::Message) {
    let advisory: MaxDeliverAdvisory = match serde_json::from_slice(&message.payload) {
        Ok(advisory) => advisory,
        Err(error) => {
            tracing::warn!(message = "Dropping an undecodable advisory.", subject = %message.subject, %error);
            settle(&message, AckKind::Term).await;
            return;
        }
    };
    if advisory.stream != dossier_broker::JOBS_STREAM {
        settle(&message, AckKind::Ack).await;
        return;
    }
    match fail_dead_job(&shared, &advisory).await {
        Ok(()) => settle(&message, AckKind::Ack).await,
        Err(error) if error.is_transient() => {
            tracing::warn!(message = "Cannot handle a dead letter now; it will be redelivered.", stream_seq = advisory.stream_seq, error = %error_chain(&error));
            settle(&message, AckKind::Nak(Some(NAK_DELAY))).await;
        }
        Err(error) => {
            tracing::error!(message = "Cannot handle a dead letter; dropping it.", stream_seq = advisory.stream_seq, error = %error_chain(&error));
            settle(&message, AckKind::Term).await;
        }
    }
}

async fn fail_dead_job(shared: &Shared, advisory: &MaxDeliverAdvisory) -> Result<(), Error> {
    let jobs = &shared.topology.jobs;
    let raw = match jobs.get_raw_message(advisory.stream_seq).await {
        Ok(raw) => raw,
        Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => {
            tracing::debug!(
                message = "Dead job already removed.",
                stream_seq = advisory.stream_seq
            );
            return Ok(());
        }
        Err(e) => return Err(Error::broker("reading a dead job")(e.into())),
    };
    match Job::decode(raw.payload.clone()) {
        Ok(job) => {
            let event = dead_letter_event(&job, advisory);
            // The job's headers: the dead letter joins the request's trace.
            let (span, request_id) =
                propagation::nats_continue(Some(&raw.headers), "dead_letter", || {
                    tracing::info_span!(
                        "dead_letter",
                        dossier.operation.id = %job.operation_id,
                        request.id = tracing::field::Empty,
                        consumer = %advisory.consumer,
                        deliveries = advisory.deliveries,
                    )
                });
            span.record_operation_id(&job.operation_id);
            span.wrap(async {
                if check_event(&event).is_ok()
                    && let Some(kind) = Kind::from_proto(job.kind)
                {
                    // Through the lease: a run that committed its outcome
                    // (or still holds the operation, stalled) does not race
                    // this failure; the first decision stands.
                    match crate::fence::dead_letter(&shared.topology.leases, kind, event).await? {
                        DeadLetter::Failed(event) => {
                            project(shared, &event, request_id).await?;
                            crate::metrics::dead_letter(Some(kind));
                            tracing::warn!(message = "Job failed after its last delivery.", operation_id = %job.operation_id, deliveries = advisory.deliveries);
                        }
                        DeadLetter::Committed(committed) => {
                            project(shared, &committed, request_id).await?;
                            tracing::info!(message = "Dead job had committed its outcome; projected that instead of failing it.", operation_id = %job.operation_id);
                        }
                        DeadLetter::Finished => {
                            tracing::info!(message = "Dead job had finished already; nothing to fail.", operation_id = %job.operation_id);
                        }
                    }
                } else {
                    tracing::error!(message = "Dead job names no valid operation; removing it.", operation_id = %job.operation_id);
                }
                Ok::<(), Error>(())
            })
            .await?;
        }
        Err(error) => {
            tracing::error!(message = "Dead job is undecodable; removing it.", stream_seq = advisory.stream_seq, %error);
        }
    }
    match jobs.delete_message(advisory.stream_seq).await {
        Ok(_) => Ok(()),
        Err(delete_error) => match jobs.get_raw_message(advisory.stream_seq).await {
            // Removed meanwhile (a late ack of a slow worker, or another
            // replica handling a redelivered advisory).
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => Ok(()),
            _ => Err(Error::broker("deleting a dead job")(delete_error.into())),
        },
    }
}

fn dead_letter_event(job: &Job, advisory: &MaxDeliverAdvisory) -> OperationEvent {
    let deliveries = advisory.deliveries;
    OperationEvent {
        event_id: format!("dead-letter-{}", advisory.stream_seq),
        operation_id: job.operation_id.clone(),
        tenant_id: job.tenant_id.clone(),
        kind: job.kind,
        attempt: u32::try_from(deliveries).unwrap_or(u32::MAX),
        worker_id: "operations".to_owned(),
        occurred_at: Some(time_ext::now()),
        operation_created_at: job.created_at,
        event: Some(operation_event::Event::Failed(Failed {
            error: Some(OperationError {
                code: MAX_DELIVERIES_CODE.to_owned(),
                message: format!(
                    "The job was attempted {deliveries} time{} and never completed; it will not be retried.",
                    if deliveries == 1 { "" } else { "s" }
                ),
                details_json: serde_json::json!({ "deliveries": deliveries }).to_string(),
            }),
        })),
    }
}
