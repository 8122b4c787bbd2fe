//! What the services read: the environment variables of each service's
//! crate closure (`ENV_*` constants and clap `env = ...`), from the source.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::dockerfile::Dockerfile;

/// Variables a service cannot run without although clap has no default for
/// them and they are `Option`s (so the source does not say it).
const REQUIRED_AT_RUNTIME: &[(&str, &str)] = &[
    // `App::build` fails without keys ("no API keys configured").
    ("gateway", "DOSSIER_API_KEYS_FILE"),
];

/// One variable a service reads.
#[derive(Clone, Debug)]
pub(super) struct Var {
    /// Clap's default, when it has one (`Some("")` for a non-string default).
    pub(super) default: Option<String>,
    /// `Option<_>`, `Vec<_>` or `bool`: fine unset.
    optional: bool,
}

/// A service: its crate closure and the variables they read.
pub(super) struct Service {
    pub(super) name: String,
    /// The crate the variables were read from (itself, or a stand-in).
    pub(super) source: String,
    pub(super) reads: BTreeMap<String, Var>,
}

impl Service {
    /// Variables that must be set in a container: no default and not
    /// optional, a default on the loopback interface (unreachable from
    /// another container), or known to be required at runtime.
    pub(super) fn required(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .reads
            .iter()
            .filter(|(_, v)| match &v.default {
                None => !v.optional,
                Some(d) => d.contains("127.0.0.1") || d.contains("localhost"),
            })
            .map(|(k, _)| k.clone())
            .collect();
        out.extend(
            REQUIRED_AT_RUNTIME
                .iter()
                .filter(|(s, _)| *s == self.name)
                .map(|(_, v)| (*v).to_owned()),
        );
        out
    }
}

pub(super) struct ServiceCatalog {
    pub(super) services: BTreeMap<String, Service>,
    pub(super) notes: Vec<String>,
}

impl ServiceCatalog {
    /// Every service image of the Dockerfile, with what its crate reads.
    pub(super) fn load(root: &Path, dockerfile: &Dockerfile) -> anyhow::Result<ServiceCatalog> {
        let manifest: toml::Table =
            toml::from_str(&std::fs::read_to_string(root.join("Cargo.toml"))?)?;
        let paths: BTreeMap<String, PathBuf> = manifest
            .get("workspace")
            .and_then(|w| w.get("dependencies"))
            .and_then(|d| d.as_table())
            .into_iter()
            .flatten()
            .filter_map(|(name, spec)| Some((name.clone(), root.join(spec.get("path")?.as_str()?))))
            .collect();
        let mut services = BTreeMap::new();
        let mut notes = Vec::new();
        for stage in dockerfile.service_stages() {
            let name = stage.name.clone();
            let dir = root.join("services").join(&name);
            let (source, dir) = if dir.join("Cargo.toml").exists() {
                (name.clone(), dir)
            } else if name.ends_with("-worker")
                && root.join("services/search-worker/Cargo.toml").exists()
            {
                // A worker whose crate has not landed yet is checked against
                // the variables every worker shares (search-worker's).
                notes.push(format!(
                    "{name}: not in the workspace yet; checked against search-worker's variables"
                ));
                (
                    "search-worker".to_owned(),
                    root.join("services/search-worker"),
                )
            } else {
                bail!("{name}: deploy/Dockerfile builds it, but services/{name} does not exist");
            };
            let reads = reads_of_closure(&dir, &paths)?;
            if let Some(unresolved) = reads.keys().find(|k| k.starts_with("<unresolved")) {
                bail!("services/{source}: cannot resolve the clap `env = ...` {unresolved}");
            }
            services.insert(
                name.clone(),
                Service {
                    name,
                    source,
                    reads,
                },
            );
        }
        Ok(ServiceCatalog { services, notes })
    }

    /// The service an image runs: the last path segment of its repository.
    pub(super) fn of_image(&self, image: &str) -> Option<&Service> {
        let repo = image.rsplit_once(':').map_or(image, |(r, _)| r);
        let name = repo.rsplit('/').next()?;
        if repo.contains('/') {
            self.services.get(name)
        } else {
            None
        }
    }
}

