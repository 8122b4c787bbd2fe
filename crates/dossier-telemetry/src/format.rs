//! Log lines with the request's context as top-level fields.
//!
//! tracing-subscriber's JSON formatter nests span fields (`span.request.id`,
//! `spans[…]`), so a log search for `request_id = X` would need to know which
//! span carried it. Here every line emitted inside a request or a job gets
//! `request_id`, `operation_id` and `trace_id` at the top level, taken from
//! the nearest enclosing span that has them:
//!
//! - [`ContextFields`] remembers, per span, the values of its `request.id`
//!   and `dossier.operation.id` fields (set at creation or recorded later);
//! - [`LineFormat`] writes the event's own fields, then those, then the trace
//!   id of the nearest span known to OpenTelemetry, as one JSON object per
//!   line or as `key=value` text.
//!
//! An event's own `operation_id` field wins over the span's (they are the same
//! value wherever both exist).

use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt as _;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::sampling::{self, Sampling};

/// The span field naming the request id (OpenTelemetry's `request.id`).
pub const SPAN_REQUEST_ID: &str = "request.id";
/// The span field naming the operation id.
pub const SPAN_OPERATION_ID: &str = "dossier.operation.id";

/// Top-level log field: the request id.
pub const LOG_REQUEST_ID: &str = "request_id";
/// Top-level log field: the operation id.
pub const LOG_OPERATION_ID: &str = "operation_id";
/// Top-level log field: the trace id (32 hex digits).
pub const LOG_TRACE_ID: &str = "trace_id";

/// The context fields one span carries, kept in its extensions.
#[derive(Debug, Default, Clone)]
struct SpanContextFields {
    request_id: Option<String>,
    operation_id: Option<String>,
}

impl Visit for SpanContextFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if value.is_empty() {
            return;
        }
        match field.name() {
            SPAN_REQUEST_ID => self.request_id = Some(value.to_owned()),
            SPAN_OPERATION_ID => self.operation_id = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here; their Debug is their Display.
        if matches!(field.name(), SPAN_REQUEST_ID | SPAN_OPERATION_ID) {
            self.record_str(field, &format!("{value:?}"));
        }
    }
}

/// Remembers each span's `request.id` and `dossier.operation.id` for
/// [`LineFormat`]. Unfiltered, so it sees every span any other layer keeps.
///
/// It also keeps the dispatcher it is registered with: a formatter runs
/// inside the dispatcher, where `tracing` hands out no current dispatcher
/// (its reentrancy guard), yet the trace id must be asked of it.
///
/// It carries the service's [`Sampling`] too, so that code deciding whether
/// to build spans finds it through the current dispatcher
/// ([`Sampling::current`]).
#[derive(Debug, Clone)]
pub struct ContextFields {
    dispatch: Arc<OnceLock<WeakDispatch>>,
    sampling: Sampling,
}

impl Default for ContextFields {
    fn default() -> Self {
        ContextFields::new(Sampling::ALWAYS)
    }
}

impl ContextFields {
    /// The layer of a service that samples with `sampling`.
    pub fn new(sampling: Sampling) -> ContextFields {
        ContextFields {
            dispatch: Arc::default(),
            sampling,
        }
    }

    /// The service's sampling.
    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// The line formatter that reads these fields.
    pub fn format(&self, json: bool) -> LineFormat {
        LineFormat {
            json,
            dispatch: self.dispatch.clone(),
        }
    }
}

impl<S> Layer<S> for ContextFields
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = SpanContextFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(fields) = extensions.get_mut::<SpanContextFields>() {
                values.record(fields);
            }
        }
    }
}

/// An event's fields in the order they were written.
#[derive(Default)]
struct EventFields(Vec<(&'static str, Value)>);

impl EventFields {
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| *k == name)
    }
}

impl Visit for EventFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.push((field.name(), Value::from(value)));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.push((field.name(), Value::from(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name(), Value::from(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.push((field.name(), Value::from(value)));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name(), Value::from(value)));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.push((field.name(), Value::from(value.to_string())));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .push((field.name(), Value::from(format!("{value:?}"))));
    }
}

/// The event formatter of every service: JSON lines, or `key=value` text.
/// Made by [`ContextFields::format`].
#[derive(Debug, Clone)]
pub struct LineFormat {
    json: bool,
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = EventFields::default();
        event.record(&mut fields);

