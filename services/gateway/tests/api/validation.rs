//! Bad input: 400 with pointers, 413, 415 — and nothing stored.

use serde_json::{Value, json};

use crate::helpers::{Answer, KEY_A, batch_body, search_body, spawn_app, spawn_app_with};

async fn post_raw(app: &crate::helpers::TestApp, path: &str, body: &str) -> Answer {
    Answer::read(
        app.client
            .post(app.url(path))
            .bearer_auth(KEY_A)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn invalid_bodies_are_400_naming_every_bad_field() {
    let app = spawn_app().await;

    post_raw(&app, "/api/search/people", r#"{"targetAccount": "#)
        .await
        .assert_problem(400, "malformed_json");

    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        // Unknown field (a typo).
        (
            "/api/search/people",
            json!({"targetAccount": {"domain": "acme.com"}, "limt": 5}),
            vec!["/limt"],
        ),
        // Wrong type.
        (
            "/api/search/people",
            json!({"targetAccount": {"domain": "acme.com"}, "limit": "5"}),
            vec!["/limit"],
        ),
        // Out of range.
        (
            "/api/search/people",
            json!({"targetAccount": {"domain": "acme.com"}, "limit": 101}),
            vec!["/limit"],
        ),
        // A company with no identifier.
        (
            "/api/search/people",
            json!({"targetAccount": {}}),
            vec!["/targetAccount"],
        ),
        // A person with no identifier.
        (
            "/api/enrichment/batch",
            json!({"records": [{"externalId": "7"}]}),
            vec!["/records/0"],
        ),
        // Several bad records, each named.
        (
            "/api/enrichment/batch",
            json!({"records": [
                {"email": "ok@acme.com"},
                {"email": "not-an-email"},
                {"email": "ok2@acme.com"},
                {"fullName": "Ada Lovelace"},
                {"linkedinUrl": "https://example.com/ada"}
            ]}),
            vec!["/records/1/email", "/records/3", "/records/4/linkedinUrl"],
        ),
        // No records.
        (
            "/api/enrichment/batch",
            json!({"records": []}),
            vec!["/records"],
        ),
        // Research needs exactly one subject.
        (
            "/api/research",
            json!({"subject": {}, "depth": "standard"}),
            vec!["/subject"],
        ),
        // Not an object.
        ("/api/research", json!([1, 2]), vec![""]),
    ];
    for (path, body, pointers) in cases {
        let answer = app.post(path, &body).await;
        answer.assert_problem(400, "validation");
        assert_eq!(answer.locations("pointer"), pointers, "{path} {body}");
    }

    // 10,001 records: one error on /records, not 10,001.
    let answer = app.post_batch(&batch_body(10_001)).await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("pointer"), ["/records"]);
    // 10,000 is fine.
    assert_eq!(app.post_batch(&batch_body(10_000)).await.status, 202);

    assert_eq!(app.job_count().await, 1, "only the valid batch was stored");
}

#[tokio::test]
async fn non_json_is_415_and_oversized_is_413() {
    let app = spawn_app_with(|c| c.max_body_bytes = 2048).await;
    for content_type in ["text/plain", "application/xml"] {
        let answer = Answer::read(
            app.client
                .post(app.url("/api/search/people"))
                .bearer_auth(KEY_A)
                .header("content-type", content_type)
                .body(search_body().to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        answer.assert_problem(415, "unsupported_media_type");
    }
    let no_type = Answer::read(
        app.client
            .post(app.url("/api/search/people"))
            .bearer_auth(KEY_A)
            .body(search_body().to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    no_type.assert_problem(415, "unsupported_media_type");

    let big = app.post_batch(&batch_body(200)).await;
    big.assert_problem(413, "payload_too_large");

    // application/*+json and a charset are JSON.
    let answer = Answer::read(
        app.client
            .post(app.url("/api/search/people"))
            .bearer_auth(KEY_A)
            .header(
                "content-type",
                "application/vnd.dossier+json; charset=utf-8",
            )
            .body(search_body().to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(app.job_count().await, 1);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let app = spawn_app().await;
    app.get("/api/nothing", Some(KEY_A))
        .await
        .assert_problem(404, "not_found");
    let answer = app.get("/api/research", Some(KEY_A)).await;
    answer.assert_problem(405, "method_not_allowed");
    assert_eq!(answer.header("allow"), Some("POST"));
    let answer = Answer::read(
        app.client
            .delete(app.url(&format!("/api/operations/{}", uuid::Uuid::now_v7())))
            .bearer_auth(KEY_A)
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_problem(405, "method_not_allowed");
    assert!(answer.header("allow").unwrap().contains("GET"));
}

#[tokio::test]
async fn sync_enrichment_validates_and_is_503_without_a_worker() {
    let app = spawn_app().await;
    let answer = app
        .post("/api/enrichment/person", &json!({"email": "ada@acme.com"}))
        .await;
    answer.assert_problem(503, "enrichment_unavailable");
    assert!(answer.header("retry-after").is_some());
    let answer = app
        .post("/api/enrichment/person", &json!({"fullName": "Ada"}))
        .await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("pointer"), [""]);
}
