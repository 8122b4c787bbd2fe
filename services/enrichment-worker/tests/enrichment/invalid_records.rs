//! A CRM export with one bad row: refused whole by default, and under
//! `onInvalidRecord: skip` run with the bad row reported in its place.

use std::sync::Arc;
use std::time::Duration;

use dossier_contracts::Status;
use dossier_stack::{KEY_A, spawn_app};
use dossier_testkit::wait_for;
use serde_json::{Value, json};

use crate::helpers::{Probe, config, start_worker};

/// Rows in the export, and the one whose email is malformed.
const ROWS: usize = 10_000;
const BAD_ROW: usize = 4_242;

/// Longest the 10,000 rows may take on a shared 2-CPU machine in a debug
/// build.
const DEADLINE: Duration = Duration::from_secs(300);

fn export() -> Vec<Value> {
    (0..ROWS)
        .map(|i| {
            let email = if i == BAD_ROW {
                "jane.doe(at)acme.com".to_owned()
            } else {
                format!("row{i}@acme.com")
            };
            json!({ "email": email, "externalId": format!("crm-{i}") })
        })
        .collect()
}

#[tokio::test]
async fn one_malformed_email_rejects_the_batch_unless_skip_is_asked_for() {
    let app = spawn_app().await;
    let _worker = start_worker(config(&app), Arc::new(Probe::default())).await;

    // The default: the whole batch is refused, naming the row.
    let refused = app.post_batch(&json!({ "records": export() })).await;
    refused.assert_problem(400, "validation");
    assert_eq!(
        refused.locations("pointer"),
        [format!("/records/{BAD_ROW}/email")]
    );
    let refused = app
        .post_batch(&json!({ "records": export(), "onInvalidRecord": "reject" }))
        .await;
    refused.assert_problem(400, "validation");
    assert_eq!(app.job_count().await, 0, "nothing was stored");

    // Skip: accepted, the others run, the bad row is answered in its place.
    let accepted = app
        .post_batch(&json!({ "records": export(), "onInvalidRecord": "skip" }))
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.id();
    let op = wait_for("the batch to end", DEADLINE, || async {
        let answer = app.get_operation(&id, KEY_A).await;
        let status = answer.body["status"]
            .as_str()
            .and_then(|s| s.parse::<Status>().ok());
        (answer.status == 200 && status.is_some_and(Status::is_terminal)).then_some(answer.body)
    })
    .await;
    assert_eq!(op["status"], "succeeded", "{}", op["error"]);
    let meta = &op["result"]["meta"];
    assert_eq!(meta["total"], ROWS);
    assert_eq!(
        meta["processed"], ROWS,
        "the invalid row counts as processed"
    );
    assert_eq!(meta["complete"], true);
    assert_eq!(meta["counts"]["invalid"], 1);
    let counts = &meta["counts"];
    let answered: u64 = ["matched", "notFound", "error", "invalid"]
        .iter()
        .map(|k| counts[*k].as_u64().unwrap())
        .sum();
    assert_eq!(answered, ROWS as u64);

    let items = app.all_result_items(&op, KEY_A).await;
    assert_eq!(items.len(), ROWS);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["index"], i);
        assert_eq!(item["externalId"], format!("crm-{i}"));
        if i == BAD_ROW {
            assert_eq!(item["status"], "invalid", "{item}");
            assert_eq!(
                item["errors"],
                json!([{ "field": "email", "detail": "not an email address" }])
            );
        } else {
            assert!(
                ["matched", "not_found"].contains(&item["status"].as_str().unwrap()),
                "{item}"
            );
            assert!(item.get("errors").is_none(), "{item}");
        }
    }
}

#[tokio::test]
async fn a_batch_with_no_valid_record_is_refused_even_under_skip() {
    let app = spawn_app().await;
    let refused = app
        .post_batch(&json!({
            "records": [{ "email": "nope" }, { "fullName": "Jane Doe" }],
            "onInvalidRecord": "skip",
        }))
        .await;
    refused.assert_problem(400, "validation");
    assert_eq!(
        refused.locations("pointer"),
        ["/records/0/email", "/records/1"]
    );
    assert_eq!(app.job_count().await, 0);
}
