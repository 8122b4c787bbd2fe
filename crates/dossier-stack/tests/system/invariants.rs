//! SYSTEM.md invariants across every component, driven through HTTP.

use std::time::Duration;

use dossier_contracts::Status;
use dossier_stack::{DEADLINE, KEY_A, search_body, spawn_app};
use dossier_testkit::wait_until;
use dossier_worker::{JobError, Outcome};
use serde_json::json;

use crate::handler::{TestHandler, start_worker};

/// Invariant 7: cancelling a running job stops its work within seconds, and
/// the operation ends `cancelled` with the work the kind keeps.
#[tokio::test]
async fn cancel_stops_a_running_job() {
    let app = spawn_app().await;
    let handler = TestHandler::new(|ctx, _job| async move {
        for step in 1..=1_000u32 {
            if ctx.is_cancelled() {
                return Ok(Outcome::Cancelled {
                    partial: Some(json!({ "stepsDone": step - 1 })),
                    progress: None,
                });
            }
            ctx.progress(step / 10).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Outcome::Succeeded(json!({})))
    });
    let _worker = start_worker(&app, handler.clone()).await;

    let id = app.accept_search(KEY_A).await.id();
    app.wait_for_status(&id, KEY_A, Status::Processing).await;
    let answer = app.cancel_operation(&id, KEY_A).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body["cancelRequested"], true);

    let op = app.wait_for_terminal_unchecked(&id, KEY_A).await;
    assert_eq!(op["status"], "cancelled", "{op}");
    assert_eq!(op["error"]["code"], "cancelled");
    assert!(op["result"]["stepsDone"].as_u64().unwrap() < 1_000, "{op}");
    assert_eq!(handler.runs(), 1);
}

/// Invariant 7: a job cancelled while queued never runs.
#[tokio::test]
async fn a_job_cancelled_while_queued_never_runs() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();
    let answer = app.cancel_operation(&id, KEY_A).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "cancelled");

    // A job accepted after it proves the worker has looked at the queue.
    let handler = TestHandler::new(|_ctx, _job| async { Ok(Outcome::Succeeded(json!({}))) });
    let _worker = start_worker(&app, handler.clone()).await;
    let later = app.accept_search(KEY_A).await.id();
    app.wait_for_status(&later, KEY_A, Status::Succeeded).await;

    assert_eq!(handler.runs(), 1, "only the later job ran");
    assert_eq!(
        app.get_operation(&id, KEY_A).await.body["status"],
        "cancelled"
    );
}

/// Invariant 4: a worker that dies mid-job does not lose it: the job is
/// redelivered after the ack deadline and finishes on another worker.
#[tokio::test]
async fn a_job_survives_its_worker_crashing() {
    let app = spawn_app().await;
    let stuck = TestHandler::new(|_ctx, _job| async {
        std::future::pending::<()>().await;
        Ok(Outcome::Succeeded(json!({})))
    });
    let first = start_worker(&app, stuck.clone()).await;
    let id = app.accept_search(KEY_A).await.id();
    app.wait_for_status(&id, KEY_A, Status::Processing).await;
    first.crash().await;

    let healthy = TestHandler::new(|ctx, _job| async move {
        Ok(Outcome::Succeeded(json!({ "attempt": ctx.attempt() })))
    });
    let _second = start_worker(&app, healthy.clone()).await;
    let op = app.wait_for_status(&id, KEY_A, Status::Succeeded).await;
    assert_eq!(op["result"]["attempt"], 2, "{op}");
    assert_eq!((stuck.runs(), healthy.runs()), (1, 1));
}

/// Invariant 4: jobs accepted before a nats-server restart (same store) all
/// reach a terminal status after it, and the operations are still there.
#[tokio::test]
async fn nothing_is_lost_across_a_broker_restart() {
    let mut app = spawn_app().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.accept_search(KEY_A).await.id());
    }
    app.nats.restart().await;
    app.wait_until_ready().await;

    let handler = TestHandler::new(|_ctx, _job| async { Ok(Outcome::Succeeded(json!({}))) });
    let _worker = start_worker(&app, handler.clone()).await;
    for id in &ids {
        app.wait_for_status(id, KEY_A, Status::Succeeded).await;
    }
    assert_eq!(handler.runs(), 5);
}

/// Invariant 6: a job that fails on every attempt ends `failed` after a
/// bounded number of deliveries, and the jobs behind it still run.
#[tokio::test]
async fn a_poison_job_is_contained() {
    let app = spawn_app().await;
    let handler = TestHandler::new(|_ctx, job| async move {
        let body: serde_json::Value = serde_json::from_slice(&job.payload_json).unwrap();
        if body["limit"] == 13 {
            return Err(JobError::retryable("always_broken", "this job never works"));
        }
        Ok(Outcome::Succeeded(json!({})))
    });
    let _worker = start_worker(&app, handler.clone()).await;

    let mut poison = search_body();
    poison["limit"] = json!(13);
    let poison = app.post_search(&poison).await.id();
    let mut good = Vec::new();
    for _ in 0..3 {
        good.push(app.accept_search(KEY_A).await.id());
    }
    for id in &good {
        app.wait_for_status(id, KEY_A, Status::Succeeded).await;
    }
    let op = app.wait_for_status(&poison, KEY_A, Status::Failed).await;
    assert_eq!(op["error"]["code"], "always_broken", "{op}");
    let max_deliver = app.topology_config().consumer.max_deliver as u32;
    wait_until("every run counted", DEADLINE, || async {
        handler.runs() == max_deliver + 3
    })
    .await;
}

