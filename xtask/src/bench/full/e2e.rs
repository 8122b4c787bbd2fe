//! Step 4: end to end with 1, 2 and 4 search-worker processes — completed
//! operations per second at saturation, CPU cores busy, and 202 → terminal
//! latency at a fixed rate — and the workers' start and the polling that
//! the cost-growth step reuses.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use dossier_contracts::Kind;
use futures::StreamExt as _;
use serde_json::{Value, json};

use super::measure::{CpuPerRequest, cores_used, cpu_seconds, rss};
use super::results::{Aim, Results, Row};
use super::{Args, Bench, id_of};
use crate::bench::baseline::Raw;
use crate::bench::load::{self, Connection, Outcome};
use crate::bench::stack::Stack;

/// Issue 17's aim: µs of CPU per completed search in all our processes
/// (gateway, operations, search workers).
const SEARCH_CPU_MICROS: f64 = 500.0;

impl Bench {
    /// The end-to-end points, one per replica count; returns the fixed
    /// rate they offered (`--e2e-rate`, else half the 1-replica
    /// saturation), if any point ran.
    pub(super) async fn end_to_end(
        &self,
        stack: &mut Stack,
        js: &jetstream::Context,
        args: &Args,
        windowed: &Raw,
        results: &mut Results,
    ) -> anyhow::Result<Option<f64>> {
        let mut e2e = Vec::new();
        let mut rate = args.e2e_rate;
        let mut first_saturation = None;
        for &replicas in &args.replicas {
            eprintln!("xtask: end to end, {replicas} search-worker replica(s)");
            let names = self.start_workers(stack, js, replicas).await?;
            let before = cpu_seconds(stack);
            let saturation = self.saturation(args.saturation_ops).await?;
            let after = cpu_seconds(stack);
            let (cores, total) = cores_used(&before, &after, saturation.elapsed);
            results.cpu(
                format!("end to end, {replicas} worker(s), per completed search"),
                "our processes",
                CpuPerRequest::new(&before, &after, saturation.elapsed, saturation.ops as u64),
                Some(SEARCH_CPU_MICROS),
            );
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
                .aim(Aim::RatioAtLeast(0.05)),
            );
            if replicas > 1 {
                results.row(
                    Row::new(
                        format!("end to end: scaling, {replicas} workers vs 1"),
                        saturation.rate / base,
                        "×",
                    )
                    .aim(Aim::Note(format!(
                        "near {replicas}× until the cores saturate"
                    ))),
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
        Ok(rate)
    }

    /// Starts `replicas` search-worker processes and waits until each has a
    /// pull request open on the jobs consumer (its directory is loaded).
    pub(super) async fn start_workers(
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
    pub(super) async fn fixed_rate(&self, n: usize, rate: f64) -> anyhow::Result<Outcome> {
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
