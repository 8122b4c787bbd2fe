//! What the stack's processes use: CPU seconds and peak RSS, from `/proc`,
//! and the CPU each spends per request of a load point.

use std::time::Duration;

use serde_json::{Value, json};

use crate::bench::stack::Stack;

/// CPU seconds (user + system) used so far by every process of the stack
/// and by this one (the load generator), from `/proc/<pid>/stat`.
pub(super) fn cpu_seconds(stack: &Stack) -> Vec<(String, f64)> {
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
pub(super) fn cores_used(
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

/// Whether a process is one of ours (a Dossier service), as opposed to the
/// broker and the load generator: the processes the CPU aims add up.
pub(super) fn is_ours(name: &str) -> bool {
    matches!(name, "gateway" | "operations") || name.starts_with("search-worker")
}

/// CPU time per request of one load point, by process and summed over ours.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CpuPerRequest {
    /// The requests the point counted (answered 2xx, or completed).
    pub(super) requests: u64,
    /// µs of CPU per request, per process, in sample order.
    pub(super) per_process: Vec<(String, f64)>,
    /// µs of CPU per request, summed over [`is_ours`].
    pub(super) ours: f64,
}

impl CpuPerRequest {
    /// From two [`cpu_seconds`] samples `elapsed` apart around a load point
    /// that counted `requests`: each process's cores × the duration ÷ the
    /// requests. `None` when no request was counted.
    pub(super) fn new(
        before: &[(String, f64)],
        after: &[(String, f64)],
        elapsed: Duration,
        requests: u64,
    ) -> Option<CpuPerRequest> {
        if requests == 0 {
            return None;
        }
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let per_process: Vec<(String, f64)> = after
            .iter()
            .map(|(name, end)| {
                let start = before
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0.0, |(_, s)| *s);
                let cores = (end - start) / seconds;
                (name.clone(), cores * seconds * 1e6 / requests as f64)
            })
            .collect();
        let ours = per_process
            .iter()
            .filter(|(name, _)| is_ours(name))
            .map(|(_, us)| us)
            .sum();
        Some(CpuPerRequest {
            requests,
            per_process,
            ours,
        })
    }

    /// As JSON: `{ "requests": n, "oursMicros": x, "microsByProcess": {…} }`.
    pub(super) fn json(&self) -> Value {
        let by: serde_json::Map<String, Value> = self
            .per_process
            .iter()
            .map(|(name, us)| (name.clone(), json!((us * 10.0).round() / 10.0)))
            .collect();
        json!({
            "requests": self.requests,
            "oursMicros": (self.ours * 10.0).round() / 10.0,
            "microsByProcess": by,
        })
    }
}

/// Peak and current RSS of every process, from `/proc/<pid>/status`.
pub(super) fn rss(stack: &Stack) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(values: &[(&str, f64)]) -> Vec<(String, f64)> {
        values.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
    }

    #[test]
    fn cpu_per_request_is_cores_times_duration_over_requests() {
        let before = sample(&[
            ("nats-server", 1.0),
            ("operations", 2.0),
            ("gateway", 3.0),
            ("load generator (xtask)", 0.5),
        ]);
        // 4 s at 0.25, 0.5 and 0.125 cores; 2,000 requests.
        let after = sample(&[
            ("nats-server", 2.0),
            ("operations", 4.0),
            ("gateway", 3.5),
            ("load generator (xtask)", 0.5),
            ("search-worker-1", 0.2),
        ]);
        let cpu = CpuPerRequest::new(&before, &after, Duration::from_secs(4), 2_000).unwrap();
        let get = |name: &str| {
            cpu.per_process
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, us)| *us)
                .unwrap()
        };
        assert!((get("nats-server") - 500.0).abs() < 1e-6);
        assert!((get("operations") - 1_000.0).abs() < 1e-6);
        assert!((get("gateway") - 250.0).abs() < 1e-6);
        assert!(get("load generator (xtask)").abs() < 1e-9);
        // A process that started during the point counts from zero.
        assert!((get("search-worker-1") - 100.0).abs() < 1e-6);
        // Ours: the services, not the broker or the load generator.
        assert!((cpu.ours - 1_350.0).abs() < 1e-6);
        assert_eq!(cpu.json()["oursMicros"], 1_350.0);
        assert_eq!(cpu.json()["microsByProcess"]["gateway"], 250.0);
        assert!(CpuPerRequest::new(&before, &after, Duration::from_secs(4), 0).is_none());
    }
}
