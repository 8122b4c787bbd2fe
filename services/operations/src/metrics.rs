//! The operations service's metrics: projection lag, dead letters, and the
//! depth of every job queue (what an autoscaler scales workers on), recorded
//! into the process-wide recorder and served on the admin port.

use std::sync::{Arc, Once};
use std::time::{Duration, SystemTime};

use dossier_contracts::Kind;
use tokio_util::sync::CancellationToken;

use crate::Shared;

/// Seconds from an event's publish (broker time) to its projection, by kind.
pub const PROJECTION_LAG: &str = "dossier_projection_lag_seconds";
/// Events waiting for the projector (not yet delivered).
pub const PROJECTOR_PENDING: &str = "dossier_projector_pending";
/// Events delivered to projectors and not yet acknowledged.
pub const PROJECTOR_ACK_PENDING: &str = "dossier_projector_ack_pending";
/// Jobs failed by the operations service after their last delivery, by kind.
pub const DEAD_LETTERS: &str = "dossier_dead_letters_total";
/// Jobs waiting for a worker (not yet delivered), by kind.
pub const JOBS_PENDING: &str = "dossier_jobs_pending";
/// Jobs delivered to workers and not yet acknowledged (running), by kind.
pub const JOBS_ACK_PENDING: &str = "dossier_jobs_ack_pending";

/// Installs the recorder (once per process) and describes the metrics.
pub(crate) fn describe() {
    static DESCRIBED: Once = Once::new();
    dossier_service::metrics::install();
    DESCRIBED.call_once(|| {
        metrics::describe_histogram!(
            PROJECTION_LAG,
            metrics::Unit::Seconds,
            "Time from an event's publish (broker time) to its projection into the operation record, by kind."
        );
        metrics::describe_gauge!(
            PROJECTOR_PENDING,
            "Events on the projector consumer not yet delivered to any operations replica."
        );
        metrics::describe_gauge!(
            PROJECTOR_ACK_PENDING,
            "Events delivered to operations replicas and not yet acknowledged."
        );
        metrics::describe_counter!(
            DEAD_LETTERS,
            "Jobs the broker gave up on (max deliveries, worker died each time) that the operations service failed, by kind."
        );
        metrics::describe_gauge!(
            JOBS_PENDING,
            "Jobs waiting on their kind's consumer, not yet delivered to a worker (queue depth), by kind."
        );
        metrics::describe_gauge!(
            JOBS_ACK_PENDING,
            "Jobs delivered to workers and not yet acknowledged (running or about to be redelivered), by kind."
        );
    });
}

/// Records the lag of an event projected now that the broker stored at
/// `published`.
pub(crate) fn projected(kind: Kind, published: SystemTime) {
    // A broker clock ahead of ours reads as no lag rather than an error.
    let lag = SystemTime::now()
        .duration_since(published)
        .unwrap_or(Duration::ZERO);
    metrics::histogram!(PROJECTION_LAG, "kind" => kind.as_str()).record(lag.as_secs_f64());
}

/// Counts one dead letter.
pub(crate) fn dead_letter(kind: Option<Kind>) {
    let kind = kind.map_or("unknown", Kind::as_str);
    metrics::counter!(DEAD_LETTERS, "kind" => kind).increment(1);
}

/// Reads the job consumers' and the projector's pending counts every
/// `every` into gauges, until `shutdown`. Every replica reports the same
/// numbers (they are the broker's), so dashboards take the max.
pub(crate) async fn report_queues(
    shared: Arc<Shared>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if !dossier_nats::is_connected(&shared.client) {
            continue;
        }
        for kind in Kind::ALL {
            let name = dossier_broker::job_consumer(kind);
            if let Some((pending, ack_pending)) = pending(&shared.topology.jobs, &name).await {
                metrics::gauge!(JOBS_PENDING, "kind" => kind.as_str()).set(pending);
                metrics::gauge!(JOBS_ACK_PENDING, "kind" => kind.as_str()).set(ack_pending);
            }
        }
        if let Some((pending, ack_pending)) =
            pending(&shared.topology.events, dossier_broker::PROJECTOR_CONSUMER).await
        {
            metrics::gauge!(PROJECTOR_PENDING).set(pending);
            metrics::gauge!(PROJECTOR_ACK_PENDING).set(ack_pending);
        }
    }
}

/// `(num_pending, num_ack_pending)` of a durable consumer; `None` (and the
/// gauges keep their last value) when the broker cannot tell right now.
async fn pending(stream: &async_nats::jetstream::stream::Stream, name: &str) -> Option<(f64, f64)> {
    match stream.consumer_info(name).await {
        // Gauges are floats; queue depths stay far below 2^53.
        Ok(info) => Some((info.num_pending as f64, info.num_ack_pending as f64)),
        Err(error) => {
            tracing::debug!(message = "Cannot read a consumer's pending counts.", consumer = name, %error);
            None
        }
    }
}
