//! `cargo xtask bench` (or `bench all`): the whole stack against the
//! broker's own limits, in one run (issue 8; method in
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
//! Only the seeding of stored operations for the cost-growth step writes
//! records into the operations bucket directly (as terminal records of the
//! operations service's own type), then restarts the operations service so
//! its index rebuilds from them — and that rebuild is timed too.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use bytes::Bytes;
use dossier_contracts::v1::Operation;
use dossier_contracts::{Kind, Status, time_ext};
use futures::StreamExt as _;
use prost::Message as _;
use serde_json::{Value, json};

use super::baseline::{self, Axum, Raw};
use super::load::{self, Connection, MakeRequest, Outcome};
use super::stack::{self, Stack};
use super::{enrichment, report};
use crate::{cargo, directory, root, run_checked, target_dir};

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
    /// Stored operations of the cost-growth points.
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

/// One line of the table.
struct Row {
    figure: String,
    value: f64,
    unit: &'static str,
    baseline: Option<(f64, String)>,
    aim: Option<String>,
}

impl Row {
    fn new(figure: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            figure: figure.into(),
            value,
            unit,
            baseline: None,
            aim: None,
        }
    }

    fn against(mut self, value: f64, name: impl Into<String>) -> Row {
        self.baseline = Some((value, name.into()));
        self
    }

    fn aim(mut self, aim: impl Into<String>) -> Row {
        self.aim = Some(aim.into());
        self
    }

    fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .filter(|(b, _)| *b > 0.0)
            .map(|(b, _)| self.value / b)
    }
}

/// Everything measured, in table order, and the raw figures as JSON.
#[derive(Default)]
struct Results {
    rows: Vec<Row>,
    json: serde_json::Map<String, Value>,
}

impl Results {
    fn row(&mut self, row: Row) {
        eprintln!(
            "xtask: {}: {} {}{}",
            row.figure,
            number(row.value),
            row.unit,
            row.ratio()
                .map(|r| format!(" ({r:.3}× baseline)"))
                .unwrap_or_default()
        );
        self.rows.push(row);
    }

