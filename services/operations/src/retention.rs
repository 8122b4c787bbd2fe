//! Retention: every operation expires a fixed time after it was created
//! (`DOSSIER_OPERATION_RETENTION`, 30 days by default), and then all of it
//! goes.
//!
//! - **The record** carries `expires_at` (created_at + the retention at its
//!   creation) and every write of it (`records.rs`) sets a NATS per-message
//!   TTL up to that instant, so the broker deletes it on time whatever the
//!   service is doing. A write whose TTL would be zero is refused
//!   ([`Error::Gone`]): an event of an expired operation does not bring it
//!   back.
//! - **The rest** (a large result — `<id>.<run>`, the run the list index
//!   read from the record's result —, a stored payload, checkpoints, a
//!   cancellation marker) is deleted by the [`sweep`]er when the record's
//!   expiry marker appears: the bucket is configured to leave a delete
//!   marker when a TTL fires, every replica's list index watches the bucket,
//!   drops the id and hands it to its sweeper. Deletes are idempotent, so
//!   replicas sweeping the same id do no harm. Each store's own max age is
//!   the backstop for an id the sweeper missed (a replica down for longer
//!   than the marker lives).
//! - **Reads** answer [`Error::Gone`] (HTTP 410) for a record past its
//!   `expires_at` still awaiting its TTL, and for any id this tenant does not
//!   have whose UUIDv7 timestamp is older than the retention ([`id_expired`]).
//!   The second rule looks only at the id, never at whether another tenant
//!   has it, so it reveals nothing: a made-up old id is "gone" as well.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::object_store::DeleteErrorKind;
use dossier_contracts::v1::Operation;
use prost_types::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::Shared;
use crate::error::error_chain;
use crate::index::Removed;

/// Ids the list index saw removed, waiting for the sweeper. A full queue
/// drops ids (logged): the stores' max ages catch what the sweeper misses.
pub(crate) const SWEEP_QUEUE: usize = 4096;

/// When `record` expires: its `expires_at`, or for a record written before
/// expiry existed (or seeded from an event) its creation plus `retention`.
pub(crate) fn expires_at(record: &Operation, retention: Duration) -> Timestamp {
    if let Some(at) = record.expires_at {
        return at;
    }
    let created = record
        .created_at
        .and_then(|t| SystemTime::try_from(t).ok())
        .unwrap_or_else(SystemTime::now);
    Timestamp::from(created + retention)
}

/// Whether `record` has expired at `now`.
pub(crate) fn is_expired(record: &Operation, retention: Duration, now: SystemTime) -> bool {
    ttl(&expires_at(record, retention), now).is_none()
}

/// The TTL of a write at `now` of a record expiring at `expires_at`: whole
/// seconds, rounded up (JetStream's TTLs are seconds, at least one), or
/// `None` when it has expired.
pub(crate) fn ttl(expires_at: &Timestamp, now: SystemTime) -> Option<Duration> {
    let at = SystemTime::try_from(*expires_at).ok()?;
    let left = at.duration_since(now).ok().filter(|d| !d.is_zero())?;
    Some(Duration::from_secs(
        left.as_secs() + u64::from(left.subsec_nanos() > 0),
    ))
}

/// Whether `id`, which this tenant does not have, names an expired
/// operation: a UUIDv7 (every operation id is one) created longer than
/// `retention` before `now`. Another tenant's operation, or no operation at
/// all, with such an id gets the same answer.
pub(crate) fn id_expired(id: &Uuid, retention: Duration, now: SystemTime) -> bool {
    let Some(created) = id.get_timestamp() else {
        return false;
    };
    let (seconds, nanos) = created.to_unix();
    let created = SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos);
    created + retention <= now
}

/// Deletes what belongs to each removed operation, until `shutdown`.
pub(crate) async fn sweep(
    shared: Arc<Shared>,
    mut removed: mpsc::Receiver<Removed>,
    shutdown: CancellationToken,
) {
    loop {
        let gone = tokio::select! {
            _ = shutdown.cancelled() => return,
            gone = removed.recv() => match gone {
                Some(gone) => gone,
                None => return,
            },
        };
        sweep_one(&shared, gone).await;
    }
}

/// Deletes an expired operation's large result (`<id>.<run>`, as the index
/// knew it, and `<id>` from before runs were named), its payload, its
/// checkpoints and its cancellation marker. Failures are logged and left to
/// the stores' max ages.
async fn sweep_one(shared: &Shared, gone: Removed) {
    let topology = &shared.topology;
    let id = gone.id.to_string();
    let id = id.as_str();
    let run_result = gone.result_run.map(|run| format!("{id}.{run}"));
    let objects = [
        (&topology.results, Some(id), "result"),
        (&topology.results, run_result.as_deref(), "result"),
        (&topology.payloads, Some(id), "payload"),
    ];
    for (store, name, what) in objects {
        let Some(name) = name else { continue };
        match store.delete(name).await {
            Ok(()) => {
                tracing::debug!(message = "Deleted an expired operation's object.", operation_id = %id, what);
            }
            Err(e) if e.kind() == DeleteErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(message = "Cannot delete an expired operation's object.", operation_id = %id, what, error = %error_chain(&error));
            }
        }
    }
    // Purged from the buckets' streams, not deleted key by key: a
    // checkpoint key is `<operation id>.<name>`, so one filter finds them
    // all, and no delete marker is left behind.
    for (bucket, subject) in [
        (
            &topology.checkpoints,
            format!("$KV.{}.{id}.>", topology.checkpoints.name),
        ),
        (
            &topology.cancellations,
            format!("$KV.{}.{id}", topology.cancellations.name),
        ),
    ] {
        if let Err(error) = bucket.stream.purge().filter(subject).await {
            tracing::warn!(message = "Cannot purge an expired operation's keys.", operation_id = %id, bucket = %bucket.name, error = %error_chain(&error));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds_and_end_at_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let at = |secs: u64, nanos: u32| {
            Timestamp::from(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
        };
        assert_eq!(ttl(&at(1_010, 0), now), Some(Duration::from_secs(10)));
        assert_eq!(ttl(&at(1_000, 1), now), Some(Duration::from_secs(1)));
        assert_eq!(ttl(&at(1_000, 0), now), None);
        assert_eq!(ttl(&at(999, 0), now), None);
    }

    #[test]
    fn records_without_an_expiry_expire_a_retention_after_creation() {
        let created = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let record = Operation {
            created_at: Some(Timestamp::from(created)),
            ..Operation::default()
        };
        let retention = Duration::from_secs(60);
        assert!(!is_expired(
            &record,
            retention,
            created + Duration::from_secs(59)
        ));
        assert!(is_expired(&record, retention, created + retention));
        let kept = Operation {
            expires_at: Some(Timestamp::from(created + Duration::from_secs(600))),
            ..record
        };
        assert!(!is_expired(&kept, retention, created + retention));
    }

    #[test]
    fn only_v7_ids_older_than_the_retention_are_expired() {
        let retention = Duration::from_secs(60);
        let now = SystemTime::now();
        let fresh = Uuid::now_v7();
        assert!(!id_expired(&fresh, retention, now));
        assert!(id_expired(&fresh, retention, now + retention));
        assert!(!id_expired(
            &Uuid::new_v4(),
            retention,
            now + retention * 1000
        ));
    }
}
