//! The run's figures: one [`Row`] per table line (with the aim of issue 17
//! it is held to, met or missed), the CPU per request of every step by
//! process, the raw figures as JSON, and the table and results files
//! written at the end.

use serde_json::{Value, json};

use super::Args;
use super::measure::CpuPerRequest;
use crate::bench::report;

/// What a figure should reach (the table of issue 17).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Aim {
    /// The ratio to the row's baseline is at least this.
    RatioAtLeast(f64),
    /// The value is at most this, in the row's unit.
    AtMost(f64),
    /// Said in words; not checked.
    Note(String),
}

/// One line of the table.
pub(super) struct Row {
    figure: String,
    value: f64,
    unit: &'static str,
    baseline: Option<(f64, String)>,
    aim: Option<Aim>,
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

    pub(super) fn aim(mut self, aim: Aim) -> Row {
        self.aim = Some(aim);
        self
    }

    /// The aim as written beside the figure, e.g. `≥ 0.25×`, `≤ 100 µs`.
    fn aim_text(&self) -> String {
        match &self.aim {
            Some(Aim::RatioAtLeast(r)) => format!("≥ {r}×"),
            Some(Aim::AtMost(v)) => format!("≤ {v} {}", self.unit),
            Some(Aim::Note(text)) => text.clone(),
            None => String::new(),
        }
    }

    /// Whether the aim is met; `None` when there is none or it is not
    /// checkable (no ratio, or said in words).
    fn met(&self) -> Option<bool> {
        match &self.aim {
            Some(Aim::RatioAtLeast(r)) => self.ratio().map(|ratio| ratio >= *r),
            Some(Aim::AtMost(v)) => Some(self.value <= *v),
            Some(Aim::Note(_)) | None => None,
        }
    }

    fn met_text(&self) -> &'static str {
        match self.met() {
            Some(true) => "met",
            Some(false) => "missed",
            None => "",
        }
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
    cpu: Vec<(String, CpuPerRequest)>,
    json: serde_json::Map<String, Value>,
}

impl Results {
    pub(super) fn row(&mut self, row: Row) {
        let aim = match (row.aim_text(), row.met_text()) {
            (aim, _) if aim.is_empty() => String::new(),
            (aim, "") => format!(" [aim {aim}]"),
            (aim, met) => format!(" [aim {aim}: {met}]"),
        };
        eprintln!(
            "xtask: {}: {} {}{}{aim}",
            row.figure,
            number(row.value),
            row.unit,
            row.ratio()
                .map(|r| format!(" ({r:.3}× baseline)"))
                .unwrap_or_default()
        );
        self.rows.push(row);
    }

    /// Records the CPU per request of `step`: a row for our processes'
    /// sum (held to `aim`, in µs, when given) and a line of the table by
    /// process. `ours` names what the sum covers, e.g. `gateway +
    /// operations`.
    pub(super) fn cpu(
        &mut self,
        step: impl Into<String>,
        ours: &str,
        cpu: Option<CpuPerRequest>,
        aim: Option<f64>,
    ) {
        let Some(cpu) = cpu else { return };
        let step = step.into();
        let mut row = Row::new(
            format!("{step}: CPU µs per request, {ours}"),
            cpu.ours,
            "µs",
        );
        if let Some(aim) = aim {
            row = row.aim(Aim::AtMost(aim));
        }
        self.row(row);
        self.cpu.push((step, cpu));
    }

    pub(super) fn set(&mut self, key: &str, value: Value) {
        self.json.insert(key.to_owned(), value);
    }
}

/// A figure with as many digits as it deserves.
fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The table of figures: value, baseline, ratio, aim and whether it is met.
fn figures_table(rows: &[Row]) -> String {
    let mut table = String::from(
        "| figure | value | baseline | ratio | aim (issue 17) | met |\n|---|---:|---|---:|---|---|\n",
    );
    for row in rows {
        let (baseline, ratio) = match (&row.baseline, row.ratio()) {
            (Some((value, name)), Some(ratio)) => (
                format!("{} ({name})", number(*value)),
                format!("{ratio:.3}"),
            ),
            _ => (String::new(), String::new()),
        };
        table.push_str(&format!(
            "| {} | {} {} | {baseline} | {ratio} | {} | {} |\n",
            row.figure,
            number(row.value),
            row.unit,
            row.aim_text(),
            row.met_text(),
        ));
    }
    table
}

/// The CPU per request of every step, by process (µs; a blank: the process
/// was not running).
fn cpu_table(steps: &[(String, CpuPerRequest)]) -> String {
    let mut processes: Vec<&str> = Vec::new();
    for (_, cpu) in steps {
        for (name, _) in &cpu.per_process {
            if !processes.contains(&name.as_str()) {
                processes.push(name);
            }
        }
    }
    let mut table = format!(
        "| step | requests | ours | {} |\n|---|---:|---:|{}\n",
        processes.join(" | "),
        "---:|".repeat(processes.len())
    );
    for (step, cpu) in steps {
        let cells: Vec<String> = processes
            .iter()
            .map(|p| {
                cpu.per_process
                    .iter()
                    .find(|(n, _)| n == p)
                    .map(|(_, us)| number(*us))
                    .unwrap_or_default()
            })
            .collect();
        table.push_str(&format!(
            "| {step} | {} | {} | {} |\n",
            cpu.requests,
            number(cpu.ours),
            cells.join(" | ")
        ));
    }
    table
}

