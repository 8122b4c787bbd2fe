//! At most one live run per operation (SYSTEM.md invariant 11): a lease per
//! run in the `dossier_leases` bucket, and the finish mark that keeps a
//! finished operation from ever running again.
//!
//! JetStream alone cannot promise one run: a worker that stalls past its
//! ack deadline (a GC pause, a network stall, SIGSTOP) keeps running while
//! its job is delivered to another worker. So every run first takes the
//! operation's lease, an entry `<kind-slug>.<operation id>` written only by
//! revision (compare-and-set):
//!
//! - **Take.** A delivery takes the lease when the entry is missing,
//!   released (a delete marker) or held past its expiry. A delivery that
//!   finds it held and live does not run: it keeps its delivery (the job
//!   loop's in-progress heartbeats go on) and looks again until the holder
//!   finishes or its lease expires. It does not `Nak`: every delivery counts
//!   against `max_deliver`, and naks while a slow holder runs would end in
//!   the dead-letter path failing an operation that is still running.
//! - **Renew.** The holder renews by revision with every heartbeat
//!   (a third of `ack_wait`); the lease lasts `ack_wait` from the renewal's
//!   send. When it cannot renew within that time (its renewals failed, or
//!   it was stalled), or a renewal finds another revision (another run took
//!   over), the run is **lost**: the job loop drops its handler at once and
//!   publishes nothing more for it, not even a terminal event.
//! - **Commit.** A run ends by writing its terminal event *into* the entry
//!   by revision (`Finished` with the event), then publishing that event,
//!   then clearing the event from the entry. The compare-and-set is the one
//!   point where a run's outcome becomes the operation's: a run that lost
//!   its lease cannot commit, so the terminal status on the events stream is
//!   always the lease holder's, whatever order the projection sees events
//!   in. A delivery that finds a committed event not yet cleared publishes
//!   it again (same event id: JetStream drops the copy) instead of running.
//! - **Done.** The finish mark stays for the bucket's max age (the
//!   idempotency window plus the jobs' max age plus a day), so a redelivery
//!   or a job published again under a new message id is acknowledged
//!   without running.
//! - **Release.** A run that hands its job back (a retry, a shutdown)
//!   deletes the entry by revision, so the next delivery takes it at once.
//!
//! The entry's revision when a run took it is the run's fencing token
//! ([`RunLease::run`]): what a run writes outside the entry (result objects,
//! checkpoint parts) is named with it, so a stale run never overwrites the
//! holder's data, and the holder confirms its lease before such writes.
//!
//! Expiry is a wall-clock time in the value, compared with the reader's
//! clock: a worker whose clock runs ahead of the holder's by `d` may take a
//! lease `d` early. Even then only one run can commit (the commit is by
//! revision) and the old holder stops at its next renewal; hosts are kept
//! within milliseconds by NTP, far below `ack_wait`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::kv;
use bytes::Bytes;
use dossier_broker::lease::{Found, Held, Lease, State};
use dossier_contracts::v1::OperationEvent;
use dossier_contracts::{Kind, Status};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Tries to take a lease that keeps changing under us before giving up
/// for now (the caller looks again later).
const TAKE_TRIES: u32 = 3;

/// The leases of one kind's operations, for one worker.
#[derive(Clone)]
pub(crate) struct Leases {
    kv: kv::Store,
    kind: Kind,
    worker_id: Arc<str>,
    ttl: Duration,
}

/// A lease operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LeaseError {
    /// Another run holds the operation now, or this run's lease expired.
    #[error("the run lost its lease on the operation")]
    Lost,
    /// The bucket did not answer (the write may or may not have happened).
    #[error("cannot reach the leases bucket: {0}")]
    Broker(#[source] async_nats::Error),
    /// A cancellation was accepted while the run held the operation: it may
    /// commit only `cancelled`.
    #[error("a cancellation was accepted; the run may only end cancelled")]
    CancelRequested,
}

/// What a delivery found when it tried to take its operation's lease.
pub(crate) enum Acquired {
    /// The delivery's run holds the operation.
    Taken(Arc<RunLease>),
    /// Another run holds it, for about `remaining` more unless renewed.
    Held { remaining: Duration },
    /// The operation is finished. `event` is its committed terminal event
    /// when that may not be on the events stream yet; `revision` is the
    /// entry's, to clear the event once it is.
    Finished {
        status: String,
        event: Option<Box<OperationEvent>>,
        revision: u64,
    },
}

impl Leases {
    /// Leases in `kv` for `kind`'s operations, held by `worker_id` for
    /// `ttl` past each renewal.
    pub(crate) fn new(kv: kv::Store, kind: Kind, worker_id: Arc<str>, ttl: Duration) -> Self {
        Self {
            kv,
            kind,
            worker_id,
            ttl,
        }
    }

