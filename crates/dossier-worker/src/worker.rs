//! The job loop: pull, run, report, settle.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::object_store::ObjectStore;
use async_nats::jetstream::{self, AckKind, kv};
use dossier_backoff::Backoff;
use dossier_broker::consume::{ConsumeLoop, PullBatches};
use dossier_broker::{BrokerConfig, WorkerTopology, job_consumer, job_subject};
use dossier_contracts::Kind;
use dossier_contracts::v1::{
    Cancelled, Failed, Job, OperationError, PartiallySucceeded, Started, Succeeded,
    operation_event::Event,
};
use dossier_service::{CancellationToken, Readiness};
use dossier_telemetry::{Traced, propagation};
use futures::StreamExt as _;
use prost::Message as _;
use tokio_util::sync::DropGuard;
use tokio_util::task::AbortOnDropHandle;

use crate::cancel::{self, Running};
use crate::events::{EventError, Events, JobMeta, PUBLISH_TRIES};
use crate::lease::{Acquired, LeaseError, Leases, RunLease};
use crate::{ErrorInfo, Handler, JobContext, JobError, Outcome, WorkerConfig};

/// How long one pull request waits at the server for jobs. Short enough that
/// slots freed while it waits are offered again soon; long enough that an
/// idle worker sends only a request every few seconds.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// Consecutive failed pulls after which a worker reports itself not ready.
const PULL_FAILURES_NOT_READY: u32 = 2;

/// Pause after a failed pull before the next one.
const PULL_RETRY: Duration = Duration::from_secs(1);

/// Added to a held lease's remaining time before looking at it again, so
/// the next look finds it expired rather than just about to.
const LEASE_SLACK: Duration = Duration::from_millis(50);

/// Waits between tries to bind a topology that is not there (yet): the
/// operations service creates it, and may start after the workers.
const BIND_RETRY: Backoff =
    Backoff::new(Duration::from_millis(250), Duration::from_secs(5)).jittered();

