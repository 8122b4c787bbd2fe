//! `cargo xtask bench` (or `bench all`): the whole stack against the
//! broker's own limits, in one run (issues 8 and 17; method in
//! `docs/performance.md`).
//!
//! 1. Builds the services in release and starts nats-server (pinned, file
//!    storage, fresh store), the operations service and the gateway as
//!    separate processes, as `cargo xtask up` does.
//! 2. Baselines on that broker: raw publish-with-ack one at a time and
//!    windowed, raw KV gets, a minimal axum handler.
//! 3. Accept (closed and open loop), status reads, end to end with 1, 2 and
//!    4 search-worker processes, cost growth at 10k/100k/1M stored
//!    operations with peak RSS per process, and the enrichment bench.
//! 4. Prints one table and writes `bench/results/stack.{json,md}`.
//!
//! Every stack figure goes through the public HTTP API, as users call it.
//! Only the seeding of stored operations for the cost-growth step calls the
//! operations service's gRPC API directly (`CreateOperation`, many at a
//! time), then restarts the operations service so its index rebuilds from
//! them — and that rebuild is timed too.
//!
//! This module starts the stack and runs the steps in order; each step is a
//! module: [`baselines`], [`accept`], [`reads`], [`e2e`], [`growth`],
//! [`enrichment`], and [`results`] prints the table and writes the files.

mod accept;
mod baselines;
mod e2e;
mod enrichment;
mod growth;
mod measure;
mod reads;
mod results;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use bytes::Bytes;
use serde_json::{Value, json};

use self::results::Results;
use super::load::{self, MakeRequest, Outcome};
use super::stack::{self, Stack};
use crate::{directory, root, target_dir};

#[derive(clap::Parser)]
pub(crate) struct Args {
    /// Seconds of each timed load point.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Client concurrencies of the closed-loop accept points.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64, 256])]
    concurrency: Vec<usize>,
    /// Open-loop accept rates, as shares of the saturating rate.
    #[arg(long, value_delimiter = ',', default_values_t = [0.25, 0.5, 0.75])]
    open_shares: Vec<f64>,
    /// In-flight acks of the windowed raw publish baseline: the most
    /// accepts the gateway has in flight at the highest client concurrency.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Search-worker replicas (separate processes) of the end-to-end points.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4])]
    replicas: Vec<usize>,
    /// Operations submitted as fast as accepted, for completed ops/s.
    #[arg(long, default_value_t = 2_000)]
    saturation_ops: usize,
    /// Operations submitted at a fixed rate, for 202 → terminal latency.
    #[arg(long, default_value_t = 400)]
    e2e_ops: usize,
    /// The fixed submission rate (ops/s); default half the 1-replica
    /// saturation measured just before.
    #[arg(long)]
    e2e_rate: Option<f64>,
    /// Milliseconds between two polls of `GET /api/operations/{id}`.
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
    /// Stored operations of the cost-growth points (seeded through the
    /// operations service's `CreateOperation`; fewer make a shorter run).
    #[arg(long, value_delimiter = ',', default_values_t = [10_000, 100_000, 1_000_000])]
    stored: Vec<u64>,
    /// Leave out the enrichment batch (its own stack, ~1 min).
    #[arg(long)]
    skip_enrichment: bool,
    /// Results file name under `bench/results/` (a trial or profiling run
    /// can leave the reference figures alone).
    #[arg(long, default_value = "stack")]
    name: String,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    // The load generator and the baselines run in this process.
    if cfg!(debug_assertions) {
        return super::rerun_in_release();
    }
    let started = Instant::now();
    eprintln!("xtask: building the services in release");
    stack::build_release(&[
        "operations",
        "gateway",
        "search-worker",
        "enrichment-worker",
    ])?;
    let bin_dir = target_dir().join("release");
    let directory = directory::ensure_default(&root().join(".dossier"))?;
    let handles = handles(&directory)?;
    let work = target_dir()
        .join("bench")
        .join(format!("stack-{}", std::process::id()));

    let mut results = Results::default();
    {
        eprintln!("xtask: starting nats-server, operations and gateway");
        let mut stack = Stack::start(&bin_dir, &work, &[])?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let bench = Bench {
            addr: stack
                .base
                .trim_start_matches("http://")
                .parse()
                .context("the gateway's address")?,
            key: stack.key.clone(),
            handles,
            directory: directory.to_string_lossy().into_owned(),
            poll: Duration::from_millis(args.poll_ms),
            seconds: Duration::from_secs(args.seconds),
        };
        let outcome = runtime.block_on(bench.all(&mut stack, &args, &mut results));
        drop(stack);
        let _ = std::fs::remove_dir_all(&work);
        outcome?;
    }

