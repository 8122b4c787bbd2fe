//! Large results live in the object store and are returned inline.

use dossier_contracts::v1::operation_event::Event;
use dossier_contracts::v1::{ListOperationsRequest, ResultRef, Succeeded, result_ref};
use dossier_contracts::{Kind, Status};

use crate::helpers::{TestApp, event_for};

#[tokio::test]
async fn a_result_in_the_object_store_is_returned_inline() {
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::EnrichmentBatch).await;

    // Larger than NATS' default max_payload (1 MiB).
    let rows: Vec<String> = (0..40_000)
        .map(|i| format!(r#"{{"email":"person{i}@example.com","n":{i}}}"#))
        .collect();
    let json = format!(r#"{{"data":[{}]}}"#, rows.join(","));
    assert!(json.len() > 1024 * 1024);
    let name = format!("results/{}", op.id);
    app.topology
        .results
        .put(name.as_str(), &mut json.as_bytes())
        .await
        .unwrap();

    app.publish_event(&event_for(
        &op,
        1,
        Event::Succeeded(Succeeded {
            result: Some(ResultRef {
                location: Some(result_ref::Location::ObjectName(name)),
                size_bytes: json.len() as u64,
            }),
        }),
    ))
    .await;
    app.wait_for_status("acme", &op.id, Status::Succeeded).await;

    let got = app.get("acme", &op.id).await.unwrap();
    let result = got.result.unwrap();
    assert_eq!(result.size_bytes, json.len() as u64);
    match result.location {
        Some(result_ref::Location::InlineJson(bytes)) => assert!(bytes == json.as_bytes()),
        other => panic!("not inline: {:?}", other.map(|_| "object")),
    }

    // Listings never carry payloads.
    let list = app
        .list(ListOperationsRequest {
            tenant_id: "acme".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.operations.len(), 1);
    assert!(list.operations[0].result.is_none());
}
