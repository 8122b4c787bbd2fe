//! Retention and full storage as clients see them: an operation past its
//! `expiresAt` answers 410 and leaves the list; a full jobs stream refuses
//! new accepts with 503 `storage_full` and keeps what it queued.

use std::time::Duration;

use dossier_testkit::wait_until;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{KEY_A, KEY_G, search_body, spawn_app_with_topology};

const DEADLINE: Duration = Duration::from_secs(30);

fn instant(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap(), &Rfc3339).unwrap()
}

#[tokio::test]
async fn an_operation_past_its_expiry_is_410_and_leaves_the_list() {
    let app = spawn_app_with_topology(
        |topology| {
            topology.operation_retention = Duration::from_secs(3);
            topology.jobs_max_age = Duration::from_secs(2);
            topology.idempotency_ttl = Duration::from_secs(1);
            topology.duplicate_window = Duration::from_secs(1);
        },
        |_| {},
    )
    .await;
    let id = app.accept_search(KEY_A).await.id();
    let polled = app.get_operation(&id, KEY_A).await;
    // It may already have expired on a slow machine; when it answers, it
    // says when it expires.
    if polled.status == 200 {
        let lives = instant(&polled.body["expiresAt"]) - instant(&polled.body["createdAt"]);
        assert_eq!(lives, time::Duration::seconds(3), "{}", polled.body);
    }

    wait_until("the operation to expire", DEADLINE, || async {
        app.get_operation(&id, KEY_A).await.status == 410
    })
    .await;
    let gone = app.get_operation(&id, KEY_A).await;
    gone.assert_problem(410, "operation_expired");
    // Every read of it, and any tenant's: an id past the retention tells
    // nothing of whose it was.
    app.get_operation(&id, KEY_G)
        .await
        .assert_problem(410, "operation_expired");
    app.get(&format!("/api/operations/{id}/results"), Some(KEY_A))
        .await
        .assert_problem(410, "operation_expired");
    app.cancel_operation(&id, KEY_A)
        .await
        .assert_problem(410, "operation_expired");
    // A fresh id nobody has is still 404.
    app.get_operation(&uuid::Uuid::now_v7().to_string(), KEY_A)
        .await
        .assert_problem(404, "operation_not_found");
    wait_until("the list to drop it", DEADLINE, || async {
        app.all_operation_ids("", KEY_A, 100).await.is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_full_jobs_stream_refuses_accepts_with_503_storage_full() {
    let app =
        spawn_app_with_topology(|topology| topology.limits.jobs_max_bytes = 4 * 1024, |_| {}).await;
    let mut accepted = Vec::new();
    let refused = loop {
        assert!(accepted.len() < 200, "the jobs stream never filled up");
        let answer = app
            .post_with("/api/search/people", &search_body(), KEY_A, &[])
            .await;
        if answer.status != 202 {
            break answer;
        }
        accepted.push(answer.id());
    };
    refused.assert_problem(503, "storage_full");
    assert_eq!(refused.header("retry-after"), Some("30"));
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("storage is full"),
        "{}",
        refused.body
    );
    // The queued jobs are all there, their operations queued.
    assert!(!accepted.is_empty());
    assert_eq!(app.job_count().await, accepted.len() as u64);
    for id in &accepted {
        assert_eq!(app.get_operation(id, KEY_A).await.body["status"], "queued");
    }
}
