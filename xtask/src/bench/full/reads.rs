//! Step 3: status reads (`GET /api/operations/{id}`) of accepted
//! operations, against raw KV gets.

use super::Bench;
use super::results::{Results, Row};
use crate::bench::baseline::Raw;
use crate::bench::load::{self, Outcome};

impl Bench {
    /// Closed-loop status reads of `ids` with 64 connections.
    pub(super) async fn reads(
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
}