/// The variables read by a crate and the workspace crates it depends on.
fn reads_of_closure(
    dir: &Path,
    paths: &BTreeMap<String, PathBuf>,
) -> anyhow::Result<BTreeMap<String, Var>> {
    let mut seen = BTreeSet::new();
    // The service's own crate first (see `parse_structs`).
    let mut queue = vec![dir.to_path_buf()];
    let mut sources = String::new();
    while !queue.is_empty() {
        let dir = queue.remove(0);
        if !seen.insert(dir.clone()) {
            continue;
        }
        let manifest: toml::Table = toml::from_str(
            &std::fs::read_to_string(dir.join("Cargo.toml"))
                .with_context(|| format!("reading {}/Cargo.toml", dir.display()))?,
        )?;
        for dep in manifest
            .get("dependencies")
            .and_then(|d| d.as_table())
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            if let Some(path) = paths.get(dep) {
                queue.push(path.clone());
            }
        }
        collect_sources(&dir.join("src"), &mut sources)?;
    }
    Ok(parse_reads(&sources))
}

fn collect_sources(dir: &Path, out: &mut String) -> anyhow::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_sources(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path)?);
            out.push('\n');
        }
    }
    Ok(())
}

/// What a service reads, from the sources of its crate closure: the clap
/// arguments with `env = ...` of its `Config` and of every struct flattened
/// into it (`#[command(flatten)]`, followed across crates), with their
/// defaults and whether the field is optional; and every `ENV_*` constant no
/// clap argument uses, which the code reads itself (`std::env::var`:
/// `RUST_LOG`, `OTEL_EXPORTER_OTLP_ENDPOINT`), optional.
fn parse_reads(src: &str) -> BTreeMap<String, Var> {
    let mut consts = BTreeMap::new();
    for line in src.lines() {
        let line = line.trim();
        if let Some(rest) = line.split("const ENV_").nth(1)
            && let Some((ident, value)) = rest.split_once(':')
            && let Some(value) = value.split('"').nth(1)
        {
            consts.insert(format!("ENV_{}", ident.trim()), value.to_owned());
        }
    }
    let structs = parse_structs(src, &consts);
    let mut reads = BTreeMap::new();
    // Variables some clap argument reads: read only where it is flattened in.
    let in_clap: BTreeSet<&String> = structs
        .values()
        .flatten()
        .filter_map(|f| match f {
            Field::Arg(env, _) => Some(env),
            Field::Flatten(_) => None,
        })
        .collect();
    for value in consts.values() {
        if !in_clap.contains(value) {
            reads.insert(
                value.clone(),
                Var {
                    default: None,
                    optional: true,
                },
            );
        }
    }
    let mut queue = vec!["Config".to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        for field in structs.get(&name).into_iter().flatten() {
            match field {
                Field::Arg(env, var) => {
                    reads.insert(env.clone(), var.clone());
                }
                Field::Flatten(ty) => queue.push(ty.clone()),
            }
        }
    }
    reads
}

/// A field of a clap struct that matters here.
enum Field {
    /// An argument read from an environment variable.
    Arg(String, Var),
    /// `#[command(flatten)]`: the fields of that struct.
    Flatten(String),
}

