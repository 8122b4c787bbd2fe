//! Monotonic status (invariant 3) with two replicas projecting at once.

use dossier_contracts::v1::operation_event::Event;
use dossier_contracts::v1::{
    Failed, GetOperationRequest, ListOperationsRequest, OperationError, OperationEvent,
    OperationView, Progressed, ResultRef, Started, Succeeded, result_ref,
};
use dossier_contracts::{Kind, Status, time_ext};
use dossier_testkit::wait_until;

use crate::helpers::{DEADLINE, TestApp, event_for, get_on, signed, status};

fn progressed(progress: u32) -> Event {
    Event::Progressed(Progressed { progress })
}

fn succeeded(op: &OperationView) -> Event {
    Event::Succeeded(Succeeded {
        result: Some(ResultRef {
            location: Some(result_ref::Location::InlineJson(
                format!(r#"{{"id":"{}"}}"#, op.id).into_bytes(),
            )),
            size_bytes: 0,
        }),
    })
}

fn failed() -> Event {
    Event::Failed(Failed {
        error: Some(OperationError {
            code: "late".to_owned(),
            message: "a late failure".to_owned(),
            details_json: String::new(),
        }),
    })
}

/// Publishes every event of every operation at once.
async fn publish_all(app: &TestApp, batches: Vec<Vec<OperationEvent>>) {
    futures::future::join_all(batches.into_iter().map(|events| async move {
        for event in events {
            app.publish_event(&event).await;
        }
    }))
    .await;
}

#[tokio::test]
async fn duplicated_late_and_reordered_events_only_move_operations_forward() {
    let mut app = TestApp::spawn().await;
    app.start_replica().await;
    let a = app.replicas[0].client.clone();
    let b = app.replicas[1].client.clone();

    let mut ops = Vec::new();
    for i in 0..8 {
        ops.push(app.create_ok("acme", Kind::ALL[i % 3]).await);
    }

    // Every change of every operation, as replica B streams it.
    let mut watchers = Vec::new();
    for op in &ops {
        let mut stream = b
            .clone()
            .watch_operation(signed(GetOperationRequest {
                tenant_id: "acme".to_owned(),
                id: op.id.clone(),
            }))
            .await
            .unwrap()
            .into_inner();
        watchers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(op) = stream.message().await.unwrap() {
                seen.push(op);
            }
            seen
        }));
    }

    // Even: progress out of order, a duplicate (same event id, dropped by
    // JetStream) and a redelivered start (new event id, attempt 2).
    // Odd: success before start.
    let batches = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            if i % 2 == 0 {
                let started = event_for(op, 1, Event::Started(Started {}));
                vec![
                    event_for(op, 1, progressed(80)),
                    event_for(op, 1, progressed(40)),
                    started.clone(),
                    started,
                    event_for(op, 2, Event::Started(Started {})),
                    event_for(op, 2, progressed(90)),
                    event_for(op, 2, progressed(20)),
                    event_for(op, 2, succeeded(op)),
                ]
            } else {
                vec![
                    event_for(op, 1, succeeded(op)),
                    event_for(op, 1, Event::Started(Started {})),
                    event_for(op, 1, progressed(30)),
                ]
            }
        })
        .collect();
    publish_all(&app, batches).await;
    app.wait_projected().await;

    // Late events after the terminal status: all ignored.
    let late = ops
        .iter()
        .map(|op| {
            vec![
                event_for(op, 3, failed()),
                event_for(op, 3, Event::Started(Started {})),
                event_for(op, 3, progressed(10)),
            ]
        })
        .collect();
    publish_all(&app, late).await;
    app.wait_projected().await;

    for (i, (op, watcher)) in ops.iter().zip(watchers).enumerate() {
        for client in [&a, &b] {
            let done = get_on(client, "acme", &op.id).await.unwrap();
            assert_eq!(status(&done), Status::Succeeded, "op {i}");
            assert_eq!(done.progress, Some(100));
            assert!(done.error.is_none());
            // The attempt is the record's (answers leave it out).
            let record = app.record(&op.id).await;
            assert_eq!(record.attempt, if i % 2 == 0 { 2 } else { 1 });
            assert!(done.completed_at.is_some());
            assert_eq!(done.created_at, op.created_at);
            assert_eq!(
                done.result_json.unwrap(),
                format!(r#"{{"id":"{}"}}"#, op.id).into_bytes()
            );
            if i % 2 == 0 {
                assert!(done.started_at.is_some());
            }
        }

        // What the watcher saw never went back.
        let seen = watcher.await.unwrap();
        assert!(seen.len() >= 2, "op {i}: {seen:?}");
        assert_eq!(status(&seen[0]), Status::Queued);
        for pair in seen.windows(2) {
            assert!(
                status(&pair[1]).rank() >= status(&pair[0]).rank(),
                "op {i}: status went back: {seen:?}"
            );
            assert!(
                pair[1].progress.unwrap_or(0) >= pair[0].progress.unwrap_or(0),
                "op {i}: progress went back: {seen:?}"
            );
        }
        assert_eq!(status(seen.last().unwrap()), Status::Succeeded);
    }

    // Both replicas list every operation, whichever created it.
    let count = ops.len();
    for replica in 0..2 {
        let client = app.replicas[replica].client.clone();
        wait_until("the list index to converge", DEADLINE, || {
            let mut client = client.clone();
            async move {
                client
                    .list_operations(signed(ListOperationsRequest {
                        tenant_id: "acme".to_owned(),
                        status: Status::Succeeded.to_proto() as i32,
                        ..Default::default()
                    }))
                    .await
                    .is_ok_and(|page| page.into_inner().operations.len() == count)
            }
        })
        .await;
    }
}

#[tokio::test]
async fn an_event_for_an_unknown_operation_creates_its_record() {
    let app = TestApp::spawn().await;
    // The accept path died after storing the job; the worker ran it.
    let op = OperationView {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: "acme".to_owned(),
        kind: Kind::ResearchDeep.to_proto() as i32,
        created_at: Some(time_ext::now()),
        ..OperationView::default()
    };
    app.publish_event_of_request(&event_for(&op, 1, progressed(20)), "req-77")
        .await;

    let got = app
        .wait_for_status("acme", &op.id, Status::Processing)
        .await;
    assert_eq!(got.progress, Some(20));
    assert_eq!(got.kind, op.kind);
    assert_eq!(got.created_at, op.created_at);
    assert_eq!(app.record(&op.id).await.request_id, "req-77");

    let list = app
        .list(ListOperationsRequest {
            tenant_id: "acme".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.operations.len(), 1);
}

#[tokio::test]
async fn undecodable_events_are_dropped_without_blocking_the_others() {
    let app = TestApp::spawn().await;
    app.js
        .publish("dossier.events.search.people", "not protobuf".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let op = app.create_ok("acme", Kind::SearchPeople).await;
    app.publish_event(&event_for(&op, 1, Event::Started(Started {})))
        .await;
    app.wait_for_status("acme", &op.id, Status::Processing)
        .await;
    app.wait_projected().await;
}

#[tokio::test]
async fn shutdown_ends_open_watches_instead_of_waiting_for_them() {
    let mut app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;
    let mut stream = app
        .client()
        .watch_operation(signed(GetOperationRequest {
            tenant_id: "acme".to_owned(),
            id: op.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(status(&first), Status::Queued);

    // Returns only once the server and every task stopped.
    app.stop_replica(0).await;
    match stream.message().await {
        Ok(None) => {}
        Err(status) => assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}"),
        Ok(Some(op)) => panic!("unexpected update {op:?}"),
    }
}
