//! Invariant 11 with real processes: two enrichment worker replicas (the
//! binary, twice), the one running a batch is stopped (SIGSTOP) past its ack
//! deadline, the other takes the job over, and the stopped one is resumed
//! (SIGCONT) in the middle of the other's run. One run's results, one
//! terminal event, checkpoints intact.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use dossier_broker::CHECKPOINTS_BUCKET;
use dossier_contracts::v1::{OperationEvent, operation_event::Event};
use dossier_stack::{DEADLINE, KEY_A, TestApp, spawn_app};
use dossier_testkit::{wait_for, wait_until};
use enrichment_worker::checkpoint::{Checkpoints, Progress};
use futures::StreamExt as _;
use prost::Message as _;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{assert_each_record_once, email_batch};

/// Records in the batch, and per chunk: enough chunks that the stop, the
/// take-over and the resumption all fall inside the run.
const RECORDS: usize = 60;
const CHUNK: usize = 5;
/// What every vendor lookup takes: a record a tenth of a second, a chunk
/// half a second, the batch several seconds.
const VENDOR_DELAY: Duration = Duration::from_millis(100);

/// A worker process; killed when dropped.
struct Replica {
    name: &'static str,
    child: Child,
    /// Everything it logged so far.
    log: Arc<Mutex<String>>,
}

impl Replica {
    fn start(name: &'static str, app: &TestApp, vendor: &str) -> Replica {
        let mut child = Command::new(env!("CARGO_BIN_EXE_enrichment-worker"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DOSSIER_NATS_URL", app.broker_config().url)
            .env("DOSSIER_NATS_REQUEST_TIMEOUT", "2s")
            .env("DOSSIER_WORKER_ID", name)
            .env("DOSSIER_VENDOR_URL", vendor)
            .env("DOSSIER_ENRICH_CHUNK_SIZE", CHUNK.to_string())
            .env("DOSSIER_ENRICH_CONCURRENCY", "1")
            .env("DOSSIER_PROGRESS_INTERVAL", "50ms")
            .env("DOSSIER_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the enrichment-worker binary");
        let log = Arc::new(Mutex::new(String::new()));
        let show = std::env::var_os("TEST_LOG").is_some();
        let stdout = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        let stderr = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        for pipe in [stdout, stderr].into_iter().flatten() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if show {
                        eprintln!("[{name}] {line}");
                    }
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Replica { name, child, log }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.name);
    }

    fn logged(&self, text: &str) -> bool {
        self.log.lock().unwrap().contains(text)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // A stopped process must be resumed to die of SIGTERM; SIGKILL
        // needs nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every event published from now on, in order: recorded from the events
/// subjects themselves, since the events stream keeps an event only until
/// the projector has acknowledged it.
type Recorded = Arc<Mutex<Vec<OperationEvent>>>;

async fn record_events(client: &async_nats::Client) -> Recorded {
    let mut subscription = client.subscribe("dossier.events.>").await.unwrap();
    client.flush().await.unwrap();
    let recorded = Recorded::default();
    let sink = recorded.clone();
    tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            if let Ok(event) = OperationEvent::decode(message.payload) {
                sink.lock().unwrap().push(event);
            }
        }
    });
    recorded
}

/// Every recorded event of `operation_id`, in order.
async fn events(recorded: &Recorded, operation_id: &str) -> Vec<OperationEvent> {
    recorded
        .lock()
        .unwrap()
        .iter()
        .filter(|event| event.operation_id == operation_id)
        .cloned()
        .collect()
}

fn is_terminal(event: &OperationEvent) -> bool {
    event.event.as_ref().is_some_and(Event::is_terminal)
}

/// The batch's checkpointed progress (none before the first chunk).
async fn progress(
    checkpoints: &async_nats::jetstream::kv::Store,
    operation_id: &str,
) -> Option<Progress> {
    let value = checkpoints
        .get(format!("{operation_id}.enrichment"))
        .await
        .unwrap()?;
    Some(serde_json::from_slice(&value).unwrap())
}

