//! The chaos run's table: faults injected, operations checked, violations;
//! printed, and written as JSON and Markdown under the target dir.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::check::Checked;

/// One fault as it happened.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct FaultRecord {
    pub(crate) kind: String,
    pub(crate) target: String,
    /// Seconds from the start of the load.
    pub(crate) at_s: f64,
    /// Seconds from the fault until every service was ready again.
    pub(crate) back_after_s: f64,
    pub(crate) note: String,
}

/// One mode's run.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ModeReport {
    pub(crate) mode: String,
    pub(crate) seed: u64,
    pub(crate) seconds: u64,
    pub(crate) rate: f64,
    /// Seconds from the stack's start to its stop.
    pub(crate) took_s: f64,
    pub(crate) faults: Vec<FaultRecord>,
    /// Operations followed (every 202 and every outcome-unknown id).
    pub(crate) operations: usize,
    /// Of them, not terminal when the bounded wait ended.
    pub(crate) left_after_wait: usize,
    pub(crate) checked: Checked,
}

/// The Markdown of `reports`.
pub(crate) fn markdown(reports: &[ModeReport]) -> String {
    let mut out = String::from("# Chaos run\n");
    for r in reports {
        let _ = writeln!(
            out,
            "\n## {} broker (seed {}, {} s of load per phase, {}/s)\n\n\
             {:.0} s; {} operations followed, {} not terminal after the wait; {} violations.\n",
            r.mode,
            r.seed,
            r.seconds,
            r.rate,
            r.took_s,
            r.operations,
            r.left_after_wait,
            r.checked.violations.len()
        );
        out.push_str(
            "| # | fault | target | at (s) | back after (s) | note |\n|---|---|---|---|---|---|\n",
        );
        for (i, f) in r.faults.iter().enumerate() {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.1} | {} |",
                i + 1,
                f.kind,
                f.target,
                f.at_s,
                f.back_after_s,
                f.note
            );
        }
        let statuses: BTreeSet<&String> = r
            .checked
            .by_status
            .values()
            .flat_map(|by| by.keys())
            .collect();
        let _ = write!(out, "\n| kind |");
        for status in &statuses {
            let _ = write!(out, " {status} |");
        }
        let _ = write!(out, " total |\n|---|");
        for _ in 0..=statuses.len() {
            out.push_str("---|");
        }
        out.push('\n');
        for (kind, by) in &r.checked.by_status {
            let _ = write!(out, "| {kind} |");
            for status in &statuses {
                let _ = write!(out, " {} |", by.get(*status).copied().unwrap_or(0));
            }
            let _ = writeln!(out, " {} |", by.values().sum::<usize>());
        }
        out.push_str("\nAnswers: ");
        let answers: Vec<String> = r
            .checked
            .answers
            .iter()
            .map(|(what, n)| format!("{what}: {n}"))
            .collect();
        out.push_str(&answers.join(", "));
        out.push('\n');
        if r.checked.violations.is_empty() {
            out.push_str("\nViolations: none.\n");
        } else {
            out.push_str("\n| violation: operation | reason |\n|---|---|\n");
            for v in &r.checked.violations {
                let _ = writeln!(out, "| {} | {} |", v.id, v.reason.replace('|', "\\|"));
            }
        }
    }
    out
}

/// Writes `reports` to `dir/chaos.json` and `dir/chaos.md`.
pub(crate) fn write(dir: &Path, reports: &[ModeReport]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("chaos.json"), serde_json::to_vec_pretty(reports)?)?;
    std::fs::write(dir.join("chaos.md"), markdown(reports))?;
    Ok(())
}
