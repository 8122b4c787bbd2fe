//! Reading, listing and cancelling operations, and tenant isolation.

use dossier_contracts::v1::{self, operation_event};
use dossier_contracts::{Kind, Status};
use serde_json::{Value, json};

use crate::helpers::{KEY_A, KEY_G, research_body, spawn_app};

#[tokio::test]
async fn another_tenants_operation_does_not_exist() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();

    app.get_operation(&id, KEY_G)
        .await
        .assert_problem(404, "operation_not_found");
    app.cancel_operation(&id, KEY_G)
        .await
        .assert_problem(404, "operation_not_found");
    assert!(app.all_operation_ids("", KEY_G, 100).await.is_empty());

    // The other tenant's cancel changed nothing.
    let mine = app.get_operation(&id, KEY_A).await;
    assert_eq!(mine.body["status"], "queued");
    assert_eq!(mine.body["cancelRequested"], false);
    assert_eq!(app.all_operation_ids("", KEY_A, 100).await, [id]);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let app = spawn_app().await;
    for id in [
        uuid::Uuid::now_v7().to_string(),
        "nope".to_owned(),
        "1".repeat(40),
    ] {
        app.get_operation(&id, KEY_A)
            .await
            .assert_problem(404, "operation_not_found");
        app.cancel_operation(&id, KEY_A)
            .await
            .assert_problem(404, "operation_not_found");
    }
}

#[tokio::test]
async fn lists_are_newest_first_filtered_and_paged_by_cursor() {
    let app = spawn_app().await;
    let mut searches = Vec::new();
    for _ in 0..3 {
        searches.push(app.accept_search(KEY_A).await.id());
    }
    let research = app.post_research(&research_body()).await;
    assert_eq!(research.status, 202);
    let research = research.id();
    let theirs = app.accept_search(KEY_G).await.id();

    let mut newest_first: Vec<String> = searches.clone();
    newest_first.push(research.clone());
    newest_first.reverse();

    // One page of everything, newest first.
    let page = app.list_operations("", KEY_A).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.request_id();
    assert_eq!(page.body["meta"]["nextCursor"], Value::Null);
    let data = page.body["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().map(|op| op["id"].as_str().unwrap()).collect();
    assert_eq!(ids, newest_first);
    for op in data {
        assert_eq!(op["status"], "queued");
        assert_eq!(
            op["pollUrl"],
            app.url(&format!("/api/operations/{}", op["id"].as_str().unwrap()))
        );
        assert!(
            op.get("meta").is_none(),
            "meta is on the page, not per item"
        );
    }
    assert!(!ids.contains(&theirs.as_str()));

    // Pages of two, following the cursor, add up to the same list.
    assert_eq!(app.all_operation_ids("", KEY_A, 2).await, newest_first);
    assert_eq!(app.all_operation_ids("", KEY_A, 1).await, newest_first);

    // Filters.
    let mut searches_newest_first = searches.clone();
    searches_newest_first.reverse();
    assert_eq!(
        app.all_operation_ids("kind=search.people", KEY_A, 2).await,
        searches_newest_first
    );
    assert_eq!(
        app.all_operation_ids("kind=research.deep", KEY_A, 2).await,
        [research.as_str()]
    );
    let cancelled = app.cancel_operation(&searches[0], KEY_A).await;
    assert_eq!(cancelled.status, 200);
    assert_eq!(
        app.all_operation_ids("status=cancelled", KEY_A, 5).await,
        [searches[0].clone()]
    );
    assert_eq!(
        app.all_operation_ids("status=queued&kind=search.people", KEY_A, 5)
            .await,
        [searches[2].clone(), searches[1].clone()]
    );

    // Bad parameters are named.
    let bad = app.list_operations("limit=101&status=done", KEY_A).await;
    bad.assert_problem(400, "validation");
    assert_eq!(bad.locations("parameter"), ["limit", "status"]);
    let bad = app.list_operations("cursor=garbage-cursor", KEY_A).await;
    bad.assert_problem(400, "validation");
    assert_eq!(bad.locations("parameter"), ["cursor"]);
}

#[tokio::test]
async fn cancelling_a_queued_operation_answers_200_then_409() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();

    let cancelled = app.cancel_operation(&id, KEY_A).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    cancelled.request_id();
    assert_eq!(cancelled.body["id"], id);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["error"]["code"], "cancelled");
    assert_eq!(cancelled.body["result"], Value::Null);
    assert!(cancelled.body["completedAt"].is_string());
    assert_eq!(
        cancelled.header("retry-after"),
        None,
        "terminal: no polling hint"
    );

    let again = app.cancel_operation(&id, KEY_A).await;
    again.assert_problem(409, "operation_conflict");
    assert_eq!(
        app.get_operation(&id, KEY_A).await.body["status"],
        "cancelled"
    );
}

#[tokio::test]
async fn a_failed_operation_shows_its_error_and_cannot_be_cancelled() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();
    app.fail_operation(&id).await;

    let failed = app.wait_for_status(&id, KEY_A, Status::Failed).await;
    assert_eq!(
        failed["error"],
        json!({
            "code": "provider_unavailable",
            "message": "The provider did not answer.",
            "details": {"provider": "test"}
        })
    );
    assert_eq!(failed["result"], Value::Null);
    assert!(failed["completedAt"].is_string());

    app.cancel_operation(&id, KEY_A)
        .await
        .assert_problem(409, "operation_conflict");
    assert_eq!(app.get_operation(&id, KEY_A).await.body["status"], "failed");
}

#[tokio::test]
async fn cancelling_a_processing_operation_answers_202_with_cancel_requested() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();
    app.publish_event(
        &id,
        Kind::SearchPeople,
        operation_event::Event::Started(v1::Started {}),
    )
    .await;
    app.publish_event(
        &id,
        Kind::SearchPeople,
        operation_event::Event::Progressed(v1::Progressed { progress: 40 }),
    )
    .await;
    crate::helpers::wait_for_progress(&app, &id, 40).await;

    let requested = app.cancel_operation(&id, KEY_A).await;
    assert_eq!(requested.status, 202, "{}", requested.body);
    assert_eq!(requested.body["status"], "processing");
    assert_eq!(requested.body["cancelRequested"], true);
    assert_eq!(requested.body["progress"], 40);
    assert_eq!(requested.header("retry-after"), Some("1"));

    let polled = app.get_operation(&id, KEY_A).await;
    assert_eq!(polled.body["cancelRequested"], true);
    assert!(polled.body["startedAt"].is_string());
}

#[tokio::test]
async fn a_succeeded_operation_shows_its_result() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();
    let result = json!({
        "data": [{"fullName": "Ada", "companyMatchEvidence": "company_page"}],
        "meta": {"providerOutcome": "hit"}
    });
    app.succeed_operation(&id, &result).await;
    let done = app.wait_for_status(&id, KEY_A, Status::Succeeded).await;
    assert_eq!(done["result"], result);
    assert_eq!(done["progress"], 100);
    assert_eq!(done["error"], Value::Null);
    let answer = app.get_operation(&id, KEY_A).await;
    assert_eq!(answer.header("retry-after"), None);

    // Listings leave results out.
    let page = app.list_operations("", KEY_A).await;
    assert_eq!(page.body["data"][0]["status"], "succeeded");
    assert_eq!(page.body["data"][0]["result"], Value::Null);
}
