//! What the services read: the environment variables each built service
//! binary lists with its hidden `--print-env` (its clap `Config`, flattened
//! structs included, and what telemetry reads itself; see
//! `dossier_service::config`). xtask may not link the services
//! (xtask/tests/layering.rs), so it asks the binaries.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail, ensure};

use super::dockerfile::Dockerfile;
use crate::{cargo, run_checked, target_dir};

/// Variables a service cannot run without although clap has no default for
/// them and they are `Option`s (so clap does not say it).
const REQUIRED_AT_RUNTIME: &[(&str, &str)] = &[
    // `App::build` fails without keys ("no API keys configured").
    ("gateway", "DOSSIER_API_KEYS_FILE"),
];

/// One variable a service reads.
#[derive(Clone, Debug)]
pub(super) struct Var {
    /// Clap's default, when it has one.
    pub(super) default: Option<String>,
    /// Clap refuses to start without it.
    required: bool,
}

/// A service and the variables it reads.
pub(super) struct Service {
    pub(super) name: String,
    pub(super) reads: BTreeMap<String, Var>,
}

impl Service {
    /// Variables that must be set in a container: required by clap, a
    /// default on the loopback interface (unreachable from another
    /// container), or known to be required at runtime.
    pub(super) fn required(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .reads
            .iter()
            .filter(|(_, v)| {
                v.required
                    || v.default
                        .as_deref()
                        .is_some_and(|d| d.contains("127.0.0.1") || d.contains("localhost"))
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

/// The services of the Dockerfile's images, by name.
pub(super) struct ServiceCatalog {
    pub(super) services: BTreeMap<String, Service>,
}

impl ServiceCatalog {
    /// Every service image of the Dockerfile, with what its binary reads:
    /// builds the binaries (debug; the smoke run uses them too) and runs
    /// each with `--print-env`.
    pub(super) fn load(root: &Path, dockerfile: &Dockerfile) -> anyhow::Result<ServiceCatalog> {
        let names: Vec<String> = dockerfile
            .service_stages()
            .map(|s| s.name.clone())
            .collect();
        for name in &names {
            ensure!(
                root.join("services").join(name).join("Cargo.toml").exists(),
                "{name}: deploy/Dockerfile builds it, but services/{name} does not exist"
            );
        }
        let mut build = cargo();
        build.args(["build", "--quiet", "--bins"]);
        for name in &names {
            build.args(["-p", name]);
        }
        run_checked(&mut build)?;
        let mut services = BTreeMap::new();
        for name in names {
            let bin = target_dir().join("debug").join(&name);
            let out = Command::new(&bin)
                .arg("--print-env")
                .output()
                .with_context(|| format!("running {} --print-env", bin.display()))?;
            if !out.status.success() {
                bail!(
                    "{} --print-env: {}",
                    bin.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let reads = parse_listing(&String::from_utf8_lossy(&out.stdout))
                .with_context(|| format!("{name} --print-env"))?;
            services.insert(name.clone(), Service { name, reads });
        }
        Ok(ServiceCatalog { services })
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

/// The lines of `--print-env`: `NAME<TAB>required|optional<TAB>default`.
fn parse_listing(listing: &str) -> anyhow::Result<BTreeMap<String, Var>> {
    let mut reads = BTreeMap::new();
    for line in listing.lines().filter(|l| !l.is_empty()) {
        let mut fields = line.split('\t');
        let (Some(name), Some(need), Some(default), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            bail!("not `NAME<TAB>required|optional<TAB>default`: {line:?}");
        };
        let required = match need {
            "required" => true,
            "optional" => false,
            _ => bail!("neither required nor optional: {line:?}"),
        };
        reads.insert(
            name.to_owned(),
            Var {
                default: (!default.is_empty()).then(|| default.to_owned()),
                required,
            },
        );
    }
    ensure!(!reads.is_empty(), "lists no variable");
    Ok(reads)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listing_and_what_a_container_must_set() {
        let reads = parse_listing(
            "DOSSIER_A\toptional\t127.0.0.1:8080\n\
             DOSSIER_B\toptional\t\n\
             DOSSIER_D\toptional\t4\n\
             DOSSIER_E\trequired\t\n\
             OTEL_C\toptional\t\n",
        )
        .unwrap();
        assert_eq!(
            reads["DOSSIER_A"].default.as_deref(),
            Some("127.0.0.1:8080")
        );
        assert!(!reads["DOSSIER_B"].required && reads["DOSSIER_B"].default.is_none());
        assert_eq!(reads["DOSSIER_D"].default.as_deref(), Some("4"));
        assert!(reads["DOSSIER_E"].required);
        assert!(!reads["OTEL_C"].required);
        let service = Service {
            name: "x".into(),
            reads,
        };
        let required: Vec<String> = service.required().into_iter().collect();
        assert_eq!(required, ["DOSSIER_A", "DOSSIER_E"]);
        assert!(parse_listing("DOSSIER_A optional\n").is_err());
    }
}
