//! A job's payload as the handler sees it: inline in the job, or loaded
//! from the payloads object store when the job carries a reference (see
//! `dossier_broker::payloads`). Either way the handler reads
//! `job.payload_json`.

use async_nats::jetstream::object_store::ObjectStore;
use dossier_broker::payloads::{self, PayloadError};
use dossier_contracts::v1::Job;

use crate::ErrorInfo;

/// Error code of a job whose stored payload is gone (expired or deleted).
pub const PAYLOAD_MISSING: &str = "payload_missing";
/// Error code of a job whose stored payload is not the one it refers to.
pub const PAYLOAD_CORRUPT: &str = "payload_corrupt";

/// Fills `job.payload_json` from the object store when the job refers to
/// its payload; a job with an inline payload is left as it is.
pub(crate) async fn resolve(store: &ObjectStore, job: &mut Job) -> Result<(), PayloadError> {
    if let Some(reference) = &job.payload_ref {
        job.payload_json = payloads::load(store, reference).await?;
    }
    Ok(())
}

/// What a job whose payload can never be loaded fails with.
pub(crate) fn failure(error: &PayloadError) -> ErrorInfo {
    let code = match error {
        PayloadError::Missing { .. } => PAYLOAD_MISSING,
        PayloadError::Mismatch { .. } | PayloadError::Unavailable { .. } => PAYLOAD_CORRUPT,
    };
    ErrorInfo::new(
        code,
        "The operation's stored request could not be read; submit it again.",
    )
}
