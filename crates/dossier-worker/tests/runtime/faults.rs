//! Invariant 4: a dead worker's job is redelivered and finished elsewhere; a
//! live worker's long job is not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dossier_testkit::{wait_for, wait_until};
use dossier_worker::Outcome;
use serde_json::json;

use crate::helpers::{
    Counter, DEADLINE, DropFlag, KIND, Running, TestEnv, handler_fn, name, names,
};
use dossier_broker::Topology;

#[tokio::test]
async fn a_crashed_workers_job_is_redelivered_and_finished_by_another() {
    let env = TestEnv::start_with(|b| b.consumer.ack_wait = Duration::from_secs(1)).await;
    let calls = Counter::default();
    let dropped = Arc::new(AtomicBool::new(false));

    // Worker A takes the job and hangs in it until it "crashes".
    let (a_calls, a_dropped) = (calls.clone(), dropped.clone());
    let a = env
        .worker(
            env.config(),
            handler_fn(move |_ctx, _job| {
                a_calls.incr();
                let flag = DropFlag(a_dropped.clone());
                async move {
                    let _flag = flag;
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(Outcome::Succeeded(json!({ "by": "a" })))
                }
            }),
        )
        .await;
    let a_id = a.worker_id().to_owned();
    let a = Running::spawn(a);
    let operation_id = env.publish_job(json!({})).await;
    wait_until("A to run the job", DEADLINE, || async { calls.get() == 1 }).await;

    // The crash: A's task is aborted mid-job; its heartbeats stop with it.
    a.task.abort();
    drop(a);
    wait_until("A's handler to be dropped", DEADLINE, || async {
        dropped.load(Ordering::SeqCst)
    })
    .await;

    let b_calls = calls.clone();
    let b = env
        .worker(
            env.config(),
            handler_fn(move |_ctx, _job| {
                b_calls.incr();
                async { Ok(Outcome::Succeeded(json!({ "by": "b" }))) }
            }),
        )
        .await;
    let b_id = b.worker_id().to_owned();
    let b = Running::spawn(b);

    let terminal = env.wait_terminal(&operation_id).await;
    env.wait_settled().await;
    assert_eq!(calls.get(), 2, "the handler ran on A, then on B");
    let events = env.events(&operation_id).await;
    // A died before its terminal event, so exactly one terminal event exists.
    assert_eq!(names(&events), ["started", "started", "succeeded"]);
    assert_eq!(
        events
            .iter()
            .map(|e| (e.attempt, e.worker_id.as_str()))
            .collect::<Vec<_>>(),
        [(1, a_id.as_str()), (2, b_id.as_str()), (2, b_id.as_str())]
    );
    assert_eq!((name(&terminal), terminal.attempt), ("succeeded", 2));
    b.stop().await;
}

