//! The directory's raw match rate, for `cargo xtask bench enrichment`: the
//! worker's own matcher over the same providers and records, in chunks with
//! the same concurrency, but no broker, no checkpoints, no HTTP. The bench
//! compares the whole stack against this.
//!
//! ```text
//! match_rate records --directory-files DIR/directory.jsonl --count 10000 --out records.json
//! match_rate raw --directory-files DIR/directory.jsonl --records records.json --runs 3
//! ```
//!
//! `records` writes a deterministic batch body (`{"records": [...]}`) drawn
//! from the directory: 40% by email (some upper-cased), 20% by LinkedIn URL
//! in mixed forms, 25% by name and company, 15% nobody knows. `raw` prints
//! one JSON object with the timings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser as _;
use dossier_contracts::api::{EnrichmentBatchRequest, PersonRecord, Validate as _};
use dossier_directory::{LocalDirectory, LocalDirectoryConfig, Person, ProvidersConfig};
use dossier_targeting::matching::{CompanyCache, EnrichedRecord, Matcher};
use enrichment_worker::checkpoint::Counts;
use futures::StreamExt as _;
use serde_json::json;

#[derive(clap::Parser)]
enum Command {
    /// Write a batch of records drawn from the directory.
    Records {
        #[command(flatten)]
        providers: ProvidersConfig,
        /// Records in the batch.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Where to write the batch body.
        #[arg(long)]
        out: PathBuf,
    },
    /// Time the matcher over a batch, without the stack.
    Raw {
        #[command(flatten)]
        providers: ProvidersConfig,
        /// The batch body `records` wrote.
        #[arg(long)]
        records: PathBuf,
        /// Timed runs (the median is reported).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Records per chunk, as the worker's `--enrich-chunk-size`.
        #[arg(long, default_value_t = 250)]
        chunk_size: usize,
        /// Records at once, as the worker's `--enrich-concurrency`.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Command::parse() {
        Command::Records {
            providers,
            count,
            out,
        } => write_records(&providers, count, &out),
        Command::Raw {
            providers,
            records,
            runs,
            chunk_size,
            concurrency,
        } => raw(&providers, &records, runs, chunk_size, concurrency).await,
    }
}

fn write_records(providers: &ProvidersConfig, count: usize, out: &PathBuf) -> anyhow::Result<()> {
    let dir = LocalDirectory::load(&LocalDirectoryConfig {
        name: "local".to_owned(),
        files: providers.directory_files.clone(),
    })
    .context("loading the directory")?;
    let people = dir.people();
    anyhow::ensure!(!people.is_empty(), "the directory has no people");
    let mut records = Vec::with_capacity(count);
    let mut i = 0usize;
    while records.len() < count {
        // A stride co-prime with any directory size spreads the picks.
        let person = &people[(i.wrapping_mul(7_919)) % people.len()];
        let mut record = record_for(i, person);
        record.external_id = Some(format!("bench-{i}"));
        if record.validate().is_empty() {
            records.push(record);
        }
        i += 1;
    }
    let body = EnrichmentBatchRequest::new(records);
    std::fs::write(out, serde_json::to_vec(&body)?)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

fn record_for(i: usize, p: &Person) -> PersonRecord {
    let by_name = || {
        let domain = p.email_domain();
        PersonRecord {
            full_name: Some(p.full_name.clone()),
            company_domain: domain.clone(),
            company_name: match domain {
                Some(_) => None,
                None => Some(p.current_company_text.clone()).filter(|t| !t.trim().is_empty()),
            },
            ..PersonRecord::default()
        }
    };
    let by_linkedin = |i: usize| {
        p.profile_handle().map(|handle| PersonRecord {
            linkedin_url: Some(match i % 3 {
                0 => format!("https://www.linkedin.com/in/{handle}/"),
                1 => format!("linkedin.com/in/{handle}"),
                _ => format!("http://uk.linkedin.com/in/{handle}?trk=people-guest"),
            }),
            ..PersonRecord::default()
        })
    };
    match i % 20 {
        0..8 => match &p.email {
            Some(email) => PersonRecord {
                email: Some(if i.is_multiple_of(3) {
                    email.to_uppercase()
                } else {
                    email.clone()
                }),
                ..PersonRecord::default()
            },
            None => by_linkedin(i).unwrap_or_else(by_name),
        },
        8..12 => by_linkedin(i).unwrap_or_else(by_name),
        12..17 => by_name(),
        _ if i.is_multiple_of(2) => PersonRecord {
            email: Some(format!("nobody{i}@unknown-{i}.example")),
            ..PersonRecord::default()
        },
        _ => PersonRecord {
            full_name: Some(format!("Nobody Known{i}")),
            company_name: Some("Nowhere Widgets".to_owned()),
            ..PersonRecord::default()
        },
    }
}

async fn raw(
    providers: &ProvidersConfig,
    records: &PathBuf,
    runs: usize,
    chunk_size: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let body: EnrichmentBatchRequest = serde_json::from_slice(
        &std::fs::read(records).with_context(|| format!("reading {}", records.display()))?,
    )?;
    let loaded = Instant::now();
    let matcher = Arc::new(Matcher::new(providers.build()?));
    let load_seconds = loaded.elapsed().as_secs_f64();
    let chunk_size = chunk_size.max(1);
    let concurrency = concurrency.max(1);

    let mut seconds = Vec::with_capacity(runs);
    let mut counts = Counts::default();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        // A fresh cache per run, as the worker has per job.
        let cache = CompanyCache::default();
        let mut results: Vec<EnrichedRecord> = Vec::with_capacity(body.records.len());
        for chunk in body.records.chunks(chunk_size) {
            let matcher = &matcher;
            let cache = &cache;
            let done: Vec<EnrichedRecord> = futures::stream::iter(0..chunk.len())
                .map(|i| async move { matcher.enrich(&chunk[i], cache).await })
                .buffered(concurrency)
                .collect()
                .await;
            results.extend(done);
        }
        seconds.push(started.elapsed().as_secs_f64());
        counts = Counts::of(&results);
    }
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let n = body.records.len();
    println!(
        "{}",
        json!({
            "records": n,
            "runs": seconds,
            "medianSeconds": median,
            "recordsPerSecond": n as f64 / median,
            "loadSeconds": load_seconds,
            "counts": counts,
            "chunkSize": chunk_size,
            "concurrency": concurrency,
        })
    );
    Ok(())
}
