//! Check 3: every Kubernetes overlay rendered by kustomize (and validated
//! by [`super::tools`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, ensure};
use serde_json::Value;

use super::Report;
use super::tools::{KUBECTL_VERSION, Tools};
use crate::run_checked;

pub(super) struct Overlay {
    pub(super) name: String,
    /// The rendered YAML.
    pub(super) file: PathBuf,
    /// The same, as JSON documents.
    pub(super) docs: Vec<Value>,
}

impl Overlay {
    pub(super) fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    }

    /// Every container of every workload, with its workload.
    pub(super) fn containers(&self) -> Vec<(&Value, &Value)> {
        let mut out = Vec::new();
        for doc in &self.docs {
            if let Some(containers) = doc["spec"]["template"]["spec"]["containers"].as_array() {
                out.extend(containers.iter().map(|c| (doc, c)));
            }
        }
        out
    }

    /// The namespace the overlay deploys into (its Namespace resource, or
    /// the namespace its resources carry).
    pub(super) fn namespace(&self) -> String {
        self.docs
            .iter()
            .find(|d| d["kind"] == "Namespace")
            .and_then(|d| d["metadata"]["name"].as_str())
            .or_else(|| {
                self.docs
                    .iter()
                    .find_map(|d| d["metadata"]["namespace"].as_str())
            })
            .unwrap_or("default")
            .to_owned()
    }

    /// The environment a container gets from its manifest: `env` (a value
    /// from a reference is `<from a reference>`) over `envFrom` ConfigMaps
    /// and Secrets of the overlay. A source missing from the overlay is a
    /// problem (the second list).
    pub(super) fn env_of(&self, container: &Value) -> (BTreeMap<String, String>, Vec<String>) {
        let mut set = BTreeMap::new();
        let mut missing = Vec::new();
        for source in container["envFrom"].as_array().into_iter().flatten() {
            let (kind, name) = if let Some(n) = source["configMapRef"]["name"].as_str() {
                ("ConfigMap", n)
            } else {
                (
                    "Secret",
                    source["secretRef"]["name"].as_str().unwrap_or_default(),
                )
            };
            match self.find(kind, name) {
                Some(doc) => {
                    for (k, v) in doc["data"].as_object().into_iter().flatten() {
                        set.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
                    }
                }
                None => missing.push(format!("envFrom {kind} {name} is not in the overlay")),
            }
        }
        // `env` wins over `envFrom`, as in Kubernetes.
        for e in container["env"].as_array().into_iter().flatten() {
            let value = e["value"]
                .as_str()
                .map_or_else(|| "<from a reference>".to_owned(), str::to_owned);
            set.insert(e["name"].as_str().unwrap_or_default().to_owned(), value);
        }
        (set, missing)
    }

    /// Where the file `path` of a container comes from: the volume mounted
    /// at its directory (the longest mount path that holds it), which must
    /// be read-only and a Secret, ConfigMap or projected volume. When the
    /// overlay makes that Secret or ConfigMap (or a cert-manager
    /// Certificate makes the Secret), the file must be one of its keys.
    pub(super) fn mounted_file(
        &self,
        workload: &Value,
        container: &Value,
        path: &str,
    ) -> Result<MountedFile, String> {
        let mount = container["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| {
                m["mountPath"].as_str().is_some_and(|dir| {
                    path.strip_prefix(dir.trim_end_matches('/'))
                        .is_some_and(|rest| rest.starts_with('/'))
                })
            })
            .max_by_key(|m| m["mountPath"].as_str().map_or(0, str::len))
            .ok_or_else(|| format!("{path} is on no mounted volume"))?;
        let dir = mount["mountPath"].as_str().unwrap_or_default();
        let file = path[dir.trim_end_matches('/').len() + 1..].to_owned();
        let volume_name = mount["name"].as_str().unwrap_or_default();
        if mount["readOnly"] != true {
            return Err(format!(
                "{path}: volume {volume_name} is not mounted read-only"
            ));
        }
        let volume = workload["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == volume_name)
            .ok_or_else(|| format!("{path}: volume {volume_name} is not in the pod"))?;
        let (kind, name, source) = if let Some(name) = volume["secret"]["secretName"].as_str() {
            ("Secret", name, &volume["secret"])
        } else if let Some(name) = volume["configMap"]["name"].as_str() {
            ("ConfigMap", name, &volume["configMap"])
        } else if volume["projected"].is_object() {
            return Ok(MountedFile {
                kind: "projected",
                name: volume_name.to_owned(),
            });
        } else {
            return Err(format!(
                "{path}: volume {volume_name} is neither a Secret nor a ConfigMap"
            ));
        };
        // With `items`, only the listed keys are files, under their paths.
        let key = match source["items"].as_array() {
            Some(items) => items
                .iter()
                .find(|i| i["path"] == file.as_str())
                .and_then(|i| i["key"].as_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("{path}: {kind} {name} is mounted without {file}"))?,
            None => file,
        };
        let keys: Option<Vec<String>> = if let Some(doc) = self.find(kind, name) {
            Some(
                doc["data"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.clone())
                    .collect(),
            )
        } else if kind == "Secret" && self.certificate_of(name).is_some() {
            Some(CERTIFICATE_KEYS.iter().map(|k| (*k).to_owned()).collect())
        } else {
            // Made outside the overlay (deploy/README.md says how).
            None
        };
        if let Some(keys) = keys
            && !keys.contains(&key)
        {
            return Err(format!(
                "{path}: {kind} {name} has no key {key} (it has {keys:?})"
            ));
        }
        Ok(MountedFile {
            kind,
            name: name.to_owned(),
        })
    }

    /// The StatefulSet `nats` and the ConfigMap of the overlay it mounts
    /// (its configuration files).
    pub(super) fn nats_config(&self) -> Result<(&Value, &Value), String> {
        let statefulset = self
            .find("StatefulSet", "nats")
            .ok_or("no StatefulSet nats")?;
        let config_map = statefulset["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|v| v["configMap"]["name"].as_str())
            .and_then(|name| self.find("ConfigMap", name))
            .ok_or("the nats StatefulSet mounts no rendered ConfigMap")?;
        Ok((statefulset, config_map))
    }

    /// The cert-manager Certificate that writes the Secret `secret`.
    pub(super) fn certificate_of(&self, secret: &str) -> Option<&Value> {
        self.docs
            .iter()
            .find(|d| d["kind"] == "Certificate" && d["spec"]["secretName"] == secret)
    }
}

