//! What a handler can see and do while it runs a job.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use dossier_contracts::Kind;
use dossier_contracts::v1::{Progressed, operation_event};
use tokio_util::sync::CancellationToken;

use crate::JobError;
use crate::events::{Events, JobMeta};
use crate::lease::{LeaseError, RunLease};

/// The runtime's side of one job delivery, handed to [`crate::Handler::handle`].
/// Cheap to clone; clones share progress throttling and cancellation.
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<Inner>,
}

struct Inner {
    meta: Arc<JobMeta>,
    events: Events,
    cancel: CancellationToken,
    checkpoints: kv::Store,
    lease: Arc<RunLease>,
    max_deliver: u32,
    progress_interval: Duration,
    progress: Mutex<ProgressState>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("operation_id", &self.inner.meta.operation_id)
            .field("kind", &self.inner.meta.kind)
            .field("attempt", &self.inner.meta.attempt)
            .finish_non_exhaustive()
    }
}

impl JobContext {
    pub(crate) fn new(
        meta: Arc<JobMeta>,
        events: Events,
        cancel: CancellationToken,
        checkpoints: kv::Store,
        lease: Arc<RunLease>,
        max_deliver: u32,
        progress_interval: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                meta,
                events,
                cancel,
                checkpoints,
                lease,
                max_deliver,
                progress_interval,
                progress: Mutex::new(ProgressState::default()),
            }),
        }
    }

    /// The operation (and job) id.
    pub fn operation_id(&self) -> &str {
        &self.inner.meta.operation_id
    }

    /// The tenant that owns the operation.
    pub fn tenant_id(&self) -> &str {
        &self.inner.meta.tenant_id
    }

    /// The job's kind.
    pub fn kind(&self) -> Kind {
        self.inner.meta.kind
    }

    /// This delivery's number, from 1 (the JetStream delivery count).
    pub fn attempt(&self) -> u32 {
        self.inner.meta.attempt
    }

    /// Deliveries the consumer allows in all.
    pub fn max_deliver(&self) -> u32 {
        self.inner.max_deliver
    }

    /// Whether this is the last delivery: a retryable error now fails the
    /// operation.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt() >= self.max_deliver()
    }

    /// The `X-Request-Id` of the request that created the operation (empty if
    /// the job carried none).
    pub fn request_id(&self) -> &str {
        &self.inner.meta.request_id
    }

    /// The job's span (`job <kind>`); the handler already runs inside it.
    /// Useful to parent work the handler spawns. Disabled when the job's
    /// trace is not recorded ([`JobContext::traced`]).
    pub fn span(&self) -> &tracing::Span {
        self.inner.meta.traced.span()
    }

    /// The job's span or, when its trace is not recorded, its untraced
    /// scope: `tokio::spawn(ctx.traced().wrap(work))` keeps spawned work in
    /// the job's trace and log context either way.
    pub fn traced(&self) -> &dossier_telemetry::Traced {
        &self.inner.meta.traced
    }

    /// The job's trace id (32 hex digits), recorded or not.
    pub fn trace_id(&self) -> Option<String> {
        self.inner.meta.traced.trace_id()
    }

    /// A span for one step of the job, `<kind> <name>` (e.g.
    /// `enrichment.batch match chunk`): a child of the job's span with the
    /// operation id and the attempt number. The runtime runs the handler in
    /// the `handle` step; handlers wrap their own stages in more:
    /// `async { … }.instrument(ctx.step("match chunk"))`. Disabled (nothing
    /// built) when the job's trace is not recorded.
    pub fn step(&self, name: &str) -> tracing::Span {
        let meta = &self.inner.meta;
        if !meta.traced.is_recorded() {
            return tracing::Span::none();
        }
        tracing::info_span!(
            parent: meta.traced.span(),
            "job.step",
            otel.name = %format_args!("{} {name}", meta.kind),
            dossier.job.step = name,
            dossier.operation.id = meta.operation_id.as_str(),
            dossier.job.attempt = meta.attempt,
        )
    }

    /// Reports progress, 0–100 (larger values count as 100). Publishes a
    /// `Progressed` event only when the value rose above the last one
    /// published and at least `progress_interval` has passed since it, so a
    /// handler may call this as often as it likes. Best effort: a failed
    /// publish is logged, not returned.
    pub async fn progress(&self, percent: u32) {
        let percent = percent.min(100);
        let due = self
            .inner
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(percent, Instant::now(), self.inner.progress_interval);
        if !due {
            return;
        }
        let event = operation_event::Event::Progressed(Progressed { progress: percent });
        if let Err(error) = self.inner.events.publish(&self.inner.meta, event, 1).await {
            tracing::warn!(
                message = "Cannot publish progress.",
                operation_id = %self.operation_id(),
                percent,
                %error
            );
        }
    }

    /// Whether the operation's cancellation was requested. Handlers check
    /// this between steps and return [`crate::Outcome::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Completes when the operation's cancellation is requested (to `select!`
    /// against a long step).
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await;
    }

    /// The `dossier_checkpoints` bucket, for resumable jobs. Keep keys under
    /// [`JobContext::checkpoint_key`] so a redelivered job finds its own.
    pub fn checkpoints(&self) -> &kv::Store {
        &self.inner.checkpoints
    }

    /// `<operation id>.<name>`: a checkpoint key private to this operation.
    pub fn checkpoint_key(&self, name: &str) -> String {
        format!("{}.{name}", self.operation_id())
    }

    /// This run's fencing token: the revision of the operation's lease when
    /// this run took it, unique per run and larger for every later run of
    /// the same job. Name what the run writes outside compare-and-set
    /// entries with it (checkpoint parts), so that a stale run (one that
    /// stalled past its lease while another took over) never overwrites
    /// the data of the run that holds the operation now.
    pub fn run(&self) -> u64 {
        self.inner.lease.run()
    }

    /// Renews this run's lease now, by revision: call it right before a
    /// durable write (a checkpoint), so that only the run holding the
    /// operation writes. Fails, retryably, when the lease is lost (the
    /// runtime then drops the run and publishes nothing for it) or the
    /// leases bucket does not answer.
    pub async fn confirm_lease(&self) -> Result<(), JobError> {
        match self.inner.lease.renew().await {
            Ok(()) => Ok(()),
            Err(LeaseError::Lost) => Err(JobError::retryable(
                "lease_lost",
                "Another run holds the operation now.",
            )),
            Err(error @ (LeaseError::Broker(_) | LeaseError::CancelRequested)) => {
                Err(JobError::retryable(
                    "lease_unavailable",
                    format!("The run's lease could not be confirmed: {error}."),
                ))
            }
        }
    }
}

/// Which progress values have gone out.
#[derive(Debug, Default)]
struct ProgressState {
    last: Option<u32>,
    at: Option<Instant>,
}

impl ProgressState {
    /// Whether `percent` should be published now; records it if so. Deciding
    /// and recording under one lock keeps concurrent callers from publishing
    /// the same or a lower value.
    fn admit(&mut self, percent: u32, now: Instant, interval: Duration) -> bool {
        if self.last.is_some_and(|last| percent <= last) {
            return false;
        }
        if self
            .at
            .is_some_and(|at| now.saturating_duration_since(at) < interval)
        {
            return false;
        }
        self.last = Some(percent);
        self.at = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_rises_and_is_throttled() {
        let mut state = ProgressState::default();
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        assert!(state.admit(10, t0, second));
        assert!(!state.admit(20, t0 + Duration::from_millis(500), second));
        assert!(state.admit(30, t0 + second, second));
        assert!(!state.admit(30, t0 + 3 * second, second));
        assert!(!state.admit(5, t0 + 4 * second, second));
        assert!(state.admit(100, t0 + 5 * second, second));
    }
}
