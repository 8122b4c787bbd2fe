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
    problems.extend(bind_mount_problems(&config, root));
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

/// Bind mounts of repository files must exist (compose would create an
/// empty directory in their place). Files `cargo xtask up` generates
/// (`.dossier/`, such as the dev service-token keys) may be missing, but
/// only where compose refuses to start without them (`create_host_path:
/// false`, the long syntax's default) instead of creating a directory.
fn bind_mount_problems(config: &Value, root: &Path) -> Vec<String> {
    let generated = root.join(".dossier");
    let mut problems = Vec::new();
    for (name, service) in services_of(config) {
        for volume in service["volumes"].as_array().into_iter().flatten() {
            let Some(source) = volume["source"]
                .as_str()
                .filter(|_| volume["type"] == "bind")
            else {
                continue;
            };
            let creates = volume["bind"]["create_host_path"] == true;
            if Path::new(source).starts_with(&generated) {
                if creates {
                    problems.push(format!(
                        "{name}: bind mount {source} is created as a directory when `cargo xtask up` has not written it (set bind.create_host_path: false)"
                    ));
                }
            } else if !Path::new(source).exists() {
                problems.push(format!("{name}: bind mount {source} does not exist"));
            }
        }
    }
    problems
}

pub(super) fn services_of(compose: &Value) -> Vec<(&str, &Value)> {
    compose["services"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_may_be_missing_only_where_compose_refuses_to_start() {
        let root = Path::new("/nonexistent/repo");
        let config = serde_json::json!({"services": {
            "keys": {"volumes": [
                {"type": "bind", "source": "/nonexistent/repo/.dossier/service-token.key", "bind": {}},
                {"type": "bind", "source": "/nonexistent/repo/.dossier/service-token.pub", "bind": {"create_host_path": true}},
                {"type": "bind", "source": "/nonexistent/repo/deploy/x.toml", "bind": {"create_host_path": true}},
                {"type": "volume", "source": "data"},
            ]},
        }});
        let problems = bind_mount_problems(&config, root);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems[0].contains("service-token.pub is created as a directory"));
        assert!(problems[1].contains("deploy/x.toml does not exist"));
    }
}
