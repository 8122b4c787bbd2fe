//! `cargo xtask test`: every test, against the pinned nats-server, then
//! `cargo xtask deploy-check`, then `cargo xtask chaos` (single node and a
//! shorter cluster phase, about three minutes), then `cargo xtask contract`.

use crate::{cargo, nats, run_checked};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Extra arguments for the test runner (e.g. a test name filter).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    extra: Vec<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let bin = nats::ensure()?;
    eprintln!("xtask: nats-server {} at {}", nats::VERSION, bin.display());

    let has_nextest = cargo()
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut tests = cargo();
    if has_nextest {
        tests.args([
            "nextest",
            "run",
            "--workspace",
            "--all-targets",
            "--no-fail-fast",
        ]);
    } else {
        // One test at a time, as nextest's process per test isolates them:
        // tests share process-wide state (the metrics recorder) otherwise.
        tests.args(["test", "--workspace", "--all-targets", "--no-fail-fast"]);
        tests.args(["--", "--test-threads=1"]);
    }
    tests.args(&args.extra).env(nats::ENV_NATS_SERVER_BIN, &bin);
    run_checked(&mut tests)?;

    // nextest does not run doc tests; run them either way for one code path.
    if args.extra.is_empty() {
        run_checked(
            cargo()
                .args(["test", "--workspace", "--doc"])
                .env(nats::ENV_NATS_SERVER_BIN, &bin),
        )?;
        // The deploy files, checked against the services just tested.
        crate::deploy::run(crate::deploy::Args::default())?;
        // The same binaries under faults: the invariants end to end.
        crate::chaos::run(crate::chaos::Args::ci())?;
        // The running stack against its OpenAPI document.
        crate::contract::run(crate::contract::Args::default())?;
    }
    Ok(())
}
