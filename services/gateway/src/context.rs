//! The per-request context: a fresh request id, the request's root span, and
//! the response post-processing every answer goes through.
//!
//! [`request_context`] is the outermost middleware of every route and of the
//! fallbacks. It makes a UUID v7 request id, decides whether the request's
//! trace is recorded (the edge decides once, `dossier_telemetry::sampling`),
//! starts the request's `http.server` span when it is, and runs the rest of
//! the stack inside both:
//!
//! - without a valid incoming `traceparent` the trace is a new one whose id
//!   *is* the request id (same 16 bytes), so support finds a request in
//!   traces by its `X-Request-Id`; it is recorded by the service's ratio;
//! - with one, the request continues the caller's trace (recorded if the
//!   caller's flag says sampled) and records the fresh request id as
//!   `request.id`.
//!
//! A request whose trace is not recorded builds no span: it runs in an
//! untraced scope that passes the trace context on (flag `00`) and gives its
//! log lines their ids.
//!
//! The id lives in a task-local for the duration of the request, so an
//! [`ApiError`] turned into a response anywhere below (an extractor, a
//! handler, a fallback) carries `meta.requestId` without threading it through.
//! On the way out every response gets `X-Request-Id`, and any bare error
//! response made below us without a problem body (the router's 405, the body
//! limit's 413, the timeout, the panic catcher) is replaced by the matching
//! problem document, keeping its headers (`Allow`, `Retry-After`); every 413
//! names the body limit.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use dossier_telemetry::{Traced, propagation};
use http::header::{self, HeaderName, HeaderValue};
use opentelemetry::trace::TraceId;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, PROBLEM_CONTENT_TYPE};

/// `X-Request-Id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: Uuid;
}

/// The current request's id. Outside a request (which only happens in unit
/// tests that render an error directly) a fresh id, so a body never lacks one.
pub fn request_id() -> Uuid {
    REQUEST_ID
        .try_with(|id| *id)
        .unwrap_or_else(|_| Uuid::now_v7())
}

/// The current request's id, inside a request.
pub fn current_request_id() -> Option<Uuid> {
    REQUEST_ID.try_with(|id| *id).ok()
}

/// Starts the root span of a request: a child of the caller's trace when
/// `headers` carry a valid `traceparent`, else a new trace whose id is
/// `request_id`; or, when that trace is not recorded, its untraced scope.
pub fn request_span(
    headers: &http::HeaderMap,
    method: &http::Method,
    route: Option<&str>,
    path: &str,
    request_id: Uuid,
) -> Traced {
    let make = || {
        // OpenTelemetry's HTTP server convention: `{method} {route}`, or only
        // the method when no route matched (an unbounded set of paths would
        // make an unbounded set of span names).
        let name = match route {
            Some(route) => format!("{method} {route}"),
            None => method.to_string(),
        };
        tracing::info_span!(
            parent: None,
            "http.server",
            otel.name = %name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = %method,
            http.route = route,
            url.path = %path,
            http.response.status_code = tracing::field::Empty,
            request.id = %request_id,
            tenant.id = tracing::field::Empty,
            // Recorded by the handlers that know them.
            dossier.operation.id = tracing::field::Empty,
            dossier.operation.kind = tracing::field::Empty,
        )
    };
    Traced::edge(
        &propagation::extract_http(headers),
        TraceId::from_bytes(*request_id.as_bytes()),
        &request_id.to_string(),
        "http.server",
        make,
    )
}

/// When the request arrived (a request extension): what is left of the
/// request timeout is measured from it.
#[derive(Debug, Clone, Copy)]
pub struct RequestStart(pub Instant);

