//! `POST /api/enrichment/person`: answered synchronously by a worker over
//! NATS request-reply.

use std::sync::Arc;

use dossier_stack::spawn_app;
use serde_json::json;

use crate::helpers::{Probe, config, start_worker};

#[tokio::test]
async fn one_record_is_enriched_synchronously() {
    let app = spawn_app().await;
    let _worker = start_worker(config(&app), Arc::new(Probe::default())).await;

    let answer = app
        .post_person(&json!({ "email": "JANE.DOE@acme.com", "externalId": "crm-1" }))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.request_id();
    let data = &answer.body["data"];
    assert_eq!(data["status"], "matched");
    assert_eq!(data["matchedBy"], "email");
    assert_eq!(data["confidence"], 0.99);
    assert_eq!(data["externalId"], "crm-1");
    assert_eq!(data["person"]["fullName"], "Jane Doe");
    assert_eq!(data["company"]["domain"], "acme.com");
    assert_eq!(data["companyEvidence"], "email_domain");
    assert!(data.get("index").is_none(), "{data}");

    // An ambiguous name is a clean 200 answer, with the candidates counted.
    let answer = app
        .post_person(&json!({ "fullName": "John Smith", "companyName": "Acme Corp" }))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body["data"],
        json!({ "status": "not_found", "reason": "ambiguous", "candidates": 2 })
    );

    let answer = app
        .post_person(&json!({ "linkedinUrl": "linkedin.com/in/nobody-here" }))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["data"]["reason"], "no_match");

    // Invalid records never reach a worker.
    let answer = app.post_person(&json!({ "fullName": "John Smith" })).await;
    answer.assert_problem(400, "validation");
}

#[tokio::test]
async fn a_failing_provider_or_no_worker_is_503_with_retry_after() {
    let app = spawn_app().await;
    let worker = start_worker(config(&app), Arc::new(Probe::default())).await;

    let answer = app
        .post_person(&json!({ "email": "ada@flaky.example" }))
        .await;
    answer.assert_problem(503, "enrichment_unavailable");
    assert_eq!(answer.header("retry-after"), Some("1"));
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("did not answer"),
        "{}",
        answer.body
    );

    worker.stop().await;
    let answer = app
        .post_person(&json!({ "email": "jane.doe@acme.com" }))
        .await;
    answer.assert_problem(503, "enrichment_unavailable");
    assert!(answer.header("retry-after").is_some());
}
