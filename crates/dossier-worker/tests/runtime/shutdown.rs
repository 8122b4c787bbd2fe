//! Graceful shutdown: stop pulling, finish what fits in the grace, hand the
//! rest back at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dossier_testkit::wait_until;
use dossier_worker::{Outcome, WorkerConfig};
use serde_json::json;

use crate::helpers::{Counter, DEADLINE, DropFlag, Running, TestEnv, handler_fn, name, names};

#[tokio::test]
async fn shutdown_finishes_short_jobs_and_hands_unfinished_ones_back() {
    // A long ack deadline: the unfinished job is picked up again well before
    // it, so it was handed back (nak), not redelivered after a timeout.
    let env = TestEnv::start_with(|b| b.consumer.ack_wait = Duration::from_secs(60)).await;
    let running = Counter::default();
    let stuck_dropped = Arc::new(AtomicBool::new(false));
    let (handler_running, handler_dropped) = (running.clone(), stuck_dropped.clone());
    let config = WorkerConfig {
        shutdown_grace: Duration::from_millis(1500),
        ..env.config()
    };
    let worker = env
        .worker(
            config,
            handler_fn(move |_ctx, job| {
                handler_running.incr();
                let stuck = job.payload_json == br#"{"stuck":true}"#;
                let flag = stuck.then(|| DropFlag(handler_dropped.clone()));
                async move {
                    let _flag = flag;
                    if stuck {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    } else {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Ok(Outcome::Succeeded(json!({})))
                }
            }),
        )
        .await;
    let readiness = worker.readiness();
    let a = Running::spawn(worker);
    let stuck = env.publish_job(json!({ "stuck": true })).await;
    let short = env.publish_job(json!({ "stuck": false })).await;
    wait_until("both jobs running", DEADLINE, || async {
        running.get() == 2
    })
    .await;

    a.shutdown.cancel();
    wait_until("readiness to drop", DEADLINE, || async {
        !readiness.is_ready()
    })
    .await;
    a.stop().await;

    // The short job finished within the grace.
    let terminal = env.wait_terminal(&short).await;
    assert_eq!((name(&terminal), terminal.attempt), ("succeeded", 1));
    // The stuck one was stopped and handed back without an event.
    assert!(stuck_dropped.load(Ordering::SeqCst));
    assert_eq!(names(&env.events(&stuck).await), ["started"]);

    let b = Running::spawn(
        env.worker(
            env.config(),
            handler_fn(|_ctx, _job| async { Ok(Outcome::Succeeded(json!({}))) }),
        )
        .await,
    );
    let terminal = env.wait_terminal(&stuck).await;
    assert_eq!((name(&terminal), terminal.attempt), ("succeeded", 2));
    env.wait_settled().await;
    assert_eq!(
        names(&env.events(&stuck).await),
        ["started", "started", "succeeded"]
    );
    b.stop().await;
}