/// Starting or running a worker failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// NATS could not be reached.
    #[error("cannot connect to NATS: {0}")]
    Connect(#[from] async_nats::ConnectError),
    /// The [`WorkerConfig`] is not usable.
    #[error("invalid worker configuration: {0}")]
    Config(String),
    /// The cancellations bucket could not be watched.
    #[error("cannot watch the cancellations bucket: {0}")]
    Watch(#[source] kv::WatchError),
    /// A pull request for jobs failed.
    #[error("cannot pull jobs: {0}")]
    Pull(#[source] async_nats::Error),
}

/// A worker for one kind of job: binds the kind's durable pull consumer and
/// runs [`Handler`] on each job. Run it with [`Worker::run`] (a service), or
/// step it with [`Worker::try_process_one`] (a test).
pub struct Worker<H> {
    shared: Arc<Shared<H>>,
    consumer: PullConsumer,
    readiness: Readiness,
    // Stops the cancellation watcher when the worker goes away, including when
    // the task running it is aborted.
    _watcher: DropGuard,
}

/// What the worker and every job task share.
struct Shared<H> {
    // An `Arc` of its own so the handler's task can own a reference.
    handler: Arc<H>,
    client: async_nats::Client,
    kind: Kind,
    config: WorkerConfig,
    worker_id: Arc<str>,
    heartbeat_every: Duration,
    /// How long a run's lease lasts past each renewal: the consumer's
    /// `ack_wait`, the time after which the broker gives the job away.
    lease_ttl: Duration,
    max_deliver: u32,
    request_timeout: Duration,
    /// Delay before a failed job is delivered again, by attempt: jittered,
    /// so replicas that failed together do not retry together.
    retry: Backoff,
    events: Events,
    cancellations: kv::Store,
    checkpoints: kv::Store,
    /// Per-run leases: one live run per operation (see `lease`).
    leases: Leases,
    /// Job payloads too large to travel inside their job.
    payloads: ObjectStore,
    running: Running,
}

/// What to tell the broker about a delivery once we are done with it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Settle {
    /// Done; the terminal event is stored.
    Ack,
    /// Deliver it again after the delay (at once with `None`).
    Nak(Option<Duration>),
    /// Never deliver it again (it cannot be decoded).
    Term,
    /// Leave it alone: the run lost its lease, so the delivery is no longer
    /// this worker's to settle (another run holds it, or the broker gives
    /// it to one after its ack deadline).
    Abandon,
}

/// How a handler run ended.
enum Ran {
    /// The handler returned (or panicked, or timed out: a retryable error).
    Returned(Result<Outcome, JobError>),
    /// Cancelled, and the handler did not return within the grace.
    Stopped,
    /// Shutdown took the job back before the handler returned.
    Released,
    /// The run lost its lease; the handler was dropped.
    Lost,
}

impl<H: Handler> Worker<H> {
    /// Binds the kind's durable pull consumer (`jobs-<kind>`) and the
    /// buckets it uses, and starts watching cancellations. The worker never
    /// creates or changes the topology: until the operations service has
    /// created what it needs, it logs what is missing and tries again with a
    /// growing pause (the service is not ready meanwhile). The worker is
    /// ready when this returns.
    #[tracing::instrument(name = "worker.start", skip_all, fields(kind = %handler.kind()))]
    pub async fn new(
        client: async_nats::Client,
        broker: &BrokerConfig,
        config: WorkerConfig,
        handler: H,
    ) -> Result<Self, WorkerError> {
        config.validate().map_err(WorkerError::Config)?;
        let kind = handler.kind();
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(broker.request_timeout)
            .build(client.clone());
        let topology = bind(&jetstream, kind).await;

        let name = job_consumer(kind);
        let consumer = topology.jobs.clone();
        // The consumer, made by the topology's owner, is the truth for
        // deadlines and delivery limits.
        let info = consumer.cached_info();
        let ack_wait = info.config.ack_wait;
        let max_deliver = u32::try_from(info.config.max_deliver)
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or(u32::MAX);

        // Opened before the first job is pulled: see `cancel` for why.
        let watch = topology
            .cancellations
            .watch_all()
            .await
            .map_err(WorkerError::Watch)?;
        let running = Running::default();
        let stop = CancellationToken::new();
        tokio::spawn(cancel::watch(
            topology.cancellations.clone(),
            running.clone(),
            watch,
            client.statistics(),
            stop.clone(),
        ));

        let worker_id: Arc<str> = config.resolve_worker_id().into();
        let leases = Leases::new(topology.leases.clone(), kind, worker_id.clone(), ack_wait);
        // A result must also fit in a message, whatever the configuration says.
        let max_payload = client.server_info().max_payload;
        let inline_limit = if max_payload > 0 {
            config.inline_result_limit.min(max_payload / 2)
        } else {
            config.inline_result_limit
        };
        let events = Events::new(
            topology.jetstream.clone(),
            topology.results.clone(),
            worker_id.clone(),
            inline_limit,
        );
        tracing::info!(
            message = "Worker ready.",
            %kind,
            worker_id = %worker_id,
            consumer = %name,
            concurrency = config.concurrency,
            ?ack_wait,
            max_deliver
        );
        crate::metrics::describe();
        crate::metrics::register(kind);
        let readiness = Readiness::new();
        let connection = client.clone();
        readiness.require(move || dossier_nats::is_connected(&connection));
        readiness.set(true);
        Ok(Worker {
            shared: Arc::new(Shared {
                handler: Arc::new(handler),
                client,
                kind,
                // Heartbeats at a third of the deadline leave room for two
                // lost or late ones before the broker gives the job away.
                heartbeat_every: (ack_wait / 3).max(Duration::from_millis(10)),
                lease_ttl: ack_wait,
                max_deliver,
                request_timeout: broker.request_timeout,
                retry: Backoff::new(config.retry_backoff_base, config.retry_backoff_max).jittered(),
                events,
                cancellations: topology.cancellations,
                checkpoints: topology.checkpoints,
                leases,
                payloads: topology.payloads,
                running,
                worker_id,
                config,
            }),
            consumer,
            readiness,
            _watcher: stop.drop_guard(),
        })
    }

    /// The kind of job this worker runs.
    pub fn kind(&self) -> Kind {
        self.shared.kind
    }

    /// The worker's id, as it appears in events.
    pub fn worker_id(&self) -> &str {
        &self.shared.worker_id
    }

    /// Ready once the consumer is bound and while NATS is connected; false
    /// from the moment shutdown begins.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Makes `service` (what a service's `/readyz` reports) require this
    /// worker's readiness too.
    pub fn report_readiness_to(&self, service: &Readiness) {
        let worker = self.readiness.clone();
        service.require(move || worker.is_ready());
    }

    /// Pulls and runs jobs, at most `concurrency` at once, until `shutdown`
    /// is cancelled. Then it stops pulling, lets running jobs finish within
    /// `shutdown_grace`, and hands the rest back to the broker (an immediate
    /// `Nak`, no event) so another replica picks them up at once.
    ///
    /// The loop is `dossier_broker::consume`'s, on pull requests sized to the
    /// free job slots ([`PullBatches`]), so the worker never holds a job it
    /// has no slot for. Broker trouble does not end it: failed pulls are
    /// logged and retried, and a reconnect renews the pull at once. It
    /// returns `Ok` after a shutdown; the `Result` leaves room for fatal
    /// errors.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let Worker {
            shared,
            consumer,
            readiness,
            _watcher,
        } = self;
        readiness.clear_on(&shutdown);

        let jobs = ConsumeLoop {
            // Jobs are retried by the broker after the job's own backoff; a
            // failed pull is retried after a short pause, as many times as
            // it takes.
            retry: Backoff::constant(PULL_RETRY),
            grace: Some(shared.config.shutdown_grace),
            // Handing back is one nak per job, but a job may be in the middle
            // of publishing its terminal event; give that its retries.
            release_grace: shared.request_timeout * (PUBLISH_TRIES + 1),
            ..ConsumeLoop::new(job_consumer(shared.kind), shared.config.concurrency)
        };
        // Not ready while pulls keep failing (the consumer deleted, a lost
        // permission): a connected worker that cannot take jobs is not doing
        // its work. One failure is tolerated, a blip the next pull heals.
        let pulls = jobs.health.clone();
        readiness.require(move || pulls.consecutive_failures() < PULL_FAILURES_NOT_READY);

        let source = PullBatches::new(consumer, PULL_EXPIRES, shared.client.statistics());
        let worker = shared.clone();
        jobs.run(source, &shutdown, move |message, release| {
            process(worker.clone(), message, release)
        })
        .await;
        readiness.set(false);
        tracing::info!(message = "Worker stopped.", kind = %shared.kind);
        Ok(())
    }

    /// Pulls at most one job, waiting up to `timeout` for it, and processes
    /// it fully (events published, delivery settled) before returning. True
    /// when a message was pulled. For tests that step the worker by hand.
    pub async fn try_process_one(&self, timeout: Duration) -> Result<bool, WorkerError> {
        let mut batch = self
            .consumer
            .batch()
            .max_messages(1)
            .expires(timeout)
            .messages()
            .await
            .map_err(|e| WorkerError::Pull(e.into()))?;
        match batch.next().await {
            Some(Ok(message)) => {
                drop(batch);
                process(self.shared.clone(), message, CancellationToken::new()).await;
                Ok(true)
            }
            Some(Err(error)) => Err(WorkerError::Pull(error)),
            None => Ok(false),
        }
    }
}

