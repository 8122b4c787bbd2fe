//! `cargo xtask bench search`: the people search itself on the generated
//! 200,000-person directory, against a plain handle lookup in the same run,
//! and the directory's load time. In-process and single-threaded (see
//! `services/search-worker/examples/search_bench.rs`): the search's own cost,
//! not the stack's.

use crate::{cargo, directory, root, run_checked};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Searches to time.
    #[arg(long, default_value_t = 3_000)]
    searches: usize,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let state = root().join(".dossier");
    let file = directory::ensure_default(&state)?;
    let dir = file.parent().map(ToOwned::to_owned).unwrap_or_default();
    let mut cmd = cargo();
    cmd.args([
        "run",
        "--release",
        "-p",
        "search-worker",
        "--example",
        "search_bench",
        "--",
    ])
    .arg("--searches")
    .arg(args.searches.to_string())
    .arg("--directory")
    .arg(dir)
    .arg("--out")
    .arg(root().join("bench/results"));
    run_checked(&mut cmd)
}
