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
use dossier_contracts::Kind;
use dossier_contracts::v1::OperationEvent;
use prost::Message as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The value of a lease entry, protobuf-encoded. Declared here rather than
/// in `proto/`: only workers read or write it (like the checkpoints' own
/// layouts), and nothing else needs its generated code.
#[derive(Clone, PartialEq, prost::Message)]
struct Lease {
    /// The worker process of the run.
    #[prost(string, tag = "1")]
    worker_id: String,
    /// JetStream delivery attempt of the job that started the run.
    #[prost(uint32, tag = "2")]
    attempt: u32,
    #[prost(oneof = "State", tags = "10, 11")]
    state: Option<State>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum State {
    /// A run holds the operation until `expires_at` unless it renews.
    #[prost(message, tag = "10")]
    Held(Held),
    /// The operation is finished: no delivery runs it again.
    #[prost(message, tag = "11")]
    Finished(Finished),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Held {
    #[prost(message, optional, tag = "1")]
    expires_at: Option<prost_types::Timestamp>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Finished {
    /// Wire name of the terminal status (`succeeded`, `cancelled`, ...).
    #[prost(string, tag = "1")]
    status: String,
    /// The committed terminal event, until it is stored on the events
    /// stream (then cleared).
    #[prost(message, optional, boxed, tag = "2")]
    event: Option<Box<OperationEvent>>,
}

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
    /// another run holds it or the operation is finished.
    pub(crate) async fn acquire(
        &self,
        operation_id: &str,
        attempt: u32,
    ) -> Result<Acquired, LeaseError> {
        let key = dossier_broker::lease_key(self.kind, operation_id);
        for _ in 0..TAKE_TRIES {
            let entry = self.kv.entry(key.as_str()).await.map_err(broker)?;
            // The revision a take must find: none, or the entry's.
            let expected = match entry {
                None => 0,
                Some(entry) if entry.operation != kv::Operation::Put => entry.revision,
                Some(entry) => match Lease::decode(entry.value.clone()) {
                    Ok(Lease {
                        state: Some(State::Finished(finished)),
                        ..
                    }) => {
                        return Ok(Acquired::Finished {
                            status: finished.status,
                            event: finished.event,
                            revision: entry.revision,
                        });
                    }
                    Ok(Lease {
                        state: Some(State::Held(held)),
                        ..
                    }) => match remaining(&held) {
                        Some(remaining) => return Ok(Acquired::Held { remaining }),
                        None => entry.revision,
                    },
                    // Nothing this version understands: no run can be
                    // holding it, so it is taken over.
                    Ok(_) | Err(_) => {
                        tracing::warn!(
                            message = "Unreadable lease entry; taking it over.",
                            operation_id
                        );
                        entry.revision
                    }
                },
            };
            let deadline = Instant::now() + self.ttl;
            let value = self.held(attempt);
            match self.kv.update(key.as_str(), value, expected).await {
                Ok(revision) => {
                    return Ok(Acquired::Taken(Arc::new(RunLease {
                        leases: self.clone(),
                        key,
                        attempt,
                        run: revision,
                        state: tokio::sync::Mutex::new(Holding {
                            revision,
                            deadline,
                            ended: false,
                        }),
                        lost: CancellationToken::new(),
                    })));
                }
                // Another delivery wrote first: look again.
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {}
                Err(error) => return Err(LeaseError::Broker(error.into())),
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
        let value = self.finished(0, status, None);
        if let Err(error) = self.kv.update(key.as_str(), value, revision).await {
            tracing::debug!(message = "Cannot clear a published terminal event from its lease.", operation_id, %error);
        }
    }

    fn held(&self, attempt: u32) -> Bytes {
        let expires_at = SystemTime::now() + self.ttl;
        let lease = Lease {
            worker_id: self.worker_id.to_string(),
            attempt,
            state: Some(State::Held(Held {
                expires_at: Some(prost_types::Timestamp::from(expires_at)),
            })),
        };
        Bytes::from(lease.encode_to_vec())
    }

    fn finished(&self, attempt: u32, status: &str, event: Option<&OperationEvent>) -> Bytes {
        let lease = Lease {
            worker_id: self.worker_id.to_string(),
            attempt,
            state: Some(State::Finished(Finished {
                status: status.to_owned(),
                event: event.cloned().map(Box::new),
            })),
        };
        Bytes::from(lease.encode_to_vec())
    }
}

/// How long a held lease has left by this host's clock; `None` when expired.
fn remaining(held: &Held) -> Option<Duration> {
    let expires_at = SystemTime::try_from(held.expires_at?).ok()?;
    expires_at
        .duration_since(SystemTime::now())
        .ok()
        .filter(|d| !d.is_zero())
}

fn broker(error: impl Into<async_nats::Error>) -> LeaseError {
    LeaseError::Broker(error.into())
}

/// One run's hold on its operation.
pub(crate) struct RunLease {
    leases: Leases,
    key: String,
    attempt: u32,
    run: u64,
    // A tokio mutex, held across the write: a renewal and a commit must not
    // race each other with the same revision (the loser would think the
    // lease lost).
    state: tokio::sync::Mutex<Holding>,
    lost: CancellationToken,
}

struct Holding {
    /// The entry's revision as this run last wrote it.
    revision: u64,
    /// When the lease runs out unless renewed, by this host's monotonic
    /// clock (measured from before the write that set it, so never later
    /// than the expiry other workers read).
    deadline: Instant,
    /// Committed or released: nothing more to renew.
    ended: bool,
}

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
        let value = self.leases.held(self.attempt);
        state.revision = self.write(value, state.revision).await?;
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
    /// when another run holds the operation, or this one's lease ran out.
    pub(crate) async fn commit(
        &self,
        event: &OperationEvent,
        status: &str,
    ) -> Result<u64, LeaseError> {
        let mut state = self.state.lock().await;
        self.check(&state)?;
        let value = self.leases.finished(self.attempt, status, Some(event));
        let revision = self.write(value, state.revision).await?;
        state.revision = revision;
        state.ended = true;
        Ok(revision)
    }

    /// Gives the lease up (the job is handed back to run again), so the next
    /// delivery takes it at once. Best effort: else it expires.
    pub(crate) async fn release(&self) {
        let mut state = self.state.lock().await;
        if state.ended || self.lost.is_cancelled() {
            return;
        }
        state.ended = true;
        if let Err(error) = self
            .leases
            .kv
            .delete_expect_revision(self.key.as_str(), Some(state.revision))
            .await
        {
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

    async fn write(&self, value: Bytes, revision: u64) -> Result<u64, LeaseError> {
        match self
            .leases
            .kv
            .update(self.key.as_str(), value, revision)
            .await
        {
            Ok(revision) => Ok(revision),
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                self.lost.cancel();
                Err(LeaseError::Lost)
            }
            Err(error) => Err(LeaseError::Broker(error.into())),
        }
    }
}
