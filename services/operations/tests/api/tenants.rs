//! Tenants apart (invariant 8).

use dossier_contracts::v1::{GetOperationRequest, ListOperationsRequest};
use dossier_contracts::{Kind, Status};
use tonic::Code;

use crate::helpers::{TestApp, signed, status};

#[tokio::test]
async fn another_tenants_operation_does_not_exist() {
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;

    assert_eq!(
        app.get("globex", &op.id).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        app.cancel("globex", &op.id).await.unwrap_err().code(),
        Code::NotFound
    );
    let watch = app
        .client()
        .watch_operation(signed(GetOperationRequest {
            tenant_id: "globex".to_owned(),
            id: op.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(watch.code(), Code::NotFound);

    // Exactly like a missing one, or an id that is no id at all.
    let missing = app
        .get("acme", &uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    let foreign = app.get("globex", &op.id).await.unwrap_err();
    assert_eq!(missing.code(), foreign.code());
    assert_eq!(missing.message(), foreign.message());
    assert_eq!(
        app.get("acme", "not-an-id").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        app.get("acme", "a.>").await.unwrap_err().code(),
        Code::NotFound
    );

    let theirs = app
        .list(ListOperationsRequest {
            tenant_id: "globex".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(theirs.operations.is_empty());
    assert!(theirs.next_cursor.is_empty());

    // The foreign cancel changed nothing.
    let ours = app.get("acme", &op.id).await.unwrap();
    assert_eq!(status(&ours), Status::Queued);
    assert!(!ours.cancel_requested);
    assert!(
        app.topology
            .cancellations
            .get(&op.id)
            .await
            .unwrap()
            .is_none()
    );
    let mine = app
        .list(ListOperationsRequest {
            tenant_id: "acme".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.operations.len(), 1);
}
