//! The one Prometheus recorder of the process.
//!
//! `metrics` has a single global recorder per process, so it is installed
//! here, once, by whichever service starts first; every service (and every
//! service of a test that boots several in one process) records into it and
//! renders it at `/metrics`. Each crate documents its own metrics with
//! `metrics::describe_*` after calling [`install`].

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets, in seconds, of every duration histogram (every metric
/// whose name ends in `_seconds`): from 5 ms HTTP calls to 15 min jobs.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

/// The content type of the Prometheus text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder, once per process; later calls are free.
/// False when another recorder was installed first (then `/metrics` is
/// empty, which is no reason to fail start-up).
pub fn install() -> bool {
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), DURATION_BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => Some(handle),
                Err(error) => {
                    tracing::warn!(message = "Cannot install the metrics recorder; /metrics will be empty.", %error);
                    None
                }
            }
        })
        .is_some()
}

/// Every metric recorded so far, in the Prometheus text format (installs the
/// recorder if nothing did yet).
pub fn render() -> String {
    install();
    match HANDLE.get().and_then(Option::as_ref) {
        Some(handle) => {
            // Scrapes drive the upkeep (histogram maintenance), so no
            // background task is needed.
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}
