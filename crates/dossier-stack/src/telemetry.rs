//! Every service of a test stack with its own telemetry, as if each were its
//! own process: its own tracer provider (resource `service.name`), exporting
//! to a real OTLP receiver ([`OtlpReceiver`]), and its log lines captured
//! ([`LogCapture`]).
//!
//! ## Why a runtime per service
//!
//! `tracing` routes a span or event to the *current thread's* default
//! dispatcher, and a process has one global default. Services booted in one
//! test process would all share it, so every span would carry the one
//! provider's `service.name`. Instead each service runs on a Tokio runtime of
//! its own ([`ServiceRuntime`]) whose threads all install that service's
//! dispatcher as their thread default the moment they start
//! (`on_thread_start`; the guard lives in a thread-local until
//! `on_thread_stop`). Every task a service spawns — its server, its NATS
//! client's connection task, the handlers — runs on its own runtime, so its
//! spans and logs go to its own subscriber, without touching the services'
//! code. Spans keep the dispatcher they were created with, so a span created
//! by one service is never recorded by another's.
//!
//! The OTLP exporters are built on a separate small runtime (no service
//! dispatcher), so the exporters' own HTTP/2 traffic is neither traced nor
//! logged as a service's, and flushing does not depend on a service runtime
//! that is shutting down.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use dossier_service::CancellationToken;
use dossier_testkit::NatsServer;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;
use tokio::runtime::{Handle, Runtime};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{Layer, filter};

use crate::{KEY_A, KEY_G, Running, TestApp};

/// A runtime that is shut down in the background when dropped (dropping a
/// runtime inside an async context would panic).
struct BackgroundRuntime(Option<Runtime>);

impl BackgroundRuntime {
    fn handle(&self) -> &Handle {
        self.0.as_ref().expect("runtime is running").handle()
    }
}

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

fn runtime(name: &str, threads: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}

thread_local! {
    // The service dispatcher of a `ServiceRuntime` thread, installed when the
    // thread starts and removed when it stops.
    static SERVICE_DISPATCH: RefCell<Option<tracing::dispatcher::DefaultGuard>> =
        const { RefCell::new(None) };
}

/// The runtime one service of a test stack runs on; every thread of it
/// traces and logs to that service's subscriber. Cheap to clone; shut down
/// (in the background) when the last clone goes.
#[derive(Clone)]
pub struct ServiceRuntime {
    name: &'static str,
    runtime: Arc<BackgroundRuntime>,
}

impl ServiceRuntime {
    /// The service's name (`service.name`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A handle to spawn on the service's runtime.
    pub fn handle(&self) -> &Handle {
        self.runtime.handle()
    }

    /// Runs `future` on the service's runtime and waits for its output (e.g.
    /// `App::build`, so what it spawns lives on this runtime).
    pub async fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> T {
        self.handle().spawn(future).await.unwrap()
    }

    /// Builds a service with `build` and runs it with `run` on this runtime.
    pub async fn start<A, F>(
        &self,
        build: impl Future<Output = anyhow::Result<A>> + Send + 'static,
        run: impl FnOnce(A, CancellationToken) -> F,
    ) -> Running
    where
        A: Send + 'static,
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let app = self.run(build).await.unwrap();
        self.spawn_running(|token| run(app, token))
    }
}

/// Captured log output, shared by every service of a [`Telemetry`].
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// Every line parsed as JSON (panics on a line that is not).
    pub fn json_lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }
}

/// One write of a log line into a [`LogCapture`].
pub struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> CaptureWriter {
        CaptureWriter(self.0.clone())
    }
}

/// How a test's services trace and log.
#[derive(Debug, Clone)]
pub struct TelemetryOptions {
    /// Where every service exports its spans (OTLP/gRPC), or nowhere.
    pub otlp_endpoint: Option<String>,
    /// The log filter of every service (`RUST_LOG` syntax).
    pub log_filter: String,
    /// JSON lines (else text).
    pub json: bool,
}

impl Default for TelemetryOptions {
    fn default() -> Self {
        TelemetryOptions {
            otlp_endpoint: None,
            log_filter: "info".to_owned(),
            json: true,
        }
    }
}

/// The telemetry of one test's services: a [`ServiceRuntime`] per service,
/// their tracer providers, and their captured logs.
pub struct Telemetry {
    options: TelemetryOptions,
    sampling: dossier_telemetry::Sampling,
    logs: LogCapture,
    providers: Mutex<Vec<SdkTracerProvider>>,
    spans_built: Mutex<BTreeMap<&'static str, SpanCount>>,
    // Declared last: dropped after the providers it serves.
    exporters: BackgroundRuntime,
}

impl Telemetry {
    /// Telemetry for a test's services, recording every trace (as every
    /// trace test expects).
    pub fn new(options: TelemetryOptions) -> Arc<Telemetry> {
        Telemetry::with_sampling(options, dossier_telemetry::Sampling::ALWAYS)
    }

