//! The stack on a three-node JetStream cluster, every stream and bucket at
//! R3 as the production overlay runs them: reads after writes, a leader
//! killed under load, a follower killed under load.
//!
//! Counts are bounded, and so is every wait; times are printed, never
//! asserted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use dossier_broker::JOBS_STREAM;
use dossier_contracts::Status;
use dossier_stack::{KEY_A, TestApp, search_body, spawn_app_on_cluster, spawn_app_on_cluster_via};
use dossier_testkit::{NatsCluster, wait_until};
use dossier_worker::{Outcome, WorkerConfig};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::handler::{TestHandler, start_worker_with};

type ClusterApp = Arc<TestApp<NatsCluster>>;

/// How long a load phase may last at most (a bound, not an expectation).
const LOAD_DEADLINE: Duration = Duration::from_secs(40);

/// What a client saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    /// `POST` (an accept) or `GET` (the read right after it).
    method: &'static str,
    sent: Instant,
    done: Instant,
    status: u16,
    /// The problem type, for an error answer.
    problem: Option<String>,
    retry_after: bool,
    /// The operation id of a 202.
    id: Option<String>,
}

impl Seen {
    fn accepted(&self) -> bool {
        self.method == "POST" && self.status == 202
    }
}

/// Clients accepting searches as fast as the stack answers, each reading
/// its operation back at once after a 202 when `read_back` is set; every
/// answer is recorded.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    clients: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(app: &ClusterApp, clients: usize, read_back: bool, requests: Option<usize>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let clients = (0..clients)
            .map(|_| {
                let (app, stop, seen) = (app.clone(), stop.clone(), seen.clone());
                tokio::spawn(async move {
                    let mut sent_here = 0;
                    while !stop.load(Ordering::SeqCst) && requests.is_none_or(|n| sent_here < n) {
                        sent_here += 1;
                        let sent = Instant::now();
                        let answer = app.post_search(&search_body()).await;
                        let post = seen_of("POST", sent, &answer);
                        let id = post.id.clone();
                        record(&seen, post);
                        if let (true, Some(id)) = (read_back, id) {
                            let sent = Instant::now();
                            let answer = app.get_operation(&id, KEY_A).await;
                            record(&seen, seen_of("GET", sent, &answer));
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            seen,
            clients,
        }
    }

    fn snapshot(&self) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Accepts whose request was sent after `since`.
    fn accepted_since(&self, since: Instant) -> usize {
        self.snapshot()
            .iter()
            .filter(|s| s.accepted() && s.sent >= since)
            .count()
    }

    /// Waits until `accepts` operations were accepted by requests sent
    /// after `since` (bounded by [`LOAD_DEADLINE`]).
    async fn wait_for_accepts(&self, since: Instant, accepts: usize) {
        wait_until(
            &format!("{accepts} accepts under load"),
            LOAD_DEADLINE,
            || async { self.accepted_since(since) >= accepts },
        )
        .await;
    }

    /// Stops the clients and returns everything they saw.
    async fn finish(mut self) -> Vec<Seen> {
        self.stop.store(true, Ordering::SeqCst);
        for client in std::mem::take(&mut self.clients) {
            client.await.unwrap();
        }
        self.snapshot()
    }
}

fn seen_of(method: &'static str, sent: Instant, answer: &dossier_stack::Answer) -> Seen {
    Seen {
        method,
        sent,
        done: Instant::now(),
        status: answer.status,
        problem: answer.body["type"].as_str().map(str::to_owned),
        retry_after: answer.header("retry-after").is_some(),
        id: (method == "POST" && answer.status == 202).then(|| answer.id()),
    }
}

fn record(seen: &Mutex<Vec<Seen>>, one: Seen) {
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(one);
}

/// A worker whose every job succeeds at once, retrying as a production
/// worker does (from 1 s, doubling): a job that meets the broker electing a
/// leader is handed back and tried again later, and each try spends one of
/// its deliveries, so quick test retries would spend them all within one
/// election.
async fn quick_worker(app: &ClusterApp) -> dossier_stack::Running {
    let handler = TestHandler::new(|_ctx, _job| async { Ok(Outcome::Succeeded(json!({}))) });
    let config = WorkerConfig {
        progress_interval: Duration::from_millis(200),
        ..WorkerConfig::default()
    };
    start_worker_with(app.as_ref(), handler, config).await
}

/// Every accepted operation of `seen` ends `succeeded`, and says so when
/// read again: none is lost, each has one terminal status.
async fn every_accepted_operation_succeeds(app: &ClusterApp, seen: &[Seen]) -> usize {
    let ids: Vec<&str> = seen.iter().filter_map(|s| s.id.as_deref()).collect();
    for id in &ids {
        let op = app.wait_for_terminal_unchecked(id, KEY_A).await;
        assert_eq!(op["status"], Status::Succeeded.as_str(), "{op}");
    }
    for id in &ids {
        let again = app.get_operation(id, KEY_A).await;
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.body["status"], Status::Succeeded.as_str(), "{id}");
    }
    ids.len()
}

/// Counts of `(method, status)` in `seen`, for failure messages and the
/// test output.
fn tally(seen: &[Seen]) -> String {
    let mut counts = std::collections::BTreeMap::<(&str, u16, Option<&str>), usize>::new();
    for s in seen {
        *counts
            .entry((s.method, s.status, s.problem.as_deref()))
            .or_default() += 1;
    }
    format!("{counts:?}")
}

/// Invariant 2 (read your writes) at R3: a GET sent right after a 202 finds
/// the operation, thousands of times under concurrent load. The stack
/// connects through a node that leads nothing, so every read is answered
/// there unless reads go to the leader: a follower may not have applied the
/// record the leader just acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_r3_a_get_right_after_a_202_never_misses() {
    const PAIRS_PER_CLIENT: usize = 125;
    const CLIENTS: usize = 16;
    let app: ClusterApp = Arc::new(spawn_app_on_cluster_via(0).await);
    app.nats.move_leaders_off(0).await;

    let started = Instant::now();
    let load = Load::start(&app, CLIENTS, true, Some(PAIRS_PER_CLIENT));
    load.wait_for_accepts(started, PAIRS_PER_CLIENT * CLIENTS)
        .await;
    let seen = load.finish().await;
    eprintln!(
        "{} POST → GET pairs at R3 in {:?}: {}",
        PAIRS_PER_CLIENT * CLIENTS,
        started.elapsed(),
        tally(&seen)
    );

    let misses = seen
        .iter()
        .filter(|s| s.method == "GET" && s.status != 200)
        .count();
    assert_eq!(misses, 0, "reads after 202 missed: {}", tally(&seen));
    assert!(
        seen.iter().all(|s| s.status == 202 || s.status == 200),
        "{}",
        tally(&seen)
    );
}

/// Invariant 4 (nothing lost) at R3: killing the jobs stream's leader under
/// load answers clients only 202 or a retryable 503 while a new leader is
/// elected, and every 202-acknowledged operation ends in exactly one
/// terminal status (workers run in-process against the cluster). Prints the
/// election window: from the kill to the first accept sent after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_jobs_leader_under_load_loses_no_accepted_operation() {
    const CLIENTS: usize = 8;
    let app: ClusterApp = Arc::new(spawn_app_on_cluster().await);
    let _workers = [quick_worker(&app).await, quick_worker(&app).await];

    let started = Instant::now();
    let load = Load::start(&app, CLIENTS, false, None);
    load.wait_for_accepts(started, 50).await;
    let leader = app.nats.wait_for_stream_leader(JOBS_STREAM).await;
    let killed = Instant::now();
    app.nats.kill(leader);
    load.wait_for_accepts(killed, 100).await;
    let seen = load.finish().await;

    let first_accept = seen
        .iter()
        .filter(|s| s.accepted() && s.sent >= killed)
        .map(|s| s.done)
        .min()
        .unwrap();
    let new_leader = app.nats.wait_for_stream_leader(JOBS_STREAM).await;
    eprintln!(
        "jobs leader {} killed; new leader {}; leader-election window (kill → first accept \
         sent after it): {:?}; answers: {}",
        app.nats.node_name(leader),
        app.nats.node_name(new_leader),
        first_accept - killed,
        tally(&seen)
    );

    for s in &seen {
        match s.status {
            202 => {}
            503 => assert!(s.retry_after, "a 503 without Retry-After: {s:?}"),
            _ => panic!("only 202 or a retryable 503: {s:?}; {}", tally(&seen)),
        }
    }
    let accepted = every_accepted_operation_succeeds(&app, &seen).await;
    eprintln!("{accepted} accepted operations all succeeded");
}

