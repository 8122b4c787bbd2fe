//! Operation records in the `dossier_operations` KV bucket: the durable read
//! model, one key per operation id, the value a prost-encoded `Operation`.
//!
//! Every writer (the accept path, the projector of every replica, the
//! dead-letter handler, cancel) changes a record by compare-and-set on its
//! revision: read the entry, compute the new value, `update(key, value,
//! revision)`. When another writer got there first the update fails with
//! "wrong last revision" and [`Records::modify`] reads again and recomputes.
//! Because the rules in `merge.rs` only move a record up, recomputing on the
//! newer value is always correct, and no lock or leader is needed between
//! replicas.
//!
//! Every write carries a NATS per-message TTL up to the record's
//! `expires_at` (see `retention.rs`), which the KV client offers only for
//! creates; so writes are published here, as the client would, with the
//! TTL header beside the expected-revision header. A record past its expiry
//! is never written again ([`Error::Gone`]).

use std::time::{Duration, SystemTime};

use async_nats::header::{NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_TTL};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::{self, ErrorCode, kv};
use async_nats::{HeaderMap, HeaderValue};
use bytes::Bytes;
use dossier_contracts::v1::Operation;
use prost::Message as _;
use uuid::Uuid;

use crate::error::Error;
use crate::retention;

/// How often a compare-and-set is retried before giving up (the caller naks
/// or answers UNAVAILABLE). Contention on one operation is a handful of
/// events at once, so this is never reached in practice.
const MAX_CAS_ATTEMPTS: usize = 64;

/// A record and the KV revision it was read at.
#[derive(Debug, Clone)]
pub(crate) struct Versioned {
    pub(crate) record: Operation,
    pub(crate) revision: u64,
}

/// What [`Records::modify`] did.
// Short-lived return values; boxing the record would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Modified<T> {
    /// The record was written at `revision`.
    Written { record: Operation, revision: u64 },
    /// The closure chose not to write; it returned `T`.
    Unchanged(T),
}

/// What a change function decides for the current record.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Change<T> {
    /// Store this record.
    Write(Operation),
    /// Store nothing and return this.
    Keep(T),
}

/// Access to the operations bucket.
#[derive(Clone)]
pub(crate) struct Records {
    kv: kv::Store,
    jetstream: jetstream::Context,
    retention: Duration,
}

impl Records {
    /// Records in `kv`, written through `jetstream`; a record without an
    /// `expires_at` gets its creation plus `retention`.
    pub(crate) fn new(
        kv: kv::Store,
        jetstream: jetstream::Context,
        retention: Duration,
    ) -> Records {
        Records {
            kv,
            jetstream,
            retention,
        }
    }

    /// How long operations are kept after their creation.
    pub(crate) fn retention(&self) -> Duration {
        self.retention
    }

    /// The record of `id`, if any.
    pub(crate) async fn load(&self, id: &str) -> Result<Option<Versioned>, Error> {
        let entry = self
            .kv
            .entry(id)
            .await
            .map_err(|e| Error::broker("reading an operation record")(e.into()))?;
        match entry {
            Some(entry) if entry.operation == kv::Operation::Put => Ok(Some(Versioned {
                record: self.decode(id, &entry.value)?,
                revision: entry.revision,
            })),
            _ => Ok(None),
        }
    }

    /// Creates the record unless one exists. `Ok(None)`: it existed.
    pub(crate) async fn create(&self, record: &Operation) -> Result<Option<u64>, Error> {
        self.create_key(&record.id, self.with_expiry(record.clone()))
            .await
    }

    /// Writes `record` under `id` unless a record is there. Like the KV
    /// client's `create`, it also succeeds over a deleted or purged key.
    async fn create_key(&self, id: &str, record: Operation) -> Result<Option<u64>, Error> {
        if let Some(revision) = self.write(id, &record, 0).await? {
            return Ok(Some(revision));
        }
        let entry = self
            .kv
            .entry(id)
            .await
            .map_err(|e| Error::broker("reading an operation record")(e.into()))?;
        match entry {
            Some(entry) if entry.operation != kv::Operation::Put => {
                self.write(id, &record, entry.revision).await
            }
            _ => Ok(None),
        }
    }

    /// Decodes a stored record, with its `expires_at` set even when it
    /// was written before records had one.
    pub(crate) fn decode(&self, key: &str, value: &[u8]) -> Result<Operation, Error> {
        decode(key, value).map(|record| self.with_expiry(record))
    }

    /// `record` with its `expires_at` set.
    fn with_expiry(&self, mut record: Operation) -> Operation {
        record.expires_at = Some(retention::expires_at(&record, self.retention));
        record
    }

