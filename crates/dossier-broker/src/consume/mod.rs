//! One consume loop for every message consumer of Dossier: the workers' job
//! consumers, the operations service's projector and dead letters, and the
//! synchronous enrichment responder.
//!
//! A [`ConsumeLoop`] takes messages from a [`Source`] (a durable JetStream
//! consumer read in pull requests or as a stream, or a core NATS
//! subscription) and runs a handler on each, in a task of its own, with at
//! most `concurrency` handlers running at once. Broker trouble does not end
//! it: a failed pull is logged, counted in [`PullHealth`] (for readiness),
//! and retried after a [`Backoff`]. It ends on shutdown, in three steps: stop
//! pulling, give the source a chance to hand back what it already received
//! ([`Source::close`]), then drain the handlers that are running.
//!
//! # Concurrency
//!
//! The loop itself is one task that only pulls and spawns; handlers run in
//! tasks of a [`JoinSet`], so a slow or panicking handler never stalls the
//! loop, and a panic surfaces as a logged `JoinError` instead of unwinding
//! through it. The set also lets shutdown wait for exactly the handlers this
//! loop started (and abort them, when dropped).
//!
//! Concurrency is bounded by a [`Semaphore`] with one permit per handler
//! slot. The order is the point: a permit is taken **before** a message is
//! pulled, and a pull asks for at most as many messages as there are free
//! permits. Each message takes one permit into its handler's task, which
//! drops it when the handler returns, and that is what lets the loop pull
//! again. A message pulled without a free slot would wait here while its ack
//! deadline ran, although another replica with free slots could have taken
//! it; taking permits first means a replica never holds more unacknowledged
//! messages than it runs (for a [`PullBatches`] source, which asks the server
//! for exactly that many). The loop waits for the *first* free permit, then
//! takes every other one that is free without waiting, so one pull request
//! fills all the free slots at once rather than one request per slot.
//!
//! Every wait of the loop (for a permit, for a pull, for the next message,
//! between retries) is raced against the shutdown token, with the shutdown
//! branch polled first (`biased`), so shutdown is noticed at once even while
//! messages keep arriving.
//!
//! # Shutdown
//!
//! Once the token is cancelled the loop pulls nothing more and calls
//! [`Source::close`]: a JetStream pull hands the messages it had buffered
//! back to the server at once (`Nak`), a subscription unsubscribes (further
//! requests go to the other members of its queue group). Then the running
//! handlers get [`ConsumeLoop::grace`] to finish. If some are still running
//! after it, the loop cancels the *release* token that every handler was
//! given, so a handler can hand its message back to the broker instead of
//! settling it (the worker runtime naks the job, so another replica takes it
//! at once), and waits up to [`ConsumeLoop::release_grace`] for that before
//! aborting what is left; an aborted handler's message is redelivered after
//! its ack deadline.

mod sources;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use dossier_backoff::Backoff;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use sources::{DurableStream, PullBatches, Subscription};

/// Why a pull failed: any error of the NATS client.
pub type PullError = async_nats::Error;

/// What a successful [`Source::pull`] knows about its consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulled {
    /// A request went out; whether the consumer answers shows with the first
    /// message, or with the pull's clean end.
    Requested,
    /// The source holds a subscription on its consumer: that counts as a
    /// successful pull at once.
    Bound,
    /// The source has ended for good (its subscription was closed with the
    /// connection): the loop stops as it does on shutdown.
    Finished,
}

/// Where a [`ConsumeLoop`] gets its messages.
///
/// The loop calls [`Source::pull`] with the number of free handler slots,
/// then [`Source::next`] once per slot until the pull ends, and pulls again
/// when slots are free. It calls [`Source::close`] once, when it stops.
pub trait Source: Send {
    /// One delivery, handed to a handler.
    type Message: Send + 'static;

    /// Asks for at most `max` messages (at least one): the free slots.
    fn pull(&mut self, max: usize) -> impl Future<Output = Result<Pulled, PullError>> + Send;

    /// The next message of the current pull. `None` when the pull has ended
    /// (expired, or to be renewed): the loop then pulls again. An error ends
    /// the pull too, and the loop pulls again after a backoff.
    fn next(&mut self) -> impl Future<Output = Option<Result<Self::Message, PullError>>> + Send;

    /// Stops receiving and hands back what arrived but was not handed out.
    fn close(self) -> impl Future<Output = ()> + Send;
}

/// How a consume loop's pulls are going, for readiness checks: shared
/// between the loop and whoever reports readiness.
#[derive(Debug, Clone, Default)]
pub struct PullHealth(Arc<HealthState>);

#[derive(Debug, Default)]
struct HealthState {
    bound: AtomicBool,
    failures: AtomicU32,
}

impl PullHealth {
    /// Not bound, no failures: the state before the loop runs.
    pub fn new() -> PullHealth {
        PullHealth::default()
    }

    /// Whether the last pull reached its consumer (a binding, a message, or a
    /// clean end): false until the first one, after a failure, and once the
    /// loop has stopped.
    pub fn is_bound(&self) -> bool {
        self.0.bound.load(Ordering::Acquire)
    }

    /// Pulls that failed in a row since the last one that worked.
    pub fn consecutive_failures(&self) -> u32 {
        self.0.failures.load(Ordering::Acquire)
    }

    fn succeeded(&self) {
        self.0.failures.store(0, Ordering::Release);
        self.0.bound.store(true, Ordering::Release);
    }

    fn failed(&self) {
        self.0.failures.fetch_add(1, Ordering::AcqRel);
        self.0.bound.store(false, Ordering::Release);
    }

