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

struct GrpcMetadata<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for GrpcMetadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct GrpcMetadataRef<'a>(&'a tonic::metadata::MetadataMap);

impl Extractor for GrpcMetadataRef<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// Writes the span's context into gRPC request metadata (`traceparent`,
/// `tracestate`), so the server's span continues the caller's trace.
pub fn inject_grpc(span: &tracing::Span, metadata: &mut tonic::metadata::MetadataMap) {
    let cx = span.context();
    with_propagator(|p| p.inject_context(&cx, &mut GrpcMetadata(metadata)));
}

/// gRPC metadata key carrying the caller's request id between services
/// (the request id is not the trace id when the client sent a `traceparent`).
pub const REQUEST_ID_METADATA: &str = "x-request-id";

/// The remote context in gRPC request metadata.
pub fn extract_grpc(metadata: &tonic::metadata::MetadataMap) -> Context {
    with_propagator(|p| p.extract(&GrpcMetadataRef(metadata)))
}

/// Makes `span` a child of `cx` when it carries a valid remote span; true if
/// it did. Call before the span is first entered.
pub fn set_remote_parent(span: &tracing::Span, cx: Context) -> bool {
    if has_remote_span(&cx) {
        // Only fails when the span has no OpenTelemetry layer (nothing to
        // parent) or was already started, neither of which loses anything.
        let _ = span.set_parent(cx);
        true
    } else {
        false
    }
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

/// Writes a message's trace headers: the request id, and `span`'s context —
/// or, when the span has none (no OpenTelemetry layer installed), the
/// context the message itself carries in `trace`.
pub fn inject_message_headers(
    span: &tracing::Span,
    trace: &TraceContext,
    headers: &mut async_nats::HeaderMap,
) {
    if !trace.request_id.is_empty() {
        headers.insert(REQUEST_ID_HEADER, trace.request_id.as_str());
    }
    inject_nats(span, headers);
    if headers.get(TRACEPARENT).is_none() && !trace.traceparent.is_empty() {
        headers.insert(TRACEPARENT, trace.traceparent.as_str());
        if !trace.tracestate.is_empty() {
            headers.insert(TRACESTATE, trace.tracestate.as_str());
        }
    }
}

/// Makes the consumer span of a message a child of the producer span: from
/// the message's NATS headers, else from the `TraceContext` it carries.
/// Call before the span is first entered.
pub fn set_message_parent(
    span: &tracing::Span,
    headers: Option<&async_nats::HeaderMap>,
    trace: Option<&TraceContext>,
) {
    let from_headers = headers.is_some_and(|h| set_remote_parent(span, extract_nats(h)));
    if !from_headers && let Some(trace) = trace {
        set_parent(span, trace);
    }
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
    set_remote_parent(span, context_of(trace));
}

/// The trace id of a span as 32 hex digits, when it has one.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}
