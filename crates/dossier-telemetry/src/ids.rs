//! Trace ids that can be chosen by the caller for one root span, so a request
//! id can be a trace id.

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

thread_local! {
    // Set only for the duration of `root_span_with_trace_id`, on the thread
    // that creates the span; the SDK asks the id generator for a root span's
    // trace id synchronously on that thread when the span starts.
    static NEXT_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// Random ids, except for a root span started by [`root_span_with_trace_id`].
#[derive(Debug, Default)]
pub(crate) struct RequestIdGenerator;

impl IdGenerator for RequestIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE_ID
            .with(Cell::take)
            .unwrap_or_else(|| RandomIdGenerator::default().new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        RandomIdGenerator::default().new_span_id()
    }
}

/// Creates a root span with `make` and starts it with `trace_id` as its trace
/// id. With no OpenTelemetry layer installed the span is returned as made.
pub fn root_span_with_trace_id(
    trace_id: TraceId,
    make: impl FnOnce() -> tracing::Span,
) -> tracing::Span {
    NEXT_TRACE_ID.with(|next| next.set(Some(trace_id)));
    let span = make();
    // tracing-opentelemetry starts the OTel span lazily; asking for its
    // context starts it now, while the chosen trace id is in place.
    let _ = span.context();
    NEXT_TRACE_ID.with(|next| next.set(None));
    span
}

#[cfg(test)]
pub(crate) mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;
    use crate::propagation;

    /// Runs `f` with a subscriber whose spans have OpenTelemetry contexts
    /// made by the services' id generator, and the W3C propagator.
    pub(crate) fn with_tracer<T>(f: impl FnOnce() -> T) -> T {
        crate::init_propagator();
        let provider = crate::tracer_provider_to("test", None).unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f)
    }

    #[test]
    fn root_span_takes_the_chosen_trace_id_and_children_inherit_it() {
        with_tracer(|| {
            let id = uuid::Uuid::now_v7();
            let trace_id = TraceId::from_bytes(*id.as_bytes());
            let root = root_span_with_trace_id(trace_id, || tracing::info_span!("request"));
            assert_eq!(propagation::trace_id(&root), Some(id.simple().to_string()));

            let child = root.in_scope(|| tracing::info_span!("child"));
            assert_eq!(propagation::trace_id(&child), Some(id.simple().to_string()));

            // Through NATS headers, as a job carries it to a worker.
            let mut headers = async_nats::HeaderMap::new();
            propagation::inject_nats(&child, "req-1", &mut headers);
            let traceparent = headers.get("traceparent").unwrap().as_str();
            assert!(
                traceparent.contains(&id.simple().to_string()),
                "{}",
                traceparent
            );
            let remote = tracing::info_span!("worker");
            propagation::nats_parent(&remote, Some(&headers));
            assert_eq!(
                propagation::trace_id(&remote),
                Some(id.simple().to_string())
            );

            // The override is used once: the next root span is random.
            let other = tracing::info_span!("other");
            assert_ne!(propagation::trace_id(&other), Some(id.simple().to_string()));
        });
    }
}
