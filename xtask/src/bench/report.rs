//! Writing a benchmark's results: JSON for tools, Markdown for people, both
//! under `bench/results/` named by target and UTC time.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::Value;

use crate::root;

/// Writes `bench/results/<target>-<stamp>.{json,md}`; returns both paths.
pub(crate) fn write(
    target: &str,
    json: &Value,
    markdown: &str,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = root().join("bench").join("results");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .context("formatting the time")?;
    let json_path = dir.join(format!("{target}-{stamp}.json"));
    let md_path = dir.join(format!("{target}-{stamp}.md"));
    std::fs::write(&json_path, serde_json::to_vec_pretty(json)?)?;
    std::fs::write(&md_path, markdown)?;
    Ok((json_path, md_path))
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