/// Binds the topology the workers of `kind` use, trying again until it
/// exists: a worker started before the operations service waits for it.
async fn bind(jetstream: &jetstream::Context, kind: Kind) -> WorkerTopology {
    let mut retries = BIND_RETRY.retries();
    loop {
        match WorkerTopology::bind(jetstream, kind).await {
            Ok(topology) => return topology,
            Err(error) => {
                let retry_in = retries.next_delay();
                tracing::warn!(
                    message = "Not ready: cannot bind the JetStream topology; trying again.",
                    %kind,
                    %error,
                    ?retry_in
                );
                tokio::time::sleep(retry_in).await;
            }
        }
    }
}

/// Processes one delivery from decoding to settling it.
async fn process<H: Handler>(
    shared: Arc<Shared<H>>,
    message: jetstream::Message,
    release: CancellationToken,
) {
    let (delivered, sequence) = match message.info() {
        Ok(info) => (info.delivered, info.stream_sequence),
        Err(error) => {
            tracing::warn!(message = "Not a JetStream delivery; ignoring it.", %error);
            return;
        }
    };
    let attempt = u32::try_from(delivered).unwrap_or(u32::MAX).max(1);
    let job = match Job::decode(message.payload.clone()) {
        Ok(job) if !job.operation_id.is_empty() => job,
        Ok(_) => {
            tracing::error!(
                message = "Job without an operation id; terminating it.",
                stream_sequence = sequence
            );
            settle(&message, Settle::Term, "").await;
            return;
        }
        Err(error) => {
            tracing::error!(
                message = "Undecodable job; terminating it.",
                stream_sequence = sequence,
                %error
            );
            settle(&message, Settle::Term, "").await;
            return;
        }
    };
    let operation_id = job.operation_id.clone();
    let (span, request_id) = job_span(
        shared.kind,
        &job,
        message.headers.as_ref(),
        attempt,
        &shared.worker_id,
    );

    // Heartbeats run beside the whole job — handler, result upload, event
    // publishes — and stop with it. They live in this task on purpose: when a
    // worker dies (or its task is aborted) they stop too, and the broker
    // redelivers the job after its ack deadline.
    let outcome = {
        let work = span.wrap(shared.run_job(job, attempt, request_id, &release, span.clone()));
        let beat = heartbeat(&message, shared.heartbeat_every);
        tokio::select! {
            outcome = work => outcome,
            never = beat => match never {},
        }
    };
    // Handed back on the last delivery, the job is not retried: the broker
    // gives up on it (a dead letter), so it is not counted as a retry.
    if let Settle::Nak(Some(_)) = outcome
        && attempt < shared.max_deliver
    {
        crate::metrics::retried(shared.kind);
    }
    span.wrap(settle(&message, outcome, &operation_id)).await;
}

