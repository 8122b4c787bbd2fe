//! The projection's rules as pure functions: how an [`OperationEvent`]
//! changes an operation record ([`merge`]) and how a cancellation request
//! does ([`cancel`]).
//!
//! Events arrive twice, late and out of order, and several replicas project
//! them at once. The rules are therefore written so that applying any event
//! any number of times, in any order, only ever moves a record *up*:
//!
//! - a terminal record never changes (the first terminal event wins);
//! - status only moves to a higher [`Status::rank`] (queued 0 < processing 1
//!   < terminal 2);
//! - progress is the maximum seen, capped at 100;
//! - `attempt` is the maximum seen; `started_at` is set once.
//!
//! Every rule is a join (a max) over a lattice, so the result does not depend
//! on the order of events; the only exception is *which* terminal status
//! wins, and there "first writer wins" is what the product promises
//! (a terminal status is final). Replicas never need to coordinate beyond the
//! compare-and-set on the stored record (see `records.rs`).

use dossier_contracts::v1::operation_event::Event;
use dossier_contracts::v1::{Operation, OperationError, OperationEvent};
use dossier_contracts::{Status, time_ext};
use prost_types::Timestamp;

/// Error code of an operation cancelled by its owner.
pub const CANCELLED_CODE: &str = "cancelled";
/// Error code of a job JetStream gave up on after its last delivery.
pub const MAX_DELIVERIES_CODE: &str = "max_deliveries_exceeded";

/// Merges `event` into `record` (`None`: the operation has no record yet) and
/// returns the new record, or `None` when the event changes nothing (a
/// duplicate, a late event, or any event for a terminal record).
/// `request_id` is the one the event's headers carry: a record made from the
/// event keeps it.
///
/// `updated_at` of a changed record is now.
pub fn merge(
    record: Option<Operation>,
    event: &OperationEvent,
    request_id: &str,
) -> Option<Operation> {
    merge_at(record, event, request_id, time_ext::now())
}

/// [`merge`] with an explicit "now", for tests.
pub fn merge_at(
    record: Option<Operation>,
    event: &OperationEvent,
    request_id: &str,
    now: Timestamp,
) -> Option<Operation> {
    let (mut next, is_new) = match record {
        Some(record) => {
            if status_of(&record).is_terminal() {
                return None;
            }
            // An event names its operation's tenant; one that disagrees with
            // the record is a bug somewhere upstream and must not let one
            // tenant's worker touch another tenant's record.
            if !record.tenant_id.is_empty() && record.tenant_id != event.tenant_id {
                return None;
            }
            (record, false)
        }
        None => (seed(event, request_id, now), true),
    };
    let before = next.clone();
    let at = event.occurred_at.unwrap_or(now);

    next.attempt = next.attempt.max(event.attempt);
    match &event.event {
        None => {}
        Some(Event::Started(_)) => start(&mut next, at),
        Some(Event::Progressed(p)) => {
            start(&mut next, at);
            let progress = p.progress.min(100);
            next.progress = Some(next.progress.unwrap_or(0).max(progress));
        }
        Some(Event::Succeeded(s)) => {
            finish(&mut next, Status::Succeeded, at);
            next.progress = Some(100);
            next.result = s.result.clone();
            next.error = None;
        }
        Some(Event::PartiallySucceeded(p)) => {
            finish(&mut next, Status::PartialSuccess, at);
            next.progress = Some(100);
            next.result = p.result.clone();
            next.error = p.error.clone();
        }
        Some(Event::Failed(f)) => {
            finish(&mut next, Status::Failed, at);
            next.error = Some(f.error.clone().unwrap_or_else(|| OperationError {
                code: "failed".to_owned(),
                message: "The operation failed.".to_owned(),
                details_json: String::new(),
            }));
        }
        Some(Event::Cancelled(c)) => {
            finish(&mut next, Status::Cancelled, at);
            next.result = c.partial_result.clone();
            next.error = Some(cancelled_error("Cancelled while it was running."));
            // The share of the work kept, when the worker says: the last
            // progress reported may count work the stop discarded.
            if let Some(kept) = c.progress {
                next.progress = Some(kept.min(100));
            }
        }
    }

    if !is_new && next == before {
        return None;
    }
    next.updated_at = Some(now);
    Some(next)
}

