//! Live progress and waiting in one request, through the whole stack with a
//! real search worker: server-sent events to the terminal result,
//! `Prefer: wait` on the accepting POSTs, and what open streams cost.

use std::time::Duration;

use dossier_stack::{Answer, KEY_A, Running, TestApp, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

async fn start_search_worker(app: &TestApp) -> Running {
    let mut config = <search_worker::Config as clap::Parser>::parse_from(["search-worker"]);
    config.service.broker = app.broker_config();
    let worker = search_worker::App::build(config).await.unwrap();
    Running::spawn(|token| worker.run(token))
}

/// A search of the committed fixture directory that finds people.
fn fixture_search() -> Value {
    json!({ "targetAccount": { "name": "Acme Corp", "domain": "acme.com" }, "limit": 5 })
}

#[tokio::test]
async fn a_search_streams_to_its_terminal_event_with_the_result() {
    let app = spawn_app().await;
    let id = app.post_search(&fixture_search()).await.id();
    let mut stream = app.open_events(&id, KEY_A, None).await.stream();
    // The worker starts after the stream is open, so the stream sees the
    // operation queued first.
    let _worker = start_search_worker(&app).await;

    let events = stream.rest().await;
    let (terminal, before) = events.split_last().expect("events");
    assert_eq!(before[0].json()["status"], "queued", "{events:?}");
    let numbers: Vec<u64> = events.iter().map(|e| e.number()).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "ids grow: {numbers:?}"
    );
    assert!(
        before
            .iter()
            .all(|e| e.event.as_deref() == Some("operation"))
    );
    assert_eq!(terminal.event.as_deref(), Some("terminal"));
    let op = terminal.json();
    assert_eq!(op["status"], "succeeded", "{op}");
    let people = op["result"]["data"].as_array().unwrap();
    assert!(!people.is_empty() && people.len() <= 5, "{op}");
    assert_eq!(op["result"]["meta"]["providerOutcome"], "hit");
    // The same result as polling shows.
    let polled = app.get_operation(&id, KEY_A).await;
    assert_eq!(polled.body["result"], op["result"]);
}

/// A search posted with `Prefer: wait=30` to a stack whose gateway has
/// `request_timeout`, with a search worker running; asserts the 200.
async fn search_waiting_30s(request_timeout: Duration) -> (TestApp, Answer) {
    let app = spawn_app_with(|c| c.request_timeout = request_timeout).await;
    let worker = start_search_worker(&app).await;
    let waiting = [("prefer", "wait=30")];
    let answer = app
        .post_with("/api/search/people", &fixture_search(), KEY_A, &waiting)
        .await;
    worker.stop().await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    (app, answer)
}

#[tokio::test]
async fn a_fast_search_with_prefer_wait_answers_200_with_its_result() {
    let (app, answer) = search_waiting_30s(Duration::from_secs(61)).await;
    assert_eq!(answer.header("preference-applied"), Some("wait=30"));
    assert_eq!(answer.body["status"], "succeeded", "{}", answer.body);
    assert_eq!(answer.body["kind"], "search.people");
    assert!(!answer.body["result"]["data"].as_array().unwrap().is_empty());
    let id = answer.body["id"].as_str().unwrap();
    let poll_url = app.url(&format!("/api/operations/{id}"));
    assert_eq!(answer.header("content-location"), Some(poll_url.as_str()));
    assert_eq!(answer.header("retry-after"), None);
    answer.request_id();

    // The default request timeout (30 s) cuts the same wait to 29 s.
    let (_, answer) = search_waiting_30s(Duration::from_secs(30)).await;
    assert_eq!(answer.header("preference-applied"), Some("wait=29"));
}

/// No enrichment or research worker runs here: those operations stay
/// queued, the wait runs out, and the answer is the usual 202.
#[tokio::test]
async fn a_slow_job_with_prefer_wait_answers_202_after_the_wait() {
    let app = spawn_app().await;
    for (path, body) in [
        ("/api/enrichment/batch", dossier_stack::batch_body(3)),
        ("/api/research", dossier_stack::research_body()),
        ("/api/search/people", fixture_search()),
    ] {
        let answer = app
            .post_with(path, &body, KEY_A, &[("prefer", "wait=1")])
            .await;
        assert_eq!(answer.status, 202, "{path}: {}", answer.body);
        assert_eq!(
            answer.header("preference-applied"),
            Some("wait=1"),
            "{path}"
        );
        assert_eq!(answer.body["status"], "queued");
        assert!(answer.header("location").is_some() && answer.header("retry-after").is_some());
        // Without the preference: no header.
        let plain = app.post_with(path, &body, KEY_A, &[]).await;
        assert_eq!(plain.status, 202);
        assert_eq!(plain.header("preference-applied"), None);
    }
}

/// The resident memory of this process (the whole in-process stack), KiB.
fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Opens an event stream with a bare socket (so the client side costs
/// almost nothing in this process) and reads until its first event.
async fn open_raw(addr: &str, id: &str) -> TcpStream {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /api/operations/{id}/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY_A}\r\nAccept: text/event-stream\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 2048];
    while !String::from_utf8_lossy(&seen).contains("\"status\":\"queued\"") {
        let n = tokio::time::timeout(dossier_stack::DEADLINE, socket.read(&mut buffer))
            .await
            .expect("the first event")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    assert!(
        seen.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    socket
}

/// 1,000 open streams on one gateway: what each costs in memory, printed
/// (run with `--no-capture` to read it) and bounded. The figure is for the
/// whole in-process stack — the gateway, the operations service's watch
/// (one task and one KV watch each) and the bare client sockets — so it is
/// an upper bound of the gateway's share.
#[tokio::test]
async fn a_thousand_open_streams_cost_bounded_memory() {
    const STREAMS: usize = 1_000;
    let app = spawn_app().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut ids = Vec::with_capacity(STREAMS);
    for _ in 0..STREAMS {
        ids.push(app.post_search(&fixture_search()).await.id());
    }
    // Warm up every lazily grown pool (connections, HTTP/2 streams, buffers).
    for id in ids.iter().take(50) {
        drop(open_raw(&addr, id).await);
    }
    let nats_pid = app.nats.pid().unwrap().to_string();
    let (before, nats_before) = (rss_kib("self"), rss_kib(&nats_pid));
    let mut open = Vec::with_capacity(STREAMS);
    for (i, id) in ids.iter().enumerate() {
        if i % 100 == 0 {
            eprintln!("DEBUG opened {i}");
        }
        open.push(open_raw(&addr, id).await);
    }
    let (after, nats_after) = (rss_kib("self"), rss_kib(&nats_pid));
    let per_stream = (after.saturating_sub(before)) as f64 / STREAMS as f64;
    let nats_per_stream = (nats_after.saturating_sub(nats_before)) as f64 / STREAMS as f64;
    println!(
        "{STREAMS} open streams: stack RSS {before} KiB -> {after} KiB, {per_stream:.1} KiB per stream; \
         nats-server RSS {nats_before} KiB -> {nats_after} KiB, {nats_per_stream:.1} KiB per stream"
    );
    // Still live: every stream has a slot, and one more request is served.
    assert_eq!(app.get_operation(&ids[0], KEY_A).await.status, 200);
    assert!(
        per_stream < 128.0,
        "{per_stream:.1} KiB per open stream is more than the bound"
    );
    drop(open);
}