impl<H: Handler> Shared<H> {
    /// Runs one decoded job under its operation's lease and publishes what
    /// became of it; returns how to settle the delivery.
    async fn run_job(
        &self,
        job: Job,
        attempt: u32,
        request_id: String,
        release: &CancellationToken,
        span: Traced,
    ) -> Settle {
        let meta = Arc::new(JobMeta::new(
            job.operation_id.clone(),
            job.tenant_id.clone(),
            self.kind,
            attempt,
            job.created_at,
            request_id,
            span.clone(),
        ));
        // Registered before the lease is taken: a cancellation found on the
        // lease, or written to the cancellations bucket after the run reads
        // it, trips this registration's token.
        let registration = self.running.register(&meta.operation_id);
        let lease = match self.take_lease(&meta, registration.token(), release).await {
            Ok(lease) => lease,
            Err(settle) => return settle,
        };
        // Renewed beside the run, in a task of its own so that a handler
        // hogging its task cannot starve the renewals; dropped (and so
        // stopped) when the run ends.
        let keeper = {
            let lease = lease.clone();
            let every = self.heartbeat_every;
            AbortOnDropHandle::new(tokio::spawn(
                span.wrap(async move { lease.keep(every).await }),
            ))
        };
        let settle = self
            .run_leased(job, &meta, &lease, &registration, release)
            .await;
        drop(keeper);
        match settle {
            // Handed back: the next delivery may take the lease at once.
            Settle::Nak(_) => lease.release().await,
            Settle::Abandon => {
                tracing::warn!(
                    message = "The job's lease was lost; stopped it without a terminal event.",
                    operation_id = %meta.operation_id,
                    attempt
                );
                crate::metrics::lease_lost(self.kind);
            }
            Settle::Ack | Settle::Term => {}
        }
        settle
    }

