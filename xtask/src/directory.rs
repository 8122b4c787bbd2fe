//! `cargo xtask gen-directory`: the deterministic demo directory (200,000
//! people in 20,000 companies by default) that `cargo xtask up` serves.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use dossier_directory_gen::{DEFAULT_COMPANIES, DEFAULT_PEOPLE, JSONL_FILE_NAME};

/// The seed `cargo xtask up` uses, so every laptop serves the same data.
pub(crate) const DEFAULT_SEED: u64 = 42;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Folder to write `directory.jsonl` into.
    #[arg(long, default_value = ".dossier/directory")]
    out: PathBuf,
    /// Random seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// People to generate.
    #[arg(long, default_value_t = DEFAULT_PEOPLE)]
    people: usize,
    /// Companies to generate.
    #[arg(long, default_value_t = DEFAULT_COMPANIES)]
    companies: usize,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let out = if args.out.is_absolute() {
        args.out
    } else {
        crate::root().join(args.out)
    };
    let path = generate(&out, args.seed, args.people, args.companies)?;
    println!("{}", path.display());
    Ok(())
}

fn generate(dir: &Path, seed: u64, people: usize, companies: usize) -> anyhow::Result<PathBuf> {
    let started = Instant::now();
    let path = dossier_directory_gen::write_jsonl(dir, seed, people, companies)
        .with_context(|| format!("writing the directory into {}", dir.display()))?;
    eprintln!(
        "xtask: wrote {people} people in {companies} companies (seed {seed}) to {} in {:.1?}",
        path.display(),
        started.elapsed()
    );
    Ok(path)
}

/// The default directory under `state`, generated on first use.
pub(crate) fn ensure_default(state: &Path) -> anyhow::Result<PathBuf> {
    let dir = state.join("directory");
    let path = dir.join(JSONL_FILE_NAME);
    if path.exists() {
        return Ok(path);
    }
    generate(&dir, DEFAULT_SEED, DEFAULT_PEOPLE, DEFAULT_COMPANIES)
}
