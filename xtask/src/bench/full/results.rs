//! The run's figures: one [`Row`] per table line, the raw figures as JSON,
//! and the table and results files written at the end.

use serde_json::{Value, json};

use super::Args;
use crate::bench::report;

/// One line of the table.
pub(super) struct Row {
    figure: String,
    value: f64,
    unit: &'static str,
    baseline: Option<(f64, String)>,
    aim: Option<String>,
}

impl Row {
    pub(super) fn new(figure: impl Into<String>, value: f64, unit: &'static str) -> Row {
        Row {
            figure: figure.into(),
            value,
            unit,
            baseline: None,
            aim: None,
        }
    }

    pub(super) fn against(mut self, value: f64, name: impl Into<String>) -> Row {
        self.baseline = Some((value, name.into()));
        self
    }

    pub(super) fn aim(mut self, aim: impl Into<String>) -> Row {
        self.aim = Some(aim.into());
        self
    }

    pub(super) fn ratio(&self) -> Option<f64> {
        self.baseline
            .as_ref()
            .filter(|(b, _)| *b > 0.0)
            .map(|(b, _)| self.value / b)
    }
}

/// Everything measured, in table order, and the raw figures as JSON.
#[derive(Default)]
pub(super) struct Results {
    rows: Vec<Row>,
    json: serde_json::Map<String, Value>,
}

impl Results {
    pub(super) fn row(&mut self, row: Row) {
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

    pub(super) fn set(&mut self, key: &str, value: Value) {
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

/// Prints the table and writes `bench/results/stack.{json,md}`.
pub(super) fn write(args: &Args, results: Results) -> anyhow::Result<()> {
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
