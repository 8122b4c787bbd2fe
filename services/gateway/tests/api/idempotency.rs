//! `Idempotency-Key`: once per tenant and key.

use serde_json::json;

use crate::helpers::{KEY_A, KEY_G, search_body, spawn_app};

#[tokio::test]
async fn the_same_key_and_body_return_the_same_operation_once() {
    let app = spawn_app().await;
    let key = [("idempotency-key", "order-42")];
    let first = app
        .post_with("/api/search/people", &search_body(), KEY_A, &key)
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None);

    // Same meaning, different field order and spacing: still the same body.
    let reordered =
        r#"{ "filters": {"seniorities": ["vp"]},  "targetAccount": {"domain": "acme.com"} }"#;
    let second = crate::helpers::Answer::read(
        app.client
            .post(app.url("/api/search/people"))
            .bearer_auth(KEY_A)
            .header("content-type", "application/json")
            .header("idempotency-key", "order-42")
            .body(reordered)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(second.status, 202, "{}", second.body);
    assert_eq!(second.id(), first.id());
    assert_eq!(second.body["status"], "queued");
    assert_eq!(second.body["pollUrl"], first.body["pollUrl"]);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_ne!(second.request_id(), first.request_id());

    assert_eq!(app.job_count().await, 1, "the job is stored once");
    assert_eq!(app.all_operation_ids("", KEY_A, 10).await, [first.id()]);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_409() {
    let app = spawn_app().await;
    let key = [("idempotency-key", "order-43")];
    let first = app
        .post_with("/api/search/people", &search_body(), KEY_A, &key)
        .await;
    assert_eq!(first.status, 202);
    let other = json!({"targetAccount": {"domain": "globex.com"}});
    let conflict = app
        .post_with("/api/search/people", &other, KEY_A, &key)
        .await;
    conflict.assert_problem(409, "idempotency_key_reused");
    assert_eq!(app.job_count().await, 1);
}

#[tokio::test]
async fn tenants_never_share_keys() {
    let app = spawn_app().await;
    let key = [("idempotency-key", "shared-key")];
    let a = app
        .post_with("/api/search/people", &search_body(), KEY_A, &key)
        .await;
    let g = app
        .post_with("/api/search/people", &search_body(), KEY_G, &key)
        .await;
    assert_eq!((a.status, g.status), (202, 202));
    assert_ne!(a.id(), g.id());
    assert_eq!(g.header("idempotent-replayed"), None);
    assert_eq!(app.job_count().await, 2);
}

#[tokio::test]
async fn bad_keys_are_400_naming_the_header() {
    let app = spawn_app().await;
    let long = "k".repeat(256);
    for bad in ["", long.as_str(), "two words"] {
        let answer = app
            .post_with(
                "/api/search/people",
                &search_body(),
                KEY_A,
                &[("idempotency-key", bad)],
            )
            .await;
        answer.assert_problem(400, "validation");
        assert_eq!(answer.locations("header"), ["Idempotency-Key"], "{bad:?}");
    }
    let max = "k".repeat(255);
    let answer = app
        .post_with(
            "/api/search/people",
            &search_body(),
            KEY_A,
            &[("idempotency-key", max.as_str())],
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(app.job_count().await, 1);
}
