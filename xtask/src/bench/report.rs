//! Writing a benchmark's results: JSON for tools, Markdown for people, both
//! under `bench/results/` named by target and UTC time.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context as _;
use serde_json::Value;

use crate::root;

/// Writes `bench/results/<target>-<stamp>.{json,md}`; returns both paths.
pub(crate) fn write(
    target: &str,
    json: &Value,
    markdown: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .context("formatting the time")?;
    write_latest(&format!("{target}-{stamp}"), json, markdown)
}

/// Writes `bench/results/<name>.{json,md}` (for `stack`, the latest run,
/// committed for the reference machine); returns both paths.
pub(crate) fn write_latest(
    name: &str,
    json: &Value,
    markdown: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = root().join("bench").join("results");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let json_path = dir.join(format!("{name}.json"));
    let md_path = dir.join(format!("{name}.md"));
    std::fs::write(&json_path, serde_json::to_vec_pretty(json)?)?;
    std::fs::write(&md_path, markdown)?;
    Ok((json_path, md_path))
}

/// The machine and versions a result was measured with: date, commit, CPU
/// model, core count, rustc and nats-server versions.
pub(crate) fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let rustc = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg("--version")
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
    serde_json::json!({
        "date": now_rfc3339(),
        "commit": commit(),
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "rustc": rustc,
        "natsServer": crate::nats::VERSION,
    })
}

/// The checked-out commit (read-only `git rev-parse`), when there is one.
pub(crate) fn commit() -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A Markdown table of `rows` (name, value).
pub(crate) fn table(rows: &[(String, String)]) -> String {
    let mut out = String::from("| metric | value |\n|---|---|\n");
    for (name, value) in rows {
        out.push_str(&format!("| {name} | {value} |\n"));
    }
    out
}

/// Now as RFC 3339, for the report.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
