//! Invariant 9, end to end: one trace per request across every service,
//! exported over OTLP to a real receiver. Each service runs with its own
//! tracer provider (its own `service.name`, see `dossier_stack::telemetry`),
//! as separate processes would.

use std::sync::Arc;

use dossier_contracts::Kind;
use dossier_stack::telemetry::{
    OtlpReceiver, ReceivedSpan, ServiceRuntime, Telemetry, TelemetryOptions,
    spawn_app_with_telemetry,
};
use dossier_stack::{Answer, KEY_A, Running, TestApp, batch_body, search_body};
use uuid::Uuid;

/// Starts the search and enrichment workers of `app`, each on its own runtime.
pub(crate) async fn start_workers(app: &TestApp, telemetry: &Arc<Telemetry>) -> Vec<Running> {
    let mut search = <search_worker::Config as clap::Parser>::parse_from(["search-worker"]);
    search.service.broker = app.broker_config();
    let mut enrichment = enrichment_worker::Config::from_env().unwrap();
    enrichment.service.broker = app.broker_config();
    start_workers_with(telemetry, search, enrichment).await
}

/// Starts the two workers with the given configurations.
pub(crate) async fn start_workers_with(
    telemetry: &Arc<Telemetry>,
    search: search_worker::Config,
    enrichment: enrichment_worker::Config,
) -> Vec<Running> {
    let search_rt: ServiceRuntime = telemetry.service("search-worker");
    let enrichment_rt = telemetry.service("enrichment-worker");
    vec![
        search_rt
            .start(search_worker::App::build(search), |app, token| {
                app.run(token)
            })
            .await,
        enrichment_rt
            .start(enrichment_worker::App::build(enrichment), |app, token| {
                app.run(token)
            })
            .await,
    ]
}

/// The trace id of a caller's sampled `traceparent`, whose span is
/// `00f067aa0ba902b7`.
pub(crate) const CALLERS_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Accepts a search whose caller sent a sampled `traceparent` in
/// [`CALLERS_TRACE`].
pub(crate) async fn post_in_callers_trace(app: &TestApp) -> Answer {
    let continued = app
        .post_with(
            "/api/search/people",
            &search_body(),
            KEY_A,
            &[(
                "traceparent",
                &format!("00-{CALLERS_TRACE}-00f067aa0ba902b7-01"),
            )],
        )
        .await;
    assert_eq!(continued.status, 202, "{}", continued.body);
    continued
}

/// Checks the search [`post_in_callers_trace`] accepted: the job's trace in
/// [`CALLERS_TRACE`], its gateway span a child of the caller's span.
pub(crate) fn assert_callers_trace(spans: &[ReceivedSpan], continued: &Answer) {
    let http = assert_job_trace(
        &Trace::new(spans, CALLERS_TRACE),
        Kind::SearchPeople,
        "/api/search/people",
        "search-worker",
        &["search"],
        continued.request_id(),
        &continued.id(),
    );
    assert_eq!(http.parent_span_id, "00f067aa0ba902b7");
}

/// Stops every service gracefully, so that every span has ended.
pub(crate) async fn stop_all(mut app: TestApp, workers: Vec<Running>) {
    for worker in workers {
        worker.stop().await;
    }
    app.stop_gateway().await;
    app.stop_operations().await;
}

/// The spans of one trace, with lookups that explain a failure.
struct Trace<'a> {
    id: String,
    spans: Vec<&'a ReceivedSpan>,
}

