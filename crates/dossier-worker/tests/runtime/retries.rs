//! Invariant 6: retries with backoff, bounded deliveries, contained poison.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dossier_contracts::v1::operation_event::Event;
use dossier_worker::{JobError, Outcome, WorkerConfig};
use serde_json::json;

use crate::helpers::{Counter, Running, TestEnv, handler_fn, name, names};

#[tokio::test]
async fn retryable_errors_are_retried_until_success() {
    let env = TestEnv::start().await;
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = attempts.clone();
    let worker = env
        .worker(
            env.config(),
            handler_fn(move |ctx, _job| {
                seen.lock().unwrap().push(ctx.attempt());
                async move {
                    if ctx.attempt() < 3 {
                        Err(JobError::retryable("provider_unavailable", "Try later."))
                    } else {
                        Ok(Outcome::Succeeded(json!({ "ok": true })))
                    }
                }
            }),
        )
        .await;
    let running = Running::spawn(worker);
    let operation_id = env.publish_job(json!({})).await;

    let terminal = env.wait_terminal(&operation_id).await;
    assert_eq!(name(&terminal), "succeeded");
    assert_eq!(terminal.attempt, 3);
    env.wait_settled().await;
    assert_eq!(*attempts.lock().unwrap(), [1, 2, 3]);
    let events = env.events(&operation_id).await;
    assert_eq!(
        names(&events),
        ["started", "started", "started", "succeeded"]
    );
    let started: Vec<u32> = events.iter().map(|e| e.attempt).take(3).collect();
    assert_eq!(started, [1, 2, 3]);
    running.stop().await;
}

#[tokio::test]
async fn a_poison_job_fails_after_max_deliver_and_does_not_block_others() {
    let env = TestEnv::start().await; // max_deliver 3
    let poison_calls = Counter::default();
    let calls = poison_calls.clone();
    let config = WorkerConfig {
        concurrency: 1,
        // The poison waits at least 250 ms, then 500 ms, between deliveries.
        retry_backoff_base: Duration::from_millis(500),
        retry_backoff_max: Duration::from_secs(1),
        ..env.config()
    };
    let worker = env
        .worker(
            config,
            handler_fn(move |_ctx, job| {
                let poison = job.payload_json == br#"{"poison":true}"#;
                if poison {
                    calls.incr();
                }
                async move {
                    if poison {
                        Err(JobError::retryable("provider_unavailable", "Always down."))
                    } else {
                        Ok(Outcome::Succeeded(json!({})))
                    }
                }
            }),
        )
        .await;
    // Deltas: the recorder is process-wide (other tests of this binary run
    // jobs in the same process under `cargo test`).
    let before = dossier_service::metrics::render();
    let poison = env.publish_job(json!({ "poison": true })).await;
    let mut good = Vec::new();
    for _ in 0..5 {
        good.push(env.publish_job(json!({ "poison": false })).await);
    }
    let running = Running::spawn(worker);

    let failed = env.wait_terminal(&poison).await;
    let Some(Event::Failed(failure)) = &failed.event else {
        panic!("poison did not fail: {failed:?}");
    };
    let error = failure.error.as_ref().unwrap();
    assert_eq!(error.code, "provider_unavailable");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&error.details_json).unwrap(),
        json!({ "attempts": 3 })
    );
    assert_eq!(failed.attempt, 3);
    for operation_id in &good {
        let terminal = env.wait_terminal(operation_id).await;
        assert_eq!((name(&terminal), terminal.attempt), ("succeeded", 1));
    }
    env.wait_settled().await;
    assert_eq!(poison_calls.get(), 3, "exactly max_deliver handler calls");

    // The good jobs went through while the poison waited for its retries.
    let all = env.all_events().await;
    let poison_failed_at = all
        .iter()
        .position(|e| e.operation_id == poison && name(e) == "failed")
        .unwrap();
    for operation_id in &good {
        let done_at = all
            .iter()
            .position(|e| &e.operation_id == operation_id && name(e) == "succeeded")
            .unwrap();
        assert!(done_at < poison_failed_at);
    }
    running.stop().await;

    // Counted: 3 + 5 deliveries started, 2 retries (the last delivery is
    // not one), 1 dead, and the outcomes.
    let after = dossier_service::metrics::render();
    for (series, moved) in [
        (r#"dossier_jobs_started_total{kind="search.people"}"#, 8.0),
        (r#"dossier_jobs_retried_total{kind="search.people"}"#, 2.0),
        (r#"dossier_jobs_dead_total{kind="search.people"}"#, 1.0),
        (
            r#"dossier_jobs_finished_total{kind="search.people",outcome="failed"}"#,
            1.0,
        ),
        (
            r#"dossier_jobs_finished_total{kind="search.people",outcome="succeeded"}"#,
            5.0,
        ),
        (
            r#"dossier_job_duration_seconds_count{kind="search.people",outcome="succeeded"}"#,
            5.0,
        ),
    ] {
        assert_eq!(
            sample(&after, series) - sample(&before, series),
            moved,
            "{series} in {after}"
        );
    }
}

/// The value of one series in a Prometheus text page (0 when absent).
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn a_permanent_error_fails_at_once_with_details() {
    let env = TestEnv::start().await;
    let calls = Counter::default();
    let handler_calls = calls.clone();
    let worker = env
        .worker(
            env.config(),
            handler_fn(move |_ctx, _job| {
                handler_calls.incr();
                async {
                    Err(JobError::permanent("subject_not_found", "No such company.")
                        .with_details(json!({ "domain": "example.invalid" })))
                }
            }),
        )
        .await;
    let operation_id = env.publish_job(json!({})).await;
    assert!(
        worker
            .try_process_one(Duration::from_secs(5))
            .await
            .unwrap()
    );

    let terminal = env.wait_terminal(&operation_id).await;
    let Some(Event::Failed(failure)) = terminal.event else {
        panic!("not failed");
    };
    let error = failure.error.unwrap();
    assert_eq!(error.code, "subject_not_found");
    assert_eq!(error.message, "No such company.");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&error.details_json).unwrap(),
        json!({ "domain": "example.invalid" })
    );
    env.wait_settled().await;
    assert_eq!(calls.get(), 1);
}

