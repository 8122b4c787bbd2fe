//! `cargo xtask bench fsync`: what fsync before every acknowledgement
//! (`jetstream { sync_interval: always }`, which `cargo xtask up` and every
//! shipped configuration run) costs the accept path, against nats-server's
//! lazy default, in the same run on the same machine.
//!
//! For each setting in turn (always, lazy, and again, so drift during the
//! run shows): a fresh stack (nats-server, operations, gateway; no worker,
//! so the jobs wait in the stream), a warm-up, then the closed-loop accept
//! at each concurrency, as the full bench's accept step. Prints the table
//! and writes `bench/results/fsync.{json,md}`.

use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use serde_json::{Value, json};

use super::load::{self, Outcome};
use super::report;
use super::stack::{self, Fsync, Stack};
use crate::target_dir;

#[derive(clap::Parser)]
pub(crate) struct Args {
    /// Seconds of each timed load point.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Client concurrencies of the closed-loop accept points.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64])]
    concurrency: Vec<usize>,
    /// Rounds of (always, lazy).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    // The load generator runs in this process.
    if cfg!(debug_assertions) {
        return super::rerun_in_release();
    }
    eprintln!("xtask: building the services in release");
    stack::build_release(&["operations", "gateway"])?;
    let bin_dir = target_dir().join("release");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // (setting, concurrency) → outcomes of every round.
    let mut points: Vec<(Fsync, usize, Vec<Outcome>)> = Vec::new();
    for round in 0..args.rounds {
        for fsync in [Fsync::Always, Fsync::Lazy] {
            let work = target_dir()
                .join("bench")
                .join(format!("fsync-{}-{round}", std::process::id()));
            eprintln!("xtask: round {}: accept with fsync {fsync:?}", round + 1);
            let stack = Stack::start_with(&bin_dir, &work, &[], fsync)?;
            let outcomes = runtime.block_on(accept(&stack, &args));
            drop(stack);
            let _ = std::fs::remove_dir_all(&work);
            for (c, outcome) in args.concurrency.iter().zip(outcomes?) {
                match points.iter_mut().find(|(f, pc, _)| *f == fsync && pc == c) {
                    Some((_, _, all)) => all.push(outcome),
                    None => points.push((fsync, *c, vec![outcome])),
                }
            }
        }
    }

    let mut markdown = String::from(
        "# fsync always vs lazy: accept through the stack\n\n\
         `cargo xtask bench fsync`: closed-loop `POST /api/search/people` (no worker), \
         a fresh stack per setting and round; figures are the median of the rounds.\n\n\
         | connections | always 202/s | lazy 202/s | always/lazy | always p50 ms | lazy p50 ms | always p99 ms | lazy p99 ms |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    let mut rows = Vec::new();
    for &c in &args.concurrency {
        let of = |fsync: Fsync| {
            points
                .iter()
                .find(|(f, pc, _)| *f == fsync && *pc == c)
                .map(|(_, _, all)| all.as_slice())
                .unwrap_or_default()
        };
        let (always, lazy) = (of(Fsync::Always), of(Fsync::Lazy));
        let rate = |o: &[Outcome]| median(o.iter().map(Outcome::rate));
        let ms = |o: &[Outcome], q: f64| median(o.iter().map(|x| x.ms(q)));
        let ratio = rate(always) / rate(lazy).max(1e-9);
        markdown.push_str(&format!(
            "| {c} | {:.0} | {:.0} | {ratio:.2} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            rate(always),
            rate(lazy),
            ms(always, 0.5),
            ms(lazy, 0.5),
            ms(always, 0.99),
            ms(lazy, 0.99),
        ));
        rows.push(json!({
            "connections": c,
            "always": always.iter().map(Outcome::json).collect::<Vec<Value>>(),
            "lazy": lazy.iter().map(Outcome::json).collect::<Vec<Value>>(),
            "rateRatio": ratio,
        }));
    }
    println!("{markdown}");
    let json = json!({
        "machine": report::machine(),
        "seconds": args.seconds,
        "rounds": args.rounds,
        "points": rows,
    });
    let (json_path, md_path) = report::write_latest("fsync", &json, &markdown)?;
    eprintln!(
        "xtask: wrote {} and {}",
        json_path.display(),
        md_path.display()
    );
    Ok(())
}

/// The closed-loop accept at each concurrency, after a warm-up.
async fn accept(stack: &Stack, args: &Args) -> anyhow::Result<Vec<Outcome>> {
    let addr = stack
        .base
        .trim_start_matches("http://")
        .parse()
        .context("the gateway's address")?;
    let body = json!({ "targetAccount": { "domain": "acme.com" }, "limit": 25 });
    let make = load::fixed(
        &stack.key,
        "POST",
        "/api/search/people",
        Some(Bytes::from(body.to_string())),
    );
    load::closed(addr, 16, Duration::from_secs(1), make.clone(), 0).await?;
    let mut out = Vec::new();
    for &c in &args.concurrency {
        let outcome =
            load::closed(addr, c, Duration::from_secs(args.seconds), make.clone(), 0).await?;
        anyhow::ensure!(
            outcome.ok > 0,
            "no 202 at {c} connection(s) ({} errors)",
            outcome.errors
        );
        out.push(outcome);
    }
    Ok(out)
}

/// The median of `values` (0 for none).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
