//! Check 6: every variable a container gets is one its service reads (as
//! its binary's `--print-env` lists them) or is pending, and every variable
//! a service needs is set.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context as _;
use serde_json::Value;

use super::Report;
use super::catalog::{Service, ServiceCatalog};
use super::compose::services_of;
use super::dockerfile::Dockerfile;
use super::k8s::Overlay;

#[derive(serde::Deserialize)]
struct PendingFile {
    pub(super) pending: Vec<PendingVar>,
}

#[derive(serde::Deserialize)]
struct PendingVar {
    pub(super) name: String,
    pub(super) services: Vec<String>,
    until: String,
}

pub(super) struct Pending(Vec<PendingVar>);

impl Pending {
    pub(super) fn load(root: &Path) -> anyhow::Result<Pending> {
        let path = root.join("deploy/pending-env.toml");
        let file: PendingFile = toml::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("parsing {}", path.display()))?;
        Ok(Pending(file.pending))
    }

    fn allows(&self, service: &str, var: &str) -> bool {
        self.0
            .iter()
            .any(|p| p.name == var && p.services.iter().any(|s| s == service))
    }
}

/// One container's environment, wherever it is defined.
pub(super) struct Container<'a> {
    pub(super) place: String,
    pub(super) service: &'a Service,
    /// Variables it sets itself.
    pub(super) set: BTreeMap<String, String>,
    /// Variables it inherits from its image.
    image_env: BTreeMap<String, String>,
}

pub(super) fn containers<'a>(
    services: &'a ServiceCatalog,
    compose: &Value,
    dockerfile: &Dockerfile,
    overlays: &[Overlay],
) -> (Vec<Container<'a>>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for stage in dockerfile.service_stages() {
        if let Some(service) = services.services.get(&stage.name) {
            out.push(Container {
                place: format!("deploy/Dockerfile target {}", stage.name),
                service,
                set: stage.env.clone(),
                image_env: BTreeMap::new(),
            });
        }
    }
    for (name, svc) in services_of(compose) {
        let image = svc["image"].as_str().unwrap_or_default();
        let Some(service) = services.of_image(image) else {
            continue;
        };
        let target = svc["build"]["target"].as_str().unwrap_or_default();
        if target != service.name {
            problems.push(format!(
                "compose {name}: image {image} is built from target `{target}`"
            ));
        }
        let set = svc["environment"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        out.push(Container {
            place: format!("docker-compose.yml {name}"),
            service,
            set,
            image_env: image_env(dockerfile, &service.name),
        });
    }
    for overlay in overlays {
        for (workload, c) in overlay.containers() {
            let image = c["image"].as_str().unwrap_or_default();
            let Some(service) = services.of_image(image) else {
                continue;
            };
            let place = format!(
                "{} {}/{}",
                overlay.name,
                workload["kind"].as_str().unwrap_or_default(),
                workload["metadata"]["name"].as_str().unwrap_or_default()
            );
            let (set, missing) = overlay.env_of(c);
            problems.extend(missing.into_iter().map(|m| format!("{place}: {m}")));
            out.push(Container {
                place,
                service,
                set,
                image_env: image_env(dockerfile, &service.name),
            });
        }
    }
    (out, problems)
}

fn image_env(dockerfile: &Dockerfile, service: &str) -> BTreeMap<String, String> {
    dockerfile
        .stage(service)
        .map(|s| s.env.clone())
        .unwrap_or_default()
}

pub(super) fn check_env(
    services: &ServiceCatalog,
    pending: &Pending,
    compose: &Value,
    dockerfile: &Dockerfile,
    overlays: &[Overlay],
    report: &mut Report,
) -> anyhow::Result<()> {
    let (containers, mut problems) = containers(services, compose, dockerfile, overlays);
    let mut used_pending = BTreeSet::new();
    for c in &containers {
        for var in c.set.keys() {
            if c.service.reads.contains_key(var) {
                continue;
            }
            if pending.allows(&c.service.name, var) {
                used_pending.insert(var.clone());
                continue;
            }
            problems.push(format!(
                "{}: sets {var}, which {} does not read (its --print-env)",
                c.place, c.service.name
            ));
        }
        if c.place.starts_with("deploy/Dockerfile") {
            continue;
        }
        for var in c.service.required() {
            if !c.set.contains_key(&var) && !c.image_env.contains_key(&var) {
                problems.push(format!(
                    "{}: {} needs {var} in a container; it is not set",
                    c.place, c.service.name
                ));
            }
        }
    }
    for p in &pending.0 {
        for service in &p.services {
            if let Some(s) = services.services.get(service)
                && s.reads.contains_key(&p.name)
            {
                problems.push(format!(
                    "deploy/pending-env.toml: {service} now reads {}: remove it from the pending list",
                    p.name
                ));
            }
        }
        if !used_pending.contains(&p.name) {
            problems.push(format!(
                "deploy/pending-env.toml: {} is set by no deploy file: remove the entry",
                p.name
            ));
        }
    }
    for p in &pending.0 {
        eprintln!(
            "deploy-check: pending {} ({}): {}",
            p.name,
            p.services.join(", "),
            p.until
        );
    }
    report.check(
        format!(
            "environment: {} containers set only variables their service reads (or pending), and all it needs",
            containers.len()
        ),
        problems,
    );
    Ok(())
}