/// The outermost middleware; see the module documentation.
pub async fn request_context(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    req.extensions_mut().insert(RequestStart(started));
    let request_id = Uuid::now_v7();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let method = req.method().clone();
    let span = request_span(
        req.headers(),
        &method,
        route.as_deref(),
        req.uri().path(),
        request_id,
    );

    let response = REQUEST_ID.scope(request_id, span.wrap(next.run(req))).await;
    let mut response =
        span.in_scope(|| normalize_error(response, request_id, state.max_body_bytes()));

    let status = response.status();
    response.headers_mut().insert(
        X_REQUEST_ID.clone(),
        HeaderValue::from_str(&request_id.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("invalid")),
    );
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let elapsed = started.elapsed();
    let route_label = route.unwrap_or_else(|| "unmatched".to_owned());
    state
        .metrics()
        .record_request(&method, &route_label, status, elapsed);
    span.in_scope(|| {
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        // Probes every few seconds would drown the request log.
        if route_label == "/healthz" || route_label == "/readyz" || route_label == "/metrics" {
            tracing::debug!(
                message = "Request finished.",
                status = status.as_u16(),
                latency_ms
            );
        } else {
            tracing::info!(
                message = "Request finished.",
                status = status.as_u16(),
                latency_ms
            );
        }
    });
    response
}

/// Replaces a bare error response (no problem body) with the problem for its
/// status, keeping its headers. Every 413 becomes the problem naming
/// `body_limit`: whichever layer noticed the body was too large (its
/// declared length before reading, or the bytes while reading), the limit
/// is the one thing the caller needs to know.
fn normalize_error(response: Response, request_id: Uuid, body_limit: usize) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let too_large = status == http::StatusCode::PAYLOAD_TOO_LARGE;
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes()));
    if is_problem && !too_large {
        return response;
    }
    let (parts, _body) = response.into_parts();
    let error = if too_large {
        ApiError::PayloadTooLarge { limit: body_limit }
    } else {
        ApiError::for_bare_status(status, &parts.headers)
    };
    let mut problem = error.to_response(request_id);
    *problem.status_mut() = status;
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem
                .headers_mut()
                .entry(name)
                .or_insert_with(|| value.clone());
        }
    }
    problem
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    fn with_otel<T>(f: impl FnOnce() -> T) -> T {
        dossier_telemetry::init_propagator();
        let provider = dossier_telemetry::tracer_provider("test").unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f)
    }

    #[test]
    fn without_traceparent_the_trace_id_is_the_request_id() {
        with_otel(|| {
            let id = Uuid::now_v7();
            let span = request_span(
                &http::HeaderMap::new(),
                &http::Method::POST,
                Some("/api/search/people"),
                "/api/search/people",
                id,
            );
            assert_eq!(propagation::trace_id(&span), Some(id.simple().to_string()));
            // The trace context sent on (here in NATS headers) carries it on.
            let child = span.in_scope(|| tracing::info_span!("handler"));
            let mut headers = async_nats::HeaderMap::new();
            propagation::inject_nats(&child, &id.to_string(), &mut headers);
            let header = |name: &str| headers.get(name).unwrap().as_str().to_owned();
            assert!(header("traceparent").contains(&id.simple().to_string()));
            assert_eq!(header(propagation::REQUEST_ID_HEADER), id.to_string());
        });
    }

    #[test]
    fn with_traceparent_the_trace_continues() {
        with_otel(|| {
            let mut headers = http::HeaderMap::new();
            let incoming = "4bf92f3577b34da6a3ce929d0e0e4736";
            headers.insert(
                "traceparent",
                HeaderValue::from_str(&format!("00-{incoming}-00f067aa0ba902b7-01")).unwrap(),
            );
            let id = Uuid::now_v7();
            let span = request_span(&headers, &http::Method::GET, None, "/x", id);
            assert_eq!(propagation::trace_id(&span).as_deref(), Some(incoming));
            assert_ne!(incoming, id.simple().to_string());
        });
    }

    #[test]
    fn an_invalid_traceparent_is_ignored() {
        with_otel(|| {
            let mut headers = http::HeaderMap::new();
            headers.insert("traceparent", HeaderValue::from_static("00-zz-yy-01"));
            let id = Uuid::now_v7();
            let span = request_span(&headers, &http::Method::GET, None, "/x", id);
            assert_eq!(propagation::trace_id(&span), Some(id.simple().to_string()));
        });
    }
}
