//! `cargo xtask chaos`: the whole stack as separate processes under load
//! while faults are injected, then every invariant of SYSTEM.md that a
//! client can see checked end to end through the HTTP API.
//!
//! 1. Builds the services (debug: the binaries `cargo xtask test` and
//!    deploy-check just built) and generates a small directory.
//! 2. Per broker mode (single node, then a shorter three-node cluster
//!    phase; `--single` / `--cluster` for one), starts nats-server and
//!    every service on loopback ([`stack`]) with a short `ack_wait`, so
//!    that leases expire and jobs are redelivered within the run; research
//!    reads its subjects' sites from a loopback fixture.
//! 3. Drives load the whole time ([`load`]): searches, batches of 10–200
//!    records, researches; some with an `Idempotency-Key`, retried after
//!    errors; a quarter cancelled, at once or later. Every answer is kept.
//! 4. Injects the faults of the seed's [`schedule`] in turn, each after
//!    `--seconds` of load, each followed by a restart, readiness and a
//!    settle pause.
//! 5. Stops the load, waits (bounded) for every operation to finish, reads
//!    each twice ([`read`]), and [`check`]s: every 202 (and every
//!    outcome-unknown id that exists) ends in exactly one terminal status
//!    and keeps it, every succeeded batch has all its results through its
//!    pages, nothing is left queued or processing, cancels' answers agree
//!    with the ends, one key made one operation, a sample's event stream
//!    agrees with GET.
//! 6. Prints the table ([`report`]), writes `<target>/chaos/chaos.{json,md}`,
//!    and fails on any violation (the run's logs are then kept).

mod api;
mod check;
mod load;
mod read;
mod report;
pub(crate) mod schedule;
pub(crate) mod stack;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::Value;

use crate::bench::research::Site;
use crate::target_dir;
use check::Violation;
use load::{Inputs, Load};
use report::{FaultRecord, ModeReport};
use schedule::{Fault, Mode};
use stack::{ChaosStack, Settings};

/// Seconds of load before each fault, by default.
const DEFAULT_SECONDS: u64 = 4;
/// Operations submitted per second, by default.
const DEFAULT_RATE: f64 = 6.0;
/// The longest wait for every operation to finish, by default.
const DEFAULT_WAIT_SECONDS: u64 = 90;
/// How long a killed process stays down.
const OUTAGE: Duration = Duration::from_secs(1);
/// The pause after every service is ready again, before the next phase.
const SETTLE: Duration = Duration::from_secs(2);
/// How long the services may take to be ready after a fault.
const RECOVERY: Duration = Duration::from_secs(60);
/// The longest a leader election may take before the run gives up on it.
const ELECTION: Duration = Duration::from_secs(45);
/// Between the two reads of every operation.
const APART: Duration = Duration::from_secs(3);
/// The small directory the workers load (a few seconds in debug).
const PEOPLE: usize = 20_000;
const COMPANIES: usize = 2_000;
/// Companies researched (each with a loopback site).
const RESEARCHED: usize = 3;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Seconds of load before each fault (and after the last).
    #[arg(long, default_value_t = DEFAULT_SECONDS)]
    seconds: u64,
    /// Operations submitted per second.
    #[arg(long, default_value_t = DEFAULT_RATE)]
    rate: f64,
    /// Only the three-node cluster phase.
    #[arg(long, conflicts_with = "single")]
    cluster: bool,
    /// Only the single-node phase.
    #[arg(long)]
    single: bool,
    /// Seed of the fault order and of the load (default: from the clock,
    /// printed, so a run can be repeated).
    #[arg(long)]
    seed: Option<u64>,
    /// Longest wait, after the load, for every operation to finish.
    #[arg(long, default_value_t = DEFAULT_WAIT_SECONDS)]
    wait_seconds: u64,
    /// Use the services' debug binaries as they are in the target dir
    /// (built just before), without `cargo build`.
    #[arg(long)]
    no_build: bool,
}