    /// Telemetry for a test's services, each sampling with `sampling`.
    pub fn with_sampling(
        options: TelemetryOptions,
        sampling: dossier_telemetry::Sampling,
    ) -> Arc<Telemetry> {
        dossier_telemetry::init_propagator();
        Arc::new(Telemetry {
            options,
            sampling,
            logs: LogCapture::default(),
            providers: Mutex::new(Vec::new()),
            spans_built: Mutex::new(BTreeMap::new()),
            exporters: BackgroundRuntime(Some(runtime("otlp-export", 1))),
        })
    }

    /// The runtime of a new service named `service`, with its own tracer
    /// provider and subscriber.
    pub fn service(&self, service: &'static str) -> ServiceRuntime {
        let provider = {
            // The exporter's channel lives on the export runtime.
            let _enter = self.exporters.handle().enter();
            dossier_telemetry::sampled_tracer_provider(
                service,
                self.options.otlp_endpoint.as_deref(),
                self.sampling,
            )
            .unwrap()
        };
        let settings = dossier_telemetry::Settings {
            service,
            json: self.options.json,
            log_filter: self.options.log_filter.clone(),
            otlp_endpoint: self.options.otlp_endpoint.clone(),
            sampling: self.sampling,
        };
        let built = SpanCount::default();
        self.spans_built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(service, built.clone());
        let dispatch = tracing::Dispatch::new(
            dossier_telemetry::service_subscriber(&settings, &provider, self.logs.clone())
                .with(built.with_filter(filter::filter_fn(SpanCount::counts))),
        );
        self.providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(provider);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(service)
            .enable_all()
            .on_thread_start(move || {
                let guard = tracing::dispatcher::set_default(&dispatch);
                SERVICE_DISPATCH.with(|slot| *slot.borrow_mut() = Some(guard));
            })
            .on_thread_stop(|| {
                SERVICE_DISPATCH.with(|slot| slot.borrow_mut().take());
            })
            .build()
            .unwrap();
        ServiceRuntime {
            name: service,
            runtime: Arc::new(BackgroundRuntime(Some(runtime))),
        }
    }

    /// How many spans of our own code (at `info` and above) `service` has
    /// built so far, exported or not, by span name: what work whose trace
    /// is not recorded leaves alone.
    pub fn spans_built(&self, service: &str) -> BTreeMap<&'static str, u64> {
        self.spans_built
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(service)
            .map(|count| {
                count
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .unwrap_or_default()
    }

    /// The captured logs of every service.
    pub fn logs(&self) -> &LogCapture {
        &self.logs
    }

    /// Exports every ended span now and waits until the receiver has taken
    /// them (the providers keep working afterwards).
    pub async fn flush(&self) {
        let providers = self
            .providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // `force_flush` blocks until the export is answered.
        tokio::task::spawn_blocking(move || {
            for provider in providers {
                provider.force_flush().unwrap();
            }
        })
        .await
        .unwrap();
    }
}

/// Counts the spans a service builds ([`Telemetry::spans_built`]).
#[derive(Clone, Default)]
struct SpanCount(Arc<Mutex<BTreeMap<&'static str, u64>>>);

impl SpanCount {
    /// The crates whose spans are counted: ours, not the transport's.
    const TARGETS: &[&str] = &[
        "gateway",
        "operations",
        "dossier_",
        "search_worker",
        "enrichment_worker",
        "research_worker",
    ];

    fn counts(metadata: &tracing::Metadata<'_>) -> bool {
        metadata.is_span()
            && *metadata.level() <= tracing::Level::INFO
            && Self::TARGETS
                .iter()
                .any(|t| metadata.target().starts_with(t))
    }
}

impl<S: tracing::Subscriber> Layer<S> for SpanCount {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(attrs.metadata().name())
            .or_default() += 1;
    }
}

/// Starts the stack with every service on its own [`ServiceRuntime`] of
/// `telemetry` (`gateway`, `operations`); add workers on runtimes of their
/// own with [`ServiceRuntime::start`]. `spawn_app()` is unchanged for other
/// tests.
pub async fn spawn_app_with_telemetry(telemetry: &Arc<Telemetry>) -> TestApp {
    spawn_app_with_telemetry_and(telemetry, |_| {}, |_| {}).await
}

/// [`spawn_app_with_telemetry`], letting the test add nats-server arguments
/// (e.g. `--user`, `--pass`) and adjust the gateway's configuration; the
/// operations service connects with the gateway's NATS credentials.
pub async fn spawn_app_with_telemetry_and(
    telemetry: &Arc<Telemetry>,
    nats_args: impl FnOnce(&mut Vec<&'static str>),
    configure: impl FnOnce(&mut gateway::Config),
) -> TestApp {
    let mut args = Vec::new();
    nats_args(&mut args);
    let nats = if args.is_empty() {
        NatsServer::start().await
    } else {
        NatsServer::start_with(&args).await
    };
    let ops_runtime = telemetry.service("operations");
    let topology = nats.topology_config();
    let mut ops_config = crate::operations_config(&nats, &topology);
    let mut gateway_config = gateway::Config::from_env().unwrap();
    configure(&mut gateway_config);
    ops_config.broker.credentials = gateway_config.nats_credentials.clone();
    let app = ops_runtime
        .run(operations::App::build(ops_config))
        .await
        .unwrap();
    let (ops_addr, ops_admin_addr) = (app.grpc_addr(), app.admin_addr());
    let ops = ops_runtime.spawn_running(|token| app.run(token));

    let mut config = gateway_config;
    config.http_addr = "127.0.0.1:0".parse().unwrap();
    config.operations_url = format!("http://{ops_addr}");
    config.service_token_key = Some(dossier_testkit::service_keys().private_key().to_owned());
    config.nats_url = nats.url();
    if config.api_keys.is_none() {
        config.api_keys = Some(
            gateway::ApiKeys::from_plain([("acme", "key_a", KEY_A), ("globex", "key_g", KEY_G)])
                .unwrap(),
        );
    }
    config.public_base_url = None;
    config.rate_limit_per_second = None;
    let gateway_runtime = telemetry.service("gateway");
    let app = gateway_runtime
        .run(gateway::App::build(config))
        .await
        .unwrap();
    crate::assemble(
        (nats, topology),
        (ops, ops_addr, ops_admin_addr),
        app,
        |app| gateway_runtime.spawn_running(|token| app.run(token)),
    )
    .await
}

impl ServiceRuntime {
    /// Spawns `run(token)` (a built service's `App::run`) on this runtime.
    pub fn spawn_running<F>(&self, run: impl FnOnce(CancellationToken) -> F) -> Running
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let token = CancellationToken::new();
        let handle = self.handle().spawn(run(token.clone()));
        Running {
            token,
            handle: Some(handle),
            _runtime: Some(self.clone()),
        }
    }
}

/// One span as the OTLP receiver got it.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The exporting service's resource `service.name`.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, or empty for a root span.
    pub parent_span_id: String,
    /// `server`, `client`, `producer`, `consumer` or `internal`.
    pub kind: &'static str,
    /// Whether the span's status is an error.
    pub error: bool,
    /// The span's attributes.
    pub attributes: BTreeMap<String, Value>,
}