/// What a cancellation decided through the operation's lease (see
/// `fence.rs`), the one place where it is ordered with the runs' commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelDecision {
    /// No run held the operation: it is finished as cancelled and no run
    /// will start. `ran` when a run had held it before (handed back, or
    /// died).
    Stopped {
        /// A run had taken the operation once.
        ran: bool,
    },
    /// A run holds the operation and may now end only as `cancelled`.
    Requested,
}

/// What a cancellation does to a record.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// No run will start: the record becomes `cancelled` (store this record).
    Cancelled(Operation),
    /// A run is asked to stop (store this record).
    Requested(Operation),
    /// Already asked to stop, or already cancelled (the run stopped before
    /// this record was read): nothing to store.
    Unchanged,
    /// Finished otherwise: nothing changes.
    Terminal(Status),
}

/// Applies a cancellation `decision` to `record` at `now`. The record may
/// lag the decision: a run may have started (or stopped) without the record
/// showing it yet, so the decision, not the record's status, says which.
pub fn cancel(record: &Operation, decision: CancelDecision, now: Timestamp) -> CancelOutcome {
    match status_of(record) {
        Status::Cancelled => return CancelOutcome::Unchanged,
        status if status.is_terminal() => return CancelOutcome::Terminal(status),
        _ => {}
    }
    match decision {
        CancelDecision::Stopped { ran } => {
            let mut next = record.clone();
            let started = ran || record.started_at.is_some();
            next.status = Status::Cancelled.to_proto() as i32;
            next.error = Some(cancelled_error(if started {
                "Cancelled; its run had stopped and it will not run again."
            } else {
                "Cancelled before it started."
            }));
            next.completed_at = Some(now);
            next.cancel_requested = true;
            next.updated_at = Some(now);
            CancelOutcome::Cancelled(next)
        }
        CancelDecision::Requested if record.cancel_requested => CancelOutcome::Unchanged,
        CancelDecision::Requested => {
            let mut next = record.clone();
            next.cancel_requested = true;
            next.updated_at = Some(now);
            CancelOutcome::Requested(next)
        }
    }
}

/// The record's status; an unknown value counts as queued, the lowest rank,
/// so that any real status can still replace it.
pub fn status_of(record: &Operation) -> Status {
    Status::from_proto(record.status).unwrap_or(Status::Queued)
}

fn cancelled_error(message: &str) -> OperationError {
    OperationError {
        code: CANCELLED_CODE.to_owned(),
        message: message.to_owned(),
        details_json: String::new(),
    }
}

/// A record for an operation first seen through one of its events (the
/// worker's event overtook the accept path's record write, or the record was
/// never written because the accept path died after storing the job).
fn seed(event: &OperationEvent, request_id: &str, now: Timestamp) -> Operation {
    Operation {
        id: event.operation_id.clone(),
        tenant_id: event.tenant_id.clone(),
        kind: event.kind,
        status: Status::Queued.to_proto() as i32,
        created_at: Some(
            event
                .operation_created_at
                .or(event.occurred_at)
                .unwrap_or(now),
        ),
        updated_at: Some(now),
        request_id: request_id.to_owned(),
        ..Operation::default()
    }
}

fn start(record: &mut Operation, at: Timestamp) {
    if status_of(record).rank() < Status::Processing.rank() {
        record.status = Status::Processing.to_proto() as i32;
    }
    if record.started_at.is_none() {
        record.started_at = Some(at);
    }
}