    /// Takes the operation's lease for this delivery. While another run
    /// holds it, waits (the delivery's heartbeats go on) until that run
    /// finishes or its lease expires; a finished operation is not run
    /// again. `Err` is how to settle the delivery instead of running it.
    async fn take_lease(
        &self,
        meta: &JobMeta,
        cancel: &CancellationToken,
        release: &CancellationToken,
    ) -> Result<Arc<RunLease>, Settle> {
        let operation_id = meta.operation_id.as_str();
        let waiting_since = tokio::time::Instant::now();
        // A holder cannot run longer than its job timeout (plus one lease to
        // notice it died); past that, something is wrong: hand the job back
        // rather than hold a slot forever.
        let longest_wait = self.config.job_timeout + self.lease_ttl;
        let mut logged = false;
        loop {
            match self
                .leases
                .acquire(operation_id, meta.attempt, cancel)
                .await
            {
                Ok(Acquired::Taken(lease)) => return Ok(lease),
                Ok(Acquired::Finished {
                    status,
                    event,
                    revision,
                }) => return Err(self.finished_already(meta, &status, event, revision).await),
                Ok(Acquired::Held { remaining }) => {
                    if waiting_since.elapsed() > longest_wait {
                        tracing::warn!(
                            message = "Another run has held the job for too long; handing it back.",
                            operation_id,
                            waited = ?longest_wait
                        );
                        return Err(Settle::Nak(Some(self.lease_ttl)));
                    }
                    if !logged {
                        tracing::info!(
                            message = "Another run holds the job; waiting until it finishes or its lease expires.",
                            operation_id,
                            attempt = meta.attempt,
                            ?remaining
                        );
                        logged = true;
                    }
                    let pause = (remaining + LEASE_SLACK).min(self.heartbeat_every);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = release.cancelled() => return Err(Settle::Nak(None)),
                    }
                }
                Err(error) => {
                    // Running without the lease could run the job twice.
                    let delay = self.retry.delay(meta.attempt);
                    tracing::warn!(
                        message = "Cannot read the job's lease; retrying the job later.",
                        operation_id,
                        ?delay,
                        %error
                    );
                    return Err(Settle::Nak(Some(delay)));
                }
            }
        }
    }

    /// A delivery of a finished operation: acknowledged without running.
    /// When the run that finished it committed its terminal event but may
    /// not have stored it (it died in between), the event is published here,
    /// under its own id, so JetStream drops it if it was stored after all.
    async fn finished_already(
        &self,
        meta: &JobMeta,
        status: &str,
        event: Option<Box<dossier_contracts::v1::OperationEvent>>,
        revision: u64,
    ) -> Settle {
        let operation_id = meta.operation_id.as_str();
        let Some(event) = event else {
            tracing::info!(
                message = "The operation is already finished; not running it again.",
                operation_id,
                attempt = meta.attempt,
                status
            );
            return Settle::Ack;
        };
        match self
            .events
            .publish_message(meta, &event, PUBLISH_TRIES)
            .await
        {
            Ok(()) => {
                tracing::info!(
                    message = "Published the committed terminal event of an earlier run.",
                    operation_id,
                    status
                );
                self.leases
                    .clear_event(operation_id, status, revision)
                    .await;
                Settle::Ack
            }
            Err(error) => {
                let delay = self.retry.delay(meta.attempt);
                tracing::warn!(
                    message = "Cannot publish the committed terminal event; retrying later.",
                    operation_id,
                    ?delay,
                    %error
                );
                Settle::Nak(Some(delay))
            }
        }
    }

    /// The run itself, holding the lease: checks, `Started`, the handler,
    /// and the terminal event committed through the lease.
    async fn run_leased(
        &self,
        job: Job,
        meta: &Arc<JobMeta>,
        lease: &Arc<RunLease>,
        registration: &cancel::Registration,
        release: &CancellationToken,
    ) -> Settle {
        let attempt = meta.attempt;
        let operation_id = meta.operation_id.as_str();

        if Kind::from_proto(job.kind) != Some(self.kind) {
            tracing::error!(
                message = "Job of another kind on this kind's subject; failing it.",
                operation_id,
                job_kind = job.kind
            );
            let error = ErrorInfo::new("invalid_job", "The job was routed to the wrong worker.");
            return self.finish(meta, lease, failed(error)).await;
        }

        // Registered (in `run_job`) before reading the bucket: a
        // cancellation written after the read reaches this job through the
        // watcher.
        let cancel = registration.token().clone();
        match self.cancellations.get(operation_id).await {
            Ok(None) if !cancel.is_cancelled() => {}
            Ok(_) => {
                tracing::info!(
                    message = "Job cancelled while queued; not running it.",
                    operation_id
                );
                let event = Event::Cancelled(Cancelled {
                    partial_result: None,
                    progress: None,
                });
                return self.finish(meta, lease, event).await;
            }
            Err(error) => {
                // Running it anyway could run a cancelled job.
                let delay = self.retry.delay(attempt);
                tracing::warn!(
                    message = "Cannot read the cancellations bucket; retrying the job later.",
                    operation_id,
                    ?delay,
                    %error
                );
                return Settle::Nak(Some(delay));
            }
        }

        // A payload too large for the job is loaded here, so the handler
        // reads `payload_json` whatever way it travelled.
        let mut job = job;
        if let Err(error) = crate::payload::resolve(&self.payloads, &mut job).await {
            if error.is_permanent() {
                tracing::error!(message = "The job's payload cannot be loaded; failing it.", operation_id, %error);
                return self
                    .finish(meta, lease, failed(crate::payload::failure(&error)))
                    .await;
            }
            let delay = self.retry.delay(attempt);
            tracing::warn!(
                message = "Cannot load the job's payload; retrying the job later.",
                operation_id,
                ?delay,
                %error
            );
            return Settle::Nak(Some(delay));
        }

        if let Err(error) = self
            .events
            .publish(meta, Event::Started(Started {}), PUBLISH_TRIES)
            .await
        {
            let delay = self.retry.delay(attempt);
            tracing::warn!(
                message = "Cannot publish the start of a job; retrying it later.",
                operation_id,
                ?delay,
                %error
            );
            return Settle::Nak(Some(delay));
        }
        tracing::info!(message = "Job started.", operation_id, attempt);
        crate::metrics::started(self.kind);

        let ctx = JobContext::new(
            meta.clone(),
            self.events.clone(),
            cancel.clone(),
            self.checkpoints.clone(),
            lease.clone(),
            self.max_deliver,
            self.config.progress_interval,
        );
        let mut dead = false;
        let ran = self
            .run_handler(ctx, job, &cancel, release, lease.lost())
            .await;
        // Whatever the handler returned, a run that lost its lease has no
        // say in the operation's outcome any more.
        if lease.lost().is_cancelled() {
            return Settle::Abandon;
        }
        let event = match ran {
            Ran::Lost => return Settle::Abandon,
            Ran::Released => {
                tracing::info!(
                    message = "Shutting down; handing the job back to the broker.",
                    operation_id
                );
                return Settle::Nak(None);
            }
            Ran::Stopped => {
                tracing::warn!(
                    message = "Cancelled job did not stop within the grace; dropped it.",
                    operation_id,
                    grace = ?self.config.cancel_grace
                );
                Event::Cancelled(Cancelled {
                    partial_result: None,
                    progress: None,
                })
            }
            // A handler that errs after cancellation was asked to stop: the
            // error is a consequence of the stop, not worth a retry.
            Ran::Returned(Err(error)) if cancel.is_cancelled() => {
                tracing::info!(
                    message = "Cancelled job ended with an error.",
                    operation_id,
                    %error
                );
                Event::Cancelled(Cancelled {
                    partial_result: None,
                    progress: None,
                })
            }
            Ran::Returned(Err(error @ JobError::Retryable { .. }))
                if attempt < self.max_deliver =>
            {
                let delay = self.retry.delay(attempt);
                tracing::warn!(
                    message = "Job failed; it will be retried.",
                    operation_id,
                    attempt,
                    ?delay,
                    %error
                );
                return Settle::Nak(Some(delay));
            }
            Ran::Returned(Err(error)) => {
                tracing::warn!(message = "Job failed.", operation_id, attempt, %error);
                dead = matches!(error, JobError::Retryable { .. });
                failed(match error {
                    JobError::Retryable { code, message } => ErrorInfo {
                        code,
                        message,
                        details: Some(serde_json::json!({ "attempts": attempt })),
                    },
                    JobError::Permanent {
                        code,
                        message,
                        details,
                    } => ErrorInfo {
                        code,
                        message,
                        details,
                    },
                })
            }
            Ran::Returned(Ok(outcome)) => {
                match self.outcome_event(operation_id, lease.run(), outcome).await {
                    Ok(event) => event,
                    Err(error) => {
                        let delay = self.retry.delay(attempt);
                        tracing::warn!(
                            message = "Cannot store the job's result; retrying the job later.",
                            operation_id,
                            ?delay,
                            %error
                        );
                        return Settle::Nak(Some(delay));
                    }
                }
            }
        };
        let settle = self.finish(meta, lease, event).await;
        // Dead only once its failure is stored: a failed publish hands the
        // last delivery back, and the broker's max-deliveries advisory (the
        // operations service's dead letters) takes it from there.
        if dead && matches!(settle, Settle::Ack) {
            crate::metrics::dead(self.kind);
        }
        settle
    }

    /// Runs the handler in a task of its own, bounded by the job timeout,
    /// cancellation (after its grace) and shutdown.
    async fn run_handler(
        &self,
        ctx: JobContext,
        job: Job,
        cancel: &CancellationToken,
        release: &CancellationToken,
        lost: &CancellationToken,
    ) -> Ran {
        let handler = self.handler.clone();
        // A task of its own: a panic surfaces as a `JoinError` instead of
        // unwinding through the worker, and dropping the handle (on timeout,
        // cancellation, shutdown, or when this task is itself aborted) aborts
        // the handler wherever it is waiting.
        // In the job's untraced scope too, when its trace is not recorded.
        let step = ctx.traced().child(|| ctx.step("handle"));
        let mut task = AbortOnDropHandle::new(tokio::spawn(
            step.wrap(async move { handler.handle(ctx, job).await }),
        ));
        tokio::select! {
            joined = &mut task => Ran::Returned(joined_result(joined)),
            () = tokio::time::sleep(self.config.job_timeout) => {
                task.abort();
                tracing::warn!(
                    message = "Job timed out; dropped its handler.",
                    timeout = ?self.config.job_timeout
                );
                Ran::Returned(Err(JobError::retryable(
                    "job_timeout",
                    format!(
                        "The job did not finish within {}.",
                        humantime::format_duration(self.config.job_timeout)
                    ),
                )))
            }
            () = cancel.cancelled() => {
                // Cooperative first: the handler sees `is_cancelled()` and
                // may return `Outcome::Cancelled` with partial work.
                match tokio::time::timeout(self.config.cancel_grace, &mut task).await {
                    Ok(joined) => Ran::Returned(joined_result(joined)),
                    Err(_) => {
                        task.abort();
                        Ran::Stopped
                    }
                }
            }
            () = release.cancelled() => {
                task.abort();
                Ran::Released
            }
            // Not cooperative: another run holds the operation now, and
            // nothing this one does can count.
            () = lost.cancelled() => {
                task.abort();
                Ran::Lost
            }
        }
    }

    /// The terminal event for what the handler returned, with its result
    /// placed inline or in the object store.
    async fn outcome_event(
        &self,
        operation_id: &str,
        run: u64,
        outcome: Outcome,
    ) -> Result<Event, EventError> {
        Ok(match outcome {
            Outcome::Succeeded(value) => Event::Succeeded(Succeeded {
                result: Some(self.events.result_ref(operation_id, run, &value).await?),
            }),
            Outcome::PartialSuccess { result, error } => {
                Event::PartiallySucceeded(PartiallySucceeded {
                    result: Some(self.events.result_ref(operation_id, run, &result).await?),
                    error: error.map(operation_error),
                })
            }
            Outcome::Cancelled { partial, progress } => Event::Cancelled(Cancelled {
                partial_result: match partial {
                    Some(value) => Some(self.events.result_ref(operation_id, run, &value).await?),
                    None => None,
                },
                progress: progress.map(|p| p.min(100)),
            }),
        })
    }

    /// Ends the run with a terminal event: commits it into the lease (by
    /// revision: only the holder can), then publishes it. The delivery may
    /// be acked only once the event is stored; else it is handed back, and
    /// the next delivery publishes the committed event instead of running.
    async fn finish(&self, meta: &JobMeta, lease: &RunLease, event: Event) -> Settle {
        let mut status = event.type_name();
        let mut message = self.events.prepare(meta, event);
        let mut committed = lease.commit(&message, status).await;
        if matches!(committed, Err(LeaseError::CancelRequested)) {
            // The cancellation was accepted before this outcome could be
            // committed: the operation ends cancelled, as its caller was told.
            tracing::info!(
                message = "A cancellation was accepted before the outcome was committed; ending the job cancelled.",
                operation_id = %meta.operation_id,
                outcome = status
            );
            let cancelled = Event::Cancelled(Cancelled {
                partial_result: None,
                progress: None,
            });
            status = cancelled.type_name();
            message = self.events.prepare(meta, cancelled);
            committed = lease.commit(&message, status).await;
        }
        let committed = match committed {
            Ok(revision) => revision,
            Err(LeaseError::Lost) => return Settle::Abandon,
            Err(error) => {
                // Written or not, the next delivery finds out: a committed
                // event is published by it, an uncommitted run is redone.
                let delay = self.retry.delay(meta.attempt);
                tracing::warn!(
                    message = "Cannot commit the job's outcome to its lease; retrying the job later.",
                    operation_id = %meta.operation_id,
                    status,
                    ?delay,
                    %error
                );
                return Settle::Nak(Some(delay));
            }
        };
        match self
            .events
            .publish_message(meta, &message, PUBLISH_TRIES)
            .await
        {
            Ok(()) => {
                tracing::info!(
                    message = "Job finished.",
                    operation_id = %meta.operation_id,
                    attempt = meta.attempt,
                    status
                );
                self.leases
                    .clear_event(&meta.operation_id, status, committed)
                    .await;
                crate::metrics::finished(meta.kind, status, meta.taken_at.elapsed());
                Settle::Ack
            }
            Err(error) => {
                let delay = self.retry.delay(meta.attempt);
                tracing::warn!(
                    message = "Cannot publish the job's final event; retrying the job later.",
                    operation_id = %meta.operation_id,
                    status,
                    ?delay,
                    %error
                );
                Settle::Nak(Some(delay))
            }
        }
    }
}