/// Structs with clap fields, by name. The service's own `Config` comes first
/// in the sources, so it wins over a same-named struct of a dependency.
fn parse_structs(src: &str, consts: &BTreeMap<String, String>) -> BTreeMap<String, Vec<Field>> {
    let mut structs: BTreeMap<String, Vec<Field>> = BTreeMap::new();
    let lines: Vec<&str> = src.lines().collect();
    let mut current: Option<String> = None;
    let mut attrs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if let Some(rest) = line
            .strip_prefix("pub struct ")
            .or_else(|| line.strip_prefix("struct "))
            && line.ends_with('{')
        {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            current = (!structs.contains_key(&name)).then_some(name);
            attrs.clear();
            continue;
        }
        let Some(name) = &current else { continue };
        if line == "}" {
            current = None;
            continue;
        }
        if line.starts_with("#[") {
            let mut attr = line.to_owned();
            while !attr.trim_end().ends_with(']') && i < lines.len() {
                attr.push(' ');
                attr.push_str(lines[i].trim());
                i += 1;
            }
            attrs.push(attr);
            continue;
        }
        if line.starts_with("//") || line.is_empty() {
            continue;
        }
        // A field: `pub name: Type,`.
        let ty = line
            .split_once(':')
            .map(|(_, t)| t.trim().trim_end_matches(','))
            .unwrap_or_default();
        let fields = structs.entry(name.clone()).or_default();
        for attr in attrs.drain(..) {
            if attr.starts_with("#[command(") && attr.contains("flatten") {
                let ty: String = ty
                    .rsplit("::")
                    .next()
                    .unwrap_or(ty)
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                fields.push(Field::Flatten(ty));
            } else if attr.starts_with("#[arg(")
                && let Some(env) = arg_value(&attr, "env")
            {
                // A literal, or a constant (maybe path-qualified:
                // `dossier_broker::config::ENV_NATS_URL`).
                let ident = env.rsplit("::").next().unwrap_or_default().trim();
                let env = if env.starts_with('"') {
                    env.trim_matches('"').to_owned()
                } else if let Some(v) = consts.get(ident) {
                    v.clone()
                } else {
                    // Unknown: fail loudly rather than miss a variable.
                    format!("<unresolved {env}>")
                };
                let default = arg_value(&attr, "default_value")
                    .map(|d| d.trim_matches('"').to_owned())
                    .or_else(|| arg_value(&attr, "default_value_t").map(|_| String::new()));
                let optional = ty.starts_with("Option<") || ty.starts_with("Vec<") || ty == "bool";
                fields.push(Field::Arg(env, Var { default, optional }));
            }
        }
    }
    structs
}

/// The value of `key = value` in a clap attribute (up to the next top-level comma).
fn arg_value(attr: &str, key: &str) -> Option<String> {
    let body = attr
        .strip_prefix("#[arg(")?
        .strip_suffix(")]")
        .unwrap_or(attr);
    let mut depth = 0;
    let mut in_str = false;
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, c) in body.char_indices() {
        match c {
            '"' => in_str = !in_str,
            '(' | '[' | '<' if !in_str => depth += 1,
            ')' | ']' | '>' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts.iter().find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim() == key).then(|| v.trim().to_owned())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_config_and_what_it_flattens() {
        let src = r#"
pub const ENV_A: &str = "DOSSIER_A";
pub const ENV_B: &str = "DOSSIER_B";
pub const ENV_C: &str = "OTEL_C";
pub const ENV_N: &str = "DOSSIER_NATS_URL";
pub struct Config {
    /// Where.
    #[arg(long, env = ENV_A, default_value = "127.0.0.1:8080")]
    pub a: SocketAddr,
    #[arg(long, env = ENV_B,
          value_parser = humantime::parse_duration)]
    pub b: Option<Duration>,
    /// Nested.
    #[command(flatten)]
    pub inner: crate::Inner,
}
pub struct Inner {
    #[arg(long, env = "DOSSIER_D", default_value_t = 4)]
    pub d: usize,
    #[arg(long, env = "DOSSIER_E")]
    pub e: String,
}
pub struct Broker {
    #[arg(long, env = ENV_N, default_value = "nats://127.0.0.1:4222")]
    pub url: String,
}
"#;
        let reads = parse_reads(src);
        assert_eq!(
            reads["DOSSIER_A"].default.as_deref(),
            Some("127.0.0.1:8080")
        );
        assert!(reads["DOSSIER_B"].optional && reads["DOSSIER_B"].default.is_none());
        assert_eq!(reads["DOSSIER_D"].default.as_deref(), Some(""));
        assert!(!reads["DOSSIER_E"].optional);
        assert!(reads["OTEL_C"].optional);
        // A struct the Config does not flatten is not read.
        assert!(!reads.contains_key("DOSSIER_NATS_URL"));
        let service = Service {
            name: "x".into(),
            source: "x".into(),
            reads,
        };
        let required: Vec<String> = service.required().into_iter().collect();
        assert_eq!(required, ["DOSSIER_A", "DOSSIER_E"]);
    }
}