    fn set(&mut self, key: &str, value: Value) {
        self.json.insert(key.to_owned(), value);
    }
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        // The load generator and the baselines run in this process: as a
        // debug build they would cap every figure. Run again in release.
        eprintln!("xtask: building xtask in release for the load generator");
        run_checked(cargo().args(["build", "--release", "-p", "xtask"]))?;
        return run_checked(
            std::process::Command::new(target_dir().join("release").join("xtask"))
                .args(std::env::args_os().skip(1)),
        );
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
        eprintln!("xtask: enrichment (its own stack)");
        let json = enrichment::measure(&<enrichment::Args as clap::Parser>::parse_from([
            "enrichment",
        ]))?
        .0;
        let raw = json["raw"]["recordsPerSecond"].as_f64().unwrap_or(0.0);
        let stack = json["stack"]["recordsPerSecond"].as_f64().unwrap_or(0.0);
        results.row(
            Row::new(
                "enrichment: 10,000-record batch through the stack",
                stack,
                "records/s",
            )
            .against(raw, "raw matching in-process")
            .aim("≥ 0.5×"),
        );
        results.set("enrichment", json);
    }

    results.set("runSeconds", json!(started.elapsed().as_secs_f64()));
    write(&args, results)
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
        let serial = baseline::publish(&js, 3_000, 1).await?;
        let windowed = baseline::publish(&js, 100_000, args.window).await?;
        let kv = baseline::kv_get(&js, 10_000, 64, self.seconds).await?;
        let axum = Axum::start()?;
        let body = Bytes::from(json!({ "targetAccount": { "linkedinHandle": "x" } }).to_string());
        axum.load(64, Duration::from_secs(1), body.clone()).await?;
        let minimal = axum.load(64, self.seconds, body).await?;
        drop(axum);
        results.row(Row::new(
            "raw JetStream publish, one at a time",
            serial.rate(),
            "msgs/s",
        ));
        results.row(Row::new(
            "raw JetStream publish p50, one at a time",
            serial.ms(0.5),
            "ms",
        ));
        results.row(Row::new(
            format!("raw JetStream publish, {} in flight", args.window),
            windowed.rate(),
            "msgs/s",
        ));
        results.row(Row::new("raw KV get, 64 in flight", kv.rate(), "gets/s"));
        results.row(Row::new(
            "minimal axum handler, 64 connections",
            minimal.rate(),
            "req/s",
        ));
        results.set(
            "baselines",
            json!({
                "publishSerial": serial.json(),
                "publishWindowed": windowed.json(),
                "window": args.window,
                "kvGet": kv.json(),
                "axumMinimal": minimal.json(),
            }),
        );

        // 2. Accept. No worker runs: the jobs wait in the stream and are
        // purged afterwards, so the figure is the accept path alone.
        eprintln!("xtask: accept");
        let accept = self
            .accept(stack, args, &windowed, &serial, &minimal, results)
            .await?;

        // 3. Status reads of the operations just accepted.
        eprintln!("xtask: status reads");
        let reads = self.reads(&accept, &kv, results, "").await?;
        results.set("statusReads", reads.json());
        purge_jobs(&js).await?;

        // 4. End to end, with 1, 2 and 4 search-worker processes.
        let mut e2e = Vec::new();
        let mut rate = args.e2e_rate;
        let mut first_saturation = None;
        for &replicas in &args.replicas {
            eprintln!("xtask: end to end, {replicas} search-worker replica(s)");
            let names = self.start_workers(stack, &js, replicas).await?;
            let before = cpu_seconds(stack);
            let saturation = self.saturation(args.saturation_ops).await?;
            let (cores, total) = cores_used(&before, &cpu_seconds(stack), saturation.elapsed);
            results.row(Row::new(
                format!("end to end: CPU cores busy at saturation, {replicas} worker(s)"),
                total,
                "cores",
            ));
            let rate = *rate.get_or_insert((saturation.rate * 0.5).max(1.0));
            let fixed = self.fixed_rate(args.e2e_ops, rate).await?;
            let rss = rss(stack);
            for name in &names {
                stack.stop(name);
            }
            let base = *first_saturation.get_or_insert(saturation.rate);
            results.row(
                Row::new(
                    format!("end to end: completed search ops/s, {replicas} worker(s)"),
                    saturation.rate,
                    "ops/s",
                )
                .against(windowed.rate(), "windowed raw publish")
                .aim("≥ 0.05×"),
            );
            if replicas > 1 {
                results.row(
                    Row::new(
                        format!("end to end: scaling, {replicas} workers vs 1"),
                        saturation.rate / base,
                        "×",
                    )
                    .aim(format!("near {replicas}× until the cores saturate")),
                );
            }
            results.row(Row::new(
                format!("end to end p50, {replicas} worker(s), {rate:.0} ops/s offered"),
                fixed.ms(0.5),
                "ms",
            ));
            results.row(Row::new(
                format!("end to end p99, {replicas} worker(s), {rate:.0} ops/s offered"),
                fixed.ms(0.99),
                "ms",
            ));
            e2e.push(json!({
                "replicas": replicas,
                "saturation": saturation.json(),
                "coresAtSaturation": cores,
                "fixedRate": { "offeredPerSecond": rate, "latency": fixed.json() },
                "rssKiB": rss,
            }));
        }
        results.set("endToEnd", Value::Array(e2e));

        // 5. Cost growth.
        let mut growth = Vec::new();
        let rate = rate.unwrap_or(50.0);
        for &stored in &args.stored {
            eprintln!("xtask: cost growth at {stored} stored operations");
            growth.push(
                self.growth(stack, &js, args, stored, rate, &windowed, &kv, results)
                    .await?,
            );
        }
        results.set("costGrowth", Value::Array(growth));
        Ok(())
    }

    /// Closed loop at each concurrency, then open loop at shares of the
    /// saturating rate. Returns the ids of accepted operations.
    async fn accept(
        &self,
        stack: &Stack,
        args: &Args,
        windowed: &Raw,
        serial: &Raw,
        minimal: &Outcome,
        results: &mut Results,
    ) -> anyhow::Result<Vec<String>> {
        let make = self.search();
        load::closed(self.addr, 16, Duration::from_secs(1), make.clone(), 0).await?;
        let mut ids = Vec::new();
        let mut closed = Vec::new();
        let mut saturating: f64 = 0.0;
        for &c in &args.concurrency {
            let (before, at) = (cpu_seconds(stack), Instant::now());
            let outcome = load::closed(self.addr, c, self.seconds, make.clone(), 200).await?;
            let (cores, total) = cores_used(&before, &cpu_seconds(stack), at.elapsed());
            if c == 256 {
                results.row(Row::new(
                    format!("accept: CPU cores busy, {c} connections"),
                    total,
                    "cores",
                ));
            }
            ids.extend(accepted_ids(&outcome));
            saturating = saturating.max(outcome.rate());
            results.row(
                Row::new(
                    format!("accept: 202/s, {c} connection(s)"),
                    outcome.rate(),
                    "req/s",
                )
                .against(windowed.rate(), "windowed raw publish")
                .aim("≥ 0.25×"),
            );
            if c == 1 {
                results.row(
                    Row::new("accept p50, 1 connection", outcome.ms(0.5), "ms")
                        .against(serial.ms(0.5), "raw publish p50, one at a time"),
                );
            }
            results.row(Row::new(
                format!("accept p99, {c} connection(s)"),
                outcome.ms(0.99),
                "ms",
            ));
            results.row(Row::new(
                format!("accept p99.9, {c} connection(s)"),
                outcome.ms(0.999),
                "ms",
            ));
            if c == 64 {
                results.row(
                    Row::new(
                        "accept vs minimal axum, 64 connections",
                        outcome.rate(),
                        "req/s",
                    )
                    .against(minimal.rate(), "minimal axum handler"),
                );
            }
            closed.push(json!({ "connections": c, "latency": outcome.json(), "cores": cores }));
        }
        let mut open = Vec::new();
        for &share in &args.open_shares {
            let rate = saturating * share;
            let outcome = load::open(self.addr, 256, rate, self.seconds, make.clone()).await?;
            let aim = (share - 0.5).abs() < 1e-9;
            let mut row = Row::new(
                format!(
                    "accept p99, open loop at {:.0}% of saturation ({rate:.0}/s)",
                    share * 100.0
                ),
                outcome.ms(0.99),
                "ms",
            );
            if aim {
                row = row.aim("≤ 10 ms");
            }
            results.row(row);
            open.push(
                json!({ "share": share, "offeredPerSecond": rate, "latency": outcome.json() }),
            );
        }
        results.set(
            "accept",
            json!({ "closedLoop": closed, "openLoop": open, "saturatingPerSecond": saturating }),
        );
        anyhow::ensure!(!ids.is_empty(), "no operation was accepted");
        Ok(ids)
    }

    /// Closed-loop status reads of `ids` with 64 connections.
    async fn reads(
        &self,
        ids: &[String],
        kv: &Raw,
        results: &mut Results,
        suffix: &str,
    ) -> anyhow::Result<Outcome> {
        let make = self.status_reads(ids.to_vec());
        let outcome = load::closed(self.addr, 64, self.seconds, make, 0).await?;
        results.row(
            Row::new(
                format!("status reads/s, 64 connections{suffix}"),
                outcome.rate(),
                "req/s",
            )
            .against(kv.rate(), "raw KV get, 64 in flight")
            .aim("≥ 0.5×"),
        );
        if suffix.is_empty() {
            results.row(Row::new(
                "status read p50, 64 connections",
                outcome.ms(0.5),
                "ms",
            ));
            results.row(Row::new(
                "status read p99, 64 connections",
                outcome.ms(0.99),
                "ms",
            ));
        }
        Ok(outcome)
    }

    /// Starts `replicas` search-worker processes and waits until each has a
    /// pull request open on the jobs consumer (its directory is loaded).
    async fn start_workers(
        &self,
        stack: &mut Stack,
        js: &jetstream::Context,
        replicas: usize,
    ) -> anyhow::Result<Vec<String>> {
        // Pull requests of stopped workers expire within 5 s.
        wait_waiting(js, |n| n == 0, Duration::from_secs(30)).await?;
        let names: Vec<String> = (1..=replicas)
            .map(|i| format!("search-worker-{i}"))
            .collect();
        for name in &names {
            stack.add(
                name,
                "search-worker",
                &[("DOSSIER_DIRECTORY_FILES", self.directory.clone())],
            )?;
        }
        wait_waiting(js, |n| n >= replicas, Duration::from_secs(180)).await?;
        // Warm up every replica's caches and connections.
        self.fixed_rate(8 * replicas, 100.0).await?;
        Ok(names)
    }

    /// Submits `n` searches as fast as 32 connections are answered, then
    /// waits until every one is terminal: completed operations per second.
    async fn saturation(&self, n: usize) -> anyhow::Result<Saturation> {
        let started = Instant::now();
        let make = self.search();
        let next = Arc::new(AtomicUsize::new(0));
        let submitters = (0..32).map(|_| {
            let (make, next) = (make.clone(), next.clone());
            let addr = self.addr;
            tokio::spawn(async move {
                let mut connection = Connection::new(addr);
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let (status, body) = connection.send(make(i as u64)).await?;
                    anyhow::ensure!(status == 202, "search answered {status}");
                    ids.push((i, id_of(&body)?));
                }
                anyhow::Ok(ids)
            })
        });
        let mut ids = Vec::with_capacity(n);
        for part in futures::future::join_all(submitters).await {
            ids.extend(part.context("a submitter panicked")??);
        }
        let submitted = started.elapsed();
        ids.sort();
        let ids: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();
        // Jobs run roughly in submission order: wait for the last one, then
        // sweep the rest (almost all already terminal).
        let mut connection = Connection::new(self.addr);
        if let Some(last) = ids.last() {
            self.until_terminal(&mut connection, last).await?;
        }
        let addr = self.addr;
        let sweep = futures::stream::iter(ids.chunks(ids.len().div_ceil(16).max(1)).map(|chunk| {
            let chunk = chunk.to_vec();
            async move {
                let mut connection = Connection::new(addr);
                for id in &chunk {
                    self.until_terminal(&mut connection, id).await?;
                }
                anyhow::Ok(())
            }
        }))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
        for part in sweep {
            part?;
        }
        let elapsed = started.elapsed();
        Ok(Saturation {
            ops: n,
            submitted,
            elapsed,
            rate: n as f64 / elapsed.as_secs_f64().max(1e-9),
        })
    }

    /// Polls `id` until terminal; its terminal status.
    async fn until_terminal(
        &self,
        connection: &mut Connection,
        id: &str,
    ) -> anyhow::Result<String> {
        let request = load::request(
            "GET",
            &format!("/api/operations/{id}"),
            &format!("Bearer {}", self.key),
            None,
        );
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (status, body) = connection.send(request.clone()).await?;
            anyhow::ensure!(status == 200, "GET /api/operations/{id} answered {status}");
            let op: Value =
                serde_json::from_slice(&body).context("an operation that is not JSON")?;
            let state = op["status"].as_str().unwrap_or_default();
            if matches!(
                state,
                "succeeded" | "partial_success" | "failed" | "cancelled"
            ) {
                return Ok(state.to_owned());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "operation {id} not terminal after 300 s"
            );
            tokio::time::sleep(self.poll).await;
        }
    }

    /// `n` searches due at `rate` per second, each polled until terminal
    /// on its connection: latency from the 202 to the terminal status seen.
    async fn fixed_rate(&self, n: usize, rate: f64) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
        let next = Arc::new(AtomicUsize::new(0));
        let make = self.search();
        let parts = (0..128).map(|_| {
            let (make, next) = (make.clone(), next.clone());
            async move {
                let mut connection = Connection::new(self.addr);
                let mut latency = load::histogram()?;
                let mut failed = 0_u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    tokio::time::sleep_until((started + interval.mul_f64(i as f64)).into()).await;
                    let (status, body) = connection.send(make(i as u64)).await?;
                    anyhow::ensure!(status == 202, "search answered {status}");
                    let accepted = Instant::now();
                    let state = self.until_terminal(&mut connection, &id_of(&body)?).await?;
                    load::record(&mut latency, accepted.elapsed());
                    if state != "succeeded" {
                        failed += 1;
                    }
                }
                anyhow::Ok((latency, failed))
            }
        });
        let mut outcome = Outcome {
            latency: load::histogram()?,
            ok: 0,
            errors: 0,
            elapsed: Duration::ZERO,
            bodies: Vec::new(),
        };
        for part in futures::future::join_all(parts).await {
            let (latency, failed) = part?;
            outcome.ok += latency.len() - failed;
            outcome.errors += failed;
            outcome.latency.add(latency).context("merging histograms")?;
        }
        outcome.elapsed = started.elapsed();
        Ok(outcome)
    }

    /// One cost-growth point: seed up to `stored` operations, restart the
    /// operations service (timing its rebuild), then accept, status reads,
    /// list pages and end to end with one worker, and peak RSS.
    #[allow(clippy::too_many_arguments)]
    async fn growth(
        &self,
        stack: &mut Stack,
        js: &jetstream::Context,
        args: &Args,
        stored: u64,
        rate: f64,
        windowed: &Raw,
        kv: &Raw,
        results: &mut Results,
    ) -> anyhow::Result<Value> {
        let label = format!(" at {stored} stored");
        let before = stored_count(js).await?;
        let seeding = Instant::now();
        seed(js, stored.saturating_sub(before)).await?;
        let seeded = seeding.elapsed();

        let restarted = Instant::now();
        stack.restart_operations()?;
        let list = load::fixed(&self.key, "GET", "/api/operations?limit=20", None);
        let mut connection = Connection::new(self.addr);
        loop {
            if let Ok((status, _)) = connection.send(list(0)).await
                && status == 200
            {
                break;
            }
            anyhow::ensure!(
                restarted.elapsed() < Duration::from_secs(300),
                "the operations service did not list within 300 s of its restart"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rebuild = restarted.elapsed();
        results.row(Row::new(
            format!("operations restart → first list page{label}"),
            rebuild.as_secs_f64(),
            "s",
        ));

        let accept = load::closed(self.addr, 64, self.seconds, self.search(), 200).await?;
        results.row(
            Row::new(
                format!("accept: 202/s, 64 connections{label}"),
                accept.rate(),
                "req/s",
            )
            .against(windowed.rate(), "windowed raw publish"),
        );
        results.row(Row::new(
            format!("accept p99, 64 connections{label}"),
            accept.ms(0.99),
            "ms",
        ));
        let ids = accepted_ids(&accept);
        let reads = self.reads(&ids, kv, results, &label).await?;
        purge_jobs(js).await?;
        let pages = load::closed(self.addr, 16, self.seconds, list, 0).await?;
        results.row(Row::new(
            format!("list pages/s (20 per page), 16 connections{label}"),
            pages.rate(),
            "req/s",
        ));

        let names = self.start_workers(stack, js, 1).await?;
        let fixed = self.fixed_rate(args.e2e_ops / 2, rate).await?;
        let rss = rss(stack);
        for name in &names {
            stack.stop(name);
        }
        results.row(Row::new(
            format!("end to end p99, 1 worker, {rate:.0} ops/s{label}"),
            fixed.ms(0.99),
            "ms",
        ));
        for (name, kib) in rss.as_object().into_iter().flatten() {
            if let Some(peak) = kib["peakKiB"].as_f64() {
                results.row(Row::new(
                    format!("peak RSS {name}{label}"),
                    peak / 1024.0,
                    "MiB",
                ));
            }
        }
        Ok(json!({
            "stored": stored_count(js).await?,
            "target": stored,
            "seededSeconds": seeded.as_secs_f64(),
            "rebuildSeconds": rebuild.as_secs_f64(),
            "accept64": accept.json(),
            "statusReads64": reads.json(),
            "listPages16": pages.json(),
            "endToEnd1Worker": { "offeredPerSecond": rate, "latency": fixed.json() },
            "rssKiB": rss,
        }))
    }
}

/// What a saturation run measured.
struct Saturation {
    ops: usize,
    submitted: Duration,
    elapsed: Duration,
    rate: f64,
}

impl Saturation {
    fn json(&self) -> Value {
        json!({
            "ops": self.ops,
            "submittedSeconds": self.submitted.as_secs_f64(),
            "allTerminalSeconds": self.elapsed.as_secs_f64(),
            "completedPerSecond": self.rate,
        })
    }
}

fn id_of(body: &[u8]) -> anyhow::Result<String> {
    let v: Value = serde_json::from_slice(body).context("a 202 that is not JSON")?;
    v["id"]
        .as_str()
        .map(str::to_owned)
        .context("a 202 without an id")
}

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

/// Waits until the search jobs consumer's open pull requests satisfy `ok`.
async fn wait_waiting(
    js: &jetstream::Context,
    ok: impl Fn(usize) -> bool,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut consumer: jetstream::consumer::Consumer<jetstream::consumer::pull::Config> = js
        .get_consumer_from_stream(
            dossier_broker::job_consumer(Kind::SearchPeople),
            dossier_broker::JOBS_STREAM,
        )
        .await
        .context("reading the search jobs consumer")?;
    loop {
        let waiting = consumer.info().await.context("consumer info")?.num_waiting;
        if ok(waiting) {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "search workers: {waiting} pull requests after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Operations in the bucket (one message per key: the bucket keeps no history).
async fn stored_count(js: &jetstream::Context) -> anyhow::Result<u64> {
    let mut stream = js
        .get_stream(format!("KV_{}", dossier_broker::OPERATIONS_BUCKET))
        .await
        .context("reading the operations bucket's stream")?;
    Ok(stream.info().await.context("stream info")?.state.messages)
}

/// Writes `n` terminal search operations of tenant `bench` into the
/// operations bucket, 4,096 puts in flight.
async fn seed(js: &jetstream::Context, n: u64) -> anyhow::Result<()> {
    let subject = |id: &str| format!("$KV.{}.{id}", dossier_broker::OPERATIONS_BUCKET);
    let now = time_ext::now();
    let mut pending = futures::stream::FuturesUnordered::new();
    for _ in 0..n {
        let id = uuid::Uuid::now_v7().to_string();
        let record = Operation {
            id: id.clone(),
            tenant_id: "bench".to_owned(),
            kind: Kind::SearchPeople.to_proto() as i32,
            status: Status::Succeeded.to_proto() as i32,
            progress: Some(100),
            created_at: Some(now),
            updated_at: Some(now),
            started_at: Some(now),
            completed_at: Some(now),
            request_id: uuid::Uuid::new_v4().to_string(),
            attempt: 1,
            ..Operation::default()
        };
        if pending.len() >= 4_096
            && let Some(ack) = pending.next().await
        {
            let _: async_nats::jetstream::publish::PublishAck = ack?;
        }
        let ack = js
            .publish(subject(&id), Bytes::from(record.encode_to_vec()))
            .await
            .context("seeding an operation")?;
        pending.push(ack.into_future());
    }
    while let Some(ack) = pending.next().await {
        ack.context("seeding an operation")?;
    }
    Ok(())
}

/// CPU seconds (user + system) used so far by every process of the stack
/// and by this one (the load generator), from `/proc/<pid>/stat`.
fn cpu_seconds(stack: &Stack) -> Vec<(String, f64)> {
    let mut pids = stack.pids();
    pids.push(("load generator (xtask)".to_owned(), std::process::id()));
    pids.into_iter()
        .map(|(name, pid)| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the command name (which may hold spaces): utime
            // and stime are the 12th and 13th, in clock ticks (100 per s).
            let ticks: f64 = stat
                .rsplit_once(')')
                .map(|(_, rest)| {
                    rest.split_whitespace()
                        .skip(11)
                        .take(2)
                        .filter_map(|v| v.parse::<f64>().ok())
                        .sum()
                })
                .unwrap_or(0.0);
            (name, ticks / 100.0)
        })
        .collect()
}

/// Cores used per process between two [`cpu_seconds`] samples `elapsed`
/// apart, as JSON, and their sum.
fn cores_used(
    before: &[(String, f64)],
    after: &[(String, f64)],
    elapsed: Duration,
) -> (Value, f64) {
    let mut out = serde_json::Map::new();
    let mut total = 0.0;
    for (name, seconds) in after {
        let start = before
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, s)| *s);
        let cores = (seconds - start) / elapsed.as_secs_f64().max(1e-9);
        total += cores;
        out.insert(name.clone(), json!((cores * 100.0).round() / 100.0));
    }
    (Value::Object(out), total)
}

/// Peak and current RSS of every process, from `/proc/<pid>/status`.
fn rss(stack: &Stack) -> Value {
    let mut out = serde_json::Map::new();
    for (name, pid) in stack.pids() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        };
        out.insert(
            name,
            json!({ "peakKiB": field("VmHWM:"), "currentKiB": field("VmRSS:") }),
        );
    }
    Value::Object(out)
}

