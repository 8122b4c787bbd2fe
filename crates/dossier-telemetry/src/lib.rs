//! Telemetry shared by every service: `tracing` logs (JSON or pretty),
//! OpenTelemetry traces (exported over OTLP only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set), and W3C trace-context propagation
//! through HTTP headers, NATS message headers and the `TraceContext` carried
//! inside jobs and events.
//!
//! The product promise is that a response's `X-Request-Id` finds the request
//! in traces: with no incoming `traceparent`, the gateway starts the request's
//! trace with the request id as its trace id ([`root_span_with_trace_id`]).
#![forbid(unsafe_code)]

mod ids;
pub mod propagation;

use std::io::IsTerminal;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use ids::root_span_with_trace_id;

/// `DOSSIER_LOG_FORMAT`: `json`, `pretty`, or `auto` (pretty on a terminal).
pub const ENV_LOG_FORMAT: &str = "DOSSIER_LOG_FORMAT";
/// `RUST_LOG`: the log filter, e.g. `info,gateway=debug`.
pub const ENV_LOG_FILTER: &str = "RUST_LOG";
/// `OTEL_EXPORTER_OTLP_ENDPOINT`: where traces go; nothing is exported when unset.
pub const ENV_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

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

/// Builds the tracer provider of a service: resource attributes
/// (`service.name`, `service.version`, `service.instance.id`), ids that honour
/// [`root_span_with_trace_id`], and an OTLP exporter when configured.
pub fn tracer_provider(service: &'static str) -> Result<SdkTracerProvider, TelemetryError> {
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", uuid::Uuid::new_v4().to_string()),
        ])
        .build();
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_id_generator(ids::RequestIdGenerator);
    if std::env::var_os(ENV_OTLP_ENDPOINT).is_some() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// Installs logging and tracing for a service binary. Call once from `main`.
pub fn init(service: &'static str, config: &LogConfig) -> Result<TelemetryGuard, TelemetryError> {
    init_propagator();
    let provider = tracer_provider(service)?;
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(service));
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init()?;
    } else {
        registry.with(tracing_subscriber::fmt::layer()).try_init()?;
    }
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