/// Callers ensure `record` is not terminal (a terminal record never reaches
/// the event match).
fn finish(record: &mut Operation, status: Status, at: Timestamp) {
    record.status = status.to_proto() as i32;
    record.completed_at = Some(at);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use dossier_contracts::Kind;
    use dossier_contracts::v1::{
        Cancelled, Failed, PartiallySucceeded, Progressed, ResultRef, Started, Succeeded,
        result_ref,
    };

    use super::*;

    /// The request id the test events' headers carry.
    const REQUEST_ID: &str = "req-1";

    fn ts(seconds: i64) -> Timestamp {
        Timestamp { seconds, nanos: 0 }
    }

    fn event(event: Event) -> OperationEvent {
        OperationEvent {
            event_id: "e".to_owned(),
            operation_id: "op-1".to_owned(),
            tenant_id: "acme".to_owned(),
            kind: Kind::SearchPeople.to_proto() as i32,
            attempt: 1,
            worker_id: "w".to_owned(),
            occurred_at: Some(ts(50)),
            operation_created_at: Some(ts(10)),
            event: Some(event),
        }
    }

    fn record(status: Status) -> Operation {
        Operation {
            id: "op-1".to_owned(),
            tenant_id: "acme".to_owned(),
            kind: Kind::SearchPeople.to_proto() as i32,
            status: status.to_proto() as i32,
            created_at: Some(ts(10)),
            updated_at: Some(ts(10)),
            request_id: "req-1".to_owned(),
            ..Operation::default()
        }
    }

    fn result(json: &str) -> ResultRef {
        ResultRef {
            location: Some(result_ref::Location::InlineJson(json.as_bytes().to_vec())),
            size_bytes: json.len() as u64,
        }
    }

    fn started() -> Event {
        Event::Started(Started {})
    }
    fn progressed(p: u32) -> Event {
        Event::Progressed(Progressed { progress: p })
    }
    fn succeeded() -> Event {
        Event::Succeeded(Succeeded {
            result: Some(result("{\"ok\":true}")),
        })
    }
    fn failed(code: &str) -> Event {
        Event::Failed(Failed {
            error: Some(OperationError {
                code: code.to_owned(),
                message: "boom".to_owned(),
                details_json: String::new(),
            }),
        })
    }

    fn apply(record: Option<Operation>, e: Event) -> Option<Operation> {
        merge_at(record, &event(e), REQUEST_ID, ts(100))
    }

    fn processing(progress: Option<u32>) -> Operation {
        Operation {
            status: Status::Processing.to_proto() as i32,
            progress,
            started_at: Some(ts(50)),
            attempt: 1,
            updated_at: Some(ts(100)),
            ..record(Status::Queued)
        }
    }

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            record: Option<Operation>,
            event: Event,
            want: Option<Operation>,
        }
        let cases = vec![
            Case {
                name: "started moves queued to processing and sets started_at",
                record: Some(record(Status::Queued)),
                event: started(),
                want: Some(processing(None)),
            },
            Case {
                name: "a duplicate started changes nothing",
                record: Some(processing(None)),
                event: started(),
                want: None,
            },
            Case {
                name: "progressed on a queued record makes it processing",
                record: Some(record(Status::Queued)),
                event: progressed(40),
                want: Some(processing(Some(40))),
            },
            Case {
                name: "progress never decreases",
                record: Some(processing(Some(80))),
                event: progressed(40),
                want: None,
            },
            Case {
                name: "progress is capped at 100",
                record: Some(processing(Some(80))),
                event: progressed(250),
                want: Some(processing(Some(100))),
            },
            Case {
                name: "succeeded sets result, progress 100 and completed_at",
                record: Some(processing(Some(30))),
                event: succeeded(),
                want: Some(Operation {
                    status: Status::Succeeded.to_proto() as i32,
                    progress: Some(100),
                    result: Some(result("{\"ok\":true}")),
                    completed_at: Some(ts(50)),
                    ..processing(None)
                }),
            },
            Case {
                name: "partial success keeps the summary error",
                record: Some(processing(None)),
                event: Event::PartiallySucceeded(PartiallySucceeded {
                    result: Some(result("[]")),
                    error: Some(OperationError {
                        code: "some_failed".to_owned(),
                        message: "2 of 3".to_owned(),
                        details_json: String::new(),
                    }),
                }),
                want: Some(Operation {
                    status: Status::PartialSuccess.to_proto() as i32,
                    progress: Some(100),
                    result: Some(result("[]")),
                    error: Some(OperationError {
                        code: "some_failed".to_owned(),
                        message: "2 of 3".to_owned(),
                        details_json: String::new(),
                    }),
                    completed_at: Some(ts(50)),
                    ..processing(None)
                }),
            },
            Case {
                name: "succeeded before started: terminal straight from queued",
                record: Some(record(Status::Queued)),
                event: succeeded(),
                want: Some(Operation {
                    status: Status::Succeeded.to_proto() as i32,
                    progress: Some(100),
                    result: Some(result("{\"ok\":true}")),
                    completed_at: Some(ts(50)),
                    attempt: 1,
                    updated_at: Some(ts(100)),
                    ..record(Status::Queued)
                }),
            },
            Case {
                name: "failed after succeeded changes nothing (first terminal wins)",
                record: Some(Operation {
                    status: Status::Succeeded.to_proto() as i32,
                    ..processing(Some(100))
                }),
                event: failed("boom"),
                want: None,
            },
            Case {
                name: "started after a terminal status changes nothing",
                record: Some(record(Status::Cancelled)),
                event: started(),
                want: None,
            },
            Case {
                name: "failed sets the error",
                record: Some(processing(None)),
                event: failed("provider_down"),
                want: Some(Operation {
                    status: Status::Failed.to_proto() as i32,
                    error: Some(OperationError {
                        code: "provider_down".to_owned(),
                        message: "boom".to_owned(),
                        details_json: String::new(),
                    }),
                    completed_at: Some(ts(50)),
                    ..processing(None)
                }),
            },
            Case {
                name: "cancelled keeps the partial result and says cancelled",
                record: Some(Operation {
                    cancel_requested: true,
                    ..processing(Some(60))
                }),
                event: Event::Cancelled(Cancelled {
                    partial_result: Some(result("[1]")),
                    progress: None,
                }),
                want: Some(Operation {
                    status: Status::Cancelled.to_proto() as i32,
                    cancel_requested: true,
                    result: Some(result("[1]")),
                    error: Some(OperationError {
                        code: CANCELLED_CODE.to_owned(),
                        message: "Cancelled while it was running.".to_owned(),
                        details_json: String::new(),
                    }),
                    completed_at: Some(ts(50)),
                    ..processing(Some(60))
                }),
            },
            Case {
                name: "cancelled with the share kept sets progress to it, up or down",
                record: Some(Operation {
                    cancel_requested: true,
                    ..processing(Some(60))
                }),
                event: Event::Cancelled(Cancelled {
                    partial_result: Some(result("[1]")),
                    progress: Some(40),
                }),
                want: Some(Operation {
                    status: Status::Cancelled.to_proto() as i32,
                    cancel_requested: true,
                    result: Some(result("[1]")),
                    error: Some(OperationError {
                        code: CANCELLED_CODE.to_owned(),
                        message: "Cancelled while it was running.".to_owned(),
                        details_json: String::new(),
                    }),
                    completed_at: Some(ts(50)),
                    ..processing(Some(40))
                }),
            },
            Case {
                name: "an unknown operation is created from the event",
                record: None,
                event: progressed(20),
                want: Some(Operation {
                    id: "op-1".to_owned(),
                    tenant_id: "acme".to_owned(),
                    kind: Kind::SearchPeople.to_proto() as i32,
                    status: Status::Processing.to_proto() as i32,
                    progress: Some(20),
                    created_at: Some(ts(10)),
                    updated_at: Some(ts(100)),
                    started_at: Some(ts(50)),
                    request_id: "req-1".to_owned(),
                    attempt: 1,
                    ..Operation::default()
                }),
            },
            Case {
                name: "another tenant's event never touches the record",
                record: Some(Operation {
                    tenant_id: "other".to_owned(),
                    ..record(Status::Queued)
                }),
                event: started(),
                want: None,
            },
        ];
        for case in cases {
            assert_eq!(apply(case.record, case.event), case.want, "{}", case.name);
        }
    }

    #[test]
    fn a_higher_attempt_is_recorded_even_without_other_changes() {
        let mut e = event(started());
        e.attempt = 3;
        let merged = merge_at(Some(processing(None)), &e, REQUEST_ID, ts(200)).unwrap();
        assert_eq!(merged.attempt, 3);
        assert_eq!(merged.updated_at, Some(ts(200)));
        // A lower attempt afterwards is ignored.
        e.attempt = 2;
        assert_eq!(merge_at(Some(merged), &e, REQUEST_ID, ts(300)), None);
    }

    #[test]
    fn every_order_of_the_same_events_ends_in_the_same_record() {
        let events = [started(), progressed(40), progressed(80), succeeded()];
        let mut finals = Vec::new();
        // All 24 permutations of four events.
        let mut order = [0usize, 1, 2, 3];
        permutations(&mut order, 0, &mut |order| {
            let mut current = Some(record(Status::Queued));
            let mut last_rank = 0;
            let mut last_progress = 0;
            for &i in order {
                if let Some(next) = merge_at(
                    current.clone(),
                    &event(events[i].clone()),
                    REQUEST_ID,
                    ts(100),
                ) {
                    let status = status_of(&next);
                    assert!(status.rank() >= last_rank);
                    assert!(next.progress.unwrap_or(0) >= last_progress);
                    last_rank = status.rank();
                    last_progress = next.progress.unwrap_or(0);
                    current = Some(next);
                }
            }
            let done = current.unwrap();
            finals.push((done.status, done.progress, done.result));
        });
        assert_eq!(finals.len(), 24);
        assert!(finals.iter().all(|f| f == &finals[0]), "{finals:?}");
        assert_eq!(finals[0].0, Status::Succeeded.to_proto() as i32);
    }

    fn permutations(items: &mut [usize; 4], k: usize, f: &mut impl FnMut(&[usize; 4])) {
        if k == items.len() {
            f(items);
            return;
        }
        for i in k..items.len() {
            items.swap(k, i);
            permutations(items, k + 1, f);
            items.swap(k, i);
        }
    }

    #[test]
    fn cancel_rules() {
        let now = ts(70);
        let stopped = CancelDecision::Stopped { ran: false };
        match cancel(&record(Status::Queued), stopped, now) {
            CancelOutcome::Cancelled(op) => {
                assert_eq!(status_of(&op), Status::Cancelled);
                assert!(op.cancel_requested);
                assert_eq!(op.completed_at, Some(now));
                let error = op.error.unwrap();
                assert_eq!(error.code, CANCELLED_CODE);
                assert_eq!(error.message, "Cancelled before it started.");
            }
            other => panic!("unexpected {other:?}"),
        }
        // A run had taken it (the record may not show it): never "before it started".
        for (record, decision) in [
            (
                record(Status::Queued),
                CancelDecision::Stopped { ran: true },
            ),
            (processing(Some(10)), stopped),
        ] {
            match cancel(&record, decision, now) {
                CancelOutcome::Cancelled(op) => {
                    assert_ne!(op.error.unwrap().message, "Cancelled before it started.");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        // A run holds it, whether or not the record shows it started.
        for record in [processing(Some(10)), record(Status::Queued)] {
            let before = status_of(&record);
            match cancel(&record, CancelDecision::Requested, now) {
                CancelOutcome::Requested(op) => {
                    assert_eq!(status_of(&op), before);
                    assert!(op.cancel_requested);
                    assert_eq!(op.completed_at, None);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let requested = Operation {
            cancel_requested: true,
            ..processing(None)
        };
        assert_eq!(
            cancel(&requested, CancelDecision::Requested, now),
            CancelOutcome::Unchanged
        );
        // The run stopped and its event was projected before the record was read.
        assert_eq!(
            cancel(&record(Status::Cancelled), CancelDecision::Requested, now),
            CancelOutcome::Unchanged
        );
        for status in [Status::Succeeded, Status::Failed, Status::PartialSuccess] {
            assert_eq!(
                cancel(&record(status), CancelDecision::Requested, now),
                CancelOutcome::Terminal(status)
            );
        }
    }
}
