//! Metrics of the HTTP API, served at `GET /metrics` in the Prometheus text
//! format from the process-wide recorder (`dossier_service::metrics`).

use std::sync::Once;
use std::time::Duration;

/// Requests answered, by method, route (the matched route template, or
/// `unmatched`) and status.
pub const REQUESTS_TOTAL: &str = "dossier_gateway_http_requests_total";
/// Request latency in seconds, by method and route.
pub const REQUEST_DURATION: &str = "dossier_gateway_http_request_duration_seconds";
/// Operations accepted (202), by kind and whether the request was a replay.
pub const OPERATIONS_ACCEPTED: &str = "dossier_gateway_operations_accepted_total";

/// API requests shed by admission control (503 `overloaded`).
pub const REQUESTS_SHED: &str = "dossier_gateway_requests_shed_total";

/// The gateway's handle on the process-wide recorder. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics(());

impl Metrics {
    /// Installs the process-wide recorder (once) and describes the
    /// gateway's metrics.
    pub fn install() -> Metrics {
        static DESCRIBED: Once = Once::new();
        dossier_service::metrics::install();
        DESCRIBED.call_once(|| {
            metrics::describe_counter!(
                REQUESTS_TOTAL,
                "HTTP requests answered by the gateway, by method, route template and status."
            );
            metrics::describe_histogram!(
                REQUEST_DURATION,
                metrics::Unit::Seconds,
                "Latency of HTTP requests answered by the gateway, by method and route template."
            );
            metrics::describe_counter!(
                REQUESTS_SHED,
                "API requests answered 503 overloaded because the gateway had its limit of requests in flight."
            );
            metrics::describe_counter!(
                OPERATIONS_ACCEPTED,
                "Operations accepted (202) by the gateway, by kind and whether the request replayed an idempotency key."
            );
        });
        Metrics(())
    }

    /// Records one request shed by admission control.
    pub fn record_shed(&self) {
        metrics::counter!(REQUESTS_SHED).increment(1);
    }

    /// Records one answered request.
    pub fn record_request(
        &self,
        method: &http::Method,
        route: &str,
        status: http::StatusCode,
        elapsed: Duration,
    ) {
        let method = method.as_str().to_owned();
        metrics::counter!(
            REQUESTS_TOTAL,
            "method" => method.clone(),
            "route" => route.to_owned(),
            "status" => status.as_u16().to_string(),
        )
        .increment(1);
        metrics::histogram!(
            REQUEST_DURATION,
            "method" => method,
            "route" => route.to_owned(),
        )
        .record(elapsed.as_secs_f64());
    }

    /// Records one accepted operation.
    pub fn record_accepted(&self, kind: dossier_contracts::Kind, replay: bool) {
        metrics::counter!(
            OPERATIONS_ACCEPTED,
            "kind" => kind.as_str(),
            "replay" => if replay { "true" } else { "false" },
        )
        .increment(1);
    }

    /// The Prometheus text exposition of every metric of the process.
    pub fn render(&self) -> String {
        dossier_service::metrics::render()
    }
}
