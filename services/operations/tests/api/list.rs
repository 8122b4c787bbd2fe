//! ListOperations: newest first, filters, cursor paging.

use std::collections::HashSet;

use dossier_contracts::v1::ListOperationsRequest;
use dossier_contracts::{Kind, Status};
use tonic::Code;

use crate::helpers::TestApp;

fn request(tenant: &str) -> ListOperationsRequest {
    ListOperationsRequest {
        tenant_id: tenant.to_owned(),
        ..Default::default()
    }
}

fn kind_of(i: usize) -> Kind {
    Kind::ALL[i % 3]
}

#[tokio::test]
async fn pages_newest_first_with_filters() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for i in 0..45 {
        created.push(app.create_ok("acme", kind_of(i)).await.id);
    }
    app.create_ok("globex", Kind::SearchPeople).await;
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    // 45 with limit 20: 20, 20, 5, no gaps, no duplicates.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut sizes = Vec::new();
    loop {
        let page = app
            .list(ListOperationsRequest {
                limit: 20,
                cursor: cursor.clone(),
                ..request("acme")
            })
            .await
            .unwrap();
        sizes.push(page.operations.len());
        seen.extend(page.operations.into_iter().map(|op| op.id));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(sizes, vec![20, 20, 5]);
    assert_eq!(seen, newest_first);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 45);

    // Default limit.
    let page = app.list(request("acme")).await.unwrap();
    assert_eq!(page.operations.len(), 20);
    assert!(!page.next_cursor.is_empty());

    // Status filter: cancel three.
    let cancelled: Vec<String> = [3, 10, 40].iter().map(|&i| created[i].clone()).collect();
    for id in &cancelled {
        app.cancel("acme", id).await.unwrap();
    }
    let page = app
        .list(ListOperationsRequest {
            status: Status::Cancelled.to_proto() as i32,
            ..request("acme")
        })
        .await
        .unwrap();
    let ids: Vec<String> = page.operations.iter().map(|op| op.id.clone()).collect();
    assert_eq!(ids, cancelled.iter().rev().cloned().collect::<Vec<_>>());
    assert!(page.next_cursor.is_empty());
    let queued = app
        .list(ListOperationsRequest {
            status: Status::Queued.to_proto() as i32,
            limit: 100,
            ..request("acme")
        })
        .await
        .unwrap();
    assert_eq!(queued.operations.len(), 42);

    // Kind filter, and both.
    let research: Vec<String> = newest_first
        .iter()
        .filter(|id| {
            let i = created.iter().position(|c| c == *id).unwrap();
            kind_of(i) == Kind::ResearchDeep
        })
        .cloned()
        .collect();
    let page = app
        .list(ListOperationsRequest {
            kind: Kind::ResearchDeep.to_proto() as i32,
            limit: 100,
            ..request("acme")
        })
        .await
        .unwrap();
    assert_eq!(
        page.operations
            .iter()
            .map(|op| op.id.clone())
            .collect::<Vec<_>>(),
        research
    );
    // Of the cancelled ones, 3 is enrichment.batch; 10 and 40 are search.people.
    let page = app
        .list(ListOperationsRequest {
            kind: Kind::SearchPeople.to_proto() as i32,
            status: Status::Cancelled.to_proto() as i32,
            ..request("acme")
        })
        .await
        .unwrap();
    assert_eq!(
        page.operations
            .iter()
            .map(|op| op.id.clone())
            .collect::<Vec<_>>(),
        vec![created[40].clone(), created[10].clone()]
    );
    // Paging a filter.
    let first = app
        .list(ListOperationsRequest {
            kind: Kind::SearchPeople.to_proto() as i32,
            limit: 10,
            ..request("acme")
        })
        .await
        .unwrap();
    let second = app
        .list(ListOperationsRequest {
            kind: Kind::SearchPeople.to_proto() as i32,
            limit: 10,
            cursor: first.next_cursor.clone(),
            ..request("acme")
        })
        .await
        .unwrap();
    assert_eq!(first.operations.len(), 10);
    assert_eq!(second.operations.len(), 5);
    assert!(second.next_cursor.is_empty());
}

#[tokio::test]
async fn bad_limits_cursors_and_filters_are_invalid() {
    let app = TestApp::spawn().await;
    app.create_ok("acme", Kind::SearchPeople).await;
    let bad = [
        ListOperationsRequest {
            limit: 101,
            ..request("acme")
        },
        ListOperationsRequest {
            cursor: "!!not-a-cursor".to_owned(),
            ..request("acme")
        },
        ListOperationsRequest {
            cursor: "AAAA".to_owned(),
            ..request("acme")
        },
        ListOperationsRequest {
            status: 99,
            ..request("acme")
        },
        ListOperationsRequest {
            kind: 99,
            ..request("acme")
        },
        request(""),
    ];
    for request in bad {
        let error = app.list(request.clone()).await.unwrap_err();
        assert_eq!(
            error.code(),
            Code::InvalidArgument,
            "{request:?}: {error:?}"
        );
    }
    let page = app
        .list(ListOperationsRequest {
            limit: 100,
            ..request("acme")
        })
        .await
        .unwrap();
    assert_eq!(page.operations.len(), 1);
}
