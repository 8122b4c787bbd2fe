//! The worker's admin port: alive while it starts, ready only while it
//! takes jobs, not ready from the moment shutdown begins, and its metrics
//! scraped over HTTP after a job.

use dossier_contracts::Status;
use dossier_stack::{DEADLINE, KEY_A, Running, spawn_app};
use dossier_testkit::wait_until;
use search_worker::{App, Config};

#[tokio::test]
async fn the_admin_port_reports_readiness_and_job_metrics() {
    let app = spawn_app().await;
    let mut config = <Config as clap::Parser>::parse_from(["search-worker"]);
    config.service.broker = app.broker_config();
    config.service.admin.admin_addr = Some("127.0.0.1:0".parse().unwrap());
    let worker = App::build(config).await.unwrap();
    let admin = format!("http://{}", worker.admin_addr().unwrap());
    let readiness = worker.readiness();
    let status = |path: &'static str| {
        let request = app.client.get(format!("{admin}{path}"));
        async move { request.send().await.unwrap().status().as_u16() }
    };

    // Built, not yet taking jobs: alive, not ready.
    assert_eq!(status("/healthz").await, 200);
    assert_eq!(status("/readyz").await, 503);

    let running = Running::spawn(|token| worker.run(token));
    wait_until("the worker to be ready", DEADLINE, || async {
        status("/readyz").await == 200
    })
    .await;

    // Deltas: the recorder is process-wide, and other tests in this process
    // (under `cargo test`) may run search jobs too.
    let before = app.scrape(&format!("{admin}/metrics")).await;
    let id = app.accept_search(KEY_A).await.id();
    let op = app.wait_for_terminal(&id, KEY_A).await;
    assert_eq!(op["status"], Status::Succeeded.as_str(), "{op}");
    let metrics = app.scrape(&format!("{admin}/metrics")).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        metrics.value(name, labels) - before.value(name, labels)
    };
    let search = ("kind", "search.people");
    let succeeded = [search, ("outcome", "succeeded")];
    assert_eq!(
        delta("dossier_jobs_finished_total", &succeeded),
        1.0,
        "{}",
        metrics.text
    );
    assert_eq!(delta("dossier_jobs_started_total", &[search]), 1.0);
    assert_eq!(delta("dossier_job_duration_seconds_count", &succeeded), 1.0);
    assert!(
        metrics
            .text
            .contains("# TYPE dossier_job_duration_seconds histogram")
    );

    // Not ready from the moment shutdown begins, before the worker stops
    // pulling.
    running.begin_shutdown();
    assert!(!readiness.is_ready());
    running.stop().await;
}