/// Sends in-progress acks every `every` until dropped, so the broker does not
/// redeliver a job that is still running.
async fn heartbeat(message: &jetstream::Message, every: Duration) -> Infallible {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(error) = message.ack_with(AckKind::Progress).await {
            tracing::warn!(message = "Cannot send a job heartbeat.", %error);
        }
    }
}

/// Tells the broker what became of a delivery. An ack is confirmed by the
/// server (`double_ack`): the terminal event is already stored, so a lost ack
/// would only run the job again.
async fn settle(message: &jetstream::Message, settle: Settle, operation_id: &str) {
    let result = match settle {
        Settle::Ack => match message.double_ack().await {
            Ok(()) => Ok(()),
            // One more try: the first may have been lost in a reconnect.
            Err(_) => message.double_ack().await,
        },
        Settle::Nak(delay) => message.ack_with(AckKind::Nak(delay)).await,
        Settle::Term => message.ack_with(AckKind::Term).await,
        Settle::Abandon => return,
    };
    if let Err(error) = result {
        tracing::warn!(
            message = "Cannot settle the job with the broker; it may be delivered again.",
            operation_id,
            ?settle,
            %error
        );
    }
}

fn joined_result(
    joined: Result<Result<Outcome, JobError>, tokio::task::JoinError>,
) -> Result<Outcome, JobError> {
    match joined {
        Ok(result) => result,
        Err(error) if error.is_panic() => {
            let payload = error.into_panic();
            let panic = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            tracing::error!(message = "Job handler panicked.", %panic);
            Err(JobError::retryable(
                "handler_panicked",
                "The worker failed unexpectedly.",
            ))
        }
        Err(_) => Err(JobError::retryable(
            "handler_aborted",
            "The worker stopped the job.",
        )),
    }
}

