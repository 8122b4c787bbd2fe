//! Following an operation live: `GET /api/operations/{id}/events`
//! (server-sent events), reconnecting with `Last-Event-ID` when the stream
//! drops, until the terminal event.

use std::time::Duration;

use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use reqwest::{Method, StatusCode};

use crate::client::{Client, Operation, operation_path};
use crate::error::CliError;

/// Reconnections in a row without a new event before giving up.
const MAX_RECONNECTS: u32 = 8;
/// First pause before a reconnection; doubled each time, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// Longest pause between reconnections.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Follows operation `id` until it ends, calling `on_state` with each state
/// the stream sends (the first is the current one), and returns the
/// terminal state (with the first page of its result).
///
/// A stream that ends early (a gateway restart, a proxy timeout) is opened
/// again with the last event id, so no state is seen twice; after
/// [`MAX_RECONNECTS`] failures in a row without an event, the error is
/// returned. Answers other than 200/204 or a 5xx are final (404, 401, …).
pub async fn follow(
    client: &Client,
    id: &str,
    mut on_state: impl FnMut(&Operation),
) -> Result<Operation, CliError> {
    let mut last_event_id: Option<String> = None;
    let mut failures: u32 = 0;
    let mut last_error = String::new();
    loop {
        if failures > 0 {
            if failures > MAX_RECONNECTS {
                return Err(CliError::Network(format!(
                    "the event stream of operation {id} keeps failing: {last_error}"
                )));
            }
            let pause = FIRST_PAUSE
                .saturating_mul(1 << (failures - 1).min(5))
                .min(MAX_PAUSE);
            tokio::time::sleep(pause).await;
        }
        let mut request = client
            .request(Method::GET, &format!("{}/events", operation_path(id)))
            .header("accept", "text/event-stream");
        if let Some(last) = &last_event_id {
            request = request.header("last-event-id", last);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                failures += 1;
                last_error = CliError::from(error).to_string();
                continue;
            }
        };
        match response.status() {
            StatusCode::OK => {}
            // We already had the terminal event (only after a reconnect):
            // its state is what GET answers.
            StatusCode::NO_CONTENT => return client.operation(id).await,
            status if status.is_server_error() => {
                failures += 1;
                last_error = crate::client::problem_of(response).await.to_string();
                continue;
            }
            _ => return Err(crate::client::problem_of(response).await),
        }
        let mut events = response.bytes_stream().eventsource();
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    last_error = error.to_string();
                    break;
                }
            };
            let state: Operation = serde_json::from_str(&event.data)
                .map_err(|e| CliError::Network(format!("unreadable event from the API: {e}")))?;
            if !event.id.is_empty() {
                last_event_id = Some(event.id);
            }
            failures = 0;
            on_state(&state);
            if event.event == "terminal" || state.is_terminal() {
                return Ok(state);
            }
        }
        if last_error.is_empty() {
            last_error = "the stream closed before the operation ended".to_owned();
        }
        failures += 1;
    }
}

/// Starts an operation with `POST path` and returns it at its end: at once
/// when it finishes within the `Prefer: wait` of `wait` seconds, else
/// followed over the event stream (`on_state` sees each state).
pub async fn start_and_follow(
    client: &Client,
    path: &str,
    body: &serde_json::Value,
    wait: u32,
    on_state: impl FnMut(&Operation),
) -> Result<Operation, CliError> {
    match client.start(path, body, None, Some(wait)).await? {
        crate::client::Started::Finished(op) if op.is_terminal() => Ok(*op),
        started => follow(client, started.id(), on_state).await,
    }
}
