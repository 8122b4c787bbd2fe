//! Step 6: the enrichment bench (its own stack, ~1 min): a 10,000-record
//! batch through the stack against raw matching in-process.

use super::results::{Aim, Results, Row};
use crate::bench::enrichment;

/// Runs the enrichment bench and adds its row and figures.
pub(super) fn measure(results: &mut Results) -> anyhow::Result<()> {
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
        .aim(Aim::RatioAtLeast(0.5)),
    );
    results.set("enrichment", json);
    Ok(())
}