/// The consumer span of one job delivery (`dossier.jobs.<kind> process`): a
/// child of the operations service's publish span, through the job's NATS
/// headers (or, when the job's trace is not recorded, its untraced scope);
/// and the request id they carry.
fn job_span(
    kind: Kind,
    job: &Job,
    headers: Option<&async_nats::HeaderMap>,
    attempt: u32,
    worker_id: &str,
) -> (Traced, String) {
    let subject = job_subject(kind);
    let (span, request_id) = propagation::nats_consume(&subject, &job.operation_id, headers);
    span.record("messaging.consumer.group.name", job_consumer(kind).as_str());
    span.record_operation_id(job.operation_id.as_str());
    span.record("dossier.operation.kind", kind.as_str());
    span.record("dossier.job.attempt", attempt);
    span.record("dossier.worker.id", worker_id);
    span.record("tenant.id", job.tenant_id.as_str());
    (span, request_id.to_owned())
}

fn failed(error: ErrorInfo) -> Event {
    Event::Failed(Failed {
        error: Some(operation_error(error)),
    })
}

fn operation_error(error: ErrorInfo) -> OperationError {
    OperationError {
        code: error.code,
        message: error.message,
        details_json: error.details.map(|d| d.to_string()).unwrap_or_default(),
    }
}
