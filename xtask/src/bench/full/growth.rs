//! Step 5: cost growth at 10k/100k/1M stored operations. Each point seeds
//! operations up to its count through the operations service's own API
//! (`CreateOperation`: only that service writes records), restarts the
//! service (timing the rebuild of its list index), then measures accept,
//! status reads, list pages and end to end with one worker, and peak RSS.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream;
use dossier_contracts::Kind;
use dossier_contracts::v1::CreateOperationRequest;
use dossier_contracts::v1::operations_client::OperationsClient;
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};

use super::accept::ACCEPT_CPU_MICROS;
use super::baselines::Baselines;
use super::measure::{CpuPerRequest, cpu_seconds, rss};
use super::results::{Results, Row};
use super::{Args, Bench, accepted_ids, purge_jobs};
use crate::bench::load::{self, Connection};
use crate::bench::stack::{self, Stack};

/// `CreateOperation` calls in flight while seeding.
const SEED_IN_FLIGHT: usize = 256;

/// Connections the seeding spreads its calls over (HTTP/2 streams share a
/// connection, and one connection is served by one server task).
const SEED_CONNECTIONS: usize = 4;

impl Bench {
    /// One cost-growth point: seed up to `stored` operations, restart the
    /// operations service (timing its rebuild), then accept, status reads,
    /// list pages and end to end with one worker, and peak RSS.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn growth(
        &self,
        stack: &mut Stack,
        js: &jetstream::Context,
        args: &Args,
        stored: u64,
        rate: f64,
        baselines: &Baselines,
        results: &mut Results,
    ) -> anyhow::Result<Value> {
        let label = format!(" at {stored} stored");
        let before = stored_count(js).await?;
        let seeding = Instant::now();
        let signer = stack.service_token_signer()?;
        self.seed(stack.grpc_addr, &signer, stored.saturating_sub(before))
            .await?;
        purge_jobs(js).await?;
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

        let (before, at) = (cpu_seconds(stack), Instant::now());
        let accept = load::closed(self.addr, 64, self.seconds, self.search(), 200).await?;
        let cpu = CpuPerRequest::new(&before, &cpu_seconds(stack), at.elapsed(), accept.ok);
        results.row(
            Row::new(
                format!("accept: 202/s, 64 connections{label}"),
                accept.rate(),
                "req/s",
            )
            .against(baselines.windowed.rate(), "windowed raw publish"),
        );
        results.row(Row::new(
            format!("accept p99, 64 connections{label}"),
            accept.ms(0.99),
            "ms",
        ));
        results.cpu(
            format!("accept, 64 connections{label}"),
            "gateway + operations",
            cpu,
            Some(ACCEPT_CPU_MICROS),
        );
        let ids = accepted_ids(&accept);
        let reads = self
            .reads(stack, &ids, &baselines.kv, results, &label)
            .await?;
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

    /// Creates `n` search operations of the bench's tenant through the
    /// operations service's gRPC API at `grpc`, [`SEED_IN_FLIGHT`] at a
    /// time. The records stay queued: the caller purges their jobs.
    async fn seed(
        &self,
        grpc: SocketAddr,
        signer: &dossier_identity::TokenSigner,
        n: u64,
    ) -> anyhow::Result<()> {
        let mut clients = Vec::with_capacity(SEED_CONNECTIONS);
        for _ in 0..SEED_CONNECTIONS {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
                .context("the operations service's address")?
                .tcp_nodelay(true)
                .connect()
                .await
                .context("connecting to the operations service")?;
            clients.push(OperationsClient::new(channel));
        }
        let bodies: Vec<Vec<u8>> = self
            .handles
            .iter()
            .map(|handle| {
                json!({ "targetAccount": { "linkedinHandle": handle }, "limit": 25 })
                    .to_string()
                    .into_bytes()
            })
            .collect();
        futures::stream::iter(0..n)
            .map(|i| {
                let i = usize::try_from(i).unwrap_or(0);
                let mut client = clients[i % clients.len()].clone();
                let request = CreateOperationRequest {
                    tenant_id: stack::TENANT.to_owned(),
                    kind: Kind::SearchPeople.to_proto() as i32,
                    payload_json: bodies[i % bodies.len()].clone(),
                    ..CreateOperationRequest::default()
                };
                let request = signer.request(request);
                async move {
                    client
                        .create_operation(request?)
                        .await
                        .context("seeding an operation (CreateOperation)")
                }
            })
            .buffer_unordered(SEED_IN_FLIGHT)
            .try_for_each(|_| futures::future::ready(Ok(())))
            .await
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
