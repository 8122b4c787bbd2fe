//! Check 1: `docker compose config` validates `docker-compose.yml`.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::Value;

use super::Report;
use super::tools::Tools;

/// Validates docker-compose.yml and returns its canonical form (anchors
/// merged, variables at their defaults).
pub(super) fn compose_config(
    tools: &Tools,
    root: &Path,
    report: &mut Report,
) -> anyhow::Result<Value> {
    let compose = |extra: &[&str]| {
        let mut cmd = Command::new(&tools.compose[0]);
        cmd.args(&tools.compose[1..])
            .args(["--project-directory", "."])
            .args(["-f", "docker-compose.yml", "config"])
            .args(extra)
            .current_dir(root)
            // The defaults, not this shell's overrides.
            .env_remove("DOSSIER_COMPOSE_API_KEYS");
        cmd.output()
    };
    let quiet = compose(&["--quiet"]).context("running docker compose config")?;
    let mut problems = Vec::new();
    if !quiet.status.success() {
        problems.push(String::from_utf8_lossy(&quiet.stderr).trim().to_owned());
        report.check("docker-compose.yml valid (docker compose config)", problems);
        bail!("docker-compose.yml is not valid; later checks need it");
    }
    let out = compose(&["--format", "json"]).context("running docker compose config")?;
    let config: Value =
        serde_json::from_slice(&out.stdout).context("parsing docker compose config's JSON")?;
    // Bind mounts of repository files must exist (compose would create an
    // empty directory in their place).
    for (name, service) in services_of(&config) {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            if volume["type"] == "bind"
                && let Some(source) = volume["source"].as_str()
                && !Path::new(source).exists()
            {
                problems.push(format!("{name}: bind mount {source} does not exist"));
            }
        }
    }
    report.check(
        format!(
            "docker-compose.yml valid (Docker Compose {})",
            compose_version(tools)
        ),
        problems,
    );
    Ok(config)
}

fn compose_version(tools: &Tools) -> String {
    Command::new(&tools.compose[0])
        .args(&tools.compose[1..])
        .args(["version", "--short"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

pub(super) fn services_of(compose: &Value) -> Vec<(&str, &Value)> {
    compose["services"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}
