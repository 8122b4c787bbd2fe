//! Decisions this service makes about an operation's runs, taken through the
//! operation's lease entry (`dossier_broker::lease`) by compare-and-set, so
//! that they are ordered with the workers' own: a cancellation and a run's
//! commit, or a dead letter and a stalled run's commit, cannot both win.
//!
//! - **Cancel.** No run holds the operation → a finish mark `cancelled`: no
//!   delivery runs it any more. A run holds it → the entry's cancellation
//!   flag: the run may then commit only `cancelled` (a run that finds the
//!   flag at its commit ends cancelled instead). Finished → the status it
//!   finished with, whatever the record shows yet.
//! - **Dead letter.** A finish mark `failed` unless the operation is already
//!   finished, in which case the committed outcome stands.
//!
//! A finish mark written here carries its terminal event, like a worker's
//! commit: if this service dies before the record shows it, the next
//! delivery of the job publishes the event, and the projection finishes the
//! record.

use async_nats::jetstream::kv;
use dossier_broker::lease::{self, Found, Lease};
use dossier_contracts::v1::{Cancelled, Operation, OperationEvent, operation_event};
use dossier_contracts::{Kind, Status};

use crate::error::Error;
use crate::merge::CancelDecision as Cancel;

/// Conflicting writes tolerated in one decision before answering "try
/// again": each conflict is another writer's decision landing first, and a
/// run writes its entry about every ten seconds, so several in a row are
/// improbable.
const TRIES: u32 = 5;

/// The worker id of finish marks this service writes.
const WRITER: &str = "operations";

/// Decides a cancellation of `id` through its lease. `Err(Terminal)` when
/// the operation has finished (the status its run committed).
pub(crate) async fn cancel(
    leases: &kv::Store,
    kind: Kind,
    id: &str,
    event: &OperationEvent,
) -> Result<Cancel, Error> {
    let key = dossier_broker::lease_key(kind, id);
    for _ in 0..TRIES {
        let entry = leases.entry(key.as_str()).await.map_err(broker)?;
        let (found, held, revision) = lease::read(entry.as_ref());
        let (decision, value) = match (found, held) {
            (Found::Finished { status, .. }, _) => return Err(Error::Terminal(parse(&status))),
            (
                Found::Held {
                    cancel_requested: true,
                    remaining,
                },
                _,
            ) if !remaining.is_zero() => return Ok(Cancel::Requested),
            (Found::Held { remaining, .. }, Some(mut held)) if !remaining.is_zero() => {
                held.cancel_requested = true;
                (Cancel::Requested, held.to_bytes())
            }
            // Free, or an expired hold (its run died or stalled: the mark
            // fences it out, it cannot commit any more).
            // Any entry at all means a run took the operation once.
            _ => (
                Cancel::Stopped { ran: revision != 0 },
                finish_mark(Status::Cancelled, event),
            ),
        };
        if lease::write_if(leases, &key, value, revision)
            .await
            .map_err(broker)?
            .is_some()
        {
            return Ok(decision);
        }
    }
    Err(contended())
}

/// What became of a dead job, decided through its lease.
#[derive(Debug)]
pub(crate) enum DeadLetter {
    /// The operation fails with the dead letter's event (now its finish mark).
    Failed(OperationEvent),
    /// Its last run had committed this outcome, which may not be on the
    /// events stream yet: it stands.
    Committed(OperationEvent),
    /// It had finished, its outcome already published.
    Finished,
}

/// Fences a dead job: `dead` becomes the operation's finish mark unless a
/// run committed an outcome first.
pub(crate) async fn dead_letter(
    leases: &kv::Store,
    kind: Kind,
    dead: OperationEvent,
) -> Result<DeadLetter, Error> {
    let key = dossier_broker::lease_key(kind, &dead.operation_id);
    for _ in 0..TRIES {
        let entry = leases.entry(key.as_str()).await.map_err(broker)?;
        let (found, _, revision) = lease::read(entry.as_ref());
        if let Found::Finished { event, .. } = found {
            return Ok(event.map_or(DeadLetter::Finished, |e| DeadLetter::Committed(*e)));
        }
        let value = finish_mark(Status::Failed, &dead);
        if lease::write_if(leases, &key, value, revision)
            .await
            .map_err(broker)?
            .is_some()
        {
            return Ok(DeadLetter::Failed(dead));
        }
    }
    Err(contended())
}

/// The terminal event of a cancellation decided here, as the finish mark
/// carries it (see the module's docs).
pub(crate) fn cancelled_event(record: &Operation, now: prost_types::Timestamp) -> OperationEvent {
    OperationEvent {
        event_id: format!("cancel-{}", record.id),
        operation_id: record.id.clone(),
        tenant_id: record.tenant_id.clone(),
        kind: record.kind,
        attempt: 0,
        worker_id: WRITER.to_owned(),
        occurred_at: Some(now),
        operation_created_at: record.created_at,
        event: Some(operation_event::Event::Cancelled(Cancelled {
            partial_result: None,
            progress: None,
        })),
    }
}

fn finish_mark(status: Status, event: &OperationEvent) -> bytes::Bytes {
    Lease::finished(WRITER, event.attempt, status.as_str(), Some(event)).to_bytes()
}

/// A committed status's wire name; an unknown one (a newer writer) counts
/// as failed, the status that promises nothing about a result.
fn parse(status: &str) -> Status {
    Status::ALL
        .into_iter()
        .find(|s| s.as_str() == status)
        .unwrap_or(Status::Failed)
}

fn broker(error: impl Into<async_nats::Error>) -> Error {
    Error::broker("deciding through the operation's lease")(error.into())
}

fn contended() -> Error {
    Error::Contention("its lease".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_statuses_parse_and_unknown_ones_fail() {
        for status in Status::ALL {
            assert_eq!(parse(status.as_str()), status);
        }
        assert_eq!(parse("exploded"), Status::Failed);
    }
}
