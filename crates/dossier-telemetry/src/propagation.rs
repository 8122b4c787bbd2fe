//! W3C trace context and the request id in and out of HTTP headers (and so
//! gRPC metadata, see [`crate::grpc`]) and NATS message headers.
//!
//! Every hop carries the trace context once, in its headers: no message
//! repeats it in its payload. On NATS the pair is [`inject_nats`] (every
//! publisher) and [`nats_parent`] (every consumer).

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::sampling::{self, Traced};
use crate::spans;

/// NATS header carrying the request id next to the trace context.
pub const REQUEST_ID_HEADER: &str = "Dossier-Request-Id";

/// gRPC metadata key carrying the caller's request id between services
/// (the request id is not the trace id when the client sent a `traceparent`).
pub const REQUEST_ID_METADATA: &str = "x-request-id";

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

struct HttpHeadersMut<'a>(&'a mut http::HeaderMap);

impl Injector for HttpHeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::try_from(value),
        ) {
            self.0.insert(key, value);
        }
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
/// it is invalid). gRPC metadata is HTTP/2 headers, so this reads it too.
pub fn extract_http(headers: &http::HeaderMap) -> Context {
    with_propagator(|p| p.extract(&HttpHeaders(headers)))
}

/// Writes `span`'s context into HTTP request headers (`traceparent`,
/// `tracestate`), so the callee's span continues the caller's trace. Inside
/// untraced work (a disabled span) its context is written instead.
pub fn inject_http(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let cx = context_to_send(span);
    with_propagator(|p| p.inject_context(&cx, &mut HttpHeadersMut(headers)));
}

/// `span`'s context, or that of the untraced work the task does.
fn context_to_send(span: &tracing::Span) -> Context {
    let cx = span.context();
    if has_remote_span(&cx) {
        return cx;
    }
    match sampling::current_untraced() {
        Some(untraced) => Context::new().with_remote_span_context(untraced.span_context().clone()),
        None => cx,
    }
}

/// Whether `cx` carries a valid remote span (a usable incoming `traceparent`).
pub fn has_remote_span(cx: &Context) -> bool {
    cx.span().span_context().is_valid()
}

/// The publisher's half: writes the request id (`Dossier-Request-Id`, unless
/// empty) and `span`'s context (`traceparent`, `tracestate`) into a
/// message's NATS headers, and records the request id on `span`, the
/// message's producer span. Inside untraced work (a disabled span) its
/// context is written instead.
pub fn inject_nats(span: &tracing::Span, request_id: &str, headers: &mut async_nats::HeaderMap) {
    spans::record_request_id(span, request_id);
    inject_nats_context(&context_to_send(span), request_id, headers);
}

/// [`inject_nats`] for `traced` work: its span's context, or its untraced
/// one.
pub fn inject_nats_traced(traced: &Traced, request_id: &str, headers: &mut async_nats::HeaderMap) {
    spans::record_request_id(traced.span(), request_id);
    inject_nats_context(&traced.context(), request_id, headers);
}

fn inject_nats_context(cx: &Context, request_id: &str, headers: &mut async_nats::HeaderMap) {
    if !request_id.is_empty() {
        headers.insert(REQUEST_ID_HEADER, request_id);
    }
    with_propagator(|p| p.inject_context(cx, &mut NatsHeaders(headers)));
}

/// The remote context a message's NATS headers carry (empty when none).
pub fn extract_nats(headers: Option<&async_nats::HeaderMap>) -> Context {
    match headers {
        Some(headers) => with_propagator(|p| p.extract(&NatsHeadersRef(headers))),
        None => Context::new(),
    }
}

/// The consumer's half, deciding: the work of one message from `subject`
/// with message id `message_id` continues the trace its headers carry
/// (parent-based, [`Traced::continued`]). When recorded, it runs in its
/// consumer span ([`spans::nats_process`], a child of the producer span);
/// otherwise in an untraced scope. Returns it and the request id the
/// headers carry (empty when none), recorded on it.
pub fn nats_consume<'h>(
    subject: &str,
    message_id: &str,
    headers: Option<&'h async_nats::HeaderMap>,
) -> (Traced, &'h str) {
    nats_continue(headers, "nats", || spans::nats_process(subject, message_id))
}

/// [`nats_consume`] with the span `make` builds (named `name`).
pub fn nats_continue<'h>(
    headers: Option<&'h async_nats::HeaderMap>,
    name: &'static str,
    make: impl FnOnce() -> tracing::Span,
) -> (Traced, &'h str) {
    let request_id = nats_request_id(headers);
    let traced = Traced::continued(&extract_nats(headers), request_id, name, || {
        let span = make();
        spans::record_request_id(&span, request_id);
        span
    });
    (traced, request_id)
}

/// The consumer's half: makes `span`, a message's consumer span, a child of
/// the producer span whose context the message's NATS headers carry, records
/// the request id they carry on it, and returns that id (empty when there is
/// none). Call before the span is first entered.
pub fn nats_parent<'h>(
    span: &tracing::Span,
    headers: Option<&'h async_nats::HeaderMap>,
) -> &'h str {
    let request_id = nats_request_id(headers);
    spans::record_request_id(span, request_id);
    if headers.is_some() {
        set_remote_parent(span, extract_nats(headers));
    }
    request_id
}

/// The request id a message's NATS headers carry (empty when none), for a
/// consumer that needs it before its span exists; [`nats_parent`] returns it
/// too.
pub fn nats_request_id(headers: Option<&async_nats::HeaderMap>) -> &str {
    headers
        .and_then(|h| h.get(REQUEST_ID_HEADER))
        .map(|v| v.as_str())
        .unwrap_or_default()
}

/// The trace id of a span as 32 hex digits, when it has one.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ids::tests::with_tracer;

    #[test]
    fn nats_headers_carry_the_context_and_the_request_id_once() {
        with_tracer(|| {
            let producer = spans::nats_publish("dossier.jobs.x", "op-1");
            let mut headers = async_nats::HeaderMap::new();
            inject_nats(&producer, "req-1", &mut headers);
            assert_eq!(headers.get(REQUEST_ID_HEADER).unwrap().as_str(), "req-1");
            let traceparent = headers.get("traceparent").unwrap().as_str().to_owned();
            let trace = trace_id(&producer).unwrap();
            assert!(traceparent.contains(&trace), "{traceparent}");

            let consumer = spans::nats_process("dossier.jobs.x", "op-1");
            assert_eq!(nats_parent(&consumer, Some(&headers)), "req-1");
            assert_eq!(trace_id(&consumer), Some(trace));

            // No headers: a root span and no request id.
            let lone = spans::nats_process("dossier.jobs.x", "op-2");
            assert_eq!(nats_parent(&lone, None), "");
        });
    }
}