#[tokio::test]
async fn heartbeats_keep_a_long_job_from_being_redelivered() {
    // The job runs three ack deadlines; two idle workers wait for any
    // redelivery.
    let env = TestEnv::start_with(|b| b.consumer.ack_wait = Duration::from_secs(1)).await;
    let calls = Counter::default();
    let handler = |calls: Counter| {
        handler_fn(move |_ctx, _job| {
            calls.incr();
            async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Ok(Outcome::Succeeded(json!({})))
            }
        })
    };
    let a = Running::spawn(env.worker(env.config(), handler(calls.clone())).await);
    let b = Running::spawn(env.worker(env.config(), handler(calls.clone())).await);
    let operation_id = env.publish_job(json!({})).await;

    let terminal = env.wait_terminal(&operation_id).await;
    env.wait_settled().await;
    assert_eq!(calls.get(), 1, "the job was redelivered while it ran");
    assert_eq!((name(&terminal), terminal.attempt), ("succeeded", 1));
    assert_eq!(
        names(&env.events(&operation_id).await),
        ["started", "succeeded"]
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_worker_carries_on_after_a_nats_server_restart() {
    let mut env = TestEnv::start().await;
    let worker = env
        .worker(
            env.config(),
            handler_fn(|_ctx, _job| async { Ok(Outcome::Succeeded(json!({}))) }),
        )
        .await;
    let readiness = worker.readiness();
    let running = Running::spawn(worker);
    let before = env.publish_job(json!({})).await;
    env.wait_terminal(&before).await;
    assert!(readiness.is_ready());

    // Not ready while the broker is gone.
    env.nats.kill();
    wait_until("readiness to drop with the broker", DEADLINE, || async {
        !readiness.is_ready()
    })
    .await;
    // Same port, same store: streams, consumer and the worker's session resume.
    env.nats.start_again().await;
    let after = wait_for("a job accepted after the restart", DEADLINE, || async {
        let job = env.job(json!({}));
        env.try_publish(job).await
    })
    .await;
    let terminal = env.wait_terminal(&after).await;
    assert_eq!((name(&terminal), terminal.attempt), ("succeeded", 1));
    assert!(readiness.is_ready(), "ready again once reconnected");
    env.wait_settled().await;
    running.stop().await;
}

#[tokio::test]
async fn a_worker_that_cannot_pull_is_not_ready_until_it_can_again() {
    let env = TestEnv::start().await;
    let worker = env
        .worker(
            env.config(),
            handler_fn(|_ctx, _job| async { Ok(Outcome::Succeeded(json!({}))) }),
        )
        .await;
    let readiness = worker.readiness();
    let running = Running::spawn(worker);
    wait_until("the worker to be ready", DEADLINE, || async {
        readiness.is_ready()
    })
    .await;

    // Connected to NATS, but its consumer is gone: every pull fails.
    let stream = env
        .js
        .get_stream(dossier_broker::JOBS_STREAM)
        .await
        .unwrap();
    stream
        .delete_consumer(&dossier_broker::job_consumer(KIND))
        .await
        .unwrap();
    wait_until("readiness to drop while pulls fail", DEADLINE, || async {
        !readiness.is_ready()
    })
    .await;

    // The consumer is back (as a redeploy's topology would make it): ready,
    // and it runs jobs again.
    Topology::ensure(&env.js, &env.topology_config)
        .await
        .unwrap();
    wait_until("readiness to return", DEADLINE, || async {
        readiness.is_ready()
    })
    .await;
    let job = env.publish_job(json!({})).await;
    let terminal = env.wait_terminal(&job).await;
    assert_eq!(name(&terminal), "succeeded");
    running.stop().await;
}

#[tokio::test]
async fn cancellation_reaches_a_running_job_after_a_nats_server_restart() {
    let mut env = TestEnv::start().await;
    let started = Counter::default();
    let handler_started = started.clone();
    let worker = env
        .worker(
            env.config(),
            handler_fn(move |ctx, _job| {
                handler_started.incr();
                async move {
                    ctx.cancelled().await;
                    Ok(Outcome::Cancelled {
                        partial: None,
                        progress: None,
                    })
                }
            }),
        )
        .await;
    let running = Running::spawn(worker);
    let operation_id = env.publish_job(json!({})).await;
    wait_until("the job to run", DEADLINE, || async { started.get() == 1 }).await;

    env.nats.restart().await;
    wait_until("the cancellation to be stored", DEADLINE, || async {
        env.topology
            .cancellations
            .put(operation_id.as_str(), "{}".into())
            .await
            .is_ok()
    })
    .await;
    let terminal = env.wait_terminal(&operation_id).await;
    assert_eq!((name(&terminal), terminal.attempt), ("cancelled", 1));
    env.wait_settled().await;
    running.stop().await;
}

#[tokio::test]
async fn a_job_whose_terminal_event_cannot_be_stored_is_not_acked() {
    let env = TestEnv::start().await;
    let js = env.js.clone();
    let worker = env
        .worker(
            env.config(),
            handler_fn(move |ctx, _job| {
                let js = js.clone();
                async move {
                    if ctx.attempt() == 1 {
                        // The events stream disappears mid-job.
                        js.delete_stream(dossier_broker::EVENTS_STREAM)
                            .await
                            .unwrap();
                    }
                    Ok(Outcome::Succeeded(json!({})))
                }
            }),
        )
        .await;
    let operation_id = env.publish_job(json!({})).await;
    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    // Not acked: the job is still held by the consumer, waiting for redelivery.
    assert_eq!(env.consumer_info().await.num_ack_pending, 1);

    dossier_broker::Topology::ensure(&env.js, &env.topology_config)
        .await
        .unwrap();
    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    // The first run committed its outcome to the job's lease before the
    // publish failed: the redelivery publishes that event instead of
    // running the job again (its `Started` went with the old stream).
    let terminal = env.wait_terminal(&operation_id).await;
    assert_eq!((name(&terminal), terminal.attempt), ("succeeded", 1));
    assert_eq!(names(&env.events(&operation_id).await), ["succeeded"]);
    env.wait_settled().await;
}
