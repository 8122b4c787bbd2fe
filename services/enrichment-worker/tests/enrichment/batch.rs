//! Batch outcomes: per-record statuses in input order, counts, the
//! operation's status, and paging through a 10,000-record result.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use dossier_stack::{KEY_A, KEY_G, spawn_app};
use serde_json::{Value, json};

use crate::helpers::{Probe, assert_each_record_once, config, email_batch, start_worker};

#[tokio::test]
async fn matched_not_found_and_provider_errors_make_a_partial_success() {
    let app = spawn_app().await;
    let _worker = start_worker(config(&app), Arc::new(Probe::default())).await;

    let records = json!({ "records": [
        { "email": "jane.doe@acme.com", "externalId": "a" },
        { "email": "nobody@acme.com", "externalId": "b" },
        { "email": "ada@flaky.example", "externalId": "c" },
        { "linkedinUrl": "https://uk.linkedin.com/in/tombecker/", "externalId": "d" },
        { "fullName": "Maria Garcia", "companyDomain": "acme.com", "externalId": "e" },
        { "fullName": "John Smith", "companyDomain": "acme.com", "externalId": "f" },
        { "email": "bob@flaky.example", "fullName": "Bob", "companyName": "Flaky", "externalId": "g" },
    ]});
    let accepted = app.post_batch(&records).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let op = app.wait_for_terminal(&accepted.id(), KEY_A).await;

    assert_eq!(op["status"], "partial_success", "{op}");
    assert_eq!(op["kind"], "enrichment.batch");
    assert_eq!(op["progress"], 100);
    // `error` is for failed operations; the counts say what failed.
    assert_eq!(op["error"], Value::Null);
    let result = &op["result"];
    assert_eq!(
        result["meta"],
        json!({ "total": 7, "processed": 7, "complete": true,
                "counts": { "matched": 3, "notFound": 2, "error": 2, "invalid": 0 } })
    );
    let data = result["data"].as_array().unwrap();
    let statuses: Vec<(&str, &str)> = data
        .iter()
        .map(|r| {
            (
                r["externalId"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("a", "matched"),
            ("b", "not_found"),
            ("c", "error"),
            ("d", "matched"),
            ("e", "not_found"),
            ("f", "matched"),
            ("g", "error"),
        ]
    );
    for (i, r) in data.iter().enumerate() {
        assert_eq!(r["index"], i);
    }
    assert_eq!(data[2]["error"]["code"], "providers_unavailable");
    assert_eq!(data[3]["matchedBy"], "linkedin_url");
    assert_eq!(data[4]["reason"], "ambiguous");
    assert_eq!(data[4]["candidates"], 2);
    assert_eq!(data[5]["matchedBy"], "name_and_company");
    // A result that fits one page is served whole, without paging.
    assert!(result.get("page").is_none(), "{result}");
}

#[tokio::test]
async fn a_batch_whose_every_record_fails_is_failed_after_its_retries() {
    let app = spawn_app().await;
    let probe = Arc::new(Probe::default());
    probe.fail_all.store(true, Ordering::SeqCst);
    let _worker = start_worker(config(&app), probe.clone()).await;

    let accepted = app
        .post_batch(&json!({ "records": [ { "email": "a@acme.com" }, { "email": "b@acme.com" } ] }))
        .await;
    let op = app.wait_for_terminal(&accepted.id(), KEY_A).await;
    assert_eq!(op["status"], "failed", "{op}");
    assert_eq!(op["error"]["code"], "providers_unavailable");
    assert_eq!(op["error"]["details"]["counts"]["error"], 2);
    assert_eq!(op["result"], Value::Null);
    // An outage is retried as a whole (3 deliveries in tests), not answered
    // record by record at once.
    let calls = probe.email_calls();
    assert_eq!(calls["a@acme.com"], 3, "{calls:?}");
}

#[tokio::test]
async fn a_10000_record_result_is_read_in_pages() {
    let app = spawn_app().await;
    let _worker = start_worker(config(&app), Arc::new(Probe::default())).await;
    let (body, emails) = email_batch(10_000);
    let accepted = app.post_batch(&body).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.id();
    let op = app.wait_for_terminal(&id, KEY_A).await;
    assert_eq!(op["status"], "succeeded", "{}", op["error"]);

    // The operation holds the counts and the first page, and a next link.
    let result = &op["result"];
    assert_eq!(result["meta"]["total"], 10_000);
    assert_eq!(result["meta"]["counts"]["matched"], 100);
    assert_eq!(result["meta"]["counts"]["notFound"], 9_900);
    assert_eq!(result["data"].as_array().unwrap().len(), 100);
    let page = &result["page"];
    assert_eq!(page["total"], 10_000);
    let next = page["next"].as_str().unwrap();
    assert_eq!(
        next,
        app.url(&format!(
            "/api/operations/{id}/results?cursor={}",
            page["nextCursor"].as_str().unwrap()
        ))
    );

    // Pages of a chosen size, through to the end.
    let mut items: Vec<Value> = Vec::new();
    let mut url = app.url(&format!("/api/operations/{id}/results?limit=1000"));
    loop {
        let answer = dossier_stack::Answer::from_url(&app, &url, KEY_A).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let data = answer.body["data"].as_array().unwrap();
        assert!(data.len() <= 1_000);
        assert_eq!(answer.body["page"]["offset"], items.len());
        items.extend(data.iter().cloned());
        match answer.body["page"]["next"].as_str() {
            Some(next) => {
                assert!(next.ends_with("&limit=1000"), "{next}");
                url = next.to_owned();
            }
            None => break,
        }
    }
    assert_each_record_once(&items, &emails);
    // The default page size through the helper gives the same list.
    assert_eq!(app.all_result_items(&op, KEY_A).await, items);

    // Same tenant rules as the operation; bad parameters are named.
    let answer = app
        .get(&format!("/api/operations/{id}/results"), Some(KEY_G))
        .await;
    answer.assert_problem(404, "operation_not_found");
    let answer = app
        .get(
            &format!("/api/operations/{id}/results?cursor=bogus&limit=5000&x=1"),
            Some(KEY_A),
        )
        .await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("parameter"), ["limit", "x"]);
    let answer = app
        .get(
            &format!("/api/operations/{id}/results?cursor=bogus"),
            Some(KEY_A),
        )
        .await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("parameter"), ["cursor"]);
}
