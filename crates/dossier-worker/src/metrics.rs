//! The worker runtime's metrics, recorded into the process-wide recorder
//! (`dossier_service::metrics`) and served on the service's admin port.

use std::sync::Once;
use std::time::Duration;

use dossier_contracts::Kind;

/// Jobs whose handler started, by kind (every delivery counts).
pub const JOBS_STARTED: &str = "dossier_jobs_started_total";
/// Jobs that ended with a stored terminal event, by kind and outcome.
pub const JOBS_FINISHED: &str = "dossier_jobs_finished_total";
/// Deliveries handed back to be retried later, by kind.
pub const JOBS_RETRIED: &str = "dossier_jobs_retried_total";
/// Jobs failed because their last delivery failed too, by kind.
pub const JOBS_DEAD: &str = "dossier_jobs_dead_total";
/// Runs stopped because they lost their lease (another run took the job
/// over), by kind.
pub const JOBS_LEASE_LOST: &str = "dossier_jobs_lease_lost_total";
/// Time from taking a job to storing its terminal event, by kind and outcome.
pub const JOB_DURATION: &str = "dossier_job_duration_seconds";

/// Installs the recorder (once per process) and describes the metrics.
pub(crate) fn describe() {
    static DESCRIBED: Once = Once::new();
    dossier_service::metrics::install();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(
            JOBS_STARTED,
            "Job deliveries whose handler started, by kind."
        );
        metrics::describe_counter!(
            JOBS_FINISHED,
            "Jobs ended with a stored terminal event, by kind and outcome (succeeded, partial_success, failed, cancelled)."
        );
        metrics::describe_counter!(
            JOBS_RETRIED,
            "Job deliveries handed back to the broker to be retried after a backoff, by kind."
        );
        metrics::describe_counter!(
            JOBS_DEAD,
            "Jobs failed by the worker because their last delivery failed with a retryable error, by kind."
        );
        metrics::describe_counter!(
            JOBS_LEASE_LOST,
            "Job runs stopped without a terminal event because they lost their lease (they stalled past it and another run took the job over), by kind."
        );
        metrics::describe_histogram!(
            JOB_DURATION,
            metrics::Unit::Seconds,
            "Time from taking a job's delivery to storing its terminal event, by kind and outcome."
        );
    });
}

/// Creates the kind's counters at zero, so a worker that has run no job
/// yet already exposes them (a rate starts from zero, not from nothing).
pub(crate) fn register(kind: Kind) {
    for name in [JOBS_STARTED, JOBS_RETRIED, JOBS_DEAD, JOBS_LEASE_LOST] {
        metrics::counter!(name, "kind" => kind.as_str()).increment(0);
    }
}

pub(crate) fn started(kind: Kind) {
    metrics::counter!(JOBS_STARTED, "kind" => kind.as_str()).increment(1);
}

pub(crate) fn finished(kind: Kind, outcome: &'static str, elapsed: Duration) {
    metrics::counter!(JOBS_FINISHED, "kind" => kind.as_str(), "outcome" => outcome).increment(1);
    metrics::histogram!(JOB_DURATION, "kind" => kind.as_str(), "outcome" => outcome)
        .record(elapsed.as_secs_f64());
}

pub(crate) fn retried(kind: Kind) {
    metrics::counter!(JOBS_RETRIED, "kind" => kind.as_str()).increment(1);
}

pub(crate) fn dead(kind: Kind) {
    metrics::counter!(JOBS_DEAD, "kind" => kind.as_str()).increment(1);
}

pub(crate) fn lease_lost(kind: Kind) {
    metrics::counter!(JOBS_LEASE_LOST, "kind" => kind.as_str()).increment(1);
}
