//! Step 2: accept, closed loop at each client concurrency and open loop at
//! shares of the saturating rate. No worker runs: the jobs wait in the
//! stream (purged afterwards), so the figure is the accept path alone.

use std::time::{Duration, Instant};

use serde_json::json;

use super::baselines::Baselines;
use super::measure::{CpuPerRequest, cores_used, cpu_seconds};
use super::results::{Aim, Results, Row};
use super::{Args, Bench, accepted_ids};
use crate::bench::load;
use crate::bench::stack::Stack;

/// Issue 17's aim: µs of CPU per accept in the gateway and the operations
/// service together.
pub(super) const ACCEPT_CPU_MICROS: f64 = 100.0;

impl Bench {
    /// Closed loop at each concurrency, then open loop at shares of the
    /// saturating rate. Returns the ids of accepted operations.
    pub(super) async fn accept(
        &self,
        stack: &Stack,
        args: &Args,
        baselines: &Baselines,
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
            let (after, elapsed) = (cpu_seconds(stack), at.elapsed());
            let (cores, total) = cores_used(&before, &after, elapsed);
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
                .against(baselines.windowed.rate(), "windowed raw publish")
                .aim(Aim::RatioAtLeast(0.25)),
            );
            results.cpu(
                format!("accept, {c} connection(s)"),
                "gateway + operations",
                CpuPerRequest::new(&before, &after, elapsed, outcome.ok),
                Some(ACCEPT_CPU_MICROS),
            );
            if c == 1 {
                results.row(
                    Row::new("accept p50, 1 connection", outcome.ms(0.5), "ms")
                        .against(baselines.serial.ms(0.5), "raw publish p50, one at a time"),
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
                    .against(baselines.minimal.rate(), "minimal axum handler"),
                );
            }
            closed.push(json!({ "connections": c, "latency": outcome.json(), "cores": cores }));
        }
        let mut open = Vec::new();
        for &share in &args.open_shares {
            let rate = saturating * share;
            let (before, at) = (cpu_seconds(stack), Instant::now());
            let outcome = load::open(self.addr, 256, rate, self.seconds, make.clone()).await?;
            let cpu = CpuPerRequest::new(&before, &cpu_seconds(stack), at.elapsed(), outcome.ok);
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
                row = row.aim(Aim::AtMost(10.0));
            }
            results.row(row);
            results.cpu(
                format!("accept, open loop at {:.0}%", share * 100.0),
                "gateway + operations",
                cpu,
                Some(ACCEPT_CPU_MICROS),
            );
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
}
