//! `cargo xtask bench enrichment`: records per second of a 10,000-record
//! batch through the whole stack, accept → terminal, against the
//! directory's raw match rate measured in the same run.
//!
//! 1. Builds the services and the `match_rate` example in release.
//! 2. Draws the batch from the demo directory (`match_rate records`).
//! 3. Raw rate: the worker's matcher over the same records and providers,
//!    in-process, same chunking and concurrency (`match_rate raw`).
//! 4. Starts nats-server, operations, gateway and one enrichment worker as
//!    processes, waits until the worker answers a synchronous request, runs
//!    one warm-up batch and then `--runs` timed ones: each from the `POST`
//!    until a poll of `GET /api/operations/{id}` sees it terminal.
//! 5. Prints the table and writes it under `bench/results/`.
//!
//! Nothing here asserts a time: the figures are for people to read.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::report;
use super::stack::{self, Service, Stack};
use crate::{cargo, directory, root, run_checked, target_dir};

/// What the stack should reach, as a share of the raw rate.
const AIM: f64 = 0.5;

#[derive(clap::Parser)]
pub(crate) struct Args {
    /// Records in the batch (1-10,000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    records: u64,
    /// Timed batches through the stack, after one warm-up; the median counts.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    runs: u64,
    /// Directory file(s), comma separated (default: the demo directory of
    /// `cargo xtask up`, generated on first use).
    #[arg(long)]
    directory: Option<String>,
    /// Milliseconds between two polls of a running operation.
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
}

