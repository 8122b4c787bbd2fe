//! Large results live in the object store and are served in pages: reads of
//! the operation carry the first page, `GetOperationResults` the rest.

use dossier_contracts::v1::operation_event::Event;
use dossier_contracts::v1::{
    GetOperationResultsRequest, ListOperationsRequest, ResultRef, Succeeded, result_ref,
};
use dossier_contracts::{Kind, Status};
use serde_json::Value;

use crate::helpers::{TestApp, event_for, signed};

/// The inline result of an answer (answers have no other kind).
fn inline(result_json: &[u8]) -> Value {
    serde_json::from_slice(result_json).unwrap()
}

fn signed_results(
    id: &str,
    tenant: &str,
    cursor: &str,
    limit: u32,
) -> tonic::Request<GetOperationResultsRequest> {
    signed(GetOperationResultsRequest {
        tenant_id: tenant.to_owned(),
        id: id.to_owned(),
        cursor: cursor.to_owned(),
        limit,
    })
}

#[tokio::test]
async fn a_result_in_the_object_store_is_served_in_pages() {
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::EnrichmentBatch).await;

    // Larger than NATS' default max_payload (1 MiB).
    let rows: Vec<String> = (0..40_000)
        .map(|i| format!(r#"{{"email":"person{i}@example.com","n":{i}}}"#))
        .collect();
    let json = format!(
        r#"{{"data":[{}],"meta":{{"total":40000}}}}"#,
        rows.join(",")
    );
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

    // The operation carries the first page, the other members whole.
    let got = app.get("acme", &op.id).await.unwrap();
    let first = inline(got.result_json.as_ref().unwrap());
    assert_eq!(first["meta"]["total"], 40_000);
    let data = first["data"].as_array().unwrap();
    assert_eq!(data.len(), 100);
    assert_eq!(data[99]["n"], 99);
    let page = got.result_page.unwrap();
    assert_eq!((page.offset, page.count, page.total), (0, 100, 40_000));
    assert!(!page.next_cursor.is_empty());

    // The rest, page by page, each item once and in order.
    let mut client = app.client();
    let mut seen = 100;
    let mut cursor = page.next_cursor;
    while !cursor.is_empty() {
        let answer = client
            .get_operation_results(signed_results(&op.id, "acme", &cursor, 1_000))
            .await
            .unwrap()
            .into_inner();
        let items: Vec<Value> = serde_json::from_slice(&answer.items_json).unwrap();
        let page = answer.page.unwrap();
        assert_eq!(page.offset, seen as u64);
        assert_eq!(page.count as usize, items.len());
        for (i, item) in items.iter().enumerate() {
            assert_eq!(item["n"], seen + i, "item {} in order", seen + i);
        }
        seen += items.len();
        cursor = page.next_cursor;
    }
    assert_eq!(seen, 40_000);

    // Another tenant sees nothing; bad cursors and limits are refused.
    let err = client
        .get_operation_results(signed_results(&op.id, "globex", "", 10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    for (cursor, limit) in [("garbage", 10), ("", 1_001)] {
        let err = client
            .get_operation_results(signed_results(&op.id, "acme", cursor, limit))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{cursor} {limit}");
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
    assert!(list.operations[0].result_json.is_none());
}

#[tokio::test]
async fn an_operation_without_a_result_has_no_pages() {
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::EnrichmentBatch).await;
    let err = app
        .client()
        .get_operation_results(signed_results(&op.id, "acme", "", 0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);

    // A small result without a `data` array is returned whole, unpaged.
    app.publish_event(&event_for(
        &op,
        1,
        Event::Succeeded(Succeeded {
            result: Some(ResultRef {
                location: Some(result_ref::Location::InlineJson(
                    br#"{"answer":42}"#.to_vec(),
                )),
                size_bytes: 13,
            }),
        }),
    ))
    .await;
    let got = app.wait_for_status("acme", &op.id, Status::Succeeded).await;
    assert_eq!(inline(got.result_json.as_ref().unwrap())["answer"], 42);
    assert!(got.result_page.is_none());
    let err = app
        .client()
        .get_operation_results(signed_results(&op.id, "acme", "", 0))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}
