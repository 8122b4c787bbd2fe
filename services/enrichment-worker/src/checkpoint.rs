//! Durable checkpoints of a batch: which chunks are finished, and their
//! results, in the `dossier_checkpoints` bucket.
//!
//! Keys (all under the operation's own prefix, see
//! `JobContext::checkpoint_key`):
//!
//! | key | value |
//! |---|---|
//! | `<op>.enrichment` | [`Progress`] as JSON: chunk size, and per finished chunk the run that wrote it, its parts and counts |
//! | `<op>.enrichment.chunk.<n>.<run>.<part>` | part `<part>` of chunk `<n>`'s results as run `<run>` wrote them: a slice of the JSON array's bytes |
//!
//! A chunk's results are written first, in parts of at most [`PART_BYTES`]
//! (a KV value must fit in one NATS message, 1 MiB by default), and only
//! then is the chunk added to the progress entry, by compare-and-set on its
//! revision. So a finished chunk in the progress entry always has its
//! results stored, and a worker that dies between the two writes only
//! leaves parts that no progress entry names.
//!
//! Parts are named by the run (`JobContext::run`, the fencing token of the
//! run's lease), and a run confirms its lease right before it writes a
//! chunk: a run that stalled past its lease while another took the job
//! over writes nothing, and even one that stalls between the confirmation
//! and its writes cannot overwrite the parts of a chunk another run
//! recorded — its own parts have other names, and its compare-and-set on
//! the progress entry fails once the other run has moved it. Entries expire
//! with the bucket (`DOSSIER_JOBS_MAX_AGE`).

use async_nats::jetstream::kv;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use dossier_targeting::matching::{EnrichedRecord, RecordStatus};

/// Largest part of a chunk's results in one KV value.
pub const PART_BYTES: usize = 256 * 1024;

/// Layout version of [`Progress`]; another version is ignored (started over).
const VERSION: u32 = 1;

/// Records per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// `matched` records.
    pub matched: usize,
    /// `not_found` records.
    pub not_found: usize,
    /// `error` records.
    pub error: usize,
    /// `invalid` records (set aside under `onInvalidRecord: skip`). Absent
    /// from checkpoints written before there were any: zero.
    #[serde(default)]
    pub invalid: usize,
}

impl Counts {
    /// Counts of `records`.
    pub fn of(records: &[EnrichedRecord]) -> Counts {
        let mut counts = Counts::default();
        for r in records {
            counts.add(r.status);
        }
        counts
    }

    /// Counts one more record.
    pub fn add(&mut self, status: RecordStatus) {
        match status {
            RecordStatus::Matched => self.matched += 1,
            RecordStatus::NotFound => self.not_found += 1,
            RecordStatus::Error => self.error += 1,
            RecordStatus::Invalid => self.invalid += 1,
        }
    }

    /// Adds another chunk's counts.
    pub fn merge(&mut self, other: Counts) {
        self.matched += other.matched;
        self.not_found += other.not_found;
        self.error += other.error;
        self.invalid += other.invalid;
    }

    /// All records counted.
    pub fn total(&self) -> usize {
        self.matched + self.not_found + self.error + self.invalid
    }
}

/// A finished chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChunkDone {
    /// The run that wrote its parts (`None`: a checkpoint from before runs
    /// named their parts, read from the unnamed keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
    /// How many KV values hold its results.
    pub parts: usize,
    /// Its records per status.
    pub counts: Counts,
}

/// What a batch has finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Layout version.
    pub version: u32,
    /// Records in the batch.
    pub total: usize,
    /// Records per chunk (fixed by the first run, whatever later runs are
    /// configured with, so chunk boundaries never move).
    pub chunk_size: usize,
    /// Finished chunks, in order.
    pub chunks: Vec<ChunkDone>,
}

impl Progress {
    fn new(total: usize, chunk_size: usize) -> Progress {
        Progress {
            version: VERSION,
            total,
            chunk_size,
            chunks: Vec::new(),
        }
    }

    /// Records of the finished chunks.
    pub fn records_done(&self) -> usize {
        (self.chunks.len() * self.chunk_size).min(self.total)
    }

    /// Counts of the finished chunks.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts::default();
        for c in &self.chunks {
            counts.merge(c.counts);
        }
        counts
    }
}

