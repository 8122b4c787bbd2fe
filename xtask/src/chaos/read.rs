//! The end of a chaos run, read through the HTTP API: a bounded wait for
//! every operation to finish, then two reads of each some seconds apart,
//! every page of each batch's result, and the event stream of a sample.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::api::{Api, problem_code};
use super::check::{Final, Kind, OpState, Seen};

/// Threads reading at once.
const READERS: usize = 4;
/// Tries of one read while the answer is a 503 or none.
const TRIES: u32 = 5;
/// Every how many operations one's event stream is read too.
const SSE_EVERY: usize = 5;

const TERMINAL: [&str; 4] = ["succeeded", "failed", "partial_success", "cancelled"];

/// Polls every operation of `ids` until each is terminal (or not found),
/// at most `wait`; returns how many were still running then.
pub(crate) fn wait_for_the_end(
    api: &Api,
    ids: &BTreeMap<String, (Kind, bool)>,
    wait: Duration,
) -> usize {
    let deadline = Instant::now() + wait;
    let mut pending: Vec<&String> = ids.keys().collect();
    loop {
        let done = in_parallel(&pending, |id| {
            Some(match api.get(&format!("/api/operations/{id}"), &[]) {
                Ok((200, body)) => body["status"]
                    .as_str()
                    .is_some_and(|s| TERMINAL.contains(&s)),
                Ok((404 | 410, _)) => true,
                _ => false,
            })
        });
        pending = pending
            .into_iter()
            .zip(done)
            .filter_map(|(id, done)| (done != Some(true)).then_some(id))
            .collect();
        if pending.is_empty() || Instant::now() >= deadline {
            return pending.len();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Reads every operation of `ids` twice, `apart` between the rounds; the
/// result pages of batches and, for every [`SSE_EVERY`]th, the event
/// stream on the first round.
pub(crate) fn read_twice(
    api: &Api,
    ids: &BTreeMap<String, (Kind, bool)>,
    apart: Duration,
) -> BTreeMap<String, Final> {
    let list: Vec<(usize, &String)> = ids.keys().enumerate().collect();
    let first = in_parallel(&list, |(at, id)| {
        let seen = read(api, id, true);
        let sse = (at % SSE_EVERY == 0
            && matches!(&seen, Seen::Op(s) if TERMINAL.contains(&s.status.as_str())))
        .then(|| api.terminal_events(id));
        Some((seen, sse))
    });
    std::thread::sleep(apart);
    let second = in_parallel(&list, |(_, id)| Some(read(api, id, false)));
    list.iter()
        .zip(first.into_iter().zip(second))
        .map(|((_, id), (first, second))| {
            let (first, sse) = first.unwrap_or((Seen::Unreadable("not read".into()), None));
            let second = second.unwrap_or(Seen::Unreadable("not read".into()));
            ((*id).clone(), Final { first, second, sse })
        })
        .collect()
}

/// `GET /api/operations/{id}` (tried again on a 503 or no answer) and,
/// with `pages`, every page of a terminal batch's result.
fn read(api: &Api, id: &str, pages: bool) -> Seen {
    let mut last = String::new();
    for attempt in 0..TRIES {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(500));
        }
        let (status, body) = match api.get(&format!("/api/operations/{id}"), &[]) {
            Ok(reply) => reply,
            Err(why) => {
                last = why;
                continue;
            }
        };
        return match status {
            200 => Seen::Op(state(api, id, &body, pages)),
            404 => Seen::NotFound,
            410 => Seen::Gone,
            503 => {
                last = format!("503 {}", problem_code(&body));
                continue;
            }
            other => Seen::Unreadable(format!("{other} {}", problem_code(&body))),
        };
    }
    Seen::Unreadable(last)
}

fn state(api: &Api, id: &str, body: &Value, pages: bool) -> OpState {
    let status = body["status"].as_str().unwrap_or("?").to_owned();
    let kind = body["kind"].as_str().unwrap_or("?").to_owned();
    let result = &body["result"];
    let meta = &result["meta"];
    let items = (pages
        && kind == Kind::Batch.api_name()
        && TERMINAL.contains(&status.as_str())
        && result.is_object())
    .then(|| count_items(api, id));
    OpState {
        fingerprint: json!([
            status,
            body["progress"],
            result,
            body["error"],
            body["completedAt"]
        ])
        .to_string(),
        kind,
        status,
        processed: meta["processed"].as_u64(),
        total: meta["total"].as_u64(),
        items,
    }
}

/// The items of every page of `id`'s result (`GET
/// /api/operations/{id}/results?cursor=`), checking that the pages follow
/// each other.
fn count_items(api: &Api, id: &str) -> Result<u64, String> {
    let path = format!("/api/operations/{id}/results");
    let mut cursor: Option<String> = None;
    let mut items = 0_u64;
    // A 10,000-record result is 10 pages of 1,000: bounded.
    for _ in 0..100 {
        let mut query = vec![("limit", "1000")];
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor));
        }
        let (status, page) = api.get(&path, &query)?;
        if status != 200 {
            return Err(format!("a page answered {status} {}", problem_code(&page)));
        }
        let offset = page["page"]["offset"].as_u64();
        if offset != Some(items) {
            return Err(format!("a page starts at {offset:?}, after {items} items"));
        }
        items += page["data"].as_array().map_or(0, |d| d.len() as u64);
        match page["page"]["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(items),
        }
    }
    Err("more than 100 pages".to_owned())
}

/// `read(item)` of every item, on [`READERS`] threads, in order.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    read: impl Fn(&T) -> Option<R> + Sync,
) -> Vec<Option<R>> {
    let chunk = items.len().div_ceil(READERS).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                (
                    part.len(),
                    scope.spawn(|| part.iter().map(&read).collect::<Vec<_>>()),
                )
            })
            .collect();
        // A reader that panicked read nothing: its items stay `None`, in
        // their places.
        handles
            .into_iter()
            .flat_map(|(len, h)| {
                h.join()
                    .unwrap_or_else(|_| (0..len).map(|_| None).collect())
            })
            .collect()
    })
}
