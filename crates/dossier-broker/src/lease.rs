//! The value of an operation's entry in [`crate::LEASES_BUCKET`], shared by
//! the workers (who take, renew and commit runs through it) and the
//! operations service (who decides cancellations and dead letters through
//! it). Every write is a compare-and-set on the entry's revision, so the
//! entry is the one place where an operation's fate is decided: whichever
//! write lands first wins, and every other writer re-reads and decides again.
//!
//! Protobuf-encoded, declared here rather than in `proto/`: only the
//! services on the broker read or write it, never a client.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::kv;
use bytes::Bytes;
use dossier_contracts::v1::OperationEvent;
use prost::Message as _;

/// One operation's lease entry.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lease {
    /// The worker process of the run (`operations` when the operations
    /// service finished the operation itself).
    #[prost(string, tag = "1")]
    pub worker_id: String,
    /// JetStream delivery attempt of the job that started the run.
    #[prost(uint32, tag = "2")]
    pub attempt: u32,
    /// A random number the run drew when it took the lease: how a run
    /// recognises its own entry after someone else rewrote it (a
    /// cancellation request keeps the holder and its nonce).
    #[prost(uint64, tag = "3")]
    pub nonce: u64,
    /// The operations service accepted a cancellation while this run held
    /// the operation: the run may end only as `cancelled`.
    #[prost(bool, tag = "4")]
    pub cancel_requested: bool,
    /// Held or finished.
    #[prost(oneof = "State", tags = "10, 11")]
    pub state: Option<State>,
}

/// What the entry says about the operation.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum State {
    /// A run holds the operation until `expires_at` unless it renews.
    #[prost(message, tag = "10")]
    Held(Held),
    /// The operation is finished: no delivery runs it again.
    #[prost(message, tag = "11")]
    Finished(Finished),
}

/// A live (or expired) hold.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Held {
    /// When the hold ends unless renewed, by the holder's clock.
    #[prost(message, optional, tag = "1")]
    pub expires_at: Option<prost_types::Timestamp>,
}

/// A finished operation.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Finished {
    /// Wire name of the terminal status (`succeeded`, `cancelled`, ...).
    #[prost(string, tag = "1")]
    pub status: String,
    /// The committed terminal event, until it is stored on the events
    /// stream (then cleared).
    #[prost(message, optional, boxed, tag = "2")]
    pub event: Option<Box<OperationEvent>>,
}

impl Lease {
    /// The encoded value.
    pub fn to_bytes(&self) -> Bytes {
        Bytes::from(self.encode_to_vec())
    }

    /// A finish mark with no holder.
    pub fn finished(
        worker_id: &str,
        attempt: u32,
        status: &str,
        event: Option<&OperationEvent>,
    ) -> Self {
        Self {
            worker_id: worker_id.to_owned(),
            attempt,
            nonce: 0,
            cancel_requested: false,
            state: Some(State::Finished(Finished {
                status: status.to_owned(),
                event: event.cloned().map(Box::new),
            })),
        }
    }
}

/// An entry as read, for the decisions of its readers.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// No entry, a deleted one (a run handed its job back), or one nothing
    /// can read: no run holds the operation.
    Free,
    /// A run holds the operation for `remaining` more unless it renews.
    Held {
        /// The hold's time left by this host's clock (zero: expired).
        remaining: Duration,
        /// A cancellation was accepted while it holds the operation.
        cancel_requested: bool,
    },
    /// The operation is finished with `status`.
    Finished {
        /// Wire name of the terminal status.
        status: String,
        /// Its terminal event when that may not be on the events stream yet.
        event: Option<Box<OperationEvent>>,
    },
}

/// Reads an entry: what it says, its decoded value (for a rewrite that keeps
/// the holder), and the revision a compare-and-set must name (0: none).
pub fn read(entry: Option<&kv::Entry>) -> (Found, Option<Lease>, u64) {
    let Some(entry) = entry else {
        return (Found::Free, None, 0);
    };
    if entry.operation != kv::Operation::Put {
        return (Found::Free, None, entry.revision);
    }
    let Ok(lease) = Lease::decode(entry.value.clone()) else {
        return (Found::Free, None, entry.revision);
    };
    let found = match &lease.state {
        Some(State::Held(held)) => Found::Held {
            remaining: remaining(held).unwrap_or(Duration::ZERO),
            cancel_requested: lease.cancel_requested,
        },
        Some(State::Finished(finished)) => Found::Finished {
            status: finished.status.clone(),
            event: finished.event.clone(),
        },
        None => Found::Free,
    };
    (found, Some(lease), entry.revision)
}

/// How long a hold has left by this host's clock; `None` when expired.
pub fn remaining(held: &Held) -> Option<Duration> {
    let expires_at = SystemTime::try_from(held.expires_at?).ok()?;
    expires_at
        .duration_since(SystemTime::now())
        .ok()
        .filter(|d| !d.is_zero())
}

/// Writes `value` at `key` if the entry is still at `revision` (0: there is
/// no entry). `Ok(None)` when another write landed first.
pub async fn write_if(
    kv: &kv::Store,
    key: &str,
    value: Bytes,
    revision: u64,
) -> Result<Option<u64>, async_nats::Error> {
    let written = if revision == 0 {
        kv.create(key, value).await.map_err(|e| match e.kind() {
            kv::CreateErrorKind::AlreadyExists => Ok(None),
            _ => Err(async_nats::Error::from(e)),
        })
    } else {
        kv.update(key, value, revision)
            .await
            .map_err(|e| match e.kind() {
                kv::UpdateErrorKind::WrongLastRevision => Ok(None),
                _ => Err(async_nats::Error::from(e)),
            })
    };
    match written {
        Ok(revision) => Ok(Some(revision)),
        Err(lost_or_error) => lost_or_error,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_in_the_past_has_no_time_left() {
        let past = Held {
            expires_at: Some((SystemTime::now() - Duration::from_secs(1)).into()),
        };
        assert_eq!(remaining(&past), None);
        let future = Held {
            expires_at: Some((SystemTime::now() + Duration::from_secs(60)).into()),
        };
        assert!(remaining(&future).unwrap() > Duration::from_secs(50));
    }

    #[test]
    fn the_cancel_flag_and_nonce_survive_encoding() {
        let lease = Lease {
            worker_id: "w".into(),
            attempt: 2,
            nonce: 7,
            cancel_requested: true,
            state: Some(State::Held(Held { expires_at: None })),
        };
        assert_eq!(Lease::decode(lease.to_bytes()).unwrap(), lease);
    }
}
