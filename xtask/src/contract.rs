//! `cargo xtask contract`: contract fuzzing. Starts the stack (nats-server
//! and every service as processes on loopback ports the OS picks, the chaos
//! run's stack without faults, on a small generated directory), then runs
//! schemathesis against the OpenAPI document the gateway serves: generated
//! requests to every operation, each answer checked — no server error, a
//! documented status, content type, headers, and a body valid against the
//! documented schema. Bounded: examples per operation, a time budget for
//! the run, a timeout per request; everything on loopback.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, ensure};

use crate::chaos::schedule::Mode;
use crate::chaos::stack::{ChaosStack, Settings};
use crate::{root, target_dir};

/// The checks every answer must pass (schemathesis's names).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance";
/// The small directory the workers load.
const PEOPLE: usize = 5_000;
const COMPANIES: usize = 500;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Examples generated per API operation and phase.
    #[arg(long, default_value_t = 25)]
    max_examples: u32,
    /// Time budget of the whole fuzzing run, in seconds.
    #[arg(long, default_value_t = 300)]
    max_time: u32,
    /// Seed of the generator (the same seed, the same requests).
    #[arg(long, default_value_t = 18)]
    seed: u64,
    /// Use the services' debug binaries as they are, without `cargo build`.
    #[arg(long)]
    no_build: bool,
}

impl Default for Args {
    /// The defaults of the flags (what `cargo xtask test` runs).
    fn default() -> Args {
        Args {
            max_examples: 25,
            max_time: 300,
            seed: 18,
            no_build: false,
        }
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let bin_dir = crate::chaos::stack::build_services(args.no_build)?;
    let out = target_dir().join("contract");
    let python = ensure_schemathesis(&out)?;
    let work = out.join(format!("run-{}", std::process::id()));
    let directory =
        dossier_directory_gen::write_jsonl(&work.join("directory"), args.seed, PEOPLE, COMPANIES)
            .with_context(|| format!("writing the directory into {}", work.display()))?;
    let settings = Settings {
        directory: directory.to_string_lossy().into_owned(),
        // The chaos stack always passes overrides (one is required): one
        // that names no company of the directory.
        site_overrides: "contract.invalid=http://127.0.0.1:9".to_owned(),
        ack_wait: Duration::from_secs(30),
    };
    eprintln!("xtask: starting the stack (logs in {})", work.display());
    let stack = ChaosStack::start(Mode::Single, &bin_dir, &work, &settings)?;
    let report = out.join("report");
    let status = Command::new("python3")
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{}/openapi.json", stack.base))
        .args(["--url", &stack.base])
        .args(["--header", &format!("Authorization: Bearer {}", stack.key)])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &args.max_examples.to_string()])
        .args(["--max-time", &args.max_time.to_string()])
        .args(["--seed", &args.seed.to_string()])
        // Above the longest `Prefer: wait` (29 s): a generated wait is a
        // slow answer, not a hang.
        .args(["--request-timeout", "35"])
        // One worker: hypothesis's source introspection is not thread-safe
        // (parallel workers fail the run with its own internal errors).
        .args(["--workers", "1"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        // Its cache and reports stay in the target dir.
        .current_dir(&out)
        .env("PYTHONPATH", &python)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .context("running schemathesis (needs python3)")?;
    drop(stack);
    ensure!(
        status.success(),
        "contract fuzzing found answers that break the OpenAPI document (see above; \
         the services' logs are in {})",
        work.display()
    );
    let _ = std::fs::remove_dir_all(&work);
    eprintln!("xtask: contract fuzzing passed");
    Ok(())
}

/// Schemathesis and its dependencies, installed from
/// `xtask/contract/requirements.txt` (every file pinned by hash).
fn ensure_schemathesis(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    crate::pypi::install_pinned(
        "python3",
        &root().join("xtask/contract/requirements.txt"),
        &dir.join("python"),
        "schemathesis",
    )
}
