//! Invariant 7: a job cancelled while queued never runs; a running one stops
//! within seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dossier_contracts::v1::{operation_event::Event, result_ref::Location};
use dossier_testkit::wait_until;
use dossier_worker::{Outcome, WorkerConfig};
use serde_json::json;

use crate::helpers::{Counter, DEADLINE, DropFlag, Running, TestEnv, handler_fn, names};

#[tokio::test]
async fn a_job_cancelled_while_queued_never_runs() {
    let env = TestEnv::start().await;
    let (worker, calls) = env.counting_worker().await;
    let operation_id = env.publish_job(json!({})).await;
    env.cancel(&operation_id).await;

    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    let terminal = env.wait_terminal(&operation_id).await;
    env.wait_settled().await;
    assert_eq!(calls.get(), 0);
    assert_eq!(names(&env.events(&operation_id).await), ["cancelled"]);
    let Some(Event::Cancelled(cancelled)) = terminal.event else {
        panic!("not cancelled");
    };
    assert_eq!(cancelled.partial_result, None);
}

#[tokio::test]
async fn a_running_job_stops_cooperatively_and_keeps_its_partial_work() {
    let env = TestEnv::start().await;
    let steps = Counter::default();
    let handler_steps = steps.clone();
    let worker = env
        .worker(
            env.config(),
            handler_fn(move |ctx, _job| {
                let steps = handler_steps.clone();
                async move {
                    // Steps of work, checking for cancellation between them.
                    loop {
                        if ctx.is_cancelled() {
                            return Ok(Outcome::Cancelled {
                                partial: Some(json!({ "steps": steps.get() })),
                                progress: None,
                            });
                        }
                        tokio::select! {
                            () = ctx.cancelled() => {}
                            () = tokio::time::sleep(Duration::from_millis(20)) => {
                                steps.incr();
                            }
                        }
                    }
                }
            }),
        )
        .await;
    let running = Running::spawn(worker);
    let operation_id = env.publish_job(json!({})).await;
    wait_until("some steps done", DEADLINE, || async { steps.get() >= 3 }).await;

    env.cancel(&operation_id).await;
    let terminal = env.wait_terminal(&operation_id).await;
    env.wait_settled().await;
    // Stopped in the delivery that ran, not by a time-out and a redelivery.
    assert_eq!(terminal.attempt, 1);
    let Some(Event::Cancelled(cancelled)) = terminal.event else {
        panic!("not cancelled");
    };
    let Some(Location::InlineJson(partial)) = cancelled.partial_result.unwrap().location else {
        panic!("no inline partial result");
    };
    let partial: serde_json::Value = serde_json::from_slice(&partial).unwrap();
    assert!(partial["steps"].as_u64().unwrap() >= 3);
    assert_eq!(
        names(&env.events(&operation_id).await),
        ["started", "cancelled"]
    );
    running.stop().await;
}

#[tokio::test]
async fn an_uncooperative_job_is_dropped_after_the_cancel_grace() {
    let env = TestEnv::start().await;
    let calls = Counter::default();
    let dropped = Arc::new(AtomicBool::new(false));
    let (handler_calls, handler_dropped) = (calls.clone(), dropped.clone());
    let config = WorkerConfig {
        cancel_grace: Duration::from_millis(300),
        ..env.config()
    };
    let worker = env
        .worker(
            config,
            handler_fn(move |_ctx, _job| {
                handler_calls.incr();
                let flag = DropFlag(handler_dropped.clone());
                async move {
                    let _flag = flag;
                    // Never looks at the context.
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(Outcome::Succeeded(json!({})))
                }
            }),
        )
        .await;
    let running = Running::spawn(worker);
    let operation_id = env.publish_job(json!({})).await;
    wait_until("the job to run", DEADLINE, || async { calls.get() == 1 }).await;

    env.cancel(&operation_id).await;
    let terminal = env.wait_terminal(&operation_id).await;
    env.wait_settled().await;
    // Stopped in the delivery that ran, not by a time-out and a redelivery.
    assert_eq!(terminal.attempt, 1);
    assert!(dropped.load(Ordering::SeqCst), "the handler still runs");
    let Some(Event::Cancelled(cancelled)) = terminal.event else {
        panic!("not cancelled");
    };
    assert_eq!(cancelled.partial_result, None);
    assert_eq!(
        names(&env.events(&operation_id).await),
        ["started", "cancelled"]
    );
    assert_eq!(calls.get(), 1);
    running.stop().await;
}
