//! The `enrichment.batch` job handler: records matched in chunks, each
//! finished chunk checkpointed before the next starts.
//!
//! # Runs and resumption
//!
//! A batch is cut into chunks of `chunk_size` records (fixed by the first
//! run). Within a chunk, up to `concurrency` records are matched at once;
//! results keep input order. When a chunk is done its results and counts go
//! to the checkpoint store ([`crate::checkpoint`]) and only then does the
//! next chunk start. A redelivered job (its worker died) reads the
//! checkpoint, keeps the finished chunks' results and continues with the
//! first unfinished chunk: only the chunk that was in flight is matched
//! again, so a provider sees each record at most once more than that chunk.
//!
//! # Progress
//!
//! Records done / total, reported after each record (the runtime publishes
//! at most one rise per `DOSSIER_PROGRESS_INTERVAL`) and re-reported every
//! half second while a chunk runs, so a stalled provider does not hide the
//! last count. Below 100 until the terminal status.
//!
//! # Outcome
//!
//! | records | status |
//! |---|---|
//! | none errored (invalid ones set aside included) | `succeeded` |
//! | some errored | `partial_success` (error `records_failed` with the counts) |
//! | all that were looked up errored | `failed` (error `providers_unavailable`) |
//! | cancelled | `cancelled`, the finished chunks as the partial result |
//!
//! A chunk in which *every* record failed because its providers were
//! unavailable is a provider outage, not 250 answers: it is not checkpointed
//! and the job is retried with backoff (the finished chunks stay), until
//! the last delivery, which records the errors.
//!
//! # Cancellation
//!
//! Checked between chunks, and while a chunk runs: the unfinished chunk is
//! dropped (its records are not in the result) and the job ends `cancelled`
//! with the finished chunks' records as its partial result, in the same
//! shape as a full result (`meta.complete` false).
//!
//! # Result
//!
//! `{ "data": [record, …], "meta": { "total", "processed", "counts":
//! { "matched", "notFound", "error", "invalid" }, "complete" } }`, records
//! in input order, each with its `index`; under `onInvalidRecord: skip` an
//! invalid record is in its place with `status: invalid` and its `errors`. Large results go to the object store (the
//! runtime does that) and clients read them in pages.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dossier_contracts::Kind;
use dossier_contracts::api::{BatchEntry, EnrichmentBatchRequest};
use dossier_contracts::v1::Job;
use dossier_worker::{ErrorInfo, Handler, JobContext, JobError, Outcome, decode_payload};
use futures::StreamExt as _;
use serde_json::json;
use tracing::Instrument as _;

use crate::checkpoint::{CheckpointError, Checkpoints, Counts, Progress};
use dossier_targeting::matching::{
    CompanyCache, EnrichedRecord, Matcher, PROVIDERS_UNAVAILABLE, RecordStatus,
};

/// How often progress is re-reported while a chunk runs (see
/// [`report_progress`]).
const PROGRESS_TICK: Duration = Duration::from_millis(500);

/// Name of the batch's checkpoint (`<op>.enrichment`).
const CHECKPOINT_NAME: &str = "enrichment";

/// Runs `enrichment.batch` jobs.
#[derive(Debug, Clone)]
pub struct EnrichmentHandler {
    matcher: Arc<Matcher>,
    chunk_size: usize,
    concurrency: usize,
}

impl EnrichmentHandler {
    /// A handler matching with `matcher`, `chunk_size` records per chunk and
    /// `concurrency` records at once (both at least 1).
    pub fn new(matcher: Arc<Matcher>, chunk_size: usize, concurrency: usize) -> Self {
        Self {
            matcher,
            chunk_size: chunk_size.max(1),
            concurrency: concurrency.max(1),
        }
    }