    /// Takes `operation_id`'s lease for a run of delivery `attempt`, unless
    /// another run holds it or the operation is finished. `cancel` is the
    /// run's cancellation token: tripped when the lease says a cancellation
    /// was accepted for the operation (now, or whenever the run finds out).
    pub(crate) async fn acquire(
        &self,
        operation_id: &str,
        attempt: u32,
        cancel: &CancellationToken,
    ) -> Result<Acquired, LeaseError> {
        let key = dossier_broker::lease_key(self.kind, operation_id);
        for _ in 0..TAKE_TRIES {
            let entry = self.kv.entry(key.as_str()).await.map_err(broker)?;
            let (found, _, expected) = dossier_broker::lease::read(entry.as_ref());
            // An expired hold is taken over with its cancellation flag: a
            // cancellation accepted while a dead run held the operation
            // still applies to the next run.
            let cancel_requested = match found {
                Found::Finished { status, event } => {
                    return Ok(Acquired::Finished {
                        status,
                        event,
                        revision: expected,
                    });
                }
                Found::Held {
                    remaining,
                    cancel_requested,
                } if remaining.is_zero() => cancel_requested,
                Found::Held { remaining, .. } => return Ok(Acquired::Held { remaining }),
                Found::Free => false,
            };
            let deadline = Instant::now() + self.ttl;
            // Never 0, the nonce of a finish mark.
            let nonce = uuid::Uuid::new_v4().as_u64_pair().0 | 1;
            let value = self.held(attempt, nonce, cancel_requested, self.ttl);
            match dossier_broker::lease::write_if(&self.kv, &key, value, expected).await {
                Ok(Some(revision)) => {
                    if cancel_requested {
                        cancel.cancel();
                    }
                    return Ok(Acquired::Taken(Arc::new(RunLease {
                        leases: self.clone(),
                        key,
                        attempt,
                        nonce,
                        run: revision,
                        state: tokio::sync::Mutex::new(Holding {
                            revision,
                            deadline,
                            cancel_requested,
                            ended: false,
                        }),
                        cancel: cancel.clone(),
                        lost: CancellationToken::new(),
                    })));
                }
                // Another delivery wrote first: look again.
                Ok(None) => {}
                Err(error) => return Err(LeaseError::Broker(error)),
            }
        }
        Ok(Acquired::Held {
            remaining: Duration::ZERO,
        })
    }

    /// Clears the committed event from a finished entry once it is on the
    /// events stream. Best effort: left there, it is only published again
    /// (and dropped as a duplicate) by a later delivery.
    pub(crate) async fn clear_event(&self, operation_id: &str, status: &str, revision: u64) {
        let key = dossier_broker::lease_key(self.kind, operation_id);
        let value = Lease::finished(&self.worker_id, 0, status, None).to_bytes();
        if let Err(error) = self.kv.update(key.as_str(), value, revision).await {
            tracing::debug!(message = "Cannot clear a published terminal event from its lease.", operation_id, %error);
        }
    }

    /// A hold for `ttl` from now (zero: an expired hold, which the next
    /// delivery takes at once with its cancellation flag).
    fn held(&self, attempt: u32, nonce: u64, cancel_requested: bool, ttl: Duration) -> Bytes {
        let expires_at = SystemTime::now() + ttl;
        Lease {
            worker_id: self.worker_id.to_string(),
            attempt,
            nonce,
            cancel_requested,
            state: Some(State::Held(Held {
                expires_at: Some(prost_types::Timestamp::from(expires_at)),
            })),
        }
        .to_bytes()
    }
}

fn broker(error: impl Into<async_nats::Error>) -> LeaseError {
    LeaseError::Broker(error.into())
}

/// One run's hold on its operation.
pub(crate) struct RunLease {
    leases: Leases,
    key: String,
    attempt: u32,
    /// Recognises this run's entry after the operations service rewrote it
    /// to request a cancellation.
    nonce: u64,
    run: u64,
    // A tokio mutex, held across the write: a renewal and a commit must not
    // race each other with the same revision (the loser would think the
    // lease lost).
    state: tokio::sync::Mutex<Holding>,
    /// The run's cancellation token, tripped when the entry says a
    /// cancellation was accepted.
    cancel: CancellationToken,
    lost: CancellationToken,
}

struct Holding {
    /// The entry's revision as this run last wrote or read it.
    revision: u64,
    /// When the lease runs out unless renewed, by this host's monotonic
    /// clock (measured from before the write that set it, so never later
    /// than the expiry other workers read).
    deadline: Instant,
    /// A cancellation was accepted: the run may end only as `cancelled`,
    /// and every rewrite of the hold keeps the flag.
    cancel_requested: bool,
    /// Committed or released: nothing more to renew.
    ended: bool,
}

/// Rewrites of the entry a run tolerates in one write (each a cancellation
/// request by the operations service; it makes one per operation, so a
/// second conflict in a row is already odd).
const REWRITE_TRIES: u32 = 3;

impl RunLease {
    /// The run's fencing token: the entry's revision when the run took it.
    /// Unique per run and larger for every later run.
    pub(crate) fn run(&self) -> u64 {
        self.run
    }

    /// Cancelled once the run has lost its lease.
    pub(crate) fn lost(&self) -> &CancellationToken {
        &self.lost
    }

