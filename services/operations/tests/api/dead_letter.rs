//! Poison is contained (invariant 6): a job whose last delivery is never
//! acked ends `failed` and leaves the jobs stream.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dossier_contracts::{Kind, Status};
use dossier_testkit::wait_until;
use futures::StreamExt as _;

use dossier_broker::lease::Lease;
use dossier_contracts::v1::operation_event::Event;
use dossier_contracts::v1::{OperationView, ResultRef, Succeeded, result_ref};

use crate::helpers::{DEADLINE, TestApp, event_for, status};

#[tokio::test]
async fn a_job_past_its_last_delivery_fails_its_operation_and_is_removed() {
    let app = TestApp::spawn_with(|broker| {
        broker.consumer.max_deliver = 2;
        broker.consumer.ack_wait = Duration::from_millis(500);
    })
    .await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;

    let (deliveries, stream_sequence) = never_ack_until_terminal(&app, &op).await;
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

/// A worker that takes `op`'s job and dies every time (never acks), until
/// the operation is terminal; returns (deliveries seen, the job's stream
/// sequence).
async fn never_ack_until_terminal(app: &TestApp, op: &OperationView) -> (i64, Option<u64>) {
    let jobs = app.job_consumer(Kind::SearchPeople).await;
    let seen = Arc::new(Mutex::new((0i64, None::<u64>)));
    let client = app.client();
    wait_until("the operation to end", DEADLINE, || {
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
                .is_ok_and(|op| Status::from_proto(op.status).is_some_and(Status::is_terminal))
        }
    })
    .await;
    *seen.lock().unwrap()
}

/// A run committed its outcome through the lease, then died before
/// publishing it, every time: the dead letter must not overrule the
/// committed outcome (it did: the operation ended `failed`).
#[tokio::test]
async fn a_dead_job_whose_run_committed_an_outcome_ends_with_that_outcome() {
    let app = TestApp::spawn_with(|broker| {
        broker.consumer.max_deliver = 2;
        broker.consumer.ack_wait = Duration::from_millis(500);
    })
    .await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;
    let committed = event_for(
        &op,
        1,
        Event::Succeeded(Succeeded {
            result: Some(ResultRef {
                location: Some(result_ref::Location::InlineJson(br#"{"data":[]}"#.to_vec())),
                size_bytes: 0,
            }),
        }),
    );
    app.put_lease(
        &op,
        Lease::finished("test-worker", 1, "succeeded", Some(&committed)),
    )
    .await;

    never_ack_until_terminal(&app, &op).await;
    let done = app.get("acme", &op.id).await.unwrap();
    assert_eq!(status(&done), Status::Succeeded, "{:?}", done.error);
    wait_until("the dead job to be removed", DEADLINE, || async {
        app.job_count().await == 0
    })
    .await;
}