    /// Matches one chunk (records `start..` of the batch), counting each
    /// finished record in `done` and reporting progress as it goes. A
    /// record set aside as invalid is answered `invalid` without a lookup,
    /// and counts as done like any other.
    async fn run_chunk(
        &self,
        ctx: &JobContext,
        records: &[BatchEntry<'_>],
        start: usize,
        total: usize,
        cache: &CompanyCache,
        done: &AtomicUsize,
    ) -> Vec<EnrichedRecord> {
        // Indices rather than `iter()`: a closure taking a borrowed record
        // makes the future's `Send` bound unprovable (a higher-ranked
        // lifetime limitation of the compiler).
        futures::stream::iter(0..records.len())
            .map(|i| async move {
                match records[i] {
                    BatchEntry::Valid(record) => {
                        let mut enriched = self.matcher.enrich(record, cache).await;
                        enriched.index = Some(start + i);
                        enriched
                    }
                    BatchEntry::Invalid(record) => EnrichedRecord::invalid(record),
                }
            })
            .buffered(self.concurrency)
            .enumerate()
            .then(|(i, enriched)| async move {
                done.store(start + i + 1, Ordering::Relaxed);
                // Cheap when not due: the runtime publishes at most one
                // progress event per interval, and only when it rose.
                ctx.progress(percent(start + i + 1, total)).await;
                enriched
            })
            .collect()
            .await
    }
}

/// Reports `done` every [`PROGRESS_TICK`], forever. Per-record reports are
/// dropped while the runtime's interval has not passed; when records then
/// stall (a slow provider), this publishes the last count within a tick
/// rather than when the next record finishes.
async fn report_progress(ctx: &JobContext, done: &AtomicUsize, total: usize) -> Infallible {
    let mut ticks = tokio::time::interval(PROGRESS_TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        ctx.progress(percent(done.load(Ordering::Relaxed), total))
            .await;
    }
}

/// `done / total` in whole percent, below 100 until the end (the terminal
/// status says 100).
fn percent(done: usize, total: usize) -> u32 {
    if total == 0 {
        return 0;
    }
    let p = (done.saturating_mul(100) / total).min(99);
    u32::try_from(p).unwrap_or(99)
}

/// Whether every record of a chunk that was looked up failed on its
/// providers (a plain function: a closure here makes the handler's future
/// fail the `Send` check, as in `run_chunk`).
fn is_outage(chunk: &[EnrichedRecord]) -> bool {
    let mut looked_up = 0;
    for record in chunk {
        if record.status == RecordStatus::Invalid {
            continue;
        }
        if !record.is_transient_error() {
            return false;
        }
        looked_up += 1;
    }
    looked_up > 0
}

fn checkpoint_failure(error: CheckpointError) -> JobError {
    match error {
        CheckpointError::Encode(e) => {
            JobError::permanent("result_encoding", format!("cannot encode results: {e}"))
        }
        other => JobError::retryable(
            "checkpoint_unavailable",
            format!("The batch's progress could not be saved: {other}."),
        ),
    }
}

/// The result payload of `results` out of a batch of `total`.
fn result_value(results: &[EnrichedRecord], total: usize) -> Result<serde_json::Value, JobError> {
    let counts = Counts::of(results);
    let data = serde_json::to_value(results).map_err(|e| {
        JobError::permanent("result_encoding", format!("cannot encode the result: {e}"))
    })?;
    Ok(json!({
        "data": data,
        "meta": {
            "total": total,
            "processed": results.len(),
            "counts": counts,
            "complete": results.len() == total,
        }
    }))
}

fn cancelled(results: &[EnrichedRecord], total: usize) -> Result<Outcome, JobError> {
    tracing::info!(
        message = "Batch cancelled; keeping the finished chunks.",
        records_done = results.len(),
        total
    );
    let partial = if results.is_empty() {
        None
    } else {
        Some(result_value(results, total)?)
    };
    Ok(Outcome::Cancelled {
        partial,
        progress: Some(percent(results.len(), total)),
    })
}

impl Handler for EnrichmentHandler {
    fn kind(&self) -> Kind {
        Kind::EnrichmentBatch
    }

