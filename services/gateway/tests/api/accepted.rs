//! Requests the OpenAPI document calls valid are accepted: the cases a
//! schema-driven client (or a contract fuzzer) sends that the gateway used
//! to refuse.

use dossier_contracts::Kind;
use serde_json::{Value, json};

use crate::helpers::{KEY_A, spawn_app};

#[tokio::test]
async fn a_whole_number_written_with_a_fraction_is_that_number() {
    let app = spawn_app().await;
    let accepted = app
        .post_search(&json!({"targetAccount": {"domain": "acme.com"}, "limit": 90.0}))
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let (job, _) = app.last_job(Kind::SearchPeople).await;
    let payload: Value = serde_json::from_slice(&job.payload_json).unwrap();
    assert_eq!(payload["limit"], 90, "the worker is asked for 90");

    // Not whole, or out of range: refused naming the field.
    for limit in [json!(90.5), json!(0.0), json!(1e12), json!(-3)] {
        let refused = app
            .post_search(&json!({"targetAccount": {"domain": "acme.com"}, "limit": limit}))
            .await;
        refused.assert_problem(400, "validation");
        assert_eq!(refused.locations("pointer"), ["/limit"], "{limit}");
    }
}

#[tokio::test]
async fn an_empty_cursor_is_the_first_page() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();
    let first = app.list_operations("cursor=", KEY_A).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["data"][0]["id"], id);
    let first = app.list_operations("cursor=&limit=1", KEY_A).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["data"].as_array().unwrap().len(), 1);

    // The results route reads its cursor the same way: an empty one is not
    // the problem (the operation simply has no result yet).
    let results = app
        .get(
            &format!("/api/operations/{id}/results?cursor="),
            Some(KEY_A),
        )
        .await;
    results.assert_problem(409, "operation_conflict");
}