/// The keys of a Secret that cert-manager writes for a Certificate.
const CERTIFICATE_KEYS: &[&str] = &["tls.crt", "tls.key", "ca.crt"];

/// A file of a container that a volume provides.
pub(super) struct MountedFile {
    /// `Secret`, `ConfigMap` or `projected`.
    pub(super) kind: &'static str,
    /// The Secret's or ConfigMap's name (the volume's, when projected).
    pub(super) name: String,
}

/// An overlay from YAML documents (tests of the checks).
#[cfg(test)]
pub(super) fn overlay_from_yaml(name: &str, yaml: &str) -> Overlay {
    use serde::Deserialize as _;
    let docs = serde_norway::Deserializer::from_str(yaml)
        .filter_map(|doc| Value::deserialize(doc).ok())
        .filter(|d| !d.is_null())
        .collect();
    Overlay {
        name: name.to_owned(),
        file: PathBuf::from(format!("{name}.yaml")),
        docs,
    }
}

pub(super) fn render_overlays(
    tools: &Tools,
    root: &Path,
    work: &Path,
    report: &mut Report,
) -> anyhow::Result<Vec<Overlay>> {
    let k8s = root.join("deploy/k8s");
    let mut targets: Vec<(String, PathBuf)> = Vec::new();
    let mut overlay_names: Vec<String> = std::fs::read_dir(k8s.join("overlays"))?
        .filter_map(Result::ok)
        .filter(|e| e.path().join("kustomization.yaml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    overlay_names.sort();
    for name in &overlay_names {
        targets.push((name.clone(), k8s.join("overlays").join(name)));
    }
    // Production without KEDA: the overlay plus the HPA fallback component,
    // as deploy/README.md tells an operator to compose them.
    let fallback = work.join("production-worker-hpa");
    std::fs::create_dir_all(&fallback)?;
    let rel = |to: &Path| relative(&fallback, to).to_string_lossy().into_owned();
    std::fs::write(
        fallback.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\ncomponents:\n  - {}\n",
            rel(&k8s.join("overlays/production")),
            rel(&k8s.join("components/worker-hpa")),
        ),
    )?;
    targets.push(("production-worker-hpa".to_owned(), fallback));

    let mut overlays = Vec::new();
    let mut problems = Vec::new();
    for (name, dir) in targets {
        let out = Command::new(&tools.kubectl)
            .arg("kustomize")
            .arg(&dir)
            .output()
            .context("running kubectl kustomize")?;
        if !out.status.success() {
            problems.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let file = work.join(format!("{name}.yaml"));
        std::fs::write(&file, &out.stdout)?;
        let json_file = work.join(format!("{name}.json"));
        run_checked(
            tools
                .python()
                .args([
                    "-c",
                    "import json, sys, yaml\njson.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d], open(sys.argv[2], 'w'))",
                ])
                .arg(&file)
                .arg(&json_file),
        )?;
        let docs: Vec<Value> = serde_json::from_slice(&std::fs::read(&json_file)?)?;
        eprintln!(
            "deploy-check: rendered {name}: {} resources -> {}",
            docs.len(),
            file.display()
        );
        overlays.push(Overlay { name, file, docs });
    }
    for expected in ["dev", "production"] {
        if !overlay_names.iter().any(|n| n == expected) {
            problems.push(format!("overlay {expected} is missing"));
        }
    }
    report.check(
        format!("every overlay renders (kustomize of kubectl {KUBECTL_VERSION})"),
        problems,
    );
    ensure!(!overlays.is_empty(), "no overlay rendered");
    Ok(overlays)
}

/// `to` relative to `from` (both absolute).
pub(super) fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for c in &to[common..] {
        out.push(c);
    }
    out
}

/// A problem of `problems` mentions `wanted` (tests of the checks).
#[cfg(test)]
pub(super) fn assert_names(problems: &[String], wanted: &str) {
    assert!(
        problems.iter().any(|p| p.contains(wanted)),
        "no problem mentions {wanted:?}: {problems:#?}"
    );
}
