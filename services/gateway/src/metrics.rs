//! Prometheus metrics of the HTTP API, served at `GET /metrics`.
//!
//! `metrics` has one global recorder per process. The gateway installs a
//! Prometheus recorder the first time an [`App`](crate::App) is built; when
//! something else in the process installed a recorder first (tests that boot
//! several services in one process), `/metrics` answers an empty page rather
//! than failing start-up.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by method, route and status.
pub const REQUESTS_TOTAL: &str = "dossier_gateway_http_requests_total";
/// Request latency in seconds, by method and route.
pub const REQUEST_DURATION: &str = "dossier_gateway_http_request_duration_seconds";
/// Operations accepted (202), by kind and whether the request was a replay.
pub const OPERATIONS_ACCEPTED: &str = "dossier_gateway_operations_accepted_total";

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The gateway's view of the process-wide recorder. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    handle: Option<PrometheusHandle>,
}

impl Metrics {
    /// Installs the Prometheus recorder once per process.
    pub fn install() -> Metrics {
        let handle = HANDLE
            .get_or_init(|| {
                let builder = PrometheusBuilder::new()
                    .set_buckets_for_metric(
                        Matcher::Full(REQUEST_DURATION.to_owned()),
                        LATENCY_BUCKETS,
                    )
                    .map_err(|e| e.to_string());
                match builder.and_then(|b| b.install_recorder().map_err(|e| e.to_string())) {
                    Ok(handle) => Some(handle),
                    Err(error) => {
                        tracing::warn!(message = "Cannot install the metrics recorder; /metrics will be empty.", %error);
                        None
                    }
                }
            })
            .clone();
        Metrics { handle }
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

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        match &self.handle {
            Some(handle) => {
                // Scrapes drive the upkeep (histogram maintenance) so no
                // background task is needed.
                handle.run_upkeep();
                handle.render()
            }
            None => String::new(),
        }
    }
}
