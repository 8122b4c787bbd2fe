//! `GET /api/operations/{id}/events`: an operation's states as server-sent
//! events, from its current state to its terminal one.
//!
//! Each event is one state a client can observe — a distinct (status,
//! progress, `cancelRequested`) — with the operation exactly as `GET` shows
//! it as its data (`meta.requestId` is the stream request's) (`event: operation`; the last one `event: terminal`, with the
//! result or its first page and `page.next`), and the state's id (see
//! [`crate::watch`]: `R PPP C`, growing with every change). With
//! `Last-Event-ID` (or `?lastEventId=`) the stream sends only states with a
//! greater id: none a client has seen is sent twice, and the one it is
//! missing is the operation's current state. States the operation went
//! through while no stream was open are coalesced into the current one (the
//! record keeps only its latest state); the terminal state is always sent.
//! A client that already has the terminal event gets `204 No Content`,
//! which tells an `EventSource` to stop reconnecting.
//!
//! A stream costs no task in the gateway: its body reads the operations
//! service's `WatchOperation` stream (which follows the record's KV key),
//! and the heartbeat is a timer in the same body. Streams take a slot of
//! [`crate::admission::StreamSlots`] for as long as they are open, and end
//! when the gateway begins to shut down (the client reconnects elsewhere).

use std::convert::Infallible;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use dossier_contracts::v1;
use dossier_service::CancellationToken;
use futures::Stream;
use tokio::sync::OwnedSemaphorePermit;
use tonic::Streaming;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, Meta};
use crate::extract::{ExternalBase, OperationId};
use crate::openapi::components;
use crate::query::{parse_events_query, query_pairs};
use crate::views::{OperationResponse, OperationView};
use crate::watch::{self, EventId};

/// `Last-Event-ID`, as `EventSource` sends it on reconnecting.
const LAST_EVENT_ID: &str = "last-event-id";
/// The header's name in problems.
const LAST_EVENT_ID_NAME: &str = "Last-Event-ID";
/// The text of the heartbeat comment.
const HEARTBEAT: &str = "heartbeat";

#[utoipa::path(
    get,
    path = "/api/operations/{id}/events",
    operation_id = "streamOperationEvents",
    summary = "The operation's states, live, as server-sent events.",
    description = EVENTS,
    params(
        components::OperationIdPath,
        components::LastEventIdHeader,
        ("lastEventId" = Option<String>, Query, pattern = "^[1-3][0-9]{3}[01]$", description = "As `Last-Event-ID`, for clients that cannot set headers."),
    ),
    responses(
        (status = 200, description = "The event stream. Example:\n\n    event: operation\n    data: {\"id\":\"0193…\",\"status\":\"processing\",\"progress\":40,…}\n    id: 20400\n\n    : heartbeat\n\n    event: terminal\n    data: {\"id\":\"0193…\",\"status\":\"succeeded\",\"progress\":100,\"result\":{…},…}\n    id: 31000\n",
            body = components::OperationEvent, content_type = "text/event-stream",
            headers(("X-Request-Id" = String, description = "A fresh UUID per request."))),
        (status = 204, description = "The client already has the terminal event; nothing follows."),
        (status = 400, response = components::BadRequest),
        (status = 401, response = components::Unauthorized),
        (status = 404, response = components::NotFound),
        (status = 410, response = components::Gone),
        (status = 429, response = components::TooManyRequests),
        (status = 503, response = components::Unavailable),
    ),
)]
/// `GET /api/operations/{id}/events`; see the module documentation.
pub(crate) async fn operation_events(
    State(state): State<AppState>,
    caller: Caller,
    base: ExternalBase,
    OperationId(id): OperationId,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    dossier_telemetry::record_operation_id(id.as_str());
    let from_query = parse_events_query(&query_pairs(query)?)?;
    // The header wins: an `EventSource` opened with `?lastEventId=` keeps
    // that URL and sends its newer position in the header.
    let last = match headers.get(LAST_EVENT_ID) {
        Some(value) if !value.is_empty() => Some(
            value
                .to_str()
                .ok()
                .and_then(watch::parse_event_id)
                .ok_or_else(|| {
                    ApiError::invalid_header(
                        LAST_EVENT_ID_NAME,
                        "must be the id of an event of this operation's stream",
                    )
                })?,
        ),
        _ => from_query,
    };
    let slot = state.streams().try_take()?;
    // Read the current state before answering, so a missing operation or a
    // failing service is a problem answer, not a broken stream.
    let mut watch = watch::open(&state, &caller.tenant_id, &id).await?;
    let current = watch::first(&mut watch).await?;
    if watch::is_terminal(&current) && last.is_some_and(|last| last >= watch::event_id(&current)) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    tracing::debug!(message = "Event stream opened.", last_event_id = ?last);
    let feed = Feed {
        watch,
        pending: Some(current),
        last,
        done: false,
        base,
        // The body outlives the request's scope: keep its meta now.
        meta: Meta::current(),
        stopping: state.stopping().clone(),
        _slot: slot,
    };
    let keep_alive = KeepAlive::new()
        .interval(state.sse_heartbeat())
        .text(HEARTBEAT);
    let mut response = Sse::new(events(feed))
        .keep_alive(keep_alive)
        .into_response();
    // Proxies that buffer responses (nginx, the Ingress) must pass events on.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// What one stream holds while it is open.
struct Feed {
    watch: Streaming<v1::OperationView>,
    /// A state read but not yet sent (the first one).
    pending: Option<v1::OperationView>,
    /// The id of the newest state the client has.
    last: Option<EventId>,
    /// The terminal event was sent.
    done: bool,
    base: ExternalBase,
    /// `meta` of every event: the stream request's id.
    meta: Meta,
    stopping: CancellationToken,
    /// The stream's slot, given back when the stream is dropped.
    _slot: OwnedSemaphorePermit,
}

/// The events of `feed`: each state newer than the client's, until the
/// terminal one. Ends early (and the client reconnects with its last id)
/// when the watch ends or fails, or the gateway shuts down.
fn events(feed: Feed) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(feed, |mut feed| async move {
        loop {
            if feed.done {
                return None;
            }
            let view = match feed.pending.take() {
                Some(view) => view,
                None => {
                    let next = tokio::select! {
                        () = feed.stopping.cancelled() => return None,
                        next = feed.watch.message() => next,
                    };
                    match next {
                        Ok(Some(view)) => view,
                        Ok(None) => return None,
                        Err(status) => {
                            // E.g. the operations replica shuts down: the
                            // client resumes from its last event.
                            tracing::info!(message = "Operation watch ended; closing the event stream.", error = %status);
                            return None;
                        }
                    }
                }
            };
            let id = watch::event_id(&view);
            if feed.last.is_some_and(|last| id <= last) {
                continue;
            }
            feed.last = Some(id);
            feed.done = watch::is_terminal(&view);
            match event(view, id, &feed.base, feed.meta) {
                Ok(event) => return Some((Ok(event), feed)),
                Err(error) => {
                    tracing::error!(message = "Cannot show an operation's state; closing the event stream.", %error);
                    return None;
                }
            }
        }
    })
}

