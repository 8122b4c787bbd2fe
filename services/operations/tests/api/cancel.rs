//! CancelOperation: queued, processing, terminal.

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

    // Workers watch the marker.
    let marker = app
        .topology
        .cancellations
        .get(&op.id)
        .await
        .unwrap()
        .unwrap();
    let marker: serde_json::Value = serde_json::from_slice(&marker).unwrap();
    assert!(
        marker["requestedAt"].as_str().unwrap().ends_with('Z'),
        "{marker}"
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
    // Asking twice is fine and changes nothing.
    let again = app.cancel("acme", &op.id).await.unwrap();
    assert_eq!(again, requested);

    // The worker stops and says so.
    app.publish_event(&event_for(
        &op,
        1,
        Event::Cancelled(Cancelled {
            partial_result: None,
        }),
    ))
    .await;
    let done = app.wait_for_status("acme", &op.id, Status::Cancelled).await;
    assert_eq!(done.error.unwrap().code, "cancelled");
    assert!(done.cancel_requested);

    let error = app.cancel("acme", &op.id).await.unwrap_err();
    assert_eq!(error.code(), Code::FailedPrecondition);
}
