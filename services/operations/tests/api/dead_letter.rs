//! Poison is contained (invariant 6): a job whose last delivery is never
//! acked ends `failed` and leaves the jobs stream.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dossier_contracts::{Kind, Status};
use dossier_testkit::wait_until;
use futures::StreamExt as _;

use crate::helpers::{DEADLINE, TestApp};

#[tokio::test]
async fn a_job_past_its_last_delivery_fails_its_operation_and_is_removed() {
    let app = TestApp::spawn_with(|broker| {
        broker.consumer.max_deliver = 2;
        broker.consumer.ack_wait = Duration::from_millis(500);
    })
    .await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;

    // A worker that takes the job and dies every time (never acks).
    let jobs = app.job_consumer(Kind::SearchPeople).await;
    // (deliveries seen, stream sequence of the job)
    let seen = Arc::new(Mutex::new((0i64, None::<u64>)));
    let client = app.client();
    wait_until("the operation to fail", DEADLINE, || {
        let jobs = jobs.clone();
        let client = client.clone();
        let seen = seen.clone();
        let id = op.id.clone();
        async move {
            let mut batch = jobs
                .fetch()
                .max_messages(1)
                .expires(Duration::from_millis(700))
                .messages()
                .await
                .unwrap();
            while let Some(message) = batch.next().await {
                let message = message.unwrap();
                let info = message.info().unwrap();
                *seen.lock().unwrap() = (info.delivered, Some(info.stream_sequence));
                // Not acked: the worker "died".
            }
            crate::helpers::get_on(&client, "acme", &id)
                .await
                .is_ok_and(|op| op.status == Status::Failed.to_proto() as i32)
        }
    })
    .await;
    let (deliveries, stream_sequence) = *seen.lock().unwrap();
    assert_eq!(deliveries, 2);

    let failed = app.get("acme", &op.id).await.unwrap();
    let error = failed.error.unwrap();
    assert_eq!(error.code, "max_deliveries_exceeded");
    assert!(error.message.contains("2 times"), "{}", error.message);
    // The attempt is the record's (answers leave it out).
    assert_eq!(app.record(&op.id).await.attempt, 2);
    assert!(failed.completed_at.is_some());

    // The job is gone from the work queue.
    let sequence = stream_sequence.unwrap();
    wait_until("the dead job to be removed", DEADLINE, || async {
        app.job_count().await == 0
    })
    .await;
    let gone = app
        .topology
        .jobs
        .get_raw_message(sequence)
        .await
        .unwrap_err();
    assert_eq!(
        gone.kind(),
        async_nats::jetstream::stream::RawMessageErrorKind::NoMessageFound
    );
    // Counted, by kind.
    let metrics = dossier_service::metrics::render();
    assert!(
        metrics.contains(r#"dossier_dead_letters_total{kind="search.people"} 1"#),
        "{metrics}"
    );
}