/// Killing a follower (a node that leads no stream and no consumer) under
/// load is invisible to clients: every accept is a 202, every read right
/// after it a 200, and every accepted operation succeeds. The services
/// connect through another node: a node's death also drops the connections
/// it holds, and a request in flight on one of them is a retryable 503
/// (`killing_the_jobs_leader_under_load_loses_no_accepted_operation`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_follower_under_load_is_invisible_to_clients() {
    const CLIENTS: usize = 8;
    let app: ClusterApp = Arc::new(spawn_app_on_cluster_via(0).await);
    let _workers = [quick_worker(&app).await, quick_worker(&app).await];
    let follower = 2;
    app.nats.move_leaders_off(follower).await;

    let started = Instant::now();
    let load = Load::start(&app, CLIENTS, true, None);
    load.wait_for_accepts(started, 50).await;
    let killed = Instant::now();
    app.nats.kill(follower);
    load.wait_for_accepts(killed, 200).await;
    let seen = load.finish().await;
    eprintln!(
        "follower {} killed under load: {}",
        app.nats.node_name(follower),
        tally(&seen)
    );

    assert!(
        seen.iter().all(|s| s.status == 202 || s.status == 200),
        "a client saw an error: {}",
        tally(&seen)
    );
    every_accepted_operation_succeeds(&app, &seen).await;
}
