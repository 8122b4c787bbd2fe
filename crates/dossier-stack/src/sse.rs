//! A small `text/event-stream` reader for tests: opens
//! `GET /api/operations/{id}/events` and yields the events and comments as
//! the server writes them (WHATWG "server-sent events" parsing: `id`,
//! `event`, `data` fields, `:` comments, a blank line ends an event).

use std::time::Duration;

use serde_json::Value;

use crate::{DEADLINE, TestApp};

/// One thing read from the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum SseItem {
    /// An event.
    Event(SseEvent),
    /// A comment line (`: text`), e.g. a heartbeat.
    Comment(String),
}

/// One dispatched event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// `id:`, when the event had one.
    pub id: Option<String>,
    /// `event:` (the type), when the event had one.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }

    /// The id as a number.
    pub fn number(&self) -> u64 {
        self.id
            .as_deref()
            .expect("an id")
            .parse()
            .expect("a numeric id")
    }
}

/// An open event stream (the response was 200).
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
    pending: std::collections::VecDeque<SseItem>,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
}

impl EventStream {
    /// The next event or comment; `None` when the server closed the stream.
    /// Panics when nothing arrives within [`DEADLINE`].
    pub async fn next_item(&mut self) -> Option<SseItem> {
        self.next_item_within(DEADLINE).await
    }

    /// [`EventStream::next_item`] with its own deadline.
    pub async fn next_item_within(&mut self, deadline: Duration) -> Option<SseItem> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            let chunk = tokio::time::timeout(deadline, self.response.chunk())
                .await
                .expect("the event stream went quiet")
                .expect("the event stream failed")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
            self.parse();
        }
    }

    /// The next event, skipping comments; `None` at the end of the stream.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            match self.next_item().await? {
                SseItem::Event(event) => return Some(event),
                SseItem::Comment(_) => {}
            }
        }
    }

    /// Every event up to the end of the stream.
    pub async fn rest(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event().await {
            events.push(event);
        }
        events
    }

    /// Moves every complete block of the buffer to `pending`.
    fn parse(&mut self) {
        while let Some(end) = self.buffer.find("\n\n") {
            let block: String = self.buffer.drain(..end + 2).collect();
            let mut event = SseEvent {
                id: None,
                event: None,
                data: String::new(),
            };
            let (mut has_field, mut has_data) = (false, false);
            for line in block.lines() {
                if let Some(comment) = line.strip_prefix(':') {
                    self.pending
                        .push_back(SseItem::Comment(comment.trim_start().to_owned()));
                    continue;
                }
                if line.is_empty() {
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                has_field = true;
                match field {
                    "id" => event.id = Some(value.to_owned()),
                    "event" => event.event = Some(value.to_owned()),
                    "data" => {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(value);
                        has_data = true;
                    }
                    _ => {}
                }
            }
            if has_field {
                self.pending.push_back(SseItem::Event(event));
            }
        }
    }
}

/// What opening a stream answered.
pub enum Opened {
    /// 200: the stream.
    Stream(EventStream),
    /// Anything else, read whole.
    Answer(crate::Answer),
}

impl Opened {
    /// The stream; panics on any other answer.
    pub fn stream(self) -> EventStream {
        match self {
            Opened::Stream(stream) => stream,
            Opened::Answer(answer) => panic!("not a stream: {} {}", answer.status, answer.body),
        }
    }

    /// The answer; panics on a stream.
    pub fn answer(self) -> crate::Answer {
        match self {
            Opened::Answer(answer) => answer,
            Opened::Stream(_) => panic!("a stream, not an answer"),
        }
    }
}

impl TestApp {
    /// `GET path` (an events URL with its query) with `key` and extra
    /// headers: the stream when the answer is 200 `text/event-stream`.
    pub async fn open_events_at(&self, path: &str, key: &str, headers: &[(&str, &str)]) -> Opened {
        let mut request = self
            .client
            .get(self.url(path))
            .bearer_auth(key)
            .header("accept", "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = tokio::time::timeout(DEADLINE, request.send())
            .await
            .expect("the event stream did not answer")
            .unwrap();
        let is_stream = response.status() == 200
            && response
                .headers()
                .get("content-type")
                .is_some_and(|ct| ct.as_bytes().starts_with(b"text/event-stream"));
        if is_stream {
            Opened::Stream(EventStream {
                headers: response.headers().clone(),
                response,
                buffer: String::new(),
                pending: Default::default(),
            })
        } else {
            Opened::Answer(crate::Answer::read(response).await)
        }
    }

    /// `GET /api/operations/{id}/events`, with `Last-Event-ID` when given.
    pub async fn open_events(&self, id: &str, key: &str, last_event_id: Option<&str>) -> Opened {
        let path = format!("/api/operations/{id}/events");
        match last_event_id {
            Some(last) => {
                self.open_events_at(&path, key, &[("last-event-id", last)])
                    .await
            }
            None => self.open_events_at(&path, key, &[]).await,
        }
    }
}