/// One batch through the stack.
struct Run {
    /// `POST` → terminal status seen by a poll.
    total: Duration,
    /// `POST` → `202`.
    accept: Duration,
    /// `createdAt` → `startedAt` (server clocks).
    queued: Duration,
    /// `startedAt` → `completedAt` (server clocks).
    processing: Duration,
    /// `completedAt` → the poll that saw it.
    observed: Duration,
    status: String,
    counts: Value,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let (json, markdown, table) = measure(&args)?;
    println!();
    println!("{table}");
    let (json_path, md_path) = report::write("enrichment", &json, &markdown)?;
    println!("Wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

/// Runs the benchmark: its JSON, its Markdown report and its table.
pub(crate) fn measure(args: &Args) -> anyhow::Result<(Value, String, String)> {
    let n = usize::try_from(args.records).unwrap_or(10_000);
    eprintln!("xtask: building the services and match_rate in release");
    stack::build_release(&["operations", "gateway", "enrichment-worker"])?;
    run_checked(cargo().args([
        "build",
        "--release",
        "-p",
        "enrichment-worker",
        "--example",
        "match_rate",
    ]))?;
    let bin_dir = target_dir().join("release");
    let match_rate = bin_dir.join("examples").join("match_rate");

    let directory = match &args.directory {
        Some(files) => files.clone(),
        None => directory::ensure_default(&root().join(".dossier"))?
            .to_string_lossy()
            .into_owned(),
    };
    let work = target_dir()
        .join("bench")
        .join(format!("enrichment-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let records_file = work.join("records.json");

    eprintln!("xtask: drawing {n} records from {directory}");
    run_checked(
        Command::new(&match_rate)
            .args(["records", "--directory-files", &directory, "--count"])
            .arg(n.to_string())
            .arg("--out")
            .arg(&records_file),
    )?;
    let body = std::fs::read(&records_file)?;

    eprintln!("xtask: measuring the raw match rate");
    let raw = raw_rate(&match_rate, &directory, &records_file)?;
    let raw_rate = raw["recordsPerSecond"].as_f64().unwrap_or(0.0);

    eprintln!("xtask: starting the stack");
    let stack = Stack::start(
        &bin_dir,
        &work.join("stack"),
        &[Service {
            package: "enrichment-worker",
            env: vec![("DOSSIER_DIRECTORY_FILES", directory.clone())],
        }],
    )?;
    let first: Value = serde_json::from_slice::<Value>(&body)?["records"][0].clone();
    wait_for_worker(&stack, &first)?;

    let poll = Duration::from_millis(args.poll_ms);
    eprintln!("xtask: warm-up batch");
    let warm_up = batch(&stack, &body, poll)?;
    let mut runs = Vec::new();
    for i in 0..args.runs {
        let run = batch(&stack, &body, poll)?;
        eprintln!(
            "xtask: run {}: {} in {:.3} s ({:.0} records/s)",
            i + 1,
            run.status,
            run.total.as_secs_f64(),
            n as f64 / run.total.as_secs_f64()
        );
        runs.push(run);
    }
    drop(stack);
    let _ = std::fs::remove_dir_all(&work);

    let mut by_total: Vec<&Run> = runs.iter().collect();
    by_total.sort_by_key(|r| r.total);
    let median = by_total[by_total.len() / 2];
    let stack_rate = n as f64 / median.total.as_secs_f64();
    let ratio = if raw_rate > 0.0 {
        stack_rate / raw_rate
    } else {
        0.0
    };

    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    let rows = vec![
        ("records per batch".to_owned(), n.to_string()),
        ("directory".to_owned(), directory.clone()),
        (
            "raw match rate (median of 3, in-process)".to_owned(),
            format!("{raw_rate:.0} records/s"),
        ),
        (
            format!("stack: accept → terminal (median of {})", runs.len()),
            format!("{:.3} s", median.total.as_secs_f64()),
        ),
        (
            "stack rate".to_owned(),
            format!("{stack_rate:.0} records/s"),
        ),
        (
            "stack / raw".to_owned(),
            format!(
                "{ratio:.2}× (aim ≥ {AIM}×: {})",
                if ratio >= AIM { "met" } else { "not met" }
            ),
        ),
        ("  accept (POST → 202)".to_owned(), ms(median.accept)),
        ("  queued (created → started)".to_owned(), ms(median.queued)),
        (
            "  worker (started → completed)".to_owned(),
            ms(median.processing),
        ),
        (
            "  seen (completed → poll with result)".to_owned(),
            ms(median.observed),
        ),
        (
            "warm-up batch".to_owned(),
            format!("{:.3} s", warm_up.total.as_secs_f64()),
        ),
        ("status".to_owned(), median.status.clone()),
        ("counts".to_owned(), median.counts.to_string()),
        ("raw counts".to_owned(), raw["counts"].to_string()),
    ];
    let table = report::table(&rows);

    let json = json!({
        "benchmark": "enrichment",
        "at": report::now_rfc3339(),
        "commit": report::commit(),
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "records": n,
        "directory": directory,
        "pollMs": args.poll_ms,
        "raw": raw,
        "stack": {
            "recordsPerSecond": stack_rate,
            "medianSeconds": median.total.as_secs_f64(),
            "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
            "warmUp": run_json(&warm_up),
        },
        "ratio": ratio,
        "aim": AIM,
    });
    let markdown = format!(
        "# Enrichment benchmark\n\n{}, commit {}, {} CPUs. A {n}-record \
         `enrichment.batch` through gateway, operations and one enrichment \
         worker (release processes, one nats-server), from the `POST` until a \
         poll every {} ms sees the operation terminal, against the worker's \
         matcher on the same records and directory in-process.\n\n{table}",
        json["at"].as_str().unwrap_or_default(),
        json["commit"].as_str().unwrap_or("?"),
        json["cpus"],
        args.poll_ms,
    );
    Ok((json, markdown, table))
}

fn raw_rate(match_rate: &Path, directory: &str, records: &Path) -> anyhow::Result<Value> {
    let output = Command::new(match_rate)
        .args(["raw", "--directory-files", directory, "--records"])
        .arg(records)
        .output()
        .context("running match_rate raw")?;
    anyhow::ensure!(
        output.status.success(),
        "match_rate raw failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).context("match_rate raw printed no JSON")
}

/// Waits until a worker answers synchronous enrichment (it subscribes once
/// its directory is loaded).
fn wait_for_worker(stack: &Stack, record: &Value) -> anyhow::Result<()> {
    let body = serde_json::to_vec(record)?;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (status, answer) = stack.call("POST", "/api/enrichment/person", Some(&body))?;
        if status == 200 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the enrichment worker did not answer within 180 s: {status} {answer}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One batch: `POST`, then polls until terminal.
fn batch(stack: &Stack, body: &[u8], poll: Duration) -> anyhow::Result<Run> {
    let started = Instant::now();
    let (status, accepted) = stack.call("POST", "/api/enrichment/batch", Some(body))?;
    let accept = started.elapsed();
    anyhow::ensure!(status == 202, "batch not accepted: {status} {accepted}");
    let id = accepted["id"]
        .as_str()
        .context("202 without an id")?
        .to_owned();
    let deadline = started + Duration::from_secs(600);
    loop {
        let (status, op) = stack.call("GET", &format!("/api/operations/{id}"), None)?;
        anyhow::ensure!(status == 200, "poll answered {status}: {op}");
        let state = op["status"].as_str().unwrap_or_default();
        if matches!(
            state,
            "succeeded" | "partial_success" | "failed" | "cancelled"
        ) {
            let total = started.elapsed();
            let at = |field: &str| {
                op[field].as_str().and_then(|t| {
                    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                        .ok()
                })
            };
            let between =
                |a: Option<time::OffsetDateTime>, b: Option<time::OffsetDateTime>| match (a, b) {
                    (Some(a), Some(b)) => Duration::try_from(b - a).unwrap_or_default(),
                    _ => Duration::ZERO,
                };
            let processing = between(at("startedAt"), at("completedAt"));
            let queued = between(at("createdAt"), at("startedAt"));
            return Ok(Run {
                total,
                accept,
                queued,
                processing,
                observed: total.saturating_sub(accept + queued + processing),
                status: state.to_owned(),
                counts: op["result"]["meta"]["counts"].clone(),
            });
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "operation {id} did not end within 600 s"
        );
        std::thread::sleep(poll);
    }
}

fn run_json(run: &Run) -> Value {
    json!({
        "seconds": run.total.as_secs_f64(),
        "acceptMs": run.accept.as_secs_f64() * 1000.0,
        "queuedMs": run.queued.as_secs_f64() * 1000.0,
        "processingMs": run.processing.as_secs_f64() * 1000.0,
        "observedMs": run.observed.as_secs_f64() * 1000.0,
        "status": run.status,
        "counts": run.counts,
    })
}
