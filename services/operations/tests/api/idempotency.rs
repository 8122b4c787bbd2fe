//! Once per key (invariant 5).

use dossier_contracts::Kind;
use tonic::Code;

use crate::helpers::{RESEARCH, TestApp, create_request, from_gateway};

#[tokio::test]
async fn same_key_and_body_returns_the_same_operation_and_one_job() {
    let app = TestApp::spawn().await;
    let first = app
        .create(
            "acme",
            Kind::SearchPeople,
            r#"{"targetAccount": {"name": "Acme"}, "limit": 5}"#,
            "key-1",
        )
        .await
        .unwrap();
    assert!(first.created);
    // The same body, spelled differently.
    let again = app
        .create(
            "acme",
            Kind::SearchPeople,
            r#"{ "limit":5,"targetAccount":{"name":"Acme"} }"#,
            "key-1",
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.operation, first.operation);
    assert_eq!(app.job_count().await, 1);

    let error = app
        .create(
            "acme",
            Kind::SearchPeople,
            r#"{"targetAccount": {"name": "Acme"}, "limit": 6}"#,
            "key-1",
        )
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::AlreadyExists, "{error:?}");
    let error = app
        .create("acme", Kind::ResearchDeep, RESEARCH, "key-1")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::AlreadyExists, "another kind: {error:?}");

    // Keys belong to a tenant.
    let other = app
        .create(
            "globex",
            Kind::SearchPeople,
            r#"{"targetAccount": {"name": "Acme"}, "limit": 5}"#,
            "key-1",
        )
        .await
        .unwrap();
    assert!(other.created);
    assert_ne!(other.operation.unwrap().id, first.operation.unwrap().id);
    assert_eq!(app.job_count().await, 2);
}

#[tokio::test]
async fn concurrent_creates_with_one_key_make_one_operation_and_one_job() {
    let app = TestApp::spawn().await;
    let calls = (0..20).map(|_| {
        let mut client = app.client();
        async move {
            client
                .create_operation(from_gateway(create_request(
                    "acme",
                    Kind::EnrichmentBatch,
                    r#"{"records":[{"email":"a@b.c"}]}"#,
                    "same-key",
                )))
                .await
                .unwrap()
                .into_inner()
        }
    });
    let responses = futures::future::join_all(calls).await;
    let ids: std::collections::HashSet<_> = responses
        .iter()
        .map(|r| r.operation.as_ref().unwrap().id.clone())
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(responses.iter().filter(|r| r.created).count(), 1);
    assert_eq!(app.job_count().await, 1);
    assert_eq!(app.record_count().await, 1);
}

#[tokio::test]
async fn a_retry_with_the_key_heals_an_accept_that_died_after_storing_the_job() {
    let app = TestApp::spawn().await;
    let op = app
        .create("acme", Kind::ResearchDeep, RESEARCH, "key-heal")
        .await
        .unwrap()
        .operation
        .unwrap();
    // As if the process died between "job stored" and "record created".
    app.topology.operations.purge(&op.id).await.unwrap();
    assert_eq!(
        app.get("acme", &op.id).await.unwrap_err().code(),
        Code::NotFound
    );

    let retry = app
        .create("acme", Kind::ResearchDeep, RESEARCH, "key-heal")
        .await
        .unwrap();
    assert!(!retry.created);
    assert_eq!(retry.operation.unwrap().id, op.id);
    assert_eq!(app.get("acme", &op.id).await.unwrap().id, op.id);
    // The re-published job was deduplicated by its message id.
    assert_eq!(app.job_count().await, 1);
}
