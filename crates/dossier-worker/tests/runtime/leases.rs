//! Invariant 11: a job has at most one live run, and an operation that is
//! finished or cancelled is never started again (the per-run lease in
//! `dossier_leases`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dossier_broker::lease_key;
use dossier_testkit::wait_until;
use dossier_worker::Outcome;
use serde_json::json;

use crate::helpers::{
    Counter, DEADLINE, DropFlag, KIND, Running, TestEnv, handler_fn, is_terminal, names,
};

/// Waits (boundedly) until `flag` is set.
async fn wait_for_flag(flag: &AtomicBool) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !flag.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_second_delivery_while_the_lease_is_live_waits_and_never_runs() {
    // Short deadlines, so the observation window below spans several of
    // them: a waiting delivery is neither run nor redelivered meanwhile.
    let ack_wait = Duration::from_secs(1);
    let env = TestEnv::start_with(|b| b.consumer.ack_wait = ack_wait).await;
    let calls = Counter::default();
    let finish = Arc::new(AtomicBool::new(false));
    let handler = || {
        let (calls, finish) = (calls.clone(), finish.clone());
        handler_fn(move |_ctx, _job| {
            calls.incr();
            let finish = finish.clone();
            async move {
                wait_for_flag(&finish).await;
                Ok(Outcome::Succeeded(json!({})))
            }
        })
    };
    // Two replicas: whichever takes the second delivery must not run it.
    let a = Running::spawn(env.worker(env.config(), handler()).await);
    let b = Running::spawn(env.worker(env.config(), handler()).await);

    let job = env.job(json!({}));
    let operation_id = env.publish(job.clone()).await;
    wait_until("the first run to start", DEADLINE, || async {
        calls.get() == 1
    })
    .await;
    // The same job stored again (a retry after the duplicate window): a
    // second message of the same operation, delivered while the first run
    // holds the lease.
    env.publish_again(job).await;
    wait_until("the second delivery to be taken", DEADLINE, || async {
        let info = env.consumer_info().await;
        info.num_pending == 0 && info.num_ack_pending == 2
    })
    .await;
    // Three lease periods: the waiting delivery keeps its heartbeats (no
    // redelivery, no delivery used up) and never starts the handler.
    tokio::time::sleep(ack_wait * 3).await;
    assert_eq!(
        calls.get(),
        1,
        "a second run started while the lease was live"
    );
    let info = env.consumer_info().await;
    assert_eq!(info.num_ack_pending, 2);
    assert_eq!(info.num_redelivered, 0, "a waiting delivery was given away");

    // The holder finishes; the waiting delivery then sees the operation
    // finished and is acknowledged without running.
    finish.store(true, Ordering::SeqCst);
    env.wait_terminal(&operation_id).await;
    env.wait_settled().await;
    assert_eq!(calls.get(), 1);
    assert_eq!(
        names(&env.events(&operation_id).await),
        ["started", "succeeded"]
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_finished_or_cancelled_operation_is_not_started_again() {
    let env = TestEnv::start().await;
    let (worker, calls) = env.counting_worker().await;

    // Finished: its job published again under a new message id (beyond
    // JetStream's duplicate window) is acknowledged without running.
    let done = env.job(json!({}));
    let done_id = env.publish(done.clone()).await;
    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    env.wait_terminal(&done_id).await;
    assert_eq!(calls.get(), 1);
    env.publish_again(done.clone()).await;
    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    env.wait_settled().await;
    assert_eq!(calls.get(), 1, "a finished operation ran again");
    assert_eq!(names(&env.events(&done_id).await), ["started", "succeeded"]);

    // Cancelled while queued: never started, and not again either.
    let cancelled = env.job(json!({}));
    let cancelled_id = env.publish(cancelled.clone()).await;
    env.cancel(&cancelled_id).await;
    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    env.wait_terminal(&cancelled_id).await;
    env.publish_again(cancelled).await;
    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    env.wait_settled().await;
    assert_eq!(calls.get(), 1, "a cancelled operation was started");
    assert_eq!(names(&env.events(&cancelled_id).await), ["cancelled"]);
}

#[tokio::test]
async fn a_run_that_loses_its_lease_is_dropped_and_publishes_nothing() {
    let env = TestEnv::start_with(|b| b.consumer.ack_wait = Duration::from_secs(1)).await;
    let calls = Counter::default();
    let dropped = Arc::new(AtomicBool::new(false));
    let (handler_calls, handler_dropped) = (calls.clone(), dropped.clone());
    // Nothing but the lost lease may stop the first run (not the job timeout).
    let config = dossier_worker::WorkerConfig {
        job_timeout: Duration::from_secs(300),
        ..env.config()
    };
    let worker = env
        .worker(
            config,
            handler_fn(move |ctx, _job| {
                handler_calls.incr();
                let flag = DropFlag(handler_dropped.clone());
                async move {
                    // The first run hangs (until it is dropped); the next
                    // one finishes at once.
                    if ctx.attempt() == 1 {
                        let _flag = flag;
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Ok(Outcome::Succeeded(json!({ "attempt": ctx.attempt() })))
                }
            }),
        )
        .await;
    let running = Running::spawn(worker);
    let operation_id = env.publish_job(json!({})).await;
    wait_until("the first run to start", DEADLINE, || async {
        calls.get() == 1
    })
    .await;

    // Another run takes the lease over (what a worker does once the lease
    // of a stalled one expires): the first run's next renewal finds another
    // revision, and the run is dropped without a terminal event.
    env.topology
        .leases
        .put(lease_key(KIND, &operation_id), "taken over".into())
        .await
        .unwrap();
    wait_until("the first run to be dropped", DEADLINE, || async {
        dropped.load(Ordering::SeqCst)
    })
    .await;
    assert!(
        !env.events(&operation_id).await.iter().any(is_terminal),
        "a run without its lease published a terminal event"
    );

    // Its delivery was left alone: after the ack deadline the job comes
    // back and a new run (taking over the lease the test wrote) ends it.
    let terminal = env.wait_terminal(&operation_id).await;
    env.wait_settled().await;
    assert_eq!(terminal.attempt, 2);
    assert_eq!(calls.get(), 2);
    assert_eq!(
        names(&env.events(&operation_id).await),
        ["started", "started", "succeeded"]
    );
    running.stop().await;
}

/// Issue 15, finding 1: a cancellation accepted while a run is finishing
/// must win over the run's outcome (the caller got 202). The operations
/// service records it on the run's lease; the run, finding its entry
/// rewritten, commits `cancelled` instead of its result. The old runtime
/// took the rewrite for a lost lease and dropped the run, which was then
/// run again and ended `succeeded`.
#[tokio::test]
async fn a_cancellation_on_the_lease_wins_over_the_outcome_being_committed() {
    use dossier_broker::lease::Lease;
    use prost::Message as _;

    let env = TestEnv::start().await;
    let calls = Counter::default();
    let finish = Arc::new(AtomicBool::new(false));
    let handler = {
        let (calls, finish) = (calls.clone(), finish.clone());
        // Ignores cancellation: it finishes with a result whatever happens.
        handler_fn(move |_ctx, _job| {
            calls.incr();
            let finish = finish.clone();
            async move {
                wait_for_flag(&finish).await;
                Ok(Outcome::Succeeded(json!({ "done": true })))
            }
        })
    };
    let worker = Running::spawn(env.worker(env.config(), handler).await);
    let operation_id = env.publish_job(json!({})).await;
    wait_until("the run to start", DEADLINE, || async { calls.get() == 1 }).await;

    // What the operations service does when it accepts the cancellation
    // of a held operation: the flag, by revision, and no marker.
    let key = lease_key(KIND, &operation_id);
    let entry = env
        .topology
        .leases
        .entry(key.as_str())
        .await
        .unwrap()
        .unwrap();
    let mut lease = Lease::decode(entry.value).unwrap();
    lease.cancel_requested = true;
    env.topology
        .leases
        .update(key.as_str(), lease.to_bytes(), entry.revision)
        .await
        .unwrap();
    finish.store(true, Ordering::SeqCst);

    let terminal = env.wait_terminal(&operation_id).await;
    assert_eq!(crate::helpers::name(&terminal), "cancelled");
    env.wait_settled().await;
    assert_eq!(
        names(&env.events(&operation_id).await),
        ["started", "cancelled"]
    );
    assert_eq!(calls.get(), 1, "the run was not repeated");
    worker.stop().await;
}
