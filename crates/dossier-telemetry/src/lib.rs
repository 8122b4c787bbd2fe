//! Telemetry shared by every service: `tracing` logs (JSON or pretty),
//! OpenTelemetry traces (exported over OTLP only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set), and W3C trace-context propagation
//! through HTTP headers, NATS message headers and gRPC metadata (one tower
//! layer on each side of a call, [`grpc`]).
//!
//! The product promise is that a response's `X-Request-Id` finds the request
//! in traces: with no incoming `traceparent`, the gateway starts the request's
//! trace with the request id as its trace id ([`root_span_with_trace_id`]).
//!
//! Which traces are recorded is decided once, where work enters a service
//! ([`sampling`]): parent-based, new traces by a ratio. Work whose trace is
//! not recorded builds no span at all, and still passes its context on.
#![forbid(unsafe_code)]

pub mod format;
pub mod grpc;
mod ids;
pub mod propagation;
pub mod sampling;
pub mod spans;

use std::io::IsTerminal;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use ids::root_span_with_trace_id;
pub use sampling::{Sampling, Traced, record_operation_id};

/// `DOSSIER_LOG_FORMAT`: `json`, `pretty`, or `auto` (pretty on a terminal).
pub const ENV_LOG_FORMAT: &str = "DOSSIER_LOG_FORMAT";
/// `RUST_LOG`: the log filter, e.g. `info,gateway=debug`.
pub const ENV_LOG_FILTER: &str = "RUST_LOG";
/// `OTEL_EXPORTER_OTLP_ENDPOINT`: where traces go; nothing is exported when unset.
pub const ENV_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// `DOSSIER_TRACE_SAMPLE_RATIO`: the share of new traces recorded
/// ([`sampling`]).
pub use sampling::ENV_SAMPLE_RATIO;
/// The variables telemetry reads itself rather than through clap
/// ([`LogConfig`]): what a service's `--print-env` adds to its clap ones.
pub const ENV_READ_DIRECTLY: &[&str] = &[ENV_LOG_FILTER, ENV_OTLP_ENDPOINT];

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Pretty text on a terminal, JSON otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Pretty,
}

/// Logging settings, from flags or environment variables.
#[derive(Debug, Clone, clap::Args)]
pub struct LogConfig {
    /// Log line format.
    #[arg(long, env = ENV_LOG_FORMAT, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// The share of new traces recorded and exported, 0 to 1. Parent-based:
    /// a caller's `traceparent` decides for its trace. Unset: 0.01 when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else no trace is recorded.
    #[arg(long, env = ENV_SAMPLE_RATIO, value_parser = parse_ratio)]
    pub trace_sample_ratio: Option<f64>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            log_format: LogFormat::Auto,
            trace_sample_ratio: None,
        }
    }
}

/// A ratio from 0 to 1.
fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!("`{text}` is not a ratio from 0 to 1")),
    }
}

/// Setting up telemetry failed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from the `OTEL_*` variables.
    #[error("cannot build the OTLP trace exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A global subscriber was already installed.
    #[error("cannot install the tracing subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
}

/// Flushes and shuts down trace export when dropped.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("trace export shutdown failed: {error}");
        }
    }
}

/// Everything that decides one service's telemetry. [`init`] reads it from
/// the environment; tests that run several services in one process build
/// one per service ([`service_subscriber`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `service.name` of the traces, e.g. `gateway`.
    pub service: &'static str,
    /// JSON lines or text.
    pub json: bool,
    /// The log filter (`RUST_LOG` syntax). Traces have their own filter: a
    /// quiet log level does not thin out traces.
    pub log_filter: String,
    /// The OTLP/gRPC endpoint; nothing is exported when `None`.
    pub otlp_endpoint: Option<String>,
    /// Which traces are recorded.
    pub sampling: Sampling,
}

impl Settings {
    /// The settings of a service binary: `DOSSIER_LOG_FORMAT` and
    /// `DOSSIER_TRACE_SAMPLE_RATIO` (through `config`), `RUST_LOG` (default
    /// `info`), `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn from_env(service: &'static str, config: &LogConfig) -> Settings {
        let json = match config.log_format {
            LogFormat::Json => true,
            LogFormat::Pretty => false,
            LogFormat::Auto => !std::io::stdout().is_terminal(),
        };
        let otlp_endpoint = std::env::var(ENV_OTLP_ENDPOINT)
            .ok()
            .filter(|e| !e.is_empty());
        Settings {
            service,
            json,
            log_filter: std::env::var(ENV_LOG_FILTER).unwrap_or_else(|_| "info".to_owned()),
            sampling: Sampling::for_service(config.trace_sample_ratio, otlp_endpoint.is_some()),
            otlp_endpoint,
        }
    }
}