    /// Renews the lease by revision: it lasts `ttl` from now.
    pub(crate) async fn renew(&self) -> Result<(), LeaseError> {
        let mut state = self.state.lock().await;
        self.check(&state)?;
        if state.ended {
            return Ok(());
        }
        let deadline = Instant::now() + self.leases.ttl;
        self.write(&mut state, |this, state| {
            Some(this.leases.held(
                this.attempt,
                this.nonce,
                state.cancel_requested,
                this.leases.ttl,
            ))
        })
        .await?;
        state.deadline = deadline;
        Ok(())
    }

    /// Renews the lease every `every` until the run ends; trips
    /// [`RunLease::lost`] and returns when the run loses it (another run
    /// took it, or no renewal got through within `ttl` of the last one).
    pub(crate) async fn keep(&self, every: Duration) {
        loop {
            let deadline = self.state.lock().await.deadline;
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = tokio::time::sleep_until(deadline) => break,
            }
            tokio::select! {
                renewed = self.renew() => match renewed {
                    Ok(()) => {}
                    Err(LeaseError::Lost) => break,
                    Err(error) => {
                        tracing::warn!(message = "Cannot renew a job's lease; trying again.", %error);
                    }
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        if !self.state.lock().await.ended {
            self.lost.cancel();
        }
    }

    /// Writes the run's terminal event into the lease by revision, the
    /// commit that makes it the operation's outcome. [`LeaseError::Lost`]
    /// when another run holds the operation, or this one's lease ran out;
    /// [`LeaseError::CancelRequested`] when a cancellation was accepted and
    /// `status` is not `cancelled` (the run must commit that instead).
    pub(crate) async fn commit(
        &self,
        event: &OperationEvent,
        status: &str,
    ) -> Result<u64, LeaseError> {
        let mut state = self.state.lock().await;
        self.check(&state)?;
        let cancelled = Status::Cancelled.as_str();
        let finished = Lease::finished(&self.leases.worker_id, self.attempt, status, Some(event));
        let value = finished.to_bytes();
        let revision = self
            .write(&mut state, |_, state| {
                if state.cancel_requested && status != cancelled {
                    None
                } else {
                    Some(value.clone())
                }
            })
            .await?;
        state.ended = true;
        Ok(revision)
    }

    /// Gives the lease up (the job is handed back to run again), so the next
    /// delivery takes it at once. Best effort: else it expires. A hold with
    /// an accepted cancellation is left expired instead of deleted, so the
    /// next run inherits the flag.
    pub(crate) async fn release(&self) {
        let mut state = self.state.lock().await;
        if state.ended || self.lost.is_cancelled() {
            return;
        }
        state.ended = true;
        let released = if state.cancel_requested {
            self.write(&mut state, |this, _| {
                Some(
                    this.leases
                        .held(this.attempt, this.nonce, true, Duration::ZERO),
                )
            })
            .await
            .map(drop)
        } else {
            self.leases
                .kv
                .delete_expect_revision(self.key.as_str(), Some(state.revision))
                .await
                .map_err(broker)
        };
        if let Err(error) = released {
            tracing::debug!(message = "Cannot release a job's lease; it will expire.", key = %self.key, %error);
        }
    }

    /// `Lost` when the run may no longer act for the operation.
    fn check(&self, state: &Holding) -> Result<(), LeaseError> {
        if self.lost.is_cancelled() || Instant::now() >= state.deadline {
            self.lost.cancel();
            return Err(LeaseError::Lost);
        }
        Ok(())
    }

    /// Writes the value `value` makes from the run's state, by revision.
    /// When the entry was rewritten meanwhile, reads it: still this run's
    /// hold (the operations service set the cancellation flag) → takes the
    /// flag and writes again; anything else → the run lost its lease.
    async fn write(
        &self,
        state: &mut Holding,
        value: impl Fn(&Self, &Holding) -> Option<Bytes>,
    ) -> Result<u64, LeaseError> {
        for _ in 0..REWRITE_TRIES {
            let Some(bytes) = value(self, state) else {
                return Err(LeaseError::CancelRequested);
            };
            match self
                .leases
                .kv
                .update(self.key.as_str(), bytes, state.revision)
                .await
            {
                Ok(revision) => {
                    state.revision = revision;
                    return Ok(revision);
                }
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    self.reread(state).await?;
                }
                Err(error) => return Err(LeaseError::Broker(error.into())),
            }
        }
        self.lost.cancel();
        Err(LeaseError::Lost)
    }

    /// After a conflict: adopts the entry if it is still this run's hold.
    async fn reread(&self, state: &mut Holding) -> Result<(), LeaseError> {
        let entry = self
            .leases
            .kv
            .entry(self.key.as_str())
            .await
            .map_err(broker)?;
        let (found, lease, revision) = dossier_broker::lease::read(entry.as_ref());
        match (found, lease) {
            (
                Found::Held {
                    cancel_requested, ..
                },
                Some(lease),
            ) if lease.nonce == self.nonce => {
                state.revision = revision;
                if cancel_requested && !state.cancel_requested {
                    state.cancel_requested = true;
                    tracing::info!(message = "Cancellation found on the job's lease.", key = %self.key);
                    self.cancel.cancel();
                }
                Ok(())
            }
            _ => {
                self.lost.cancel();
                Err(LeaseError::Lost)
            }
        }
    }
}
