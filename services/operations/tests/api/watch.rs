//! `WatchOperation` at scale: open watches are fanned out from the
//! replica's one watch of the bucket, so they cost no JetStream consumer
//! (nats-server 2.15 caps a stream at 1,000 consumers by default).

use dossier_broker::OPERATIONS_BUCKET;
use dossier_contracts::Kind;
use dossier_contracts::Status;
use dossier_contracts::v1::{GetOperationRequest, Started, operation_event::Event};

use crate::helpers::{TestApp, event_for, signed, status};

/// Consumers on the operations bucket's stream.
async fn bucket_consumers(app: &TestApp) -> usize {
    let mut stream = app
        .js
        .get_stream(format!("KV_{OPERATIONS_BUCKET}"))
        .await
        .unwrap();
    stream.info().await.unwrap().state.consumer_count
}

#[tokio::test]
async fn more_watches_than_a_stream_may_have_consumers_all_see_every_change() {
    const WATCHES: usize = 1_100;
    let app = TestApp::spawn().await;
    let ops = [
        app.create_ok("acme", Kind::SearchPeople).await,
        app.create_ok("acme", Kind::ResearchDeep).await,
    ];
    let consumers_before = bucket_consumers(&app).await;
    let mut streams = Vec::with_capacity(WATCHES);
    for i in 0..WATCHES {
        let op = &ops[i % ops.len()];
        let mut stream = app
            .client()
            .watch_operation(signed(GetOperationRequest {
                tenant_id: "acme".to_owned(),
                id: op.id.clone(),
            }))
            .await
            .unwrap_or_else(|status| panic!("watch {i}: {status}"))
            .into_inner();
        let first = stream.message().await.unwrap().unwrap();
        assert_eq!(status(&first), Status::Queued);
        streams.push(stream);
    }
    assert_eq!(
        bucket_consumers(&app).await,
        consumers_before,
        "open watches take no consumer"
    );

    for op in &ops {
        app.publish_event(&event_for(op, 1, Event::Started(Started {})))
            .await;
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        let next = stream.message().await.unwrap().unwrap();
        assert_eq!(next.id, ops[i % ops.len()].id);
        assert_eq!(status(&next), Status::Processing, "watch {i}");
    }
}
