//! CancelOperation: queued, processing, terminal.

use dossier_broker::lease::{Found, Lease};
use dossier_contracts::v1::operation_event::Event;
use dossier_contracts::v1::{Cancelled, Started};
use dossier_contracts::{Kind, Status};
use tonic::Code;

use crate::helpers::{TestApp, event_for, status};

#[tokio::test]
async fn cancelling_a_queued_operation_cancels_it_at_once() {
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::EnrichmentBatch).await;

    let cancelled = app.cancel("acme", &op.id).await.unwrap();
    assert_eq!(status(&cancelled), Status::Cancelled);
    assert!(cancelled.cancel_requested);
    assert!(cancelled.completed_at.is_some());
    let error = cancelled.error.clone().unwrap();
    assert_eq!(error.code, "cancelled");
    assert_eq!(error.message, "Cancelled before it started.");
    assert_eq!(app.get("acme", &op.id).await.unwrap(), cancelled);

    // No run can take it any more: its lease says it is finished.
    assert!(
        matches!(app.lease(&op).await, Found::Finished { ref status, .. } if status == "cancelled"),
        "{:?}",
        app.lease(&op).await
    );

    // A worker that picks the job up anyway cannot revive it.
    app.publish_event(&event_for(&op, 1, Event::Started(Started {})))
        .await;
    app.wait_projected().await;
    assert_eq!(app.get("acme", &op.id).await.unwrap(), cancelled);

    // Terminal now.
    let error = app.cancel("acme", &op.id).await.unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
}

#[tokio::test]
async fn cancelling_a_running_operation_asks_the_worker_to_stop() {
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::ResearchDeep).await;
    app.hold_lease(&op).await;
    app.publish_event(&event_for(&op, 1, Event::Started(Started {})))
        .await;
    app.wait_for_status("acme", &op.id, Status::Processing)
        .await;

    let requested = app.cancel("acme", &op.id).await.unwrap();
    assert_eq!(status(&requested), Status::Processing);
    assert!(requested.cancel_requested);
    assert!(requested.error.is_none());
    assert!(
        app.topology
            .cancellations
            .get(&op.id)
            .await
            .unwrap()
            .is_some()
    );
    // The run may now end only cancelled.
    assert!(
        matches!(
            app.lease(&op).await,
            Found::Held {
                cancel_requested: true,
                ..
            }
        ),
        "{:?}",
        app.lease(&op).await
    );
    // Asking twice is fine and changes nothing.
    let again = app.cancel("acme", &op.id).await.unwrap();
    assert_eq!(again, requested);

    // The worker stops and says so.
    app.publish_event(&event_for(
        &op,
        1,
        Event::Cancelled(Cancelled {
            partial_result: None,
            progress: None,
        }),
    ))
    .await;
    let done = app.wait_for_status("acme", &op.id, Status::Cancelled).await;
    assert_eq!(done.error.unwrap().code, "cancelled");
    assert!(done.cancel_requested);

    let error = app.cancel("acme", &op.id).await.unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition);
}

/// Finding 1 of issue 15: a run that took the job but whose `Started` is not
/// projected yet was answered "cancelled, never runs" although it ran.
#[tokio::test]
async fn a_run_whose_start_is_not_projected_yet_is_asked_to_stop_not_called_unstarted() {
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;
    app.hold_lease(&op).await;

    let answer = app.cancel("acme", &op.id).await.unwrap();
    assert_eq!(status(&answer), Status::Queued, "the record lags the run");
    assert!(answer.cancel_requested);
    assert!(answer.error.is_none(), "{:?}", answer.error);
    assert!(
        app.topology
            .cancellations
            .get(&op.id)
            .await
            .unwrap()
            .is_some()
    );
}

/// Finding 1 of issue 15: a run that committed its outcome before it was
/// projected got 202 and then ended `succeeded`.
#[tokio::test]
async fn an_outcome_committed_but_not_projected_answers_409() {
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;
    app.put_lease(&op, Lease::finished("test-worker", 1, "succeeded", None))
        .await;

    let error = app.cancel("acme", &op.id).await.unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
    let record = app.get("acme", &op.id).await.unwrap();
    assert!(!record.cancel_requested, "nothing changed");
}

/// A run that died holding the operation (its hold expired) is fenced out:
/// the operation is cancelled at once, and not called unstarted.
#[tokio::test]
async fn a_dead_run_is_fenced_out_and_the_operation_cancelled_at_once() {
    use dossier_broker::lease::{Held, State};
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;
    let expired = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    app.put_lease(
        &op,
        Lease {
            worker_id: "dead-worker".into(),
            attempt: 1,
            nonce: 9,
            cancel_requested: false,
            state: Some(State::Held(Held {
                expires_at: Some(expired.into()),
            })),
        },
    )
    .await;

    let cancelled = app.cancel("acme", &op.id).await.unwrap();
    assert_eq!(status(&cancelled), Status::Cancelled);
    let message = cancelled.error.unwrap().message;
    assert_ne!(message, "Cancelled before it started.");
    assert!(
        matches!(app.lease(&op).await, Found::Finished { ref status, event: Some(_) } if status == "cancelled"),
        "the finish mark carries its event, for the next delivery to publish"
    );
}
