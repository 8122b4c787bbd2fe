//! Watching one operation through the operations service's
//! `WatchOperation` stream, which sends the record's current state and then
//! each change until a terminal state (the service follows the record's KV
//! key, so nothing here polls). Server-sent events
//! (`GET /api/operations/{id}/events`) and `Prefer: wait` are built on it.
//!
//! Each state a client can observe has an **event id** derived from the
//! record alone — `R PPP C` in decimal: R the status rank plus one (1
//! queued, 2 processing, 3 terminal), PPP the progress (0-100), C 1 once
//! cancellation was requested. The projection only ever moves these three
//! up (see the operations service's `merge.rs`), so ids grow with every
//! change a client can see, every gateway replica computes the same id for
//! the same state, and resuming needs no state in the gateway: "after id X"
//! is "every state whose id is greater than X".

use dossier_contracts::Status;
use dossier_contracts::v1::{self, GetOperationRequest};
use tokio::time::Instant;
use tonic::Streaming;

use crate::AppState;
use crate::error::ApiError;
use crate::grpc::map_status;

/// An operation's id of a state (see the module documentation).
pub(crate) type EventId = u32;

/// Opens the watch of operation `id` of `tenant`. Fails before any state is
/// read exactly as `GetOperation` would: 404 for a missing operation or
/// another tenant's.
pub(crate) async fn open(
    state: &AppState,
    tenant: &str,
    id: &str,
) -> Result<Streaming<v1::OperationView>, ApiError> {
    Ok(state
        .operations()
        .watch_operation(state.signed(GetOperationRequest {
            tenant_id: tenant.to_owned(),
            id: id.to_owned(),
        })?)
        .await
        .map_err(map_status)?
        .into_inner())
}

/// The first state of a watch (the operation as it is now).
pub(crate) async fn first(
    watch: &mut Streaming<v1::OperationView>,
) -> Result<v1::OperationView, ApiError> {
    match watch.message().await {
        Ok(Some(view)) => Ok(view),
        Ok(None) => Err(ApiError::unavailable(
            "The service is temporarily unavailable. Retry shortly.",
            anyhow::anyhow!("WatchOperation ended before its first message"),
        )),
        Err(status) => Err(map_status(status)),
    }
}

/// The status of an answer (an unknown one counts as the lowest rank, as
/// the projection counts it).
pub(crate) fn status(view: &v1::OperationView) -> Status {
    Status::from_proto(view.status).unwrap_or(Status::Queued)
}

/// Whether the answer is a terminal state.
pub(crate) fn is_terminal(view: &v1::OperationView) -> bool {
    status(view).is_terminal()
}

/// The event id of the state `view` shows.
pub(crate) fn event_id(view: &v1::OperationView) -> EventId {
    let rank = u32::from(status(view).rank()) + 1;
    let progress = view.progress.unwrap_or(0).min(100);
    rank * 10_000 + progress * 10 + u32::from(view.cancel_requested)
}

/// Parses an event id a client sends back: `None` unless it is one
/// [`event_id`] could have made.
pub(crate) fn parse_event_id(s: &str) -> Option<EventId> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: EventId = s.parse().ok()?;
    let (rank, progress, cancel) = (id / 10_000, (id / 10) % 1_000, id % 10);
    ((1..=3).contains(&rank) && progress <= 100 && cancel <= 1).then_some(id)
}

/// How a wait ended.
pub(crate) struct Waited {
    /// The newest state seen (terminal when the operation ended in time).
    pub(crate) view: v1::OperationView,
    /// Why the watch stopped early, when it did (the state may be stale).
    pub(crate) interrupted: Option<tonic::Status>,
}

/// Waits, holding a stream slot, until operation `id` of `tenant` is
/// terminal or `wait` ends. `Ok(None)` when every slot is taken: the
/// gateway then does not wait (the preference is not honoured).
pub(crate) async fn wait_for_terminal(
    state: &AppState,
    tenant: &str,
    id: &str,
    wait: &crate::prefer::Wait,
) -> Result<Option<Waited>, ApiError> {
    let Ok(_slot) = state.streams().try_take() else {
        tracing::debug!(message = "No stream slot free; not waiting.");
        return Ok(None);
    };
    let mut watch = open(state, tenant, id).await?;
    let current = first(&mut watch).await?;
    let stopping = state.stopping().clone();
    Ok(Some(
        until_terminal(&mut watch, current, wait.deadline, async move {
            stopping.cancelled().await;
        })
        .await,
    ))
}

/// Follows `watch` from `current` until the operation is terminal,
/// `deadline` passes, or `stop` resolves (the gateway shuts down): one
/// pending read of the stream at a time, no timer but the deadline.
pub(crate) async fn until_terminal(
    watch: &mut Streaming<v1::OperationView>,
    mut current: v1::OperationView,
    deadline: Instant,
    stop: impl std::future::Future<Output = ()>,
) -> Waited {
    tokio::pin!(stop);
    while !is_terminal(&current) {
        let next = tokio::select! {
            () = &mut stop => break,
            next = tokio::time::timeout_at(deadline, watch.message()) => next,
        };
        match next {
            Err(_elapsed) => break,
            Ok(Ok(Some(view))) => current = view,
            Ok(Ok(None)) => {
                return Waited {
                    view: current,
                    interrupted: Some(tonic::Status::unavailable("the watch ended early")),
                };
            }
            Ok(Err(status)) => {
                return Waited {
                    view: current,
                    interrupted: Some(status),
                };
            }
        }
    }
    Waited {
        view: current,
        interrupted: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(status: Status, progress: Option<u32>, cancel: bool) -> v1::OperationView {
        v1::OperationView {
            status: status.to_proto() as i32,
            progress,
            cancel_requested: cancel,
            ..Default::default()
        }
    }

    #[test]
    fn event_ids_grow_with_every_observable_change_and_round_trip() {
        let states = [
            view(Status::Queued, None, false),
            view(Status::Processing, None, false),
            view(Status::Processing, Some(5), false),
            view(Status::Processing, Some(5), true),
            view(Status::Processing, Some(99), true),
            view(Status::Cancelled, Some(99), true),
        ];
        let ids: Vec<_> = states.iter().map(event_id).collect();
        assert_eq!(ids, [10000, 20000, 20050, 20051, 20991, 30991]);
        for id in ids {
            assert_eq!(parse_event_id(&id.to_string()), Some(id));
        }
        assert_eq!(event_id(&view(Status::Succeeded, Some(100), false)), 31000);
        assert_eq!(event_id(&view(Status::Processing, Some(250), false)), 21000);
    }

    #[test]
    fn ids_no_state_could_have_are_refused() {
        for bad in [
            "", "0", "9999", "40000", "21010", "10002", "+10000", " 10000", "1e4", "010000",
        ] {
            assert_eq!(parse_event_id(bad), None, "{bad:?}");
        }
    }
}
