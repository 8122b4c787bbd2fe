//! Payloads too large for a job travel in the object store: the handler
//! sees them as if inline; a missing or different object fails the
//! operation at once with a clear code instead of being retried forever.

use std::sync::{Arc, Mutex};

use dossier_broker::payloads;
use dossier_contracts::v1::operation_event::Event;
use dossier_worker::Outcome;
use dossier_worker::payload::{PAYLOAD_CORRUPT, PAYLOAD_MISSING};
use serde_json::json;

use crate::helpers::{Running, TestEnv, handler_fn, name, names};

#[tokio::test]
async fn a_stored_payload_reaches_the_handler_and_a_lost_one_fails_the_operation() {
    let env = TestEnv::start().await;
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let record = seen.clone();
    let worker = env
        .worker(
            env.config(),
            handler_fn(move |_ctx, job| {
                record.lock().unwrap().push(job.payload_json.clone());
                async { Ok(Outcome::Succeeded(json!({ "ok": true }))) }
            }),
        )
        .await;
    let running = Running::spawn(worker);
    let payload = serde_json::to_vec(&json!({ "big": "x".repeat(300_000) })).unwrap();

    // Stored, then referred to: the handler reads the bytes.
    let mut stored = env.job(json!({}));
    let id = stored.job.operation_id.clone();
    let reference = payloads::store(&env.topology.payloads, &id, &payload)
        .await
        .unwrap();
    stored.job.payload_json = Vec::new();
    stored.job.payload_ref = Some(reference.clone());
    env.publish(stored).await;
    let terminal = env.wait_terminal(&id).await;
    assert_eq!(name(&terminal), "succeeded", "{terminal:?}");
    assert_eq!(*seen.lock().unwrap(), vec![payload]);

    // Gone: failed at once (one delivery, no start), never to the handler.
    let mut missing = env.job(json!({}));
    let missing_id = missing.job.operation_id.clone();
    missing.job.payload_json = Vec::new();
    missing.job.payload_ref = Some(dossier_contracts::v1::PayloadRef {
        object: missing_id.clone(),
        ..reference.clone()
    });
    env.publish(missing).await;
    let terminal = env.wait_terminal(&missing_id).await;
    let Some(Event::Failed(failure)) = &terminal.event else {
        panic!("a missing payload did not fail: {terminal:?}");
    };
    assert_eq!(failure.error.as_ref().unwrap().code, PAYLOAD_MISSING);
    assert_eq!(terminal.attempt, 1, "not retried");
    assert_eq!(names(&env.events(&missing_id).await), ["failed"]);

    // Not the bytes the job refers to: failed at once too.
    let mut corrupt = env.job(json!({}));
    let corrupt_id = corrupt.job.operation_id.clone();
    let mut other = payloads::store(&env.topology.payloads, &corrupt_id, b"{}")
        .await
        .unwrap();
    other.sha256 = payloads::sha256_hex(b"[]");
    corrupt.job.payload_json = Vec::new();
    corrupt.job.payload_ref = Some(other);
    env.publish(corrupt).await;
    let terminal = env.wait_terminal(&corrupt_id).await;
    let Some(Event::Failed(failure)) = &terminal.event else {
        panic!("a corrupt payload did not fail: {terminal:?}");
    };
    assert_eq!(failure.error.as_ref().unwrap().code, PAYLOAD_CORRUPT);
    assert_eq!(terminal.attempt, 1, "not retried");

    env.wait_settled().await;
    assert_eq!(seen.lock().unwrap().len(), 1, "only the good job ran");
    running.stop().await;
}