/// The event of one state: the operation exactly as `GET` answers it.
fn event(
    view: v1::OperationView,
    id: EventId,
    base: &ExternalBase,
    meta: Meta,
) -> anyhow::Result<Event> {
    let name = if watch::is_terminal(&view) {
        "terminal"
    } else {
        "operation"
    };
    let operation = OperationView::new(view, base).map_err(anyhow::Error::new)?;
    Ok(Event::default()
        .id(id.to_string())
        .event(name)
        .json_data(OperationResponse { operation, meta })?)
}

const EVENTS: &str = "A `text/event-stream` of the operation's states: its current state, then \
every change of status, progress or `cancelRequested`, then the terminal state, after which the \
server closes the stream. Each event's `data` is the operation exactly as `GET \
/api/operations/{id}` answers it (`OperationResponse`, on one line; a long result carries its \
first page and `result.page.next`). `event:` is `operation` for a state that is not terminal and \
`terminal` for the last one.

Every event has an `id:` that grows with each change: `R PPP C` in decimal, where R is 1 \
(queued), 2 (processing) or 3 (terminal), PPP the progress (0-100) and C 1 once cancellation was \
requested (`20400`: processing at 40 %; `31000`: finished). Any gateway replica computes the \
same id for the same state. Reconnect with `Last-Event-ID` (what `EventSource` sends by itself) \
or `?lastEventId=` (the header wins) to receive only the states after it: none twice, and the \
current state if it is newer. States the operation went through while no stream was open are \
not replayed one by one (the operation keeps only its latest state): the next event is the \
current one. The terminal event is always sent; a client that already has it gets `204 No \
Content` (an `EventSource` then stops reconnecting).

A comment line (`: heartbeat`) is sent every 15 s while nothing changes (the gateway's \
`DOSSIER_SSE_HEARTBEAT`). The stream also ends when the gateway shuts down or the operations \
service restarts: reconnect with the last id. Open streams have a limit per gateway \
(`DOSSIER_MAX_STREAMS`); past it, `503 too_many_streams`. Same tenant rules as `GET \
/api/operations/{id}` (404 before any stream).";