impl Args {
    /// The run of `cargo xtask test`: both modes, the defaults.
    pub(crate) fn ci() -> Args {
        Args {
            seconds: DEFAULT_SECONDS,
            rate: DEFAULT_RATE,
            cluster: false,
            single: false,
            seed: None,
            wait_seconds: DEFAULT_WAIT_SECONDS,
            no_build: false,
        }
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let bin_dir = stack::build_services(args.no_build)?;
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let modes: Vec<Mode> = match (args.single, args.cluster) {
        (true, false) => vec![Mode::Single],
        (false, true) => vec![Mode::Cluster],
        _ => vec![Mode::Single, Mode::Cluster],
    };
    let out = target_dir().join("chaos");
    let work = out.join(format!("run-{}", std::process::id()));
    let directory = work.join("directory");
    let file = dossier_directory_gen::write_jsonl(&directory, seed, PEOPLE, COMPANIES)
        .with_context(|| format!("writing the directory into {}", directory.display()))?;
    let inputs = Arc::new(inputs(seed)?);
    let site = Site::start(Duration::from_millis(5))?;
    let settings = Settings {
        directory: file.to_string_lossy().into_owned(),
        site_overrides: inputs
            .researched
            .iter()
            .map(|(_, domain)| format!("{domain}={}", site.base))
            .collect::<Vec<_>>()
            .join(","),
        ack_wait: Duration::ZERO,
    };
    eprintln!(
        "xtask: chaos run, seed {seed} (repeat with --seed {seed}), {} s per phase, {}/s",
        args.seconds, args.rate
    );
    let mut reports = Vec::new();
    for mode in modes {
        let settings = Settings {
            // A leader election takes seconds: a short deadline would
            // spend deliveries of jobs nobody could run.
            ack_wait: match mode {
                Mode::Single => Duration::from_secs(4),
                Mode::Cluster => Duration::from_secs(5),
            },
            directory: settings.directory.clone(),
            site_overrides: settings.site_overrides.clone(),
        };
        let report = run_mode(mode, &args, seed, &bin_dir, &work, &settings, &inputs)?;
        println!("{}", report::markdown(std::slice::from_ref(&report)));
        reports.push(report);
    }
    report::write(&out, &reports)?;
    let violations: usize = reports.iter().map(|r| r.checked.violations.len()).sum();
    eprintln!(
        "xtask: chaos run took {:.0} s; report in {}",
        started.elapsed().as_secs_f64(),
        out.join("chaos.md").display()
    );
    if violations > 0 {
        anyhow::bail!(
            "the chaos run found {violations} violations (seed {seed}); the services' logs are in {}",
            work.display()
        );
    }
    remove(&work);
    Ok(())
}

/// Removes the run's folder (its stores and logs), trying again a few
/// times: a process that just exited may still have had a file open.
fn remove(work: &std::path::Path) {
    let mut result = Ok(());
    for _ in 0..5 {
        result = std::fs::remove_dir_all(work);
        if result.is_ok() || !work.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if let Err(error) = result {
        eprintln!("xtask: could not remove {}: {error}", work.display());
    }
}

/// The emails and companies of the directory of `seed` the load submits.
fn inputs(seed: u64) -> anyhow::Result<Inputs> {
    let mut inputs = Inputs {
        emails: Vec::new(),
        companies: Vec::new(),
        researched: Vec::new(),
    };
    for record in dossier_directory_gen::generate(seed, PEOPLE, COMPANIES) {
        let record: Value = serde_json::to_value(&record)?;
        match (record["type"].as_str(), record["domain"].as_str()) {
            (Some("company"), Some(domain)) => {
                let name = record["name"].as_str().unwrap_or_default().to_owned();
                inputs.companies.push((name, domain.to_owned()));
            }
            (Some("person"), _) => {
                if let Some(email) = record["email"].as_str() {
                    inputs.emails.push(email.to_owned());
                }
            }
            _ => {}
        }
    }
    inputs.researched = inputs.companies.iter().take(RESEARCHED).cloned().collect();
    anyhow::ensure!(
        !inputs.emails.is_empty() && !inputs.researched.is_empty(),
        "the generated directory has no emails or no companies with a domain"
    );
    Ok(inputs)
}

fn run_mode(
    mode: Mode,
    args: &Args,
    seed: u64,
    bin_dir: &std::path::Path,
    work: &std::path::Path,
    settings: &Settings,
    inputs: &Arc<Inputs>,
) -> anyhow::Result<ModeReport> {
    let started = Instant::now();
    eprintln!("xtask: chaos ({} broker): starting the stack", mode.name());
    let mut stack = ChaosStack::start(mode, bin_dir, &work.join(mode.name()), settings)?;
    let api = Arc::new(api::Api::new(stack.base.clone(), &stack.key));
    let load = Load::start(api.clone(), inputs.clone(), args.rate, seed);
    let phase = Duration::from_secs(args.seconds);
    let load_started = Instant::now();
    let mut faults = Vec::new();
    let mut broken = Vec::new();
    for fault in schedule::schedule(seed, mode) {
        std::thread::sleep(phase);
        let at = load_started.elapsed();
        eprintln!(
            "xtask: chaos: {} of {} at {:.1} s",
            fault.kind(),
            fault.target(),
            at.as_secs_f64()
        );
        let result = inject(&mut stack, &fault, settings.ack_wait);
        let back = load_started.elapsed() - at;
        let note = match &result {
            Ok(note) => note.clone(),
            Err(error) => format!("failed: {error:#}"),
        };
        faults.push(FaultRecord {
            kind: fault.kind().to_owned(),
            target: fault.target().to_owned(),
            at_s: at.as_secs_f64(),
            back_after_s: back.as_secs_f64(),
            note,
        });
        if let Err(error) = result {
            // The stack did not come back: no more faults; what the load
            // saw so far is still checked.
            broken.push(Violation {
                id: "-".to_owned(),
                reason: format!(
                    "the stack did not recover from {} of {}: {error:#}",
                    fault.kind(),
                    fault.target()
                ),
            });
            break;
        }
    }
    std::thread::sleep(phase);
    let observations = load.finish();
    let ids = observations.ids();
    eprintln!(
        "xtask: chaos: load stopped; waiting for {} operations to finish",
        ids.len()
    );
    let left = read::wait_for_the_end(&api, &ids, Duration::from_secs(args.wait_seconds));
    let finals = read::read_twice(&api, &ids, APART);
    let mut checked = check::check(&observations, &finals);
    checked.violations.extend(broken);
    drop(stack);
    Ok(ModeReport {
        mode: mode.name().to_owned(),
        seed,
        seconds: args.seconds,
        rate: args.rate,
        took_s: started.elapsed().as_secs_f64(),
        faults,
        operations: ids.len(),
        left_after_wait: left,
        checked,
    })
}

/// Injects `fault`, brings the stack back, waits until every service is
/// ready and lets it settle; returns a note for the table.
fn inject(stack: &mut ChaosStack, fault: &Fault, ack_wait: Duration) -> anyhow::Result<String> {
    let mut note = String::new();
    match *fault {
        Fault::Kill(name) => {
            stack.kill_service(name)?;
            std::thread::sleep(OUTAGE);
            stack.restart_service(name)?;
        }
        Fault::RestartBroker => {
            stack.kill_node(0)?;
            std::thread::sleep(OUTAGE);
            stack.restart_node(0)?;
        }
        Fault::KillJobsLeader => {
            let leader = wait_for(ELECTION, || stack.jobs_leader())
                .context("the jobs stream has no leader")?;
            stack.kill_node(leader)?;
            let killed = Instant::now();
            let next =
                wait_for(ELECTION, || stack.jobs_leader()).context("no new leader was elected")?;
            note = format!(
                "{} killed; {} leads after {} ms",
                stack.node_name(leader),
                stack.node_name(next),
                killed.elapsed().as_millis()
            );
            stack.restart_node(leader)?;
        }
        Fault::Stall(name) => {
            stack.pause_service(name, true)?;
            let stalled = ack_wait + Duration::from_secs(2);
            std::thread::sleep(stalled);
            stack.pause_service(name, false)?;
            note = format!(
                "stopped {} ms (ack_wait {} ms)",
                stalled.as_millis(),
                ack_wait.as_millis()
            );
        }
    }
    stack.wait_ready(RECOVERY)?;
    std::thread::sleep(SETTLE);
    Ok(note)
}

/// Polls `probe` every 100 ms until it gives a value, at most `timeout`.
fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