/// Prints the table and writes `bench/results/stack.{json,md}`.
pub(super) fn write(args: &Args, results: Results) -> anyhow::Result<()> {
    let figures = figures_table(&results.rows);
    let cpu = cpu_table(&results.cpu);
    let table = format!(
        "{figures}\n## CPU per request, by process (µs)\n\n\
         CPU time each process used during the step's load (cores × duration) \
         ÷ the requests it counted; *ours* adds up the Dossier services (not \
         nats-server, not the load generator).\n\n{cpu}"
    );
    let rows: Vec<Value> = results
        .rows
        .iter()
        .map(|row| {
            json!({
                "figure": row.figure,
                "value": row.value,
                "unit": row.unit,
                "baseline": row.baseline.as_ref().map(|(v, _)| v),
                "baselineName": row.baseline.as_ref().map(|(_, n)| n),
                "ratio": row.ratio(),
                "aim": (!row.aim_text().is_empty()).then(|| row.aim_text()),
                "met": row.met(),
            })
        })
        .collect();
    let cpu_json: serde_json::Map<String, Value> = results
        .cpu
        .iter()
        .map(|(step, cpu)| (step.clone(), cpu.json()))
        .collect();
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
    json["cpuPerRequest"] = Value::Object(cpu_json);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn aims_are_printed_beside_the_figures_met_or_missed() {
        let rows = vec![
            Row::new("accept: 202/s, 64 connection(s)", 4_000.0, "req/s")
                .against(80_000.0, "windowed raw publish")
                .aim(Aim::RatioAtLeast(0.25)),
            Row::new("status reads/s", 40_000.0, "req/s")
                .against(70_000.0, "raw KV get")
                .aim(Aim::RatioAtLeast(0.5)),
            Row::new(
                "accept: CPU µs per request, gateway + operations",
                87.5,
                "µs",
            )
            .aim(Aim::AtMost(100.0)),
            Row::new("accept p99, open loop at 50%", 12.0, "ms").aim(Aim::AtMost(10.0)),
            Row::new("end to end: scaling, 2 workers vs 1", 1.6, "×")
                .aim(Aim::Note("near 2× until the cores saturate".to_owned())),
            Row::new("peak RSS gateway", 27.0, "MiB"),
        ];
        let table = figures_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| figure | value | baseline | ratio | aim (issue 17) | met |"
        );
        assert_eq!(
            lines[2],
            "| accept: 202/s, 64 connection(s) | 4000 req/s | 80000 (windowed raw publish) | 0.050 | ≥ 0.25× | missed |"
        );
        assert!(
            lines[3].ends_with("| 0.571 | ≥ 0.5× | met |"),
            "{}",
            lines[3]
        );
        assert!(
            lines[4].ends_with("| 87.50 µs |  |  | ≤ 100 µs | met |"),
            "{}",
            lines[4]
        );
        assert!(lines[5].ends_with("| ≤ 10 ms | missed |"), "{}", lines[5]);
        assert!(
            lines[6].ends_with("| near 2× until the cores saturate |  |"),
            "{}",
            lines[6]
        );
        assert!(lines[7].ends_with("|  |  |  |  |"), "{}", lines[7]);
    }

    #[test]
    fn a_ratio_aim_without_a_baseline_is_neither_met_nor_missed() {
        let row = Row::new("x", 1.0, "req/s").aim(Aim::RatioAtLeast(0.5));
        assert_eq!(row.met(), None);
        let row = Row::new("x", 1.0, "req/s")
            .against(0.0, "nothing")
            .aim(Aim::RatioAtLeast(0.5));
        assert_eq!(row.met(), None);
    }

    #[test]
    fn the_cpu_table_has_a_column_per_process_and_our_sum() {
        let sample = |v: &[(&str, f64)]| -> Vec<(String, f64)> {
            v.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
        };
        let zero = sample(&[("nats-server", 0.0), ("operations", 0.0), ("gateway", 0.0)]);
        let accept = CpuPerRequest::new(
            &zero,
            &sample(&[("nats-server", 0.1), ("operations", 0.2), ("gateway", 0.1)]),
            Duration::from_secs(1),
            1_000,
        );
        let e2e = CpuPerRequest::new(
            &zero,
            &sample(&[
                ("nats-server", 0.1),
                ("operations", 0.2),
                ("gateway", 0.1),
                ("search-worker-1", 0.1),
            ]),
            Duration::from_secs(1),
            100,
        );
        let mut results = Results::default();
        results.cpu(
            "accept, 1 connection",
            "gateway + operations",
            accept,
            Some(100.0),
        );
        results.cpu("end to end, 1 worker", "our processes", e2e, Some(500.0));
        results.cpu("nothing counted", "ours", None, None);
        assert_eq!(results.rows.len(), 2);
        assert_eq!(
            results.rows[0].figure,
            "accept, 1 connection: CPU µs per request, gateway + operations"
        );
        assert_eq!(results.rows[0].met(), Some(false));
        assert_eq!(results.rows[1].met(), Some(false));
        let table = cpu_table(&results.cpu);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| step | requests | ours | nats-server | operations | gateway | search-worker-1 |"
        );
        assert_eq!(lines[1], "|---|---:|---:|---:|---:|---:|---:|");
        assert_eq!(
            lines[2],
            "| accept, 1 connection | 1000 | 300 | 100 | 200 | 100 |  |"
        );
        assert_eq!(
            lines[3],
            "| end to end, 1 worker | 100 | 4000 | 1000 | 2000 | 1000 | 1000 |"
        );
    }
}
