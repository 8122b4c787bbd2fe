//! Metrics and health of the running stack, scraped over HTTP.

use std::time::Duration;

use dossier_contracts::Status;
use dossier_stack::{DEADLINE, KEY_A, Scrape, TestApp, research_body, spawn_app};
use dossier_testkit::wait_for;
use dossier_worker::{JobError, Outcome};
use serde_json::json;

use crate::handler::{TestHandler, start_worker};

const SEARCH: (&str, &str) = ("kind", "search.people");

/// Waits until a scrape of the operations service's admin port satisfies
/// `check` (gauges refresh on a timer, counters as work happens).
async fn scrape_until(app: &TestApp, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    let url = format!("{}/metrics", app.operations_admin());
    wait_for(what, DEADLINE, || async {
        let scrape = app.scrape(&url).await;
        check(&scrape).then_some(scrape)
    })
    .await
}

/// A job driven through the stack — accepted, failed once, retried,
/// succeeded, projected — moves every series that describes it, with the
/// right labels; a queued job with no worker shows as queue depth.
#[tokio::test]
async fn a_job_through_the_stack_moves_its_metrics() {
    let app = spawn_app().await;
    let metrics_url = format!("{}/metrics", app.operations_admin());
    let before = app.scrape(&metrics_url).await;

    // Fails its first delivery (retryable), succeeds on the second.
    let handler = TestHandler::new(|ctx, _job| async move {
        if ctx.attempt() == 1 {
            return Err(JobError::retryable("flaky", "The first try fails."));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(Outcome::Succeeded(json!({ "data": [] })))
    });
    let _worker = start_worker(&app, handler.clone()).await;
    let id = app.accept_search(KEY_A).await.id();
    let op = app.wait_for_terminal_unchecked(&id, KEY_A).await;
    assert_eq!(op["status"], Status::Succeeded.as_str(), "{op}");
    // No research worker runs in this stack: the job waits in its queue.
    let research = app.post_research(&research_body()).await;
    assert_eq!(research.status, 202, "{}", research.body);

    let delta = |scrape: &Scrape, name: &str, labels: &[(&str, &str)]| {
        scrape.value(name, labels) - before.value(name, labels)
    };
    let after = scrape_until(&app, "the job's metrics", |s| {
        delta(s, "dossier_jobs_finished_total", &[SEARCH]) >= 1.0
            && delta(s, "dossier_projection_lag_seconds_count", &[SEARCH]) >= 3.0
            && s.value("dossier_jobs_pending", &[("kind", "research.deep")]) >= 1.0
    })
    .await;
    let page = &after.text;

    // Worker runtime: two deliveries started, one retried, one success.
    assert_eq!(
        delta(&after, "dossier_jobs_started_total", &[SEARCH]),
        2.0,
        "{page}"
    );
    assert_eq!(
        delta(&after, "dossier_jobs_retried_total", &[SEARCH]),
        1.0,
        "{page}"
    );
    assert_eq!(
        delta(
            &after,
            "dossier_jobs_finished_total",
            &[SEARCH, ("outcome", "succeeded")]
        ),
        1.0,
        "{page}"
    );
    assert_eq!(
        delta(&after, "dossier_jobs_finished_total", &[SEARCH]),
        1.0,
        "{page}"
    );
    assert_eq!(
        delta(&after, "dossier_jobs_dead_total", &[SEARCH]),
        0.0,
        "{page}"
    );
    assert_eq!(
        delta(
            &after,
            "dossier_job_duration_seconds_count",
            &[SEARCH, ("outcome", "succeeded")]
        ),
        1.0,
        "{page}"
    );
    assert!(
        after.has("dossier_job_duration_seconds_bucket"),
        "duration histograms have buckets: {page}"
    );

    // Gateway: the route label is the matched template, not the path.
    let accepted = [
        ("method", "POST"),
        ("route", "/api/search/people"),
        ("status", "202"),
    ];
    assert_eq!(
        delta(&after, "dossier_gateway_http_requests_total", &accepted),
        1.0,
        "{page}"
    );
    let polled = [
        ("method", "GET"),
        ("route", "/api/operations/{id}"),
        ("status", "200"),
    ];
    assert!(
        delta(&after, "dossier_gateway_http_requests_total", &polled) >= 1.0,
        "{page}"
    );
    assert!(
        !page.contains(&format!("route=\"/api/operations/{id}\"")),
        "no per-operation route label: {page}"
    );
    assert!(
        delta(
            &after,
            "dossier_gateway_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/api/search/people")]
        ) >= 1.0,
        "{page}"
    );
    assert_eq!(
        delta(
            &after,
            "dossier_gateway_operations_accepted_total",
            &[SEARCH, ("replay", "false")]
        ),
        1.0,
        "{page}"
    );

    // Operations: every event of the job projected, its lag measured.
    assert!(
        delta(&after, "dossier_projection_lag_seconds_count", &[SEARCH]) >= 3.0,
        "started twice and succeeded: {page}"
    );
    // Queue depth per kind: the waiting research job, nothing held for search.
    assert_eq!(
        after.value("dossier_jobs_pending", &[("kind", "research.deep")]),
        1.0,
        "{page}"
    );
    assert_eq!(
        after.value("dossier_jobs_pending", &[SEARCH]),
        0.0,
        "{page}"
    );
    assert_eq!(
        after.value("dossier_jobs_ack_pending", &[SEARCH]),
        0.0,
        "{page}"
    );
    assert!(after.has("dossier_projector_pending"), "{page}");

    // Every metric is documented.
    for name in [
        "dossier_jobs_started_total",
        "dossier_jobs_finished_total",
        "dossier_jobs_retried_total",
        "dossier_job_duration_seconds",
        "dossier_gateway_http_requests_total",
        "dossier_gateway_operations_accepted_total",
        "dossier_projection_lag_seconds",
        "dossier_jobs_pending",
        "dossier_jobs_ack_pending",
        "dossier_projector_pending",
    ] {
        assert!(page.contains(&format!("# HELP {name} ")), "{name}: {page}");
    }
    assert_eq!(handler.runs(), 2);
}
