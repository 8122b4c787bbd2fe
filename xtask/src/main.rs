//! `cargo xtask`: the project's build system (see README.md).
//!
//! - `cargo xtask up` builds and runs nats-server and every service on this
//!   machine, as separate processes, until Ctrl-C.
//! - `cargo xtask test` runs every test against the pinned nats-server.
//! - `cargo xtask keygen --tenant NAME` prints a new API key and its keys-file entry.
//! - `cargo xtask nats-server` installs (if needed) and prints the pinned nats-server.
//! - `cargo xtask deploy-check` validates deploy/ and docker-compose.yml (deploy/README.md).
//! - `cargo xtask gen-directory` writes the deterministic demo directory.
//! - `cargo xtask bench enrichment` benchmarks the whole stack (bench/results/).
//! - `cargo xtask chaos` injects faults into the whole stack under load and
//!   checks the invariants through the HTTP API.

mod bench;
mod chaos;
mod contract;
mod deploy;
mod directory;
mod keygen;
mod nats;
mod pypi;
mod samples;
mod supervise;
mod test;
mod up;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Dossier's build system")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build and run nats-server and every service locally until Ctrl-C.
    Up(up::Args),
    /// Run every test (installs the pinned nats-server first).
    Test(test::Args),
    /// Print a new API key and the `[[keys]]` entry for the keys file.
    Keygen(keygen::Args),
    /// Install the pinned nats-server if needed and print its path.
    NatsServer,
    /// Write the deterministic demo directory (JSONL) that `up` serves.
    GenDirectory(directory::Args),
    /// Print inputs worth trying against the local directory (companies,
    /// people, an email that matches nobody) as curl commands.
    Samples(samples::Args),
    /// Validate the Dockerfile, compose file and Kubernetes manifests, and
    /// run the services with the production NATS permissions.
    DeployCheck(deploy::Args),
    /// Benchmark the whole stack in release; results in bench/results/.
    Bench(bench::Args),
    /// Kill, restart and stall every part of the running stack under load,
    /// then check every operation end to end through the HTTP API.
    Chaos(chaos::Args),
    /// Fuzz the running stack with schemathesis against its OpenAPI
    /// document (no server errors, no answer that breaks the document).
    Contract(contract::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up(args) => up::run(args),
        Command::Test(args) => test::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::GenDirectory(args) => directory::run(args),
        Command::Samples(args) => samples::run(args),
        Command::DeployCheck(args) => deploy::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Chaos(args) => chaos::run(args),
        Command::Contract(args) => contract::run(args),
        Command::NatsServer => {
            println!("{}", nats::ensure()?.display());
            Ok(())
        }
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// The cargo that runs us.
fn cargo() -> std::process::Command {
    let mut cmd =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

/// Runs a command to completion, failing on a non-zero exit.
fn run_checked(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {cmd:?}: {e}"))?;
    anyhow::ensure!(status.success(), "{cmd:?} failed: {status}");
    Ok(())
}

/// The status and JSON body (`null` when not JSON) of an HTTP answer, read
/// up to 64 MiB (the bench's and the chaos run's clients of the API).
fn json_answer(
    response: http::Response<ureq::Body>,
) -> Result<(u16, serde_json::Value), ureq::Error> {
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    ))
}