impl<'a> Trace<'a> {
    fn new(all: &'a [ReceivedSpan], id: &str) -> Trace<'a> {
        Trace {
            id: id.to_owned(),
            spans: all.iter().filter(|s| s.trace_id == id).collect(),
        }
    }

    fn listing(&self) -> String {
        self.spans
            .iter()
            .map(|s| {
                format!(
                    "{} {} [{}] {} <- {}",
                    s.service, s.name, s.kind, s.span_id, s.parent_span_id
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every span named `name` from `service`.
    fn all(&self, service: &str, name: &str) -> Vec<&'a ReceivedSpan> {
        self.spans
            .iter()
            .copied()
            .filter(|s| s.service == service && s.name == name)
            .collect()
    }

    /// The one span named `name` from `service`, of `kind`, child of `parent`.
    fn one(
        &self,
        service: &str,
        name: &str,
        kind: &str,
        parent: Option<&ReceivedSpan>,
    ) -> &'a ReceivedSpan {
        let found = self.all(service, name);
        assert_eq!(
            found.len(),
            1,
            "one `{name}` span from {service} in trace {}:\n{}",
            self.id,
            self.listing()
        );
        let span = found[0];
        assert_eq!(span.kind, kind, "{span:?}");
        if let Some(parent) = parent {
            assert_eq!(
                span.parent_span_id,
                parent.span_id,
                "`{name}` is a child of `{}`:\n{}",
                parent.name,
                self.listing()
            );
        }
        span
    }
}

fn assert_attr(span: &ReceivedSpan, key: &str, value: &str) {
    assert_eq!(
        span.attr(key).as_deref(),
        Some(value),
        "{} of `{}`: {:?}",
        key,
        span.name,
        span.attributes
    );
}

/// Checks a job's trace: gateway → gRPC → operations → publish → worker job
/// → steps and event publishes → projections. Returns the HTTP server span.
fn assert_job_trace<'a>(
    trace: &Trace<'a>,
    kind: Kind,
    route: &str,
    worker: &str,
    steps: &[&str],
    request_id: Uuid,
    operation_id: &str,
) -> &'a ReceivedSpan {
    let http = trace.one("gateway", &format!("POST {route}"), "server", None);
    assert_attr(http, "http.request.method", "POST");
    assert_attr(http, "http.route", route);
    assert_attr(http, "url.path", route);
    assert_attr(http, "http.response.status_code", "202");
    assert_attr(http, "request.id", &request_id.to_string());
    assert_attr(http, "dossier.operation.id", operation_id);
    assert_attr(http, "dossier.operation.kind", kind.as_str());

    let create = "dossier.v1.Operations/CreateOperation";
    let client = trace.one("gateway", create, "client", Some(http));
    let server = trace.one("operations", create, "server", Some(client));
    for span in [client, server] {
        assert_attr(span, "rpc.system", "grpc");
        assert_attr(span, "rpc.service", "dossier.v1.Operations");
        assert_attr(span, "rpc.method", "CreateOperation");
        assert_attr(span, "rpc.grpc.status_code", "0");
    }
    assert_attr(server, "dossier.operation.id", operation_id);
    assert_attr(server, "request.id", &request_id.to_string());

    let jobs = format!("dossier.jobs.{kind}");
    let publish = trace.one(
        "operations",
        &format!("{jobs} publish"),
        "producer",
        Some(server),
    );
    let job = trace.one(
        worker,
        &format!("{jobs} process"),
        "consumer",
        Some(publish),
    );
    for span in [publish, job] {
        assert_attr(span, "messaging.system", "nats");
        assert_attr(span, "messaging.destination.name", &jobs);
        assert_attr(span, "messaging.message.id", operation_id);
        assert_attr(span, "dossier.operation.id", operation_id);
        assert_attr(span, "request.id", &request_id.to_string());
    }
    assert_attr(publish, "messaging.operation.type", "publish");
    assert_attr(job, "messaging.operation.type", "process");
    assert_attr(job, "dossier.job.attempt", "1");

    let handle = trace.one(worker, &format!("{kind} handle"), "internal", Some(job));
    assert_attr(handle, "dossier.job.attempt", "1");
    // Steps are children of the job span, wherever the handler makes them.
    for step in steps {
        let found = trace.all(worker, &format!("{kind} {step}"));
        assert!(!found.is_empty(), "step `{step}`:\n{}", trace.listing());
        for span in &found {
            assert_eq!(span.parent_span_id, job.span_id, "{span:?}");
            assert_attr(span, "dossier.job.attempt", "1");
            assert_attr(span, "dossier.operation.id", operation_id);
        }
    }

    // Every event the worker published was projected by the operations
    // service, as a child of its publish span.
    let events = format!("dossier.events.{kind}");
    let published = trace.all(worker, &format!("{events} publish"));
    let projected = trace.all("operations", &format!("{events} process"));
    let types: Vec<String> = published
        .iter()
        .map(|s| s.attr("dossier.event.type").unwrap())
        .collect();
    assert!(
        types.first().is_some_and(|t| t == "started")
            && types
                .iter()
                .any(|t| matches!(t.as_str(), "succeeded" | "partial_success" | "failed")),
        "events {types:?}:\n{}",
        trace.listing()
    );
    for event in &published {
        assert_eq!(event.parent_span_id, job.span_id, "{event:?}");
        assert_eq!(event.kind, "producer");
        assert_attr(event, "messaging.destination.name", &events);
        let id = event.attr("messaging.message.id").unwrap();
        let projection = projected
            .iter()
            .find(|p| p.attr("messaging.message.id").as_deref() == Some(id.as_str()))
            .unwrap_or_else(|| panic!("event {id} was projected:\n{}", trace.listing()));
        assert_eq!(projection.parent_span_id, event.span_id, "{projection:?}");
        assert_eq!(projection.kind, "consumer");
        assert_attr(projection, "dossier.operation.id", operation_id);
        assert_attr(projection, "messaging.system", "nats");
        assert_attr(
            projection,
            "dossier.event.type",
            &event.attr("dossier.event.type").unwrap(),
        );
    }

    let services: std::collections::BTreeSet<&str> =
        trace.spans.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(
        services,
        ["gateway", "operations", worker].into_iter().collect(),
        "{}",
        trace.listing()
    );
    http
}

/// Invariant 9: a search and an enrichment batch each make one trace whose id
/// is the request id, with the gateway's server span, the gRPC client and
/// server spans, the publish span, the worker's job span and its steps (with
/// the attempt), and a projection span for every event, from every service,
/// each a child of the span that caused it across NATS and gRPC. A caller's
/// `traceparent` is continued instead.
#[tokio::test]
async fn every_service_exports_one_trace_per_request() {
    let receiver = OtlpReceiver::start().await;
    let telemetry = Telemetry::new(TelemetryOptions {
        otlp_endpoint: Some(receiver.endpoint().to_owned()),
        ..TelemetryOptions::default()
    });
    let app = spawn_app_with_telemetry(&telemetry).await;
    let workers = start_workers(&app, &telemetry).await;

    let search = app.post_search(&search_body()).await;
    assert_eq!(search.status, 202, "{}", search.body);
    let batch = app.post_batch(&batch_body(3)).await;
    assert_eq!(batch.status, 202, "{}", batch.body);
    let continued = post_in_callers_trace(&app).await;
    for accepted in [&search, &batch, &continued] {
        app.wait_for_terminal_unchecked(&accepted.id(), KEY_A).await;
    }
    let poll = app.get_operation(&search.id(), KEY_A).await;
    assert_eq!(poll.status, 200);
    let person = app
        .post_person(&serde_json::json!({ "email": "p0@acme.com" }))
        .await;
    assert_eq!(person.status, 200, "{}", person.body);

    // Every span has ended once the services stopped; then flush them all.
    stop_all(app, workers).await;
    telemetry.flush().await;
    let spans = receiver.spans();

    let id = search.request_id();
    assert_job_trace(
        &Trace::new(&spans, &id.simple().to_string()),
        Kind::SearchPeople,
        "/api/search/people",
        "search-worker",
        &["search"],
        id,
        &search.id(),
    );
    let id = batch.request_id();
    assert_job_trace(
        &Trace::new(&spans, &id.simple().to_string()),
        Kind::EnrichmentBatch,
        "/api/enrichment/batch",
        "enrichment-worker",
        &["match chunk"],
        id,
        &batch.id(),
    );

    // The caller's trace id, and its span as the parent of ours.
    assert_callers_trace(&spans, &continued);

    // A poll is a trace of its own: HTTP → gRPC client → gRPC server.
    let trace = Trace::new(&spans, &poll.request_id().simple().to_string());
    let http = trace.one("gateway", "GET /api/operations/{id}", "server", None);
    assert_attr(http, "http.response.status_code", "200");
    let get = "dossier.v1.Operations/GetOperation";
    let client = trace.one("gateway", get, "client", Some(http));
    let server = trace.one("operations", get, "server", Some(client));
    assert_attr(server, "dossier.operation.id", &search.id());
    assert_attr(server, "rpc.grpc.status_code", "0");
    // The request id travels in the gRPC metadata too.
    assert_attr(server, "request.id", &poll.request_id().to_string());

    // Synchronous enrichment: HTTP → NATS request (producer) → the worker's
    // process span, across the request's headers.
    let request_id = person.request_id();
    let trace = Trace::new(&spans, &request_id.simple().to_string());
    let http = trace.one("gateway", "POST /api/enrichment/person", "server", None);
    let subject = dossier_contracts::subjects::ENRICH_PERSON;
    let publish = trace.one(
        "gateway",
        &format!("{subject} publish"),
        "producer",
        Some(http),
    );
    let process = trace.one(
        "enrichment-worker",
        &format!("{subject} process"),
        "consumer",
        Some(publish),
    );
    for span in [publish, process] {
        assert_attr(span, "messaging.system", "nats");
        assert_attr(span, "messaging.destination.name", subject);
        assert_attr(span, "request.id", &request_id.to_string());
    }
}
