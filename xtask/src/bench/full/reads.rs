//! Step 3: status reads (`GET /api/operations/{id}`) of accepted
//! operations, against raw KV gets.

use std::time::Instant;

use super::Bench;
use super::measure::{CpuPerRequest, cpu_seconds};
use super::results::{Aim, Results, Row};
use crate::bench::baseline::Raw;
use crate::bench::load::{self, Outcome};
use crate::bench::stack::Stack;

/// Issue 17's aim: µs of CPU per status read in the gateway and the
/// operations service together.
const READ_CPU_MICROS: f64 = 50.0;

impl Bench {
    /// Closed-loop status reads of `ids` with 64 connections.
    pub(super) async fn reads(
        &self,
        stack: &Stack,
        ids: &[String],
        kv: &Raw,
        results: &mut Results,
        suffix: &str,
    ) -> anyhow::Result<Outcome> {
        let make = self.status_reads(ids.to_vec());
        let (before, at) = (cpu_seconds(stack), Instant::now());
        let outcome = load::closed(self.addr, 64, self.seconds, make, 0).await?;
        let cpu = CpuPerRequest::new(&before, &cpu_seconds(stack), at.elapsed(), outcome.ok);
        results.row(
            Row::new(
                format!("status reads/s, 64 connections{suffix}"),
                outcome.rate(),
                "req/s",
            )
            .against(kv.rate(), "raw KV get, 64 in flight")
            .aim(Aim::RatioAtLeast(0.5)),
        );
        results.cpu(
            format!("status reads, 64 connections{suffix}"),
            "gateway + operations",
            cpu,
            Some(READ_CPU_MICROS),
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
}