    fn stopped(&self) {
        self.0.bound.store(false, Ordering::Release);
    }
}

/// A consume loop's settings. See the module docs for how it runs.
#[derive(Debug, Clone)]
pub struct ConsumeLoop {
    /// The consumer (or subject) in logs.
    pub name: String,
    /// The most handlers running at once (at least one).
    pub concurrency: usize,
    /// Waits after failed pulls; a pull that works starts it over.
    pub retry: Backoff,
    /// How long running handlers may take to finish once shutdown begins;
    /// `None` waits for them however long they take.
    pub grace: Option<Duration>,
    /// After the grace, how long released handlers may take to hand their
    /// messages back before they are aborted.
    pub release_grace: Duration,
    /// Where the loop reports its pulls.
    pub health: PullHealth,
}

impl ConsumeLoop {
    /// A loop named `name` running at most `concurrency` handlers at once,
    /// retrying failed pulls from 100 ms up to every 5 s, waiting for its
    /// handlers on shutdown however long they take.
    pub fn new(name: impl Into<String>, concurrency: usize) -> ConsumeLoop {
        ConsumeLoop {
            name: name.into(),
            concurrency,
            retry: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            grace: None,
            release_grace: Duration::ZERO,
            health: PullHealth::new(),
        }
    }

    /// Pulls from `source` and runs `handle` on each message until
    /// `shutdown`, then stops pulling, closes the source and drains the
    /// handlers (see the module docs). `handle` gets each message and the
    /// release token, cancelled when the shutdown grace is over.
    pub async fn run<S, F, Fut>(self, mut source: S, shutdown: &CancellationToken, mut handle: F)
    where
        S: Source,
        F: FnMut(S::Message, CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let name = self.name.as_str();
        let slots = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let release = CancellationToken::new();
        let mut handlers = JoinSet::new();
        let mut retries = self.retry.retries();

        'pull: while !shutdown.is_cancelled() {
            let first = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    // Never closed; if it were, there would be nothing to wait for.
                    Err(_) => break,
                },
            };
            let mut permits = vec![first];
            while let Ok(permit) = slots.clone().try_acquire_owned() {
                permits.push(permit);
            }

            let pulled = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                pulled = source.pull(permits.len()) => pulled,
            };
            match pulled {
                Ok(Pulled::Requested) => {}
                Ok(Pulled::Bound) => {
                    self.health.succeeded();
                    retries.reset();
                }
                Ok(Pulled::Finished) => break,
                Err(error) => {
                    self.health.failed();
                    tracing::warn!(message = "Cannot pull; retrying.", consumer = name, %error);
                    drop(permits);
                    if retries.pause(shutdown).await {
                        break;
                    }
                    continue;
                }
            }

            // Messages of this pull arrive one by one while it is open; each
            // starts as soon as it arrives, with one of the permits. A permit
            // the pull does not use goes back to the pool when dropped.
            while let Some(permit) = permits.pop() {
                let next = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => break 'pull,
                    next = source.next() => next,
                };
                match next {
                    Some(Ok(message)) => {
                        self.health.succeeded();
                        retries.reset();
                        let work = handle(message, release.clone());
                        handlers.spawn(async move {
                            work.await;
                            drop(permit);
                        });
                    }
                    Some(Err(error)) => {
                        self.health.failed();
                        tracing::warn!(message = "Pull failed; retrying.", consumer = name, %error);
                        drop(permit);
                        permits.clear();
                        if retries.pause(shutdown).await {
                            break 'pull;
                        }
                    }
                    // Expired cleanly, or to be renewed.
                    None => {
                        self.health.succeeded();
                        retries.reset();
                        break;
                    }
                }
                reap(&mut handlers, name);
            }
            reap(&mut handlers, name);
        }

        self.health.stopped();
        source.close().await;
        self.drain(handlers, release).await;
    }

    /// Lets the handlers finish within the grace, then releases them, then
    /// aborts what is left.
    async fn drain(&self, mut handlers: JoinSet<()>, release: CancellationToken) {
        let name = self.name.as_str();
        tracing::info!(
            message = "Stopped pulling; letting running handlers finish.",
            consumer = name,
            running = handlers.len(),
            grace = ?self.grace
        );
        let finished = match self.grace {
            Some(grace) => tokio::time::timeout(grace, join_all(&mut handlers, name))
                .await
                .is_ok(),
            None => {
                join_all(&mut handlers, name).await;
                true
            }
        };
        if finished {
            return;
        }
        tracing::warn!(
            message = "Shutdown grace elapsed; handing unfinished messages back.",
            consumer = name,
            running = handlers.len()
        );
        release.cancel();
        if tokio::time::timeout(self.release_grace, join_all(&mut handlers, name))
            .await
            .is_err()
        {
            // Unsettled messages are redelivered after their ack deadline.
            handlers.shutdown().await;
        }
    }
}

/// Collects finished handler tasks so the set does not grow. A handler
/// reports its own outcome; a panic here is a bug worth an error.
fn reap(handlers: &mut JoinSet<()>, name: &str) {
    while let Some(result) = handlers.try_join_next() {
        log_panic(result, name);
    }
}

async fn join_all(handlers: &mut JoinSet<()>, name: &str) {
    while let Some(result) = handlers.join_next().await {
        log_panic(result, name);
    }
}

fn log_panic(result: Result<(), tokio::task::JoinError>, name: &str) {
    if let Err(error) = result
        && error.is_panic()
    {
        tracing::error!(message = "A message handler panicked.", consumer = name, %error);
    }
}
