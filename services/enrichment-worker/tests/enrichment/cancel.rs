//! Cancelling a running batch stops it between chunks; the finished chunks
//! are kept as the partial result.

use std::sync::atomic::Ordering;

use dossier_stack::{DEADLINE, KEY_A, spawn_app};
use dossier_testkit::wait_until;

use crate::helpers::{Probe, config, email_batch, start_worker};

#[tokio::test]
async fn cancelling_mid_batch_keeps_the_finished_chunks() {
    let app = spawn_app().await;
    // Chunks of 100; lookups are held in the middle of chunk 3.
    let probe = Probe::holding_after(350);
    let mut config = config(&app);
    config.enrichment.chunk_size = 100;
    let _worker = start_worker(config, probe.clone()).await;

    let (body, emails) = email_batch(1_000);
    let accepted = app.post_batch(&body).await;
    let id = accepted.id();
    wait_until("chunk 3 to be in flight", DEADLINE, || async {
        probe.held.load(Ordering::SeqCst) > 0
    })
    .await;
    // Progress follows the records done.
    wait_until("progress of the finished chunks", DEADLINE, || async {
        app.get_operation(&id, KEY_A).await.body["progress"]
            .as_u64()
            .is_some_and(|p| p >= 30)
    })
    .await;

    let answer = app.cancel_operation(&id, KEY_A).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body["cancelRequested"], true);

    let op = app.wait_for_terminal(&id, KEY_A).await;
    assert_eq!(op["status"], "cancelled", "{op}");
    assert_eq!(op["error"]["code"], "cancelled");
    let meta = &op["result"]["meta"];
    assert_eq!(meta["total"], 1_000);
    assert_eq!(
        meta["processed"], 300,
        "chunks 0-2 are kept, chunk 3 is dropped"
    );
    assert_eq!(meta["complete"], false);
    assert_eq!(op["result"]["page"]["total"], 300);
    // Progress agrees with what was kept (300 of 1,000), not with the
    // records of the dropped chunk that had been counted (up to 35 %).
    assert_eq!(op["progress"], 30, "{op}");

    let items = app.all_result_items(&op, KEY_A).await;
    assert_eq!(items.len(), 300);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["index"], i);
        assert_eq!(item["externalId"], format!("ext-{i}"));
    }
    // The rest of the batch never reached the provider.
    let calls = probe.email_calls();
    assert!(!calls.contains_key(&emails[500]), "chunk 5 never started");
    probe.release();
}