        let mut context = SpanContextFields::default();
        let mut span_name = None;
        let mut span_ids = Vec::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                span_name.get_or_insert(span.name());
                span_ids.push(span.id());
                if let Some(found) = span.extensions().get::<SpanContextFields>() {
                    if context.request_id.is_none() {
                        context.request_id.clone_from(&found.request_id);
                    }
                    if context.operation_id.is_none() {
                        context.operation_id.clone_from(&found.operation_id);
                    }
                }
            }
        }
        // The nearest span the OpenTelemetry layer knows (a filtered-out span
        // has no trace context). Looked up with no extensions borrowed: the
        // lookup locks them.
        let dispatch = self.dispatch.get().and_then(WeakDispatch::upgrade);
        let mut trace_id = dispatch.and_then(|dispatch| {
            span_ids.iter().find_map(|id| {
                let cx = tracing_opentelemetry::get_otel_context(id, &dispatch)?;
                let sc = cx.span().span_context().clone();
                sc.is_valid().then(|| sc.trace_id().to_string())
            })
        });
        // Work whose trace is not recorded has no spans: its scope holds
        // what they would have carried.
        if let Some(untraced) = sampling::current_untraced() {
            span_name.get_or_insert(untraced.name());
            if context.request_id.is_none() {
                context.request_id = untraced.request_id().map(str::to_owned);
            }
            if context.operation_id.is_none() {
                context.operation_id = untraced.operation_id();
            }
            if trace_id.is_none() {
                trace_id = Some(untraced.span_context().trace_id().to_string());
            }
        }

        let mut line: Vec<(&str, Value)> = Vec::with_capacity(fields.0.len() + 8);
        let timestamp = time::OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        line.push(("timestamp", Value::from(timestamp)));
        line.push(("level", Value::from(meta.level().as_str())));
        line.push(("target", Value::from(meta.target())));
        for (name, value) in &fields.0 {
            line.push((name, value.clone()));
        }
        if let Some(name) = span_name {
            line.push(("span", Value::from(name)));
        }
        for (key, value) in [
            (LOG_REQUEST_ID, context.request_id),
            (LOG_OPERATION_ID, context.operation_id),
            (LOG_TRACE_ID, trace_id),
        ] {
            if let Some(value) = value
                && !fields.has(key)
            {
                line.push((key, Value::from(value)));
            }
        }

        if self.json {
            writer.write_char('{')?;
            for (i, (key, value)) in line.iter().enumerate() {
                if i > 0 {
                    writer.write_char(',')?;
                }
                write!(writer, "{}:{}", Value::from(*key), value)?;
            }
            writer.write_str("}\n")
        } else {
            write_text(&mut writer, &line)
        }
    }
}

/// `timestamp LEVEL target: message key=value …`.
fn write_text(writer: &mut Writer<'_>, line: &[(&str, Value)]) -> fmt::Result {
    let get = |key: &str| line.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
    let text = |value: Option<&Value>| match value {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    write!(
        writer,
        "{} {:>5} {}: {}",
        text(get("timestamp")),
        text(get("level")),
        text(get("target")),
        text(get("message")),
    )?;
    for (key, value) in line {
        if matches!(*key, "timestamp" | "level" | "target" | "message") {
            continue;
        }
        match value {
            Value::String(s) => write!(writer, " {key}={s:?}")?,
            other => write!(writer, " {key}={other}")?,
        }
    }
    writer.write_char('\n')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::{Settings, service_subscriber, tracer_provider_to};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Logs one line inside a request span and a job span below it.
    fn log(json: bool) -> (String, String) {
        crate::init_propagator();
        let settings = Settings {
            service: "test",
            json,
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
            sampling: crate::Sampling::ALWAYS,
        };
        let provider = tracer_provider_to("test", None).unwrap();
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = service_subscriber(&settings, &provider, move || writer.clone());
        let trace_id = tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", request.id = "req-1");
            let job = request.in_scope(|| {
                tracing::info_span!("job", dossier.operation.id = tracing::field::Empty)
            });
            job.record("dossier.operation.id", "op-1");
            job.in_scope(|| tracing::info!(message = "Job started.", attempt = 2));
            crate::propagation::trace_id(&job).unwrap()
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        (text, trace_id)
    }

    #[test]
    fn json_lines_carry_the_context_at_the_top_level() {
        let (text, trace_id) = log(true);
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["message"], "Job started.");
        assert_eq!(line["attempt"], 2);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["span"], "job");
        assert_eq!(line[LOG_REQUEST_ID], "req-1");
        assert_eq!(line[LOG_OPERATION_ID], "op-1");
        assert_eq!(line[LOG_TRACE_ID], trace_id);
    }

    #[test]
    fn text_lines_carry_the_context_too() {
        let (text, trace_id) = log(false);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(" INFO dossier_telemetry::format::tests: Job started. attempt=2"),
            "{text}"
        );
        for part in [
            "request_id=\"req-1\"".to_owned(),
            "operation_id=\"op-1\"".to_owned(),
            format!("trace_id=\"{trace_id}\""),
        ] {
            assert!(text.contains(&part), "{part} in {text}");
        }
    }
}
