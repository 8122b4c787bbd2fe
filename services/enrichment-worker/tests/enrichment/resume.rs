//! Nothing is redone after a crash: a worker dies in the middle of a
//! 10,000-record batch, another finishes it from the last checkpoint.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use dossier_stack::{DEADLINE, KEY_A, spawn_app};
use dossier_testkit::wait_until;

use crate::helpers::{Probe, assert_each_record_once, config, email_batch, start_worker};

/// Records per chunk (the default).
const CHUNK: usize = 250;
/// The first worker's provider holds every lookup after this many: in the
/// middle of chunk 10 (records 2,500–2,749).
const HOLD_AFTER: usize = 2_600;

#[tokio::test]
async fn a_crashed_batch_resumes_from_its_last_checkpoint() {
    let app = spawn_app().await;
    let probe = Probe::holding_after(HOLD_AFTER);
    let first = start_worker(config(&app), probe.clone()).await;

    let (body, emails) = email_batch(10_000);
    let accepted = app.post_batch(&body).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.id();

    // The first worker is stuck inside chunk 10, chunks 0–9 checkpointed.
    wait_until("the first worker to hold chunk 10", DEADLINE, || async {
        probe.held.load(Ordering::SeqCst) > 0
    })
    .await;
    let before_crash: HashMap<String, usize> = probe.email_calls();
    assert!(before_crash.len() > HOLD_AFTER);
    // Progress events are throttled, so the 25 % of the ten finished chunks
    // shows up shortly after the hold, not at once.
    wait_until(
        "progress of the ten checkpointed chunks",
        DEADLINE,
        || async {
            let op = app.get_operation(&id, KEY_A).await.body;
            op["status"] == "processing" && op["progress"].as_u64().unwrap_or(0) >= 25
        },
    )
    .await;

    // Killed mid-chunk: nothing acknowledged, no clean-up. The job comes
    // back after its ack deadline to the second worker, which shares the
    // probe so calls are counted across both.
    first.crash().await;
    probe.release();
    let _second = start_worker(config(&app), probe.clone()).await;

    let op = app.wait_for_terminal(&id, KEY_A).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    assert_eq!(op["result"]["meta"]["processed"], 10_000);

    // Every record answered once, in order.
    let items = app.all_result_items(&op, KEY_A).await;
    assert_each_record_once(&items, &emails);

    // The provider saw each record at most twice, and only the records of
    // the chunk in flight at the crash twice.
    let calls = probe.email_calls();
    assert_eq!(calls.len(), 10_000, "every record was looked up");
    let mut again: Vec<usize> = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        match calls[email] {
            1 => {}
            2 => again.push(i),
            n => panic!("record {i} was looked up {n} times"),
        }
    }
    assert!(!again.is_empty(), "the chunk in flight was redone");
    assert!(again.len() <= CHUNK, "{} records redone", again.len());
    let chunk = HOLD_AFTER / CHUNK;
    assert!(
        again
            .iter()
            .all(|&i| (chunk * CHUNK..(chunk + 1) * CHUNK).contains(&i)),
        "only chunk {chunk} was redone: {again:?}"
    );
    let total: usize = calls.values().sum();
    assert!(total <= 10_000 + CHUNK, "{total} lookups");
}
