//! W3C trace context in and out of HTTP headers, NATS headers, and the
//! `TraceContext` message inside jobs and events.

use std::collections::HashMap;

use dossier_contracts::v1::TraceContext;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// `traceparent`
pub const TRACEPARENT: &str = "traceparent";
/// `tracestate`
pub const TRACESTATE: &str = "tracestate";
/// NATS header carrying the request id next to the trace context.
pub const REQUEST_ID_HEADER: &str = "Dossier-Request-Id";

struct NatsHeaders<'a>(&'a mut async_nats::HeaderMap);

impl Injector for NatsHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

struct NatsHeadersRef<'a>(&'a async_nats::HeaderMap);

impl Extractor for NatsHeadersRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_ref()).collect()
    }
}

struct HttpHeaders<'a>(&'a http::HeaderMap);

impl Extractor for HttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

fn with_propagator<T>(
    f: impl FnOnce(&dyn opentelemetry::propagation::TextMapPropagator) -> T,
) -> T {
    // The global accessor takes `FnMut`; it calls the closure exactly once.
    let mut f = Some(f);
    opentelemetry::global::get_text_map_propagator(|p| f.take().map(|f| f(p)))
        .unwrap_or_else(|| unreachable!("the propagator closure runs once"))
}

/// The remote context in HTTP request headers (empty when there is none or
/// it is invalid).
pub fn extract_http(headers: &http::HeaderMap) -> Context {
    with_propagator(|p| p.extract(&HttpHeaders(headers)))
}

/// Whether `cx` carries a valid remote span (a usable incoming `traceparent`).
pub fn has_remote_span(cx: &Context) -> bool {
    cx.span().span_context().is_valid()
}

/// Writes the current span's context into NATS headers.
pub fn inject_nats(span: &tracing::Span, headers: &mut async_nats::HeaderMap) {
    let cx = span.context();
    with_propagator(|p| p.inject_context(&cx, &mut NatsHeaders(headers)));
}

/// The remote context in NATS message headers.
pub fn extract_nats(headers: &async_nats::HeaderMap) -> Context {
    with_propagator(|p| p.extract(&NatsHeadersRef(headers)))
}

/// The span's context as a `TraceContext` message, with the request id.
pub fn trace_context(span: &tracing::Span, request_id: &str) -> TraceContext {
    let cx = span.context();
    let mut map = HashMap::new();
    with_propagator(|p| p.inject_context(&cx, &mut map));
    TraceContext {
        traceparent: map.remove(TRACEPARENT).unwrap_or_default(),
        tracestate: map.remove(TRACESTATE).unwrap_or_default(),
        request_id: request_id.to_owned(),
    }
}

/// The remote context a `TraceContext` message carries.
pub fn context_of(trace: &TraceContext) -> Context {
    let mut map = HashMap::new();
    if !trace.traceparent.is_empty() {
        map.insert(TRACEPARENT.to_owned(), trace.traceparent.clone());
    }
    if !trace.tracestate.is_empty() {
        map.insert(TRACESTATE.to_owned(), trace.tracestate.clone());
    }
    with_propagator(|p| p.extract(&map))
}

/// Makes `span` a child of the remote context in `trace` (no-op when the
/// message carries none).
pub fn set_parent(span: &tracing::Span, trace: &TraceContext) {
    let cx = context_of(trace);
    if has_remote_span(&cx) {
        let _ = span.set_parent(cx);
    }
}

/// The trace id of a span as 32 hex digits, when it has one.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}
