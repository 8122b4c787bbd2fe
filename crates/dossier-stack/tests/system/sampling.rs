//! Sampling decided once at the edge: a request whose trace is not recorded
//! builds no span in any service, yet keeps its ids (the request id is the
//! trace id), passes its context on with the sampled flag off across every
//! gRPC and NATS hop, and its log lines carry them; a caller's sampled
//! `traceparent` is still recorded everywhere (parent-based).

use dossier_contracts::Kind;
use dossier_stack::telemetry::{
    OtlpReceiver, Telemetry, TelemetryOptions, spawn_app_with_telemetry,
};
use dossier_stack::{KEY_A, search_body};
use dossier_telemetry::Sampling;
use serde_json::Value;

use crate::traces::{
    CALLERS_TRACE, assert_callers_trace, post_in_callers_trace, start_workers, stop_all,
};

/// The lines from `target` whose `message` is `message` and whose
/// `operation_id` is `id`.
fn lines_of<'a>(logs: &'a [Value], target: &str, message: &str, id: &str) -> Vec<&'a Value> {
    logs.iter()
        .filter(|l| {
            l["message"] == message
                && l["operation_id"] == id
                && l["target"].as_str().is_some_and(|t| t.starts_with(target))
        })
        .collect()
}

#[tokio::test]
async fn at_ratio_zero_no_span_is_built_and_the_context_still_travels() {
    let receiver = OtlpReceiver::start().await;
    let telemetry = Telemetry::with_sampling(
        TelemetryOptions {
            otlp_endpoint: Some(receiver.endpoint().to_owned()),
            ..TelemetryOptions::default()
        },
        Sampling::ratio(0.0),
    );
    let app = spawn_app_with_telemetry(&telemetry).await;

    // Accepted with no worker running, so the job is still on the stream.
    let search = app.post_search(&search_body()).await;
    assert_eq!(search.status, 202, "{}", search.body);
    let request_id = search.request_id();
    let trace_id = request_id.simple().to_string();
    let (job, headers) = app.last_job(Kind::SearchPeople).await;
    assert_eq!(job.operation_id, search.id());
    let traceparent = headers.get("traceparent").unwrap().as_str().to_owned();
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[1], trace_id, "{traceparent}");
    assert_eq!(parts[3], "00", "not sampled: {traceparent}");
    assert_eq!(
        headers.get("Dossier-Request-Id").unwrap().as_str(),
        request_id.to_string()
    );

    let workers = start_workers(&app, &telemetry).await;
    app.wait_for_terminal_unchecked(&search.id(), KEY_A).await;
    let poll = app.get_operation(&search.id(), KEY_A).await;
    assert_eq!(poll.status, 200);
    let poll_id = poll.request_id();
    for service in ["gateway", "operations", "search-worker"] {
        let mut built = telemetry.spans_built(service);
        // Made once when a worker starts, not per request.
        built.remove("worker.start");
        assert!(
            built.is_empty(),
            "{service} built spans for unsampled work: {built:?}"
        );
    }

    // A caller's sampled trace is recorded even at ratio 0.
    let continued = post_in_callers_trace(&app).await;
    app.wait_for_terminal_unchecked(&continued.id(), KEY_A)
        .await;

    stop_all(app, workers).await;
    telemetry.flush().await;
    let spans = receiver.spans();
    let strays: Vec<_> = spans
        .iter()
        .filter(|s| s.trace_id != CALLERS_TRACE)
        .map(|s| format!("{} {} {}", s.service, s.name, s.trace_id))
        .collect();
    assert!(
        strays.is_empty(),
        "exported outside the caller's trace: {strays:?}"
    );
    assert_callers_trace(&spans, &continued);

    // The log lines of the unsampled request carry its ids in every service.
    let logs = telemetry.logs().json_lines();
    let id = search.id();
    for (target, message, span) in [
        ("gateway", "Operation accepted.", "http.server"),
        ("operations", "Operation accepted.", "grpc"),
        ("dossier_worker", "Job started.", "nats"),
        ("dossier_worker", "Job finished.", "nats"),
    ] {
        let found = lines_of(&logs, target, message, &id);
        assert_eq!(found.len(), 1, "{message}: {found:?}");
        let line = found[0];
        assert_eq!(line["request_id"], request_id.to_string(), "{line}");
        assert_eq!(line["trace_id"], trace_id, "{line}");
        assert_eq!(line["span"], span, "{line}");
    }
    let finished: Vec<_> = logs
        .iter()
        .filter(|l| l["message"] == "Request finished." && l["request_id"] == poll_id.to_string())
        .collect();
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(finished[0]["trace_id"], poll_id.simple().to_string());
    assert_eq!(finished[0]["operation_id"], id);
}
