//! `cargo xtask bench [target]`: benchmarks of the whole stack, built in
//! release and run as separate processes (as `cargo xtask up` runs them),
//! with the figures printed as a table and written as JSON and Markdown
//! under `bench/results/`.
//!
//! With no target (or `all`), the full run of `full`. Each target is a
//! module with its own `Args` and `run`; [`stack`] starts and stops the
//! processes, [`load`] is the HTTP load generator, [`baseline`] measures
//! the broker's own limits and [`report`] writes the results, for every
//! target alike.

mod baseline;
mod enrichment;
mod fsync;
mod full;
mod load;
mod report;
pub(crate) mod research;
mod search;
mod stack;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// What to benchmark; none: everything (`all`).
    #[command(subcommand)]
    target: Option<Target>,
}

#[derive(clap::Subcommand)]
enum Target {
    /// The whole stack against the broker's own limits, in one run: raw
    /// publish, KV and axum baselines; accept (closed and open loop);
    /// status reads; end to end with 1, 2 and 4 search workers; cost growth
    /// at 10k/100k/1M stored operations; enrichment. Writes
    /// `bench/results/stack.{json,md}`.
    All(full::Args),
    /// Records per second of a 10,000-record `enrichment.batch` through the
    /// whole stack (accept → terminal), against the directory's raw match
    /// rate measured in the same run.
    Enrichment(enrichment::Args),
    /// What fsync before every ack costs: accept (202/s and p50/p99, closed
    /// loop) on a stack whose nats-server fsyncs always, then on the same
    /// stack with nats-server's lazy default, in one run. Writes
    /// `bench/results/fsync.{json,md}`.
    Fsync(fsync::Args),
    /// Searches per second and p50/p99 of the people search itself on the
    /// 200,000-person directory, against a plain lookup in the same run, and
    /// the time to load the directory.
    Search(search::Args),
    /// Standard-depth researches per second and p50/p99 through the whole
    /// stack with the company's site on loopback, and how many one worker
    /// runs at once before p99 doubles. Writes
    /// `bench/results/research.{json,md}`.
    Research(research::Args),
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let target = args
        .target
        .unwrap_or_else(|| Target::All(<full::Args as clap::Parser>::parse_from(["all"])));
    match target {
        Target::All(args) => full::run(args),
        Target::Enrichment(args) => enrichment::run(args),
        Target::Fsync(args) => fsync::run(args),
        Target::Search(args) => search::run(args),
        Target::Research(args) => research::run(args),
    }
}

/// Builds xtask in release and runs the same command line with it: a
/// benchmark whose load generator runs in this process would otherwise be
/// capped by a debug build.
fn rerun_in_release() -> anyhow::Result<()> {
    eprintln!("xtask: building xtask in release for the load generator");
    crate::run_checked(crate::cargo().args(["build", "--release", "-p", "xtask"]))?;
    crate::run_checked(
        std::process::Command::new(crate::target_dir().join("release").join("xtask"))
            .args(std::env::args_os().skip(1)),
    )
}