#[tokio::test]
async fn a_replica_stopped_past_its_deadline_yields_to_the_other_and_one_run_counts() {
    let app = spawn_app().await;
    let vendor = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({ "data": [] }))
                .set_delay(VENDOR_DELAY),
        )
        .mount(&vendor)
        .await;
    let client = async_nats::connect(app.broker_config().url).await.unwrap();
    let recorded = record_events(&client).await;
    let js = jetstream::new(client);
    let checkpoints = js.get_key_value(CHECKPOINTS_BUCKET).await.unwrap();

    let replicas = [
        Replica::start("replica-a", &app, &vendor.uri()),
        Replica::start("replica-b", &app, &vendor.uri()),
    ];
    let (body, emails) = email_batch(RECORDS);
    let accepted = app.post_batch(&body).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.id();

    // Whoever took the job has checkpointed two chunks: it is mid-run.
    let first = wait_for("a replica to start the batch", DEADLINE, || async {
        events(&recorded, &id)
            .await
            .into_iter()
            .find_map(|e| matches!(e.event, Some(Event::Started(_))).then_some(e.worker_id))
    })
    .await;
    let (stopped, other) = if first == replicas[0].name {
        (&replicas[0], &replicas[1])
    } else {
        (&replicas[1], &replicas[0])
    };
    wait_until("two chunks checkpointed", DEADLINE, || async {
        progress(&checkpoints, &id)
            .await
            .is_some_and(|p| p.chunks.len() >= 2)
    })
    .await;

    // Stopped: no heartbeat, no renewal. After the ack deadline the job goes
    // to the other replica, which takes the lease once it has expired,
    // resumes from the checkpoint and checkpoints a chunk of its own.
    stopped.signal("STOP");
    let chunks_at_stop = progress(&checkpoints, &id).await.unwrap().chunks.len();
    wait_until(
        "the other replica to take the job over",
        DEADLINE,
        || async {
            events(&recorded, &id)
                .await
                .iter()
                .any(|e| matches!(e.event, Some(Event::Started(_))) && e.worker_id == other.name)
        },
    )
    .await;
    wait_until(
        "the other replica to checkpoint a chunk",
        DEADLINE,
        || async {
            progress(&checkpoints, &id)
                .await
                .is_some_and(|p| p.chunks.len() > chunks_at_stop + 1)
        },
    )
    .await;
    let mid_run = progress(&checkpoints, &id).await.unwrap();
    assert!(mid_run.chunks.len() < RECORDS / CHUNK, "resumed too late");

    // Resumed in the middle of the other's run: its timers fire at once,
    // it finds its lease gone and drops its run without a terminal event.
    stopped.signal("CONT");
    // While it was stopped, it also took a second delivery of the job (its
    // pull request was pending at the server); that one must wait for the
    // lease and never start either.
    let op = app.wait_for_terminal(&id, KEY_A).await;
    let second_run = |events: &[OperationEvent]| {
        events.iter().any(|e| {
            matches!(e.event, Some(Event::Started(_)))
                && e.worker_id == stopped.name
                && e.attempt > 1
        })
    };
    wait_until("the resumed replica to drop its run", DEADLINE, || async {
        let events = events(&recorded, &id).await;
        stopped.logged("lease was lost")
            || second_run(&events)
            || events.iter().filter(|e| is_terminal(e)).count() > 1
    })
    .await;

    // One live run at a time, and one terminal event, the other replica's.
    let all = events(&recorded, &id).await;
    assert!(!second_run(&all), "the resumed replica started another run");
    let terminals: Vec<&OperationEvent> = all.iter().filter(|e| is_terminal(e)).collect();
    assert_eq!(terminals.len(), 1, "{terminals:#?}");
    assert_eq!(terminals[0].worker_id, other.name);
    assert!(matches!(terminals[0].event, Some(Event::Succeeded(_))));
    assert!(
        stopped.logged("lease was lost"),
        "the stopped replica kept its run"
    );

    // One run's results: every record once, in order.
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(op["result"]["meta"]["processed"], RECORDS);
    let items = app.all_result_items(&op, KEY_A).await;
    assert_each_record_once(&items, &emails);

    // Checkpoints intact: every chunk readable, chunks written by the
    // stopped run up to the stop and by the other run after it.
    let mut reader = Checkpoints::new(checkpoints.clone(), format!("{id}.enrichment"), 0);
    let (progress, records) = reader.resume(RECORDS, CHUNK).await.unwrap();
    assert_eq!(progress.chunks.len(), RECORDS / CHUNK);
    assert_eq!(records.len(), RECORDS);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.index, Some(i));
    }
    let runs: Vec<u64> = progress.chunks.iter().map(|c| c.run.unwrap()).collect();
    let first_run = runs[0];
    let split = runs.iter().position(|&r| r != first_run).unwrap();
    assert!(split >= 2, "{runs:?}");
    assert!(
        runs[split..]
            .iter()
            .all(|&r| r == runs[split] && r > first_run),
        "{runs:?}"
    );
}