    if !args.skip_enrichment {
        enrichment::measure(&mut results)?;
    }

    results.set("runSeconds", json!(started.elapsed().as_secs_f64()));
    results::write(&args, results)
}

/// What every step needs.
struct Bench {
    addr: SocketAddr,
    key: String,
    /// LinkedIn handles of companies in the directory, for search bodies.
    handles: Vec<String>,
    directory: String,
    poll: Duration,
    seconds: Duration,
}

/// The first companies' LinkedIn handles in the demo directory.
fn handles(directory: &std::path::Path) -> anyhow::Result<Vec<String>> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(directory)
        .with_context(|| format!("opening {}", directory.display()))?;
    let handles: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .take(2_000)
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .filter(|v| v["type"] == "company")
        .filter_map(|v| v["linkedinHandle"].as_str().map(str::to_owned))
        .collect();
    anyhow::ensure!(
        !handles.is_empty(),
        "no company handles in {}",
        directory.display()
    );
    Ok(handles)
}

impl Bench {
    /// The `i`-th search request: a target account from the directory.
    fn search(&self) -> MakeRequest {
        let handles = self.handles.clone();
        let auth = format!("Bearer {}", self.key);
        Arc::new(move |i| {
            let handle = &handles[usize::try_from(i).unwrap_or(0) % handles.len()];
            let body = json!({ "targetAccount": { "linkedinHandle": handle }, "limit": 25 });
            load::request(
                "POST",
                "/api/search/people",
                &auth,
                Some(Bytes::from(body.to_string())),
            )
        })
    }

    /// `GET /api/operations/{id}` over `ids` in turn.
    fn status_reads(&self, ids: Vec<String>) -> MakeRequest {
        let auth = format!("Bearer {}", self.key);
        Arc::new(move |i| {
            let id = &ids[usize::try_from(i).unwrap_or(0) % ids.len()];
            load::request("GET", &format!("/api/operations/{id}"), &auth, None)
        })
    }

    /// Steps 1 to 5 on the running stack, in order.
    async fn all(
        &self,
        stack: &mut Stack,
        args: &Args,
        results: &mut Results,
    ) -> anyhow::Result<()> {
        let client = async_nats::connect(&stack.nats_url)
            .await
            .context("connecting to nats-server")?;
        let js = jetstream::new(client);

        // 1. Baselines.
        eprintln!("xtask: baselines");
        let baselines = baselines::measure(&js, args.window, self.seconds, results).await?;

        // 2. Accept. No worker runs: the jobs wait in the stream and are
        // purged afterwards, so the figure is the accept path alone.
        eprintln!("xtask: accept");
        let accept = self.accept(stack, args, &baselines, results).await?;

        // 3. Status reads of the operations just accepted.
        eprintln!("xtask: status reads");
        let reads = self
            .reads(stack, &accept, &baselines.kv, results, "")
            .await?;
        results.set("statusReads", reads.json());
        purge_jobs(&js).await?;

        // 4. End to end, with 1, 2 and 4 search-worker processes.
        let rate = self
            .end_to_end(stack, &js, args, &baselines.windowed, results)
            .await?;

        // 5. Cost growth.
        let mut growth = Vec::new();
        let rate = rate.unwrap_or(50.0);
        for &stored in &args.stored {
            eprintln!("xtask: cost growth at {stored} stored operations");
            growth.push(
                self.growth(stack, &js, args, stored, rate, &baselines, results)
                    .await?,
            );
        }
        results.set("costGrowth", Value::Array(growth));
        Ok(())
    }
}

/// The id of the operation a 202 names.
fn id_of(body: &[u8]) -> anyhow::Result<String> {
    let v: Value = serde_json::from_slice(body).context("a 202 that is not JSON")?;
    v["id"]
        .as_str()
        .map(str::to_owned)
        .context("a 202 without an id")
}

/// The ids of the operations an accept run got a 202 for.
fn accepted_ids(outcome: &Outcome) -> Vec<String> {
    outcome
        .bodies
        .iter()
        .filter_map(|b| id_of(b).ok())
        .collect()
}

/// Empties the jobs stream (jobs accepted while no worker ran), so the next
/// step starts with no backlog.
async fn purge_jobs(js: &jetstream::Context) -> anyhow::Result<()> {
    js.get_stream(dossier_broker::JOBS_STREAM)
        .await
        .context("reading the jobs stream")?
        .purge()
        .await
        .context("purging the jobs stream")?;
    Ok(())
}