    /// Publishes `record` as the value of `id` if the key's last revision
    /// is `expected` (0: no value yet), with a TTL up to its expiry.
    /// `Ok(None)`: the key has moved on (compare-and-set lost).
    async fn write(
        &self,
        id: &str,
        record: &Operation,
        expected: u64,
    ) -> Result<Option<u64>, Error> {
        // The KV client checked keys; publishing directly, check here that
        // the key is an operation id, the only kind this bucket holds.
        if Uuid::parse_str(id).map(|u| u.to_string()).as_deref() != Ok(id) {
            return Err(Error::InvalidArgument(format!(
                "`{id}` is not an operation id"
            )));
        }
        let expires_at = retention::expires_at(record, self.retention);
        let ttl = retention::ttl(&expires_at, SystemTime::now()).ok_or(Error::Gone)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            HeaderValue::from(expected),
        );
        headers.insert(NATS_MESSAGE_TTL, HeaderValue::from(ttl.as_secs()));
        let prefix = self.kv.put_prefix.as_deref().unwrap_or(&self.kv.prefix);
        let stored = match self
            .jetstream
            .publish_with_headers(
                format!("{prefix}{id}"),
                headers,
                Bytes::from(record.encode_to_vec()),
            )
            .await
        {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match stored {
            Ok(ack) => Ok(Some(ack.sequence)),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Ok(None),
            // At R3 the leader refuses a write racing an in-flight write of
            // the same key with its own code: a lost compare-and-set too.
            Err(e) if lost_a_race(&e) => Ok(None),
            Err(e) => Err(Error::broker("writing an operation record")(e.into())),
        }
    }

    /// Reads the record of `id` (or `None`), lets `change` decide, and
    /// writes the result with compare-and-set, retrying on conflicts with a
    /// fresh read. `change` may run several times.
    pub(crate) async fn modify<T>(
        &self,
        id: &str,
        mut change: impl FnMut(Option<&Operation>) -> Result<Change<T>, Error>,
    ) -> Result<Modified<T>, Error> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.load(id).await?;
            let next = match change(current.as_ref().map(|v| &v.record))? {
                Change::Keep(value) => return Ok(Modified::Unchanged(value)),
                Change::Write(next) => self.with_expiry(next),
            };
            let written = match &current {
                // Fails when a concurrent writer created the record first.
                None => self.create_key(id, next.clone()).await?,
                Some(current) => self.write(id, &next, current.revision).await?,
            };
            if let Some(revision) = written {
                return Ok(Modified::Written {
                    record: next,
                    revision,
                });
            }
            tracing::debug!(message = "Record changed concurrently; retrying.", operation_id = %id);
        }
        Err(Error::Contention(id.to_owned()))
    }
}

/// Whether `error` is JetStream refusing a write because another write of
/// the same key won or is in flight (error codes 10071 and 10164): the
/// compare-and-set lost and is tried again on the newer value.
pub(crate) fn lost_a_race(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(js) = e.downcast_ref::<async_nats::jetstream::Error>() {
            let code = js.error_code();
            return code == ErrorCode::STREAM_WRONG_LAST_SEQUENCE
                || code == ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT;
        }
        cause = e.source();
    }
    false
}

/// Decodes a stored record.
pub(crate) fn decode(key: &str, value: &[u8]) -> Result<Operation, Error> {
    Operation::decode(value).map_err(|e| Error::Corrupt {
        what: "operation record",
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use dossier_testkit::{NatsCluster, TestBroker as _};

    use super::*;

    /// At R3 every one of many concurrent read-modify-writes of one record
    /// lands (none fails as a broker error) and none is lost. A replicated
    /// bucket refuses a write racing an in-flight write of the same key
    /// with its own error code; taken for a failure, it made projections
    /// nak and cancels answer 503.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_r3_concurrent_modifies_of_one_record_all_land() {
        const WRITERS: u32 = 8;
        const WRITES: u32 = 25;
        let cluster = NatsCluster::start().await;
        let js = async_nats::jetstream::new(cluster.client().await);
        let topology = dossier_broker::Topology::ensure(&js, &cluster.topology_config())
            .await
            .unwrap();
        let records = Records::new(
            topology.operations,
            js.clone(),
            Duration::from_secs(30 * 24 * 3600),
        );
        let id = Uuid::now_v7().to_string();
        let writers = (0..WRITERS).map(|_| {
            let (records, id) = (records.clone(), id.clone());
            tokio::spawn(async move {
                for _ in 0..WRITES {
                    records
                        .modify(&id, |current| {
                            let mut next = current.cloned().unwrap_or_else(|| Operation {
                                id: id.clone(),
                                created_at: Some(dossier_contracts::time_ext::now()),
                                ..Operation::default()
                            });
                            next.progress = Some(next.progress.unwrap_or(0) + 1);
                            Ok(Change::<()>::Write(next))
                        })
                        .await?;
                }
                Ok::<(), Error>(())
            })
        });
        for writer in writers.collect::<Vec<_>>() {
            writer.await.unwrap().unwrap();
        }
        let stored = records.load(&id).await.unwrap().unwrap();
        assert_eq!(stored.record.progress, Some(WRITERS * WRITES));
    }
}