/// A checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The bucket did not answer.
    #[error("checkpoint store: {0}")]
    Broker(#[source] async_nats::Error),
    /// Another run of the same job moved the progress entry meanwhile.
    #[error("the checkpoint was changed by another run of the job")]
    Conflict,
    /// A chunk's results cannot be encoded.
    #[error("cannot encode a chunk's results: {0}")]
    Encode(#[source] serde_json::Error),
}

/// The checkpoints of one batch.
pub struct Checkpoints {
    kv: kv::Store,
    /// `<op>.enrichment`.
    key: String,
    /// The run writing chunks (its lease's fencing token).
    run: u64,
    /// Revision of the progress entry as last read or written; 0 when it
    /// does not exist.
    revision: u64,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints")
            .field("key", &self.key)
            .field("run", &self.run)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl Checkpoints {
    /// The checkpoints under `key` (`ctx.checkpoint_key("enrichment")`),
    /// written by run `run` (`ctx.run()`).
    pub fn new(kv: kv::Store, key: String, run: u64) -> Checkpoints {
        Checkpoints {
            kv,
            key,
            run,
            revision: 0,
        }
    }

    fn part_key(&self, chunk: usize, run: Option<u64>, part: usize) -> String {
        match run {
            Some(run) => format!("{}.chunk.{chunk}.{run}.{part}", self.key),
            None => format!("{}.chunk.{chunk}.{part}", self.key),
        }
    }

    /// The progress of an earlier run with its finished chunks' results, or a
    /// fresh start. An entry for another layout, another batch size, or
    /// with results that cannot be read back is logged and started over:
    /// redoing work is better than answering wrongly.
    pub async fn resume(
        &mut self,
        total: usize,
        chunk_size: usize,
    ) -> Result<(Progress, Vec<EnrichedRecord>), CheckpointError> {
        let entry = self
            .kv
            .entry(&self.key)
            .await
            .map_err(|e| CheckpointError::Broker(e.into()))?;
        // A deleted entry still has a revision to compare-and-set against.
        self.revision = entry.as_ref().map_or(0, |e| e.revision);
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok((Progress::new(total, chunk_size), Vec::new()));
        };
        let progress = match serde_json::from_slice::<Progress>(&entry.value) {
            Ok(p) if p.version == VERSION && p.total == total && p.chunk_size > 0 => p,
            Ok(_) | Err(_) => {
                tracing::warn!(
                    message = "Ignoring a checkpoint of another layout; starting over.",
                    key = %self.key
                );
                return Ok((Progress::new(total, chunk_size), Vec::new()));
            }
        };
        let mut results = Vec::with_capacity(progress.records_done());
        for (n, chunk) in progress.chunks.iter().enumerate() {
            match self.read_chunk(n, chunk).await? {
                Some(records) => results.extend(records),
                None => {
                    tracing::error!(
                        message = "A checkpointed chunk's results are missing; starting over.",
                        key = %self.key,
                        chunk = n
                    );
                    return Ok((Progress::new(total, progress.chunk_size), Vec::new()));
                }
            }
        }
        if results.len() != progress.records_done() {
            tracing::error!(
                message = "Checkpointed chunks do not add up; starting over.",
                key = %self.key,
                records = results.len(),
                expected = progress.records_done()
            );
            return Ok((Progress::new(total, progress.chunk_size), Vec::new()));
        }
        Ok((progress, results))
    }

    async fn read_chunk(
        &self,
        n: usize,
        chunk: &ChunkDone,
    ) -> Result<Option<Vec<EnrichedRecord>>, CheckpointError> {
        let mut json = Vec::new();
        for part in 0..chunk.parts {
            match self
                .kv
                .get(self.part_key(n, chunk.run, part))
                .await
                .map_err(|e| CheckpointError::Broker(e.into()))?
            {
                Some(bytes) => json.extend_from_slice(&bytes),
                None => return Ok(None),
            }
        }
        Ok(serde_json::from_slice(&json).ok())
    }

    /// Stores chunk `progress.chunks.len()`'s results under this run's
    /// names, then records it as finished. [`CheckpointError::Conflict`]
    /// when another run of the job moved the progress entry since this one
    /// read or wrote it. The caller confirms its lease first.
    pub async fn save_chunk(
        &mut self,
        progress: &mut Progress,
        records: &[EnrichedRecord],
    ) -> Result<(), CheckpointError> {
        let n = progress.chunks.len();
        let json = serde_json::to_vec(records).map_err(CheckpointError::Encode)?;
        let json = Bytes::from(json);
        let mut parts = 0;
        for start in (0..json.len().max(1)).step_by(PART_BYTES) {
            let end = (start + PART_BYTES).min(json.len());
            self.kv
                .put(
                    self.part_key(n, Some(self.run), parts),
                    json.slice(start..end),
                )
                .await
                .map_err(|e| CheckpointError::Broker(e.into()))?;
            parts += 1;
        }

        let mut next = progress.clone();
        next.chunks.push(ChunkDone {
            run: Some(self.run),
            parts,
            counts: Counts::of(records),
        });
        let value = Bytes::from(serde_json::to_vec(&next).map_err(CheckpointError::Encode)?);
        let written = if self.revision == 0 {
            self.kv.create(&self.key, value).await.map_err(|e| {
                if e.kind() == kv::CreateErrorKind::AlreadyExists {
                    CheckpointError::Conflict
                } else {
                    CheckpointError::Broker(e.into())
                }
            })?
        } else {
            self.kv
                .update(&self.key, value, self.revision)
                .await
                .map_err(|e| {
                    if e.kind() == kv::UpdateErrorKind::WrongLastRevision {
                        CheckpointError::Conflict
                    } else {
                        CheckpointError::Broker(e.into())
                    }
                })?
        };
        self.revision = written;
        *progress = next;
        Ok(())
    }
}
