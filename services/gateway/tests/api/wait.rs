//! `Prefer: wait=N` (RFC 7240) on `GET /api/operations/{id}`: the answer
//! comes when the operation is terminal or N seconds have passed.

use std::time::Duration;

use dossier_contracts::Kind;
use dossier_contracts::v1::{self, operation_event};

use crate::helpers::{DEADLINE, KEY_A, KEY_G, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_get_that_waits_answers_when_the_operation_ends() {
    let app = spawn_app_with(|c| c.request_timeout = Duration::from_secs(90)).await;
    let id = app.accept_search(KEY_A).await.id();
    let path = format!("/api/operations/{id}");
    let waiting = {
        let client = app.client.clone();
        let url = app.url(&path);
        tokio::spawn(async move {
            let response = client
                .get(url)
                .bearer_auth(KEY_A)
                .header("prefer", "wait=60")
                .send()
                .await
                .unwrap();
            dossier_stack::Answer::read(response).await
        })
    };
    app.publish_event(
        &id,
        Kind::SearchPeople,
        operation_event::Event::Started(v1::Started {}),
    )
    .await;
    app.fail_operation(&id).await;
    let answer = tokio::time::timeout(DEADLINE, waiting)
        .await
        .expect("the wait ends with the operation")
        .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "failed", "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "provider_unavailable");
    assert_eq!(answer.header("preference-applied"), Some("wait=60"));
    assert_eq!(answer.header("retry-after"), None);
    answer.request_id();
}

#[tokio::test]
async fn a_get_that_waits_on_a_finished_operation_answers_at_once() {
    // Longer than the test's deadline: an answer that waited could not
    // arrive in time.
    let app = spawn_app_with(|c| c.request_timeout = Duration::from_secs(90)).await;
    let id = app.accept_search(KEY_A).await.id();
    app.fail_operation(&id).await;
    app.wait_for_terminal(&id, KEY_A).await;
    let answer = tokio::time::timeout(
        DEADLINE,
        app.get_with(
            &format!("/api/operations/{id}"),
            KEY_A,
            &[("prefer", "wait=60")],
        ),
    )
    .await
    .expect("a finished operation is answered without waiting");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["status"], "failed");
    assert_eq!(answer.header("preference-applied"), Some("wait=60"));
}

#[tokio::test]
async fn a_get_that_waits_on_a_running_operation_answers_after_the_wait() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();
    let path = format!("/api/operations/{id}");
    let answer = app
        .get_with(&path, KEY_A, &[("prefer", "respond-async, wait=1")])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "queued");
    assert_eq!(answer.header("preference-applied"), Some("wait=1"));
    assert_eq!(
        answer.header("retry-after"),
        Some("1"),
        "still running: poll again"
    );
    assert!(
        answer
            .header("vary")
            .is_some_and(|v| v.to_ascii_lowercase().contains("prefer"))
    );
}

/// N over 60 is clamped to 60 (and to what the request timeout leaves);
/// a preference the gateway cannot read is ignored, as RFC 7240 asks; a
/// wait is tenant-scoped like any read.
#[tokio::test]
async fn wait_values_are_clamped_or_ignored_and_tenants_stay_apart() {
    let app = spawn_app_with(|c| c.request_timeout = Duration::from_secs(600)).await;
    let id = app.accept_search(KEY_A).await.id();
    app.fail_operation(&id).await;
    app.wait_for_terminal(&id, KEY_A).await;
    let path = format!("/api/operations/{id}");
    for (prefer, applied) in [
        ("wait=3600", Some("wait=60")),
        ("wait=99999999999999999999999", Some("wait=60")),
        ("WAIT = \"5\"", Some("wait=5")),
        ("handling=lenient; x=1, wait=7, wait=9", Some("wait=7")),
        ("wait=0", None),
        ("wait=-1", None),
        ("wait=soon", None),
        ("wait", None),
        ("return=minimal", None),
    ] {
        let answer = app.get_with(&path, KEY_A, &[("prefer", prefer)]).await;
        assert_eq!(answer.status, 200, "{prefer}: {}", answer.body);
        assert_eq!(answer.header("preference-applied"), applied, "{prefer}");
    }
    let other = app.get_with(&path, KEY_G, &[("prefer", "wait=5")]).await;
    other.assert_problem(404, "operation_not_found");
}

/// The wait never outlasts the request timeout: it is cut to what the
/// timeout leaves, and says so.
#[tokio::test]
async fn a_wait_is_bounded_by_the_request_timeout() {
    let app = spawn_app_with(|c| c.request_timeout = Duration::from_secs(3)).await;
    let id = app.accept_search(KEY_A).await.id();
    let answer = app
        .get_with(
            &format!("/api/operations/{id}"),
            KEY_A,
            &[("prefer", "wait=30")],
        )
        .await;
    assert_eq!(answer.status, 200, "not the timeout's 503: {}", answer.body);
    assert_eq!(answer.body["status"], "queued");
    assert_eq!(answer.header("preference-applied"), Some("wait=2"));
}
