//! Check 5: every nats-server the project ships or runs for users fsyncs
//! each JetStream write before acknowledging it (`sync_interval: always`).
//! A lazy server (the default syncs every 2 minutes) can lose writes it
//! already acknowledged when its host crashes, and a 202 means "stored".
//! And each has an explicit store limit (`max_file_store`) that holds what
//! the topology's byte limits reserve: the default (75 % of the disk free
//! at start) fails the stack's start on a host with less than ~9 GiB free.
//!
//! Checked: the compose stack (its command line and the configuration file
//! it mounts), each rendered Kubernetes overlay (the StatefulSet's command
//! line and its ConfigMap's `nats.conf`), and the configuration and command
//! line xtask writes for `cargo xtask up`, the bench's stack and the smoke
//! run (`nats::server_config`, `nats::server_command`). The test kit's
//! servers are not: they are lazy on purpose, for speed.

use std::path::Path;

use serde_json::Value;

use super::Report;
use super::compose::services_of;
use super::k8s::Overlay;
use crate::nats;

pub(super) fn check_durability(
    compose: &Value,
    overlays: &[Overlay],
    work: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();

    // Compose: the nats service runs with `-c <file>`, a bind mount of a
    // file of the repository.
    let mut compose_nats = 0;
    for (name, svc) in services_of(compose) {
        if !svc["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("nats:"))
        {
            continue;
        }
        compose_nats += 1;
        let place = format!("docker-compose.yml {name}");
        let command = strings(&svc["command"]);
        let Some(target) = config_flag(&command) else {
            problems.push(format!(
                "{place}: runs nats-server without a configuration file (-c), so JetStream syncs lazily"
            ));
            continue;
        };
        let source = svc["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["target"] == target.as_str())
            .and_then(|v| v["source"].as_str());
        match source.map(std::fs::read_to_string) {
            Some(Ok(config)) => check_config(&format!("{place} {target}"), &config, &mut problems),
            Some(Err(error)) => problems.push(format!("{place}: reading {target}: {error}")),
            None => problems.push(format!("{place}: {target} is not a mounted file")),
        }
    }
    if compose_nats == 0 {
        problems.push("docker-compose.yml: no nats service".to_owned());
    }

    // Kubernetes: the StatefulSet nats of every overlay, as rendered.
    for overlay in overlays {
        let Some(statefulset) = overlay.find("StatefulSet", "nats") else {
            problems.push(format!("{}: no StatefulSet nats", overlay.name));
            continue;
        };
        let spec = &statefulset["spec"]["template"]["spec"];
        for container in spec["containers"].as_array().into_iter().flatten() {
            if !container["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("nats:"))
            {
                continue;
            }
            let place = format!(
                "{} StatefulSet nats container {}",
                overlay.name,
                container["name"].as_str().unwrap_or_default()
            );
            let mut command = strings(&container["command"]);
            command.extend(strings(&container["args"]));
            let Some(target) = config_flag(&command) else {
                problems.push(format!(
                    "{place}: runs nats-server without a configuration file (--config)"
                ));
                continue;
            };
            // The file is a key of the ConfigMap mounted at its directory.
            let (dir, file) = target.rsplit_once('/').unwrap_or(("", target.as_str()));
            let config = container["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["mountPath"].as_str().map(|p| p.trim_end_matches('/')) == Some(dir))
                .filter_map(|m| m["name"].as_str())
                .filter_map(|volume| {
                    spec["volumes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|v| v["name"] == volume)
                })
                .filter_map(|v| v["configMap"]["name"].as_str())
                .filter_map(|name| overlay.find("ConfigMap", name))
                .find_map(|cm| cm["data"][file].as_str());
            match config {
                Some(config) => check_config(&format!("{place} {target}"), config, &mut problems),
                None => problems.push(format!(
                    "{place}: {target} is not a file of a ConfigMap in the overlay"
                )),
            }
        }
    }

    // What xtask runs: `up`, the bench's stack and the smoke run all use
    // these two functions; check what they produce.
    let config = nats::server_config("127.0.0.1:4222", Some("127.0.0.1:8222"), work, None);
    check_config("xtask nats::server_config", &config, &mut problems);
    let path = work.join("durability-nats.conf");
    let cmd = nats::server_command(Path::new("nats-server"), &path, &config)?;
    let args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if config_flag(&args).as_deref() != path.to_str() || args.len() != 2 {
        problems.push(format!(
            "xtask nats::server_command: runs nats-server with {args:?}, not only its configuration file"
        ));
    }
    std::fs::remove_file(&path)?;

    report.check(
        "durability: every nats-server of compose, Kubernetes and xtask (up, bench, smoke) fsyncs before acknowledging (jetstream sync_interval: always) and has a store limit that holds the topology's reservations (max_file_store)",
        problems,
    );
    Ok(())
}

/// The strings of a JSON array (a command line).
fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// The configuration file of a nats-server command line (`-c`, `--config`,
/// also as `--config=<file>`).
fn config_flag(args: &[String]) -> Option<String> {
    args.iter().enumerate().find_map(|(i, a)| match a.as_str() {
        "-c" | "--config" | "-config" => args.get(i + 1).cloned(),
        _ => a
            .strip_prefix("--config=")
            .or_else(|| a.strip_prefix("-c="))
            .map(str::to_owned),
    })
}

fn check_config(place: &str, config: &str, problems: &mut Vec<String>) {
    let reserved = dossier_broker::TopologyConfig::default().limits.reserved();
    for check in [fsyncs_always(config), store_limit_covers(config, reserved)] {
        if let Err(why) = check {
            problems.push(format!("{place}: {why}"));
        }
    }
}

/// Whether the `jetstream` block sets `max_file_store` to at least
/// `reserved` bytes (what the topology's byte limits reserve). Without it
/// nats-server allows 75 % of the disk free at its start, so the stack
/// fails to create its streams ("insufficient storage") on a host with
/// less free.
fn store_limit_covers(config: &str, reserved: i64) -> Result<(), String> {
    let text = strip_comments(config);
    let needed = format!("{:.1} GiB", reserved as f64 / f64::from(1u32 << 30));
    let limit = block_of(&text, "jetstream")
        .and_then(|block| value_at_top(block, "max_file_store"))
        .ok_or_else(|| {
            format!(
                "jetstream has no max_file_store, so the store is 75 % of the disk free at start, \
                 and the topology reserves {needed}"
            )
        })?;
    match nats_bytes(limit.trim_matches(|c| c == '"' || c == '\'')) {
        Some(bytes) if bytes >= reserved => Ok(()),
        Some(_) => Err(format!(
            "jetstream max_file_store {limit} is less than the {needed} the topology reserves"
        )),
        None => Err(format!("jetstream max_file_store {limit} is not a size")),
    }
}

/// A nats-server size (`8GB`, `512MiB`, `1T`, plain bytes), read low: the
/// decimal units (`G`, `GB`) as powers of 1000, so a limit that passes
/// passes however the server reads them.
fn nats_bytes(value: &str) -> Option<i64> {
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let exponent = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" => 1,
        "m" | "mb" => 2,
        "g" | "gb" => 3,
        "t" | "tb" => 4,
        "ki" | "kib" => return number.parse::<i64>().ok()?.checked_mul(1 << 10),
        "mi" | "mib" => return number.parse::<i64>().ok()?.checked_mul(1 << 20),
        "gi" | "gib" => return number.parse::<i64>().ok()?.checked_mul(1 << 30),
        "ti" | "tib" => return number.parse::<i64>().ok()?.checked_mul(1 << 40),
        _ => return None,
    };
    number
        .parse::<i64>()
        .ok()?
        .checked_mul(1000_i64.pow(exponent))
}

/// Whether a nats-server configuration runs JetStream with fsync before
/// every acknowledgement: a `jetstream { ... }` block (in the file itself,
/// not an include) whose `sync_interval` (or its alias `sync`) is `always`.
fn fsyncs_always(config: &str) -> Result<(), String> {
    let text = strip_comments(config);
    let block = block_of(&text, "jetstream")
        .ok_or("no `jetstream { ... }` block, so JetStream (if on) syncs lazily")?;
    let sync = ["sync_interval", "sync"]
        .iter()
        .find_map(|key| value_at_top(block, key))
        .ok_or("jetstream has no `sync_interval: always` (the default syncs every 2 minutes)")?;
    if sync.trim_matches(|c| c == '"' || c == '\'') == "always" {
        Ok(())
    } else {
        Err(format!(
            "jetstream sync_interval is `{sync}`, not `always`: acknowledged writes can be lost on a host crash"
        ))
    }
}

/// The configuration without `#` and `//` comments (outside quotes; a
/// `//` comment starts a line or follows a blank).
pub(super) fn strip_comments(config: &str) -> String {
    let mut out = String::new();
    for line in config.lines() {
        let mut quote = None;
        let chars: Vec<char> = line.chars().collect();
        let mut end = chars.len();
        for (i, &c) in chars.iter().enumerate() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') => quote = Some(c),
                (None, '#') => {
                    end = i;
                    break;
                }
                // `//` starts a comment, but not inside a URL (`nats://`).
                (None, '/')
                    if chars.get(i + 1) == Some(&'/')
                        && (i == 0 || chars[i - 1].is_whitespace()) =>
                {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        out.extend(&chars[..end]);
        out.push('\n');
    }
    out
}

/// The inside of the top-level block `key { ... }` (also `key: {`, `key = {`).
pub(super) fn block_of<'a>(text: &'a str, key: &'static str) -> Option<&'a str> {
    values_at_top(text, key).find_map(|value| inner_block(value.strip_prefix('{')?))
}

/// The value of `key` at the top level of a block (`key: v`, `key = v`, `key v`).
pub(super) fn value_at_top(block: &str, key: &'static str) -> Option<String> {
    values_at_top(block, key).find_map(|value| {
        let value: String = value
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != ',' && *c != '}')
            .collect();
        (!value.is_empty()).then_some(value)
    })
}

/// What follows each top-level (outside any braces) `key` of `text`, after
/// the optional `:` or `=`, to the end of `text`.
fn values_at_top<'a>(text: &'a str, key: &'static str) -> impl Iterator<Item = &'a str> {
    let mut depth = 0usize;
    text.char_indices().filter_map(move |(i, c)| {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 && is_key_at(text, i, key) => {
                let rest = text[i + key.len()..].trim_start();
                return Some(
                    rest.strip_prefix(':')
                        .or_else(|| rest.strip_prefix('='))
                        .unwrap_or(rest)
                        .trim_start(),
                );
            }
            _ => {}
        }
        None
    })
}

/// `inner` up to the brace that closes the block it starts.
fn inner_block(inner: &str) -> Option<&str> {
    let mut depth = 1usize;
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&inner[..i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// `key` starts at byte `i` of `text` as a whole word.
fn is_key_at(text: &str, i: usize, key: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text[i..].starts_with(key)
        && !text[..i].chars().next_back().is_some_and(word)
        && !text[i + key.len()..].chars().next().is_some_and(word)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_that_fsyncs_always_passes() {
        for good in [
            // The shape of deploy/k8s/base/nats/nats.conf.
            "listen: 0.0.0.0:4222\njetstream {\n  store_dir: /data\n  # lazy would lose acks\n  sync_interval: always\n}\ninclude \"auth.conf\"\n",
            "jetstream: { store_dir: \"/d\", sync_interval: \"always\" }",
            "jetstream = {\n  sync: always\n}",
            &nats::server_config("127.0.0.1:-1", None, Path::new("/tmp/s"), Some("auth.conf")),
        ] {
            assert_eq!(fsyncs_always(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn a_lazy_configuration_fails() {
        for bad in [
            // JetStream with the default sync interval.
            "listen: 0.0.0.0:4222\njetstream {\n  store_dir: /data\n}\n",
            // Commented out.
            "jetstream {\n  store_dir: /data\n  # sync_interval: always\n}\n",
            "jetstream {\n  // sync_interval: always\n}\n",
            // An interval.
            "jetstream {\n  sync_interval: 2m\n}\n",
            // In another block.
            "jetstream {\n  store_dir: /data\n}\ncluster {\n  sync_interval: always\n}\n",
            // No block at all (JetStream from a flag, or `jetstream: enabled`).
            "jetstream: enabled\n",
            "",
        ] {
            assert!(fsyncs_always(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_store_limit_must_hold_the_reservations() {
        let reserved = 6 << 30;
        for good in [
            "jetstream {\n  max_file_store: 8GB\n}\n",
            "jetstream { max_file_store = \"7GiB\" }",
            "jetstream {\n  max_file_store: 1T # room\n}\n",
            &nats::server_config("127.0.0.1:-1", None, Path::new("/tmp/s"), None),
        ] {
            assert_eq!(store_limit_covers(good, reserved), Ok(()), "{good}");
        }
        for bad in [
            // No limit: 75 % of the free disk.
            "jetstream {\n  store_dir: /data\n}\n",
            "jetstream {\n  # max_file_store: 8GB\n}\n",
            // Too small (6 GB is less than 6 GiB), or not a size.
            "jetstream {\n  max_file_store: 6GB\n}\n",
            "jetstream {\n  max_file_store: 1024MiB\n}\n",
            "jetstream {\n  max_file_store: lots\n}\n",
            // Outside the block.
            "max_file_store: 8GB\njetstream {\n  store_dir: /data\n}\n",
        ] {
            assert!(store_limit_covers(bad, reserved).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_shipped_reservations_fit_the_kubernetes_volume_limit() {
        let reserved = dossier_broker::TopologyConfig::default().limits.reserved();
        let shipped = include_str!("../../../deploy/k8s/base/nats/nats.conf");
        assert_eq!(store_limit_covers(shipped, reserved), Ok(()));
    }

    #[test]
    fn urls_are_not_comments() {
        assert_eq!(
            strip_comments("routes: [nats://a:6222] // the peers\n// all\n"),
            "routes: [nats://a:6222] \n\n"
        );
    }

    #[test]
    fn the_configuration_file_of_a_command_line() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            config_flag(&args(&["--config", "/etc/nats/nats.conf"])).as_deref(),
            Some("/etc/nats/nats.conf")
        );
        assert_eq!(
            config_flag(&args(&["-p", "4222", "-c", "/c.conf"])).as_deref(),
            Some("/c.conf")
        );
        assert_eq!(config_flag(&args(&["-js", "-sd", "/data"])), None);
    }
}