/// Prints the table and writes `bench/results/stack.{json,md}`.
fn write(args: &Args, results: Results) -> anyhow::Result<()> {
    let mut table =
        String::from("| figure | value | baseline | ratio | aim |\n|---|---:|---|---:|---|\n");
    let mut rows = Vec::new();
    for row in &results.rows {
        let (baseline, ratio) = match (&row.baseline, row.ratio()) {
            (Some((value, name)), Some(ratio)) => (
                format!("{} ({name})", number(*value)),
                format!("{ratio:.3}"),
            ),
            _ => (String::new(), String::new()),
        };
        table.push_str(&format!(
            "| {} | {} {} | {baseline} | {ratio} | {} |\n",
            row.figure,
            number(row.value),
            row.unit,
            row.aim.as_deref().unwrap_or("")
        ));
        rows.push(json!({
            "figure": row.figure,
            "value": row.value,
            "unit": row.unit,
            "baseline": row.baseline.as_ref().map(|(v, _)| v),
            "baselineName": row.baseline.as_ref().map(|(_, n)| n),
            "ratio": row.ratio(),
            "aim": row.aim,
        }));
    }
    println!();
    println!("{table}");
    let machine = report::machine();
    let mut json = Value::Object(results.json);
    json["benchmark"] = json!("stack");
    json["machine"] = machine.clone();
    json["settings"] = json!({
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "openShares": args.open_shares,
        "window": args.window,
        "replicas": args.replicas,
        "saturationOps": args.saturation_ops,
        "e2eOps": args.e2e_ops,
        "pollMs": args.poll_ms,
        "stored": args.stored,
    });
    json["rows"] = Value::Array(rows);
    let markdown = format!(
        "# Stack benchmark\n\n\
         `cargo xtask bench` on {date}, commit {commit}: {cpu}, {cores} cores, {rustc}, \
         nats-server {nats} (file storage, fresh store). Release processes as \
         `cargo xtask up` runs them; load generator and baselines in the same \
         run on the same machine. The machine is shared (other builds may run \
         at the same time): read the ratios rather than the absolute figures. \
         Method and limits: `docs/performance.md`.\n\n{table}",
        date = machine["date"].as_str().unwrap_or("?"),
        commit = machine["commit"].as_str().unwrap_or("?"),
        cpu = machine["cpu"].as_str().unwrap_or("?"),
        cores = machine["cores"],
        rustc = machine["rustc"].as_str().unwrap_or("?"),
        nats = machine["natsServer"].as_str().unwrap_or("?"),
    );
    let (json_path, md_path) = report::write_latest(&args.name, &json, &markdown)?;
    println!("Wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}
