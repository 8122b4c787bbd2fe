//! `cargo xtask bench <target>`: benchmarks of the whole stack, built in
//! release and run as separate processes (as `cargo xtask up` runs them),
//! with the figures printed as a table and written as JSON and Markdown
//! under `bench/results/`.
//!
//! Each target is a module with its own `Args` and `run`; [`stack`] starts
//! and stops the processes and [`report`] writes the results, for every
//! target alike.

mod enrichment;
mod report;
mod search;
mod stack;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum Target {
    /// Records per second of a 10,000-record `enrichment.batch` through the
    /// whole stack (accept → terminal), against the directory's raw match
    /// rate measured in the same run.
    Enrichment(enrichment::Args),
    /// Searches per second and p50/p99 of the people search itself on the
    /// 200,000-person directory, against a plain lookup in the same run, and
    /// the time to load the directory.
    Search(search::Args),
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    match args.target {
        Target::Enrichment(args) => enrichment::run(args),
        Target::Search(args) => search::run(args),
    }
}
