//! The happy path: events, trace context, progress, results, concurrency.

use std::sync::Arc;
use std::time::Duration;

use dossier_contracts::v1::{operation_event::Event, result_ref::Location};
use dossier_testkit::wait_until;
use dossier_worker::{ErrorInfo, Outcome};
use serde_json::json;
use tokio::io::AsyncReadExt as _;
use tokio::sync::Semaphore;

use crate::helpers::{Counter, DEADLINE, KIND, Running, TestEnv, handler_fn, names};

#[tokio::test]
async fn a_job_succeeds_with_started_and_succeeded_events() {
    let env = TestEnv::start().await;
    let calls = Counter::default();
    let handler_calls = calls.clone();
    let request_ids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_request_ids = request_ids.clone();
    let worker = env
        .worker(
            env.config(),
            handler_fn(move |ctx, job| {
                handler_calls.incr();
                let seen_request_ids = seen_request_ids.clone();
                async move {
                    assert_eq!(ctx.operation_id(), job.operation_id);
                    assert_eq!(ctx.tenant_id(), "tenant-a");
                    assert_eq!(ctx.kind(), KIND);
                    assert_eq!(ctx.attempt(), 1);
                    assert_eq!(ctx.max_deliver(), 3);
                    assert!(!ctx.is_last_attempt());
                    // Checked below: the request id of the job's headers.
                    seen_request_ids
                        .lock()
                        .unwrap()
                        .push(ctx.request_id().to_owned());
                    assert!(!ctx.is_cancelled());
                    let payload: serde_json::Value = dossier_worker::decode_payload(&job)?;
                    Ok(Outcome::Succeeded(json!({ "echo": payload })))
                }
            }),
        )
        .await;
    assert!(worker.readiness().is_ready());

    let job = env.job(json!({ "q": "engineers" }));
    let created_at = job.job.created_at;
    let trace = job.clone();
    let operation_id = env.publish(job).await;
    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    assert_eq!(*request_ids.lock().unwrap(), [trace.request_id.as_str()]);

    env.wait_terminal(&operation_id).await;
    let recorded = env.recorded(&operation_id).await;
    let events: Vec<_> = recorded.iter().map(|r| r.event.clone()).collect();
    assert_eq!(names(&events), ["started", "succeeded"]);
    assert_eq!(calls.get(), 1);
    for r in &recorded {
        let e = &r.event;
        assert_eq!(e.tenant_id, "tenant-a");
        assert_eq!(e.kind, KIND.to_proto() as i32);
        assert_eq!(e.attempt, 1);
        assert_eq!(e.worker_id, worker.worker_id());
        assert_eq!(e.operation_created_at, created_at);
        assert!(e.occurred_at.is_some());
        let id = uuid::Uuid::parse_str(&e.event_id).unwrap();
        assert_eq!(id.get_version_num(), 7);
        // The event's trace continues the request's trace, in its headers.
        let headers = &r.headers;
        let header = |name: &str| headers.get(name).unwrap().as_str().to_owned();
        assert_eq!(header("Dossier-Request-Id"), trace.request_id);
        assert_eq!(header("traceparent")[3..35], trace.traceparent[3..35]);
        // The event id deduplicates re-publishes; W3C context rides along.
        assert_eq!(
            headers.get("Nats-Msg-Id").unwrap().as_str(),
            e.event_id.as_str()
        );
        assert!(headers.get("traceparent").is_some());
    }
    assert_ne!(events[0].event_id, events[1].event_id);
    let Some(Event::Succeeded(succeeded)) = &events[1].event else {
        panic!("not succeeded: {events:?}");
    };
    let result = succeeded.result.as_ref().unwrap();
    let Some(Location::InlineJson(json)) = &result.location else {
        panic!("not inline: {result:?}");
    };
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(json).unwrap(),
        json!({ "echo": { "q": "engineers" } })
    );
    assert_eq!(result.size_bytes, json.len() as u64);

    env.wait_settled().await;
    assert!(
        !worker
            .try_process_one(Duration::from_millis(100))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn progress_is_throttled_monotonic_and_never_decreases() {
    let env = TestEnv::start().await;
    let worker = env
        .worker(
            env.config(), // progress_interval 100 ms
            handler_fn(|ctx, _job| async move {
                for percent in 1..=100 {
                    ctx.progress(percent).await;
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
                // Lower than what was reported, and past the interval.
                tokio::time::sleep(Duration::from_millis(150)).await;
                ctx.progress(40).await;
                Ok(Outcome::Succeeded(json!({})))
            }),
        )
        .await;
    let operation_id = env.publish_job(json!({})).await;
    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    env.wait_terminal(&operation_id).await;

    let progress: Vec<u32> = env
        .events(&operation_id)
        .await
        .iter()
        .filter_map(|e| match &e.event {
            Some(Event::Progressed(p)) => Some(p.progress),
            _ => None,
        })
        .collect();
    assert_eq!(progress.first(), Some(&1), "{progress:?}");
    assert!(
        progress.len() <= 25,
        "100 reports gave {} events",
        progress.len()
    );
    assert!(
        progress.windows(2).all(|w| w[0] < w[1]),
        "not rising: {progress:?}"
    );
    assert!(*progress.last().unwrap() > 40, "{progress:?}");
}

#[tokio::test]
async fn large_results_go_to_the_object_store_small_ones_inline() {
    let env = TestEnv::start().await;
    let big = json!({ "data": "x".repeat(20_000) });
    let big_result = big.clone();
    let config = dossier_worker::WorkerConfig {
        inline_result_limit: 1024,
        ..env.config()
    };
    let worker = env
        .worker(
            config,
            handler_fn(move |_ctx, job| {
                let big = big_result.clone();
                async move {
                    let request: serde_json::Value = dossier_worker::decode_payload(&job)?;
                    Ok(if request["big"] == true {
                        Outcome::Succeeded(big)
                    } else {
                        Outcome::PartialSuccess {
                            result: json!({ "data": [1, 2] }),
                            error: Some(ErrorInfo::new("provider_partial", "One source failed.")),
                        }
                    })
                }
            }),
        )
        .await;

    let large = env.publish_job(json!({ "big": true })).await;
    let small = env.publish_job(json!({ "big": false })).await;
    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    assert!(worker.try_process_one(DEADLINE).await.unwrap());

    let Some(Event::Succeeded(succeeded)) = env.wait_terminal(&large).await.event else {
        panic!("large job did not succeed");
    };
    let result = succeeded.result.unwrap();
    // Named by the operation and the run (its lease's fencing token), so a
    // stale run of the same job cannot overwrite it.
    let Some(Location::ObjectName(name)) = result.location else {
        panic!("the large result is not in the object store");
    };
    let run = name
        .strip_prefix(&format!("{large}."))
        .expect("named after the operation");
    assert!(run.parse::<u64>().is_ok(), "{name}");
    let stored = serde_json::to_vec(&big).unwrap();
    assert_eq!(result.size_bytes, stored.len() as u64);
    let mut object = env.topology.results.get(&name).await.unwrap();
    let mut bytes = Vec::new();
    object.read_to_end(&mut bytes).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
        big
    );

    let Some(Event::PartiallySucceeded(partial)) = env.wait_terminal(&small).await.event else {
        panic!("small job did not partially succeed");
    };
    assert!(matches!(
        partial.result.unwrap().location,
        Some(Location::InlineJson(_))
    ));
    assert_eq!(partial.error.unwrap().code, "provider_partial");
}

#[tokio::test]
async fn concurrency_is_bounded_and_jobs_are_not_prefetched() {
    let env = TestEnv::start().await;
    // Handlers block until the test lets them finish.
    let gate = Arc::new(Semaphore::new(0));
    let handler = |running: Counter, peak: Counter| {
        let gate = gate.clone();
        handler_fn(move |_ctx, _job| {
            let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
            async move {
                peak.raise_to(running.incr());
                let _permit = gate.acquire().await.unwrap();
                running.decr();
                Ok(Outcome::Succeeded(json!({})))
            }
        })
    };

    let mut operations = Vec::new();
    for _ in 0..6 {
        operations.push(env.publish_job(json!({})).await);
    }
    let (running_a, peak_a) = (Counter::default(), Counter::default());
    let a = Running::spawn(
        env.worker(env.config(), handler(running_a.clone(), peak_a.clone()))
            .await,
    );
    wait_until("two jobs running on A", DEADLINE, || async {
        running_a.get() == 2
    })
    .await;
    // A holds exactly as many jobs as it runs: the other four are still
    // available to other replicas.
    let info = env.consumer_info().await;
    assert_eq!((info.num_ack_pending, info.num_pending), (2, 4));

    let (running_b, peak_b) = (Counter::default(), Counter::default());
    let b = Running::spawn(
        env.worker(env.config(), handler(running_b.clone(), peak_b.clone()))
            .await,
    );
    wait_until("two jobs running on B", DEADLINE, || async {
        running_b.get() == 2
    })
    .await;
    let info = env.consumer_info().await;
    assert_eq!((info.num_ack_pending, info.num_pending), (4, 2));

    gate.add_permits(100);
    for operation_id in &operations {
        assert_eq!(
            crate::helpers::name(&env.wait_terminal(operation_id).await),
            "succeeded"
        );
    }
    assert_eq!((peak_a.get(), peak_b.get()), (2, 2));
    env.wait_settled().await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn undecodable_jobs_are_terminated_and_do_not_block_the_next() {
    let env = TestEnv::start().await;
    let (worker, calls) = env.counting_worker().await;
    env.publish_raw(b"\xff\xff not a job").await;
    let operation_id = env.publish_job(json!({})).await;

    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    assert_eq!(
        crate::helpers::name(&env.wait_terminal(&operation_id).await),
        "succeeded"
    );
    assert_eq!(calls.get(), 1);
    env.wait_settled().await;
    assert!(
        !worker
            .try_process_one(Duration::from_millis(200))
            .await
            .unwrap()
    );
    // Only the good job produced events.
    assert_eq!(env.all_events().await.len(), 2);
}

#[tokio::test]
async fn the_job_span_and_its_events_continue_the_requests_trace() {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    // An OpenTelemetry layer for this test's thread only: the current-thread
    // runtime runs the worker's tasks on this thread too.
    dossier_telemetry::init_propagator();
    let provider = dossier_telemetry::tracer_provider("test").unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _default = tracing::subscriber::set_default(subscriber);
    // tracing caches each callsite's interest; with exactly one registered
    // dispatcher it asks only the default of the thread that first hits the
    // callsite, which may be another test's thread with no subscriber (the
    // `job` span would then be disabled here). A second registered dispatcher
    // makes tracing ask every thread's dispatcher instead.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());

    let env = TestEnv::start().await;
    let handler_trace = Arc::new(std::sync::Mutex::new(None));
    let seen = handler_trace.clone();
    let worker = env
        .worker(
            env.config(),
            handler_fn(move |ctx, _job| {
                *seen.lock().unwrap() = dossier_telemetry::propagation::trace_id(ctx.span());
                async { Ok(Outcome::Succeeded(json!({}))) }
            }),
        )
        .await;
    let job = env.job(json!({}));
    let traceparent = job.traceparent.clone();
    let operation_id = env.publish(job).await;
    assert!(worker.try_process_one(DEADLINE).await.unwrap());
    env.wait_terminal(&operation_id).await;

    let trace_id = &traceparent[3..35];
    let parent_span_id = &traceparent[36..52];
    assert_eq!(handler_trace.lock().unwrap().as_deref(), Some(trace_id));
    for r in env.recorded(&operation_id).await {
        // The context travels in the event's headers only.
        let event_traceparent = r.headers.get("traceparent").unwrap().as_str();
        // Same trace, but the worker's own span (a child of the request's).
        assert_eq!(&event_traceparent[3..35], trace_id);
        assert_ne!(&event_traceparent[36..52], parent_span_id);
    }
}