    async fn handle(&self, ctx: JobContext, job: Job) -> Result<Outcome, JobError> {
        let request: EnrichmentBatchRequest = decode_payload(&job)?;
        // The batch as sent: invalid records (`onInvalidRecord: skip`) keep
        // their places, so indices, chunks and progress count every record.
        let records = request.entries();
        let total = records.len();
        let mut checkpoints = Checkpoints::new(
            ctx.checkpoints().clone(),
            ctx.checkpoint_key(CHECKPOINT_NAME),
            ctx.run(),
        );
        let (mut progress, mut results): (Progress, Vec<EnrichedRecord>) = checkpoints
            .resume(total, self.chunk_size)
            .await
            .map_err(checkpoint_failure)?;
        if !progress.chunks.is_empty() {
            tracing::info!(
                message = "Resuming the batch from its checkpoint.",
                operation_id = %ctx.operation_id(),
                attempt = ctx.attempt(),
                chunks_done = progress.chunks.len(),
                records_done = results.len(),
                total
            );
        }
        ctx.progress(percent(results.len(), total)).await;

        let cache = CompanyCache::default();
        let done = AtomicUsize::new(results.len());
        while results.len() < total {
            if ctx.is_cancelled() {
                return cancelled(&results, total);
            }
            let start = results.len();
            let end = (start + progress.chunk_size).min(total);
            let chunk = tokio::select! {
                biased;
                () = ctx.cancelled() => return cancelled(&results, total),
                chunk = self
                    .run_chunk(&ctx, &records[start..end], start, total, &cache, &done)
                    .instrument(ctx.step("match chunk")) => chunk,
                never = report_progress(&ctx, &done, total) => match never {},
            };

            // Invalid records were never looked up: an outage is every
            // record that was failing on its providers.
            let outage = is_outage(&chunk);
            if outage && !ctx.is_last_attempt() {
                tracing::warn!(
                    message = "Every record of a chunk failed on its providers; retrying the job later.",
                    operation_id = %ctx.operation_id(),
                    chunk = progress.chunks.len(),
                    attempt = ctx.attempt()
                );
                return Err(JobError::retryable(
                    PROVIDERS_UNAVAILABLE,
                    "The directory providers did not answer.",
                ));
            }
            // Only the run holding the job writes checkpoints.
            ctx.confirm_lease().await?;
            checkpoints
                .save_chunk(&mut progress, &chunk)
                .await
                .map_err(checkpoint_failure)?;
            tracing::debug!(
                message = "Chunk checkpointed.",
                operation_id = %ctx.operation_id(),
                chunk = progress.chunks.len() - 1,
                records_done = end
            );
            results.extend(chunk);
        }

        let counts = progress.counts();
        tracing::info!(
            message = "Batch finished.",
            operation_id = %ctx.operation_id(),
            total,
            matched = counts.matched,
            not_found = counts.not_found,
            error = counts.error,
            invalid = counts.invalid
        );
        if counts.error == 0 {
            return Ok(Outcome::Succeeded(result_value(&results, total)?));
        }
        let details = serde_json::to_value(counts).ok();
        // Every record that was looked up failed (a batch holds at least
        // one valid record: the gateway refuses one that does not).
        if counts.error == total - counts.invalid {
            return Err(JobError::permanent(
                PROVIDERS_UNAVAILABLE,
                "No record could be enriched: the directory providers did not answer.",
            )
            .with_details(json!({ "counts": details })));
        }
        Ok(Outcome::PartialSuccess {
            result: result_value(&results, total)?,
            error: Some(ErrorInfo {
                code: "records_failed".to_owned(),
                message: format!(
                    "{} of {total} records could not be enriched: a directory provider failed.",
                    counts.error
                ),
                details: Some(json!({ "counts": details })),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_stays_below_100_until_the_end() {
        assert_eq!(percent(0, 10), 0);
        assert_eq!(percent(5, 10), 50);
        assert_eq!(percent(9_999, 10_000), 99);
        assert_eq!(percent(10_000, 10_000), 99);
        assert_eq!(percent(1, 0), 0);
    }
}