#[tokio::test]
async fn a_handler_past_the_job_timeout_is_dropped_and_retried() {
    let env = TestEnv::start_with(|b| b.consumer.max_deliver = 2).await;
    let calls = Counter::default();
    let drops = Counter::default();
    let (handler_calls, handler_drops) = (calls.clone(), drops.clone());
    let config = WorkerConfig {
        job_timeout: Duration::from_millis(200),
        ..env.config()
    };
    let worker = env
        .worker(
            config,
            handler_fn(move |_ctx, _job| {
                handler_calls.incr();
                let drops = handler_drops.clone();
                async move {
                    let _count = CountOnDrop(drops);
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(Outcome::Succeeded(json!({})))
                }
            }),
        )
        .await;
    let running = Running::spawn(worker);
    let operation_id = env.publish_job(json!({})).await;

    let terminal = env.wait_terminal(&operation_id).await;
    let Some(Event::Failed(failure)) = &terminal.event else {
        panic!("not failed: {terminal:?}");
    };
    assert_eq!(failure.error.as_ref().unwrap().code, "job_timeout");
    assert_eq!(terminal.attempt, 2);
    env.wait_settled().await;
    assert_eq!(calls.get(), 2);
    dossier_testkit::wait_until(
        "both handler futures dropped",
        crate::helpers::DEADLINE,
        || {
            let drops = drops.clone();
            async move { drops.get() == 2 }
        },
    )
    .await;
    running.stop().await;
}

#[tokio::test]
async fn a_panicking_handler_is_retried() {
    let env = TestEnv::start().await;
    let worker = env
        .worker(
            env.config(),
            handler_fn(|ctx, _job| async move {
                if ctx.attempt() == 1 {
                    panic!("handler bug");
                }
                Ok(Outcome::Succeeded(json!({ "attempt": ctx.attempt() })))
            }),
        )
        .await;
    let running = Running::spawn(worker);
    let operation_id = env.publish_job(json!({})).await;

    let terminal = env.wait_terminal(&operation_id).await;
    assert_eq!((name(&terminal), terminal.attempt), ("succeeded", 2));
    env.wait_settled().await;
    assert_eq!(
        names(&env.events(&operation_id).await),
        ["started", "started", "succeeded"]
    );
    running.stop().await;
}

/// Counts drops of a handler future.
struct CountOnDrop(Counter);

impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.incr();
    }
}
