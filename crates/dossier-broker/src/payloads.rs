//! Job payloads too large to travel inside a job: the operations service
//! stores them in the [`PAYLOADS_OBJECT_STORE`](crate::PAYLOADS_OBJECT_STORE)
//! object store (chunked into small messages) *before* it publishes the job,
//! and the job carries a [`PayloadRef`] — the object's name, size and SHA-256
//! — instead of the bytes. The worker runtime loads and checks the payload
//! before its handler sees it. Writer and reader share this module, so they
//! agree on the name and the digest.
//!
//! The object is named after the operation, so an idempotent retry of an
//! accept re-puts the same bytes under the same name (the reference it then
//! publishes is identical) instead of storing a second copy.

use async_nats::jetstream::object_store::{self, ObjectStore};
use dossier_contracts::limits::INLINE_JOB_PAYLOAD_BYTES;
use dossier_contracts::v1::PayloadRef;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt as _;

/// Loading a payload failed.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// No such object: expired or deleted. Never comes back, so the job can
    /// never run.
    #[error("the job's payload `{object}` is not in the object store")]
    Missing {
        /// The object's name.
        object: String,
    },
    /// The stored bytes are not the ones the job refers to. Never heals.
    #[error("the job's payload `{object}` does not match its reference: {reason}")]
    Mismatch {
        /// The object's name.
        object: String,
        /// What differs.
        reason: String,
    },
    /// The object store could not be read now; another try may work.
    #[error("cannot read the job's payload `{object}`: {source}")]
    Unavailable {
        /// The object's name.
        object: String,
        /// Why.
        #[source]
        source: async_nats::Error,
    },
}

impl PayloadError {
    /// Whether the job can never get its payload (rather than not now).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, PayloadError::Unavailable { .. })
    }
}

/// The largest payload carried inline in a job, on a server whose
/// `max_payload` is `server_max_payload` (0: unknown): at most
/// [`INLINE_JOB_PAYLOAD_BYTES`], and at most half the server's limit, so
/// the job's other fields and headers always fit beside it.
pub fn inline_limit(server_max_payload: usize) -> usize {
    if server_max_payload > 0 {
        INLINE_JOB_PAYLOAD_BYTES.min(server_max_payload / 2)
    } else {
        INLINE_JOB_PAYLOAD_BYTES
    }
}

/// Hex SHA-256 of `bytes`, the digest a [`PayloadRef`] carries.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Stores `payload` as `object` (replacing an earlier object of that name,
/// which an idempotent retry wrote with the same bytes) and returns its
/// reference. Returns once every chunk is stored: the publish acks of the
/// chunks and of the object's metadata came back.
pub async fn store(
    store: &ObjectStore,
    object: &str,
    payload: &[u8],
) -> Result<PayloadRef, object_store::PutError> {
    let mut reader = payload;
    store.put(object, &mut reader).await?;
    Ok(PayloadRef {
        object: object.to_owned(),
        size: payload.len() as u64,
        sha256: sha256_hex(payload),
    })
}

/// Loads the payload `reference` points at and checks its size and digest.
pub async fn load(store: &ObjectStore, reference: &PayloadRef) -> Result<Vec<u8>, PayloadError> {
    let object = reference.object.clone();
    let mut reader = match store.get(&object).await {
        Ok(reader) => reader,
        Err(error)
            if matches!(
                error.kind(),
                object_store::GetErrorKind::NotFound | object_store::GetErrorKind::InvalidName
            ) =>
        {
            return Err(PayloadError::Missing { object });
        }
        Err(error) => {
            return Err(PayloadError::Unavailable {
                object,
                source: error.into(),
            });
        }
    };
    let mismatch = |reason: String| PayloadError::Mismatch {
        object: object.clone(),
        reason,
    };
    // The stored object says how long it is; refuse a wrong length before
    // reading it, and never read past the length the job expects.
    let stored = reader.info().size as u64;
    if stored != reference.size {
        return Err(mismatch(format!(
            "{stored} bytes stored, {} expected",
            reference.size
        )));
    }
    let capacity = usize::try_from(reference.size).map_err(|_| mismatch("too large".to_owned()))?;
    let mut bytes = Vec::with_capacity(capacity);
    (&mut reader)
        .take(reference.size)
        .read_to_end(&mut bytes)
        .await
        .map_err(|error| PayloadError::Unavailable {
            object: object.clone(),
            source: error.into(),
        })?;
    if bytes.len() as u64 != reference.size {
        return Err(mismatch(format!(
            "{} bytes read, {} expected",
            bytes.len(),
            reference.size
        )));
    }
    if sha256_hex(&bytes) != reference.sha256 {
        return Err(mismatch("SHA-256 differs".to_owned()));
    }
    Ok(bytes)
}