impl ReceivedSpan {
    /// An attribute as text (numbers and booleans as written).
    pub fn attr(&self, key: &str) -> Option<String> {
        self.attributes.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

fn value_of(value: Option<any_value::Value>) -> Value {
    match value {
        Some(any_value::Value::StringValue(s)) => Value::from(s),
        Some(any_value::Value::BoolValue(b)) => Value::from(b),
        Some(any_value::Value::IntValue(i)) => Value::from(i),
        Some(any_value::Value::DoubleValue(d)) => Value::from(d),
        Some(other) => Value::from(format!("{other:?}")),
        None => Value::Null,
    }
}

fn attributes(attributes: Vec<KeyValue>) -> BTreeMap<String, Value> {
    attributes
        .into_iter()
        .map(|kv| (kv.key, value_of(kv.value.and_then(|v| v.value))))
        .collect()
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A real OTLP/gRPC trace receiver on a loopback port, keeping every export
/// request it gets. Runs on a runtime of its own, so a test thread blocked in
/// a flush cannot stall it.
pub struct OtlpReceiver {
    endpoint: String,
    collected: Collector,
    _runtime: BackgroundRuntime,
}

impl OtlpReceiver {
    /// Binds port 0 on 127.0.0.1 and serves.
    pub async fn start() -> OtlpReceiver {
        let runtime = BackgroundRuntime(Some(runtime("otlp-receiver", 1)));
        let collected = Collector::default();
        let service = TraceServiceServer::new(collected.clone());
        let listener = runtime
            .handle()
            .spawn(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .await
            .unwrap()
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.handle().spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        OtlpReceiver {
            endpoint: format!("http://{addr}"),
            collected,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:<port>`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let requests = self
            .collected
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut spans = Vec::new();
        for request in requests {
            for resource_spans in request.resource_spans {
                let resource = attributes(
                    resource_spans
                        .resource
                        .map(|r| r.attributes)
                        .unwrap_or_default(),
                );
                let service = resource
                    .get("service.name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                for scope in resource_spans.scope_spans {
                    for span in scope.spans {
                        use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
                        use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
                        let kind = match SpanKind::try_from(span.kind) {
                            Ok(SpanKind::Server) => "server",
                            Ok(SpanKind::Client) => "client",
                            Ok(SpanKind::Producer) => "producer",
                            Ok(SpanKind::Consumer) => "consumer",
                            _ => "internal",
                        };
                        spans.push(ReceivedSpan {
                            service: service.clone(),
                            name: span.name,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent_span_id: hex(&span.parent_span_id),
                            kind,
                            error: span
                                .status
                                .is_some_and(|s| s.code == StatusCode::Error as i32),
                            attributes: attributes(span.attributes),
                        });
                    }
                }
            }
        }
        spans
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(&mut out, "{b:02x}");
        out
    })
}