/// Builds the tracer provider of a service: resource attributes
/// (`service.name`, `service.version`, `service.instance.id`), ids that honour
/// [`root_span_with_trace_id`], and an OTLP exporter when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
pub fn tracer_provider(service: &'static str) -> Result<SdkTracerProvider, TelemetryError> {
    let endpoint = std::env::var(ENV_OTLP_ENDPOINT)
        .ok()
        .filter(|e| !e.is_empty());
    tracer_provider_to(service, endpoint.as_deref())
}

/// [`tracer_provider`] exporting to `endpoint` (OTLP/gRPC), or nowhere,
/// recording every trace ([`Sampling::ALWAYS`]). The exporter's channel
/// connects lazily on the Tokio runtime it is built on, so build it inside
/// one that outlives the provider.
pub fn tracer_provider_to(
    service: &'static str,
    endpoint: Option<&str>,
) -> Result<SdkTracerProvider, TelemetryError> {
    sampled_tracer_provider(service, endpoint, Sampling::ALWAYS)
}

/// [`tracer_provider_to`] whose sampler agrees with `sampling` (give the
/// subscriber the same, [`Settings::sampling`]).
pub fn sampled_tracer_provider(
    service: &'static str,
    endpoint: Option<&str>,
    sampling: Sampling,
) -> Result<SdkTracerProvider, TelemetryError> {
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
        ])
        .build();
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_id_generator(ids::RequestIdGenerator)
        .with_sampler(sampling::Sampler(sampling));
    if let Some(endpoint) = endpoint {
        use opentelemetry_otlp::WithExportConfig as _;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// What traces keep: our spans and events at INFO and above, nothing from the
/// transport crates. Without the exclusions a debug log level would trace
/// the exporter's own HTTP/2 traffic, which would be exported in turn.
fn trace_filter() -> Targets {
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("h2", LevelFilter::OFF)
        .with_target("hyper", LevelFilter::OFF)
        .with_target("hyper_util", LevelFilter::OFF)
        .with_target("tonic", LevelFilter::OFF)
        .with_target("tower", LevelFilter::OFF)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
        .with_target("opentelemetry_otlp", LevelFilter::OFF)
}

/// The subscriber of one service: span context fields for the log lines,
/// the OpenTelemetry layer on `provider` (its own filter), and log lines in
/// [`format::LineFormat`] to `writer` (the log filter).
pub fn service_subscriber<W>(
    settings: &Settings,
    provider: &SdkTracerProvider,
    writer: W,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(settings.service))
        .with_filter(trace_filter());
    let filter = EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|error| {
        eprintln!(
            "invalid log filter `{}` ({error}); using `info`",
            settings.log_filter
        );
        EnvFilter::new("info")
    });
    let context = format::ContextFields::new(settings.sampling);
    let logs = tracing_subscriber::fmt::layer()
        .event_format(context.format(settings.json))
        .with_writer(writer)
        .with_filter(filter);
    // Every layer has a filter: one unfiltered layer would make every
    // callsite of every crate live (h2's and tonic's per-frame `trace!`
    // spans and events included) and the registry would build them all. The
    // context fields come from our own spans, which the trace filter keeps.
    tracing_subscriber::registry()
        .with(context.with_filter(trace_filter()))
        .with(otel)
        .with(logs)
}

/// Installs logging and tracing for a service binary. Call once from `main`.
pub fn init(service: &'static str, config: &LogConfig) -> Result<TelemetryGuard, TelemetryError> {
    init_propagator();
    let settings = Settings::from_env(service, config);
    let provider = sampled_tracer_provider(
        service,
        settings.otlp_endpoint.as_deref(),
        settings.sampling,
    )?;
    service_subscriber(&settings, &provider, std::io::stdout).try_init()?;
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(TelemetryGuard { provider })
}

/// Installs the W3C propagator only (tests that boot services in-process
/// without [`init`] still propagate context).
pub fn init_propagator() {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
}