/// Invariant 9: the worker's job span is in the request's trace, whose id
/// is the request id when the caller sent no `traceparent`.
#[tokio::test]
async fn the_worker_continues_the_requests_trace() {
    let app = spawn_app().await;
    let handler = TestHandler::new(|ctx, _job| async move {
        let trace_id = dossier_telemetry::propagation::trace_id(ctx.span());
        Ok(Outcome::Succeeded(
            json!({ "traceId": trace_id, "requestId": ctx.request_id() }),
        ))
    });
    let _worker = start_worker(&app, handler).await;

    let accepted = app.accept_search(KEY_A).await;
    let request_id = accepted.request_id();
    let op = app
        .wait_for_status(&accepted.id(), KEY_A, Status::Succeeded)
        .await;
    assert_eq!(op["result"]["requestId"], request_id.to_string());
    assert_eq!(
        op["result"]["traceId"],
        request_id.simple().to_string(),
        "{op}"
    );
}

/// Invariant 7 under every interleaving (issue 15, finding 1): cancels
/// racing the start and the end of short jobs. Whatever the order, the
/// answer agrees with the outcome: 200/202 → ends `cancelled`; 409 → ends
/// otherwise; "cancelled before it started" → the handler never ran for it.
/// Bounded in count (`RACES`), each job a few milliseconds long, cancels
/// sent 0–30 ms after the accept so that they land before, during and after
/// the run.
#[tokio::test]
async fn cancels_racing_start_and_completion_keep_the_table() {
    use std::collections::{BTreeMap, HashSet};
    use std::sync::{Arc, Mutex};

    const RACES: usize = 240;
    const AT_ONCE: usize = 12;

    let app = spawn_app().await;
    let ran: Arc<Mutex<HashSet<String>>> = Arc::default();
    let handler = {
        let ran = ran.clone();
        TestHandler::new(move |ctx, _job| {
            ran.lock().unwrap().insert(ctx.operation_id().to_owned());
            // 0–7 steps of 2 ms, chosen by the id; odd ones end partially.
            let digest = ctx
                .operation_id()
                .bytes()
                .fold(0u32, |h, b| h.wrapping_mul(31) + u32::from(b));
            async move {
                for _ in 0..digest % 8 {
                    if ctx.is_cancelled() {
                        return Ok(Outcome::Cancelled {
                            partial: None,
                            progress: None,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Ok(if digest % 2 == 1 {
                    Outcome::PartialSuccess {
                        result: json!({ "partial": true }),
                        error: None,
                    }
                } else {
                    Outcome::Succeeded(json!({}))
                })
            }
        })
    };
    let _worker = start_worker(&app, handler).await;

    let mut answers = Vec::with_capacity(RACES);
    for round in 0..RACES.div_ceil(AT_ONCE) {
        let races = (0..AT_ONCE).map(|i| {
            let app = &app;
            let delay = Duration::from_millis(((round * AT_ONCE + i) * 7 % 31) as u64);
            async move {
                let id = app.accept_search(KEY_A).await.id();
                tokio::time::sleep(delay).await;
                let answer = app.cancel_operation(&id, KEY_A).await;
                (id, answer.status)
            }
        });
        answers.extend(futures::future::join_all(races).await);
    }

    let mut table: BTreeMap<(u16, String), usize> = BTreeMap::new();
    let mut violations = Vec::new();
    for (id, code) in &answers {
        let op = app.wait_for_terminal_unchecked(id, KEY_A).await;
        let status = op["status"].as_str().unwrap().to_owned();
        let unstarted = op["error"]["message"] == "Cancelled before it started.";
        let ran_it = ran.lock().unwrap().contains(id);
        let label = if unstarted {
            "cancelled, never ran".to_owned()
        } else {
            status.clone()
        };
        *table.entry((*code, label)).or_default() += 1;
        match (*code, status.as_str()) {
            (200 | 202, "cancelled") | (409, "succeeded" | "partial_success" | "failed") => {}
            _ => violations.push(format!("{id}: answered {code}, ended {status}")),
        }
        if unstarted && ran_it {
            violations.push(format!("{id}: \"cancelled before it started\" but it ran"));
        }
    }
    eprintln!("cancel races ({RACES}): (answer, outcome) → count");
    for ((code, label), count) in &table {
        eprintln!("  {code} {label:<22} {count}");
    }
    assert!(violations.is_empty(), "{violations:#?}\n{table:?}");
    // The loop exercised each branch of the table, or it proved little.
    for code in [200, 202, 409] {
        assert!(
            table.keys().any(|(c, _)| *c == code),
            "no cancel answered {code}: {table:?}"
        );
    }
}
