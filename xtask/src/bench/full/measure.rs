//! What the stack's processes use: CPU seconds and peak RSS, from `/proc`.

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
