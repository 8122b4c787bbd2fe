//! Dependencies going away: 503 with Retry-After, nothing half-accepted,
//! recovery when they come back.

use std::time::Duration;

use dossier_testkit::wait_until;

use crate::helpers::{DEADLINE, KEY_A, search_body, spawn_app};

#[tokio::test]
async fn broker_down_is_503_and_nothing_is_stored() {
    let mut app = spawn_app().await;
    app.nats.kill();

    let answer = app.post_search(&search_body()).await;
    answer.assert_problem(503, "service_unavailable");
    assert_eq!(answer.header("retry-after"), Some("1"));

    app.nats.start_again().await;
    app.wait_until_ready().await;
    // Invariant 1: the refused request left nothing behind, in the jobs
    // stream or in the records.
    assert_eq!(app.job_count().await, 0);
    assert!(app.all_operation_ids("", KEY_A, 100).await.is_empty());

    // And the stack accepts work again.
    let accepted = app.accept_search(KEY_A).await;
    assert_eq!(app.get_operation(&accepted.id(), KEY_A).await.status, 200);
}

#[tokio::test]
async fn operations_service_down_is_503_and_the_gateway_recovers() {
    let mut app = spawn_app().await;
    let before = app.accept_search(KEY_A).await.id();
    app.stop_operations().await;

    app.post_search(&search_body())
        .await
        .assert_problem(503, "service_unavailable");
    let get = app.get_operation(&before, KEY_A).await;
    get.assert_problem(503, "service_unavailable");
    assert_eq!(get.header("retry-after"), Some("1"));
    app.list_operations("", KEY_A)
        .await
        .assert_problem(503, "service_unavailable");
    app.get("/readyz", None)
        .await
        .assert_problem(503, "not_ready");
    assert_eq!(app.get("/healthz", None).await.status, 200);

    app.start_operations().await;
    app.wait_until_ready().await;
    // Read your writes across the restart.
    let got = app.get_operation(&before, KEY_A).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body["status"], "queued");
    app.accept_search(KEY_A).await;
}

#[tokio::test]
async fn readiness_turns_false_as_soon_as_shutdown_begins() {
    let mut app = spawn_app().await;
    assert!(app.state.readiness().is_ready());
    app.stop_gateway().await;
    wait_until("readiness to clear", DEADLINE, || async {
        !app.state.readiness().is_ready()
    })
    .await;
    // The listener is closed: new connections are refused.
    let refused = app
        .client
        .get(app.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn readiness_needs_the_nats_connection() {
    let mut app = spawn_app().await;
    app.nats.kill();
    // The gateway itself reports the lost connection (checked before the
    // operations service, which loses the broker too).
    wait_until("the gateway to report NATS gone", DEADLINE, || async {
        let ready = app.get("/readyz", None).await;
        ready.status == 503
            && ready.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("NATS"))
    })
    .await;
    app.get("/readyz", None)
        .await
        .assert_problem(503, "not_ready");
    assert_eq!(app.get("/healthz", None).await.status, 200);

    app.nats.start_again().await;
    app.wait_until_ready().await;
}
