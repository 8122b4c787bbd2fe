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

use async_nats::jetstream::kv;
use bytes::Bytes;
use dossier_contracts::v1::Operation;
use prost::Message as _;

use crate::error::Error;

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
}

impl Records {
    pub(crate) fn new(kv: kv::Store) -> Records {
        Records { kv }
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
                record: decode(id, &entry.value)?,
                revision: entry.revision,
            })),
            _ => Ok(None),
        }
    }

    /// Creates the record unless one exists. `Ok(None)`: it existed.
    pub(crate) async fn create(&self, record: &Operation) -> Result<Option<u64>, Error> {
        match self
            .kv
            .create(&record.id, Bytes::from(record.encode_to_vec()))
            .await
        {
            Ok(revision) => Ok(Some(revision)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(Error::broker("creating an operation record")(e.into())),
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
                Change::Write(next) => next,
            };
            let value = Bytes::from(next.encode_to_vec());
            let written = match &current {
                // `create` also succeeds over a deleted key; it fails when a
                // concurrent writer created the record first.
                None => match self.kv.create(id, value).await {
                    Ok(revision) => Some(revision),
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => None,
                    Err(e) => return Err(Error::broker("creating an operation record")(e.into())),
                },
                Some(current) => match self.kv.update(id, value, current.revision).await {
                    Ok(revision) => Some(revision),
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => None,
                    Err(e) => return Err(Error::broker("updating an operation record")(e.into())),
                },
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

/// Decodes a stored record.
pub(crate) fn decode(key: &str, value: &[u8]) -> Result<Operation, Error> {
    Operation::decode(value).map_err(|e| Error::Corrupt {
        what: "operation record",
        key: key.to_owned(),
        reason: e.to_string(),
    })
}
