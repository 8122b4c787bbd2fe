//! Tracing of gRPC calls as one tower layer on each side, so no call site
//! or handler makes its own span or copies the trace context:
//!
//! - [`ClientTraceLayer`] wraps the caller's channel. Each call gets a client
//!   span (`<service>/<method>`, a child of the caller's current span), and
//!   its metadata gets the span's `traceparent`/`tracestate` and the
//!   caller's request id (`x-request-id`).
//! - [`ServerTraceLayer`] wraps the server (`Server::builder().layer(..)`).
//!   Each call to the traced service gets a server span, a child of the
//!   caller's span from the metadata, with the caller's request id as
//!   `request.id`; the handler runs inside it, so it records its own
//!   attributes (`dossier.operation.id`, `tenant.id`) on
//!   `tracing::Span::current()`.
//!
//! Inside work whose trace is not recorded ([`crate::sampling`]) neither
//! builds a span: the client still sends the context (its `-00` flag) and
//! the request id, and the server runs the call in an untraced scope when
//! the caller's context says so.
//!
//! Both record the call's status code from the response head: the
//! `grpc-status` header of a trailers-only response (how a tonic server
//! answers an error before any message), else OK. A streaming call is
//! judged by its start; the status in its trailers is not waited for.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::Code;
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::propagation::{self, REQUEST_ID_METADATA};
use crate::sampling::{self, Traced};
use crate::spans::{self, RpcSide};

/// The error type of a traced client: what tonic's generated clients accept.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// `grpc-status`.
const GRPC_STATUS: &str = "grpc-status";

/// The service and method of a gRPC request path,
/// `/dossier.v1.Operations/GetOperation`.
fn service_and_method(path: &str) -> Option<(&str, &str)> {
    path.strip_prefix('/')?.split_once('/')
}

/// The status code a response head carries; see the module documentation.
fn initial_status(headers: &http::HeaderMap) -> Code {
    headers
        .get(GRPC_STATUS)
        .map_or(Code::Ok, |value| Code::from_bytes(value.as_bytes()))
}

/// Traces every call made through the channel it wraps; see the module
/// documentation.
#[derive(Debug, Clone, Copy)]
pub struct ClientTraceLayer {
    request_id: fn() -> Option<String>,
}

impl ClientTraceLayer {
    /// A layer whose calls carry the request id `request_id` returns when
    /// each call starts (the request the caller is serving; `None` sends
    /// none).
    pub fn new(request_id: fn() -> Option<String>) -> ClientTraceLayer {
        ClientTraceLayer { request_id }
    }
}

impl<S> Layer<S> for ClientTraceLayer {
    type Service = ClientTrace<S>;

    fn layer(&self, inner: S) -> ClientTrace<S> {
        ClientTrace {
            inner,
            request_id: self.request_id,
        }
    }
}

/// A channel whose calls are traced ([`ClientTraceLayer`]).
#[derive(Debug, Clone)]
pub struct ClientTrace<S> {
    inner: S,
    request_id: fn() -> Option<String>,
}

impl<S, B, ResBody> Service<http::Request<B>> for ClientTrace<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    ResBody: 'static,
{
    type Response = http::Response<ResBody>;
    type Error = BoxError;
    type Future = BoxFuture<Result<http::Response<ResBody>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let untraced = sampling::current_untraced();
        let span = match service_and_method(request.uri().path()) {
            Some((service, method)) if untraced.is_none() => {
                spans::grpc(RpcSide::Client, service, method)
            }
            Some(_) => tracing::Span::none(),
            None => {
                let call = self.inner.call(request);
                return Box::pin(async move { call.await.map_err(Into::into) });
            }
        };
        // Untraced, the disabled span makes this send the scope's context.
        propagation::inject_http(&span, request.headers_mut());
        if let Some(id) = (self.request_id)() {
            spans::record_request_id(&span, &id);
            if let Ok(value) = http::HeaderValue::try_from(id) {
                request.headers_mut().insert(REQUEST_ID_METADATA, value);
            }
        }
        if untraced.is_some() {
            let call = self.inner.call(request);
            return Box::pin(async move { call.await.map_err(Into::into) });
        }
        let call = span.in_scope(|| self.inner.call(request));
        Box::pin(async move {
            match call.instrument(span.clone()).await {
                Ok(response) => {
                    let code = initial_status(response.headers());
                    spans::record_grpc_status(&span, RpcSide::Client, code);
                    Ok(response)
                }
                Err(error) => {
                    // The status tonic's client makes of a transport error,
                    // made here to record its code; the client takes a
                    // `Status` back unchanged.
                    let status = tonic::Status::from_error(error.into());
                    spans::record_grpc_status(&span, RpcSide::Client, status.code());
                    Err(Box::new(status) as BoxError)
                }
            }
        })
    }
}

/// Traces every call to one gRPC service of a server; calls to its other
/// services (health, reflection) pass untraced. See the module
/// documentation.
#[derive(Debug, Clone, Copy)]
pub struct ServerTraceLayer {
    service: &'static str,
}

impl ServerTraceLayer {
    /// A layer that traces the calls to `service`, e.g.
    /// `dossier.v1.Operations`.
    pub fn new(service: &'static str) -> ServerTraceLayer {
        ServerTraceLayer { service }
    }
}

impl<S> Layer<S> for ServerTraceLayer {
    type Service = ServerTrace<S>;

    fn layer(&self, inner: S) -> ServerTrace<S> {
        ServerTrace {
            inner,
            service: self.service,
        }
    }
}

/// A server whose calls to one service are traced ([`ServerTraceLayer`]).
#[derive(Debug, Clone)]
pub struct ServerTrace<S> {
    inner: S,
    service: &'static str,
}

impl<S, B, ResBody> Service<http::Request<B>> for ServerTrace<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    ResBody: 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Some((service, method)) = service_and_method(request.uri().path())
            .filter(|(service, _)| *service == self.service)
        else {
            return Box::pin(self.inner.call(request));
        };
        let request_id = request
            .headers()
            .get(REQUEST_ID_METADATA)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        // The caller's context decides (parent-based).
        let remote = propagation::extract_http(request.headers());
        let traced = Traced::continued(&remote, request_id, "grpc", || {
            let span = spans::grpc(RpcSide::Server, service, method);
            spans::record_request_id(&span, request_id);
            span
        });
        let call = traced.in_scope(|| self.inner.call(request));
        if !traced.is_recorded() {
            return Box::pin(traced.wrap(call));
        }
        let span = traced.span().clone();
        Box::pin(async move {
            let result = call.instrument(span.clone()).await;
            let code = match &result {
                Ok(response) => initial_status(response.headers()),
                Err(_) => Code::Unknown,
            };
            spans::record_grpc_status(&span, RpcSide::Server, code);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_service_and_the_method() {
        assert_eq!(
            service_and_method("/dossier.v1.Operations/GetOperation"),
            Some(("dossier.v1.Operations", "GetOperation"))
        );
        assert_eq!(service_and_method("no-slash"), None);
    }

    #[test]
    fn the_status_is_ok_unless_the_head_says_otherwise() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(initial_status(&headers), Code::Ok);
        headers.insert(GRPC_STATUS, http::HeaderValue::from_static("5"));
        assert_eq!(initial_status(&headers), Code::NotFound);
    }
}
