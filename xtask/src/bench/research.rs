//! `cargo xtask bench research`: standard-depth researches per second and
//! their p50/p99 duration through the whole stack, with the company's web
//! site served on loopback, and how many researches one worker runs at once
//! before p99 doubles.
//!
//! 1. Builds operations, gateway and the research worker in release.
//! 2. Serves a small company site on loopback (robots.txt, a home page
//!    linking to about, careers and news pages of a few KiB each, each page
//!    answered after `--page-delay-ms`, standing in for a real network).
//! 3. Starts nats-server, operations and gateway as processes; then, for
//!    each concurrency 1, 2, 4, 8, … (`DOSSIER_WORKER_CONCURRENCY` of one
//!    research worker, restarted per level), runs one warm-up research and
//!    `--runs-per-level × concurrency` timed ones from as many client
//!    threads, each from the `POST` until a poll sees it terminal. Stops at
//!    the first level whose p99 is at least twice the p99 at concurrency 1,
//!    or at `--max-concurrency`.
//! 4. Prints the table and writes `bench/results/research.{json,md}`.
//!
//! The subject is the first company of the directory, its domain mapped to
//! the loopback site with `DOSSIER_RESEARCH_SITE_OVERRIDES`. Nothing here
//! asserts a time: the figures are for people to read.

use std::io::BufRead as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::report;
use super::stack::Stack;
use crate::{cargo, directory, root, run_checked, target_dir};

#[derive(clap::Parser)]
pub(crate) struct Args {
    /// Timed researches per unit of concurrency at each level (level c runs
    /// c × this many).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=200))]
    runs_per_level: u64,
    /// Highest worker concurrency tried.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=256))]
    max_concurrency: u64,
    /// Milliseconds the loopback site waits before answering each page.
    #[arg(long, default_value_t = 20)]
    page_delay_ms: u64,
    /// Directory file(s), comma separated (default: the demo directory of
    /// `cargo xtask up`, generated on first use).
    #[arg(long)]
    directory: Option<String>,
    /// Milliseconds between two polls of a running operation.
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
}

/// One level of worker concurrency.
struct Level {
    concurrency: u64,
    runs: usize,
    wall: Duration,
    /// `POST` → terminal status seen by a poll, sorted.
    totals: Vec<Duration>,
    /// `startedAt` → `completedAt` (server clocks), sorted.
    worker: Vec<Duration>,
    statuses: Vec<String>,
}

impl Level {
    fn rate(&self) -> f64 {
        self.runs as f64 / self.wall.as_secs_f64()
    }
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[at - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    eprintln!("xtask: building the services in release");
    run_checked(cargo().args([
        "build",
        "--release",
        "--bins",
        "-p",
        "operations",
        "-p",
        "gateway",
        "-p",
        "research-worker",
    ]))?;
    let bin_dir = target_dir().join("release");
    let directory = match &args.directory {
        Some(files) => files.clone(),
        None => directory::ensure_default(&root().join(".dossier"))?
            .to_string_lossy()
            .into_owned(),
    };
    let (name, domain) = first_company(&directory)?;
    let site = Site::start(Duration::from_millis(args.page_delay_ms))?;
    let work = target_dir()
        .join("bench")
        .join(format!("research-{}", std::process::id()));
    eprintln!(
        "xtask: starting the stack; subject {name} ({domain}) served at {}",
        site.base
    );
    let mut stack = Stack::start(&bin_dir, &work.join("stack"), &[])?;
    let body = serde_json::to_vec(&json!({
        "subject": { "company": { "name": name, "domain": domain } },
        "questions": ["Is the company hiring engineers?", "Who is on the buying committee?"],
        "depth": "standard"
    }))?;
    let poll = Duration::from_millis(args.poll_ms);

    let mut levels: Vec<Level> = Vec::new();
    let mut concurrency = 1;
    let mut sample = Value::Null;
    while concurrency <= args.max_concurrency {
        let env = vec![
            ("DOSSIER_DIRECTORY_FILES", directory.clone()),
            ("DOSSIER_WORKER_CONCURRENCY", concurrency.to_string()),
            (
                "DOSSIER_RESEARCH_SITE_OVERRIDES",
                format!("{domain}={}", site.base),
            ),
            // The site is on loopback, which research refuses unless allowed.
            (
                "DOSSIER_RESEARCH_ALLOW_PRIVATE_NETWORKS",
                "127.0.0.0/8".to_owned(),
            ),
        ];
        stack.add("research-worker", "research-worker", &env)?;
        // The warm-up also waits out the directory load.
        let (_, op) = research(&stack, &body, poll, Duration::from_secs(300))?;
        if sample.is_null() {
            sample = op;
        }
        let runs = (args.runs_per_level * concurrency) as usize;
        let level = measure_level(&stack, &body, poll, concurrency, runs)?;
        eprintln!(
            "xtask: concurrency {concurrency}: {:.1} researches/s, p50 {:.0} ms, p99 {:.0} ms",
            level.rate(),
            ms(quantile(&level.totals, 0.5)),
            ms(quantile(&level.totals, 0.99)),
        );
        stack.stop("research-worker");
        let doubled = levels.first().is_some_and(|first| {
            quantile(&level.totals, 0.99) >= 2 * quantile(&first.totals, 0.99)
        });
        levels.push(level);
        if doubled {
            break;
        }
        concurrency *= 2;
    }
    drop(stack);
    drop(site);
    let _ = std::fs::remove_dir_all(&work);

    let first_p99 = quantile(&levels[0].totals, 0.99);
    let within = levels
        .iter()
        .take_while(|l| quantile(&l.totals, 0.99) < 2 * first_p99)
        .last()
        .map_or(1, |l| l.concurrency);
    let best = levels
        .iter()
        .max_by(|a, b| a.rate().total_cmp(&b.rate()))
        .map_or(0.0, Level::rate);

    let mut rows = vec![
        (
            "subject".to_owned(),
            format!("{name} ({domain}), standard depth, 2 questions"),
        ),
        ("directory".to_owned(), directory.clone()),
        (
            "web site".to_owned(),
            format!(
                "loopback, 4 pages + robots.txt, {} ms per page",
                args.page_delay_ms
            ),
        ),
        (
            "concurrency 1: researches/s".to_owned(),
            format!("{:.1}", levels[0].rate()),
        ),
        (
            "concurrency 1: p50 / p99 (POST → terminal)".to_owned(),
            format!(
                "{:.0} ms / {:.0} ms",
                ms(quantile(&levels[0].totals, 0.5)),
                ms(first_p99)
            ),
        ),
        (
            "most at once on one worker before p99 doubles".to_owned(),
            within.to_string(),
        ),
        ("best rate".to_owned(), format!("{best:.1} researches/s")),
    ];
    for l in &levels {
        rows.push((
            format!("  concurrency {} ({} runs)", l.concurrency, l.runs),
            format!(
                "{:.1}/s, p50 {:.0} ms, p99 {:.0} ms, worker p50 {:.0} ms",
                l.rate(),
                ms(quantile(&l.totals, 0.5)),
                ms(quantile(&l.totals, 0.99)),
                ms(quantile(&l.worker, 0.5)),
            ),
        ));
    }
    let table = report::table(&rows);
    let json = json!({
        "benchmark": "research",
        "machine": report::machine(),
        "at": report::now_rfc3339(),
        "commit": report::commit(),
        "subject": { "name": name, "domain": domain },
        "directory": directory,
        "pageDelayMs": args.page_delay_ms,
        "pollMs": args.poll_ms,
        "concurrencyBeforeP99Doubles": within,
        "bestResearchesPerSecond": best,
        "levels": levels.iter().map(|l| json!({
            "concurrency": l.concurrency,
            "runs": l.runs,
            "wallSeconds": l.wall.as_secs_f64(),
            "researchesPerSecond": l.rate(),
            "p50Ms": ms(quantile(&l.totals, 0.5)),
            "p99Ms": ms(quantile(&l.totals, 0.99)),
            "workerP50Ms": ms(quantile(&l.worker, 0.5)),
            "workerP99Ms": ms(quantile(&l.worker, 0.99)),
            "statuses": l.statuses,
        })).collect::<Vec<_>>(),
        "sampleSteps": sample["result"]["steps"],
    });
    let markdown = format!(
        "# Research benchmark\n\n{}, commit {}, {} CPUs. Standard-depth \
         `research.deep` operations through gateway, operations and one research \
         worker (release processes, one nats-server), each from the `POST` until \
         a poll every {} ms sees it terminal; the company's site is served on \
         loopback with {} ms per page. Each level restarts the worker with \
         `DOSSIER_WORKER_CONCURRENCY` = c and keeps c researches in flight; it \
         stops at the first level whose p99 is twice that of c = 1. With a few \
         dozen runs per level, p99 is close to the slowest run.\n\n{table}",
        json["at"].as_str().unwrap_or_default(),
        json["commit"].as_str().unwrap_or("?"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.poll_ms,
        args.page_delay_ms,
    );
    println!();
    println!("{table}");
    let (json_path, md_path) = report::write_latest("research", &json, &markdown)?;
    println!("Wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

/// `runs` researches, `concurrency` at a time from as many threads.
fn measure_level(
    stack: &Stack,
    body: &[u8],
    poll: Duration,
    concurrency: u64,
    runs: usize,
) -> anyhow::Result<Level> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<anyhow::Result<Vec<(Duration, Value)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..concurrency)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < runs {
                        mine.push(research(stack, body, poll, Duration::from_secs(600))?);
                    }
                    Ok(mine)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))
            })
            .collect()
    });
    let wall = started.elapsed();
    let mut totals = Vec::new();
    let mut worker = Vec::new();
    let mut statuses = Vec::new();
    for result in results {
        for (total, op) in result? {
            totals.push(total);
            worker.push(server_time(&op));
            statuses.push(op["status"].as_str().unwrap_or_default().to_owned());
        }
    }
    totals.sort();
    worker.sort();
    statuses.sort();
    statuses.dedup();
    Ok(Level {
        concurrency,
        runs,
        wall,
        totals,
        worker,
        statuses,
    })
}

/// `startedAt` → `completedAt` of a terminal operation.
fn server_time(op: &Value) -> Duration {
    let at = |field: &str| {
        op[field].as_str().and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    match (at("startedAt"), at("completedAt")) {
        (Some(a), Some(b)) => Duration::try_from(b - a).unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// One research: `POST`, then polls until terminal. Fails unless it
/// succeeded (a benchmark of failures would measure nothing).
fn research(
    stack: &Stack,
    body: &[u8],
    poll: Duration,
    limit: Duration,
) -> anyhow::Result<(Duration, Value)> {
    let started = Instant::now();
    let (status, accepted) = stack.call("POST", "/api/research", Some(body))?;
    anyhow::ensure!(status == 202, "research not accepted: {status} {accepted}");
    let id = accepted["id"]
        .as_str()
        .context("202 without an id")?
        .to_owned();
    loop {
        let (status, op) = stack.call("GET", &format!("/api/operations/{id}"), None)?;
        anyhow::ensure!(status == 200, "poll answered {status}: {op}");
        match op["status"].as_str().unwrap_or_default() {
            "succeeded" => return Ok((started.elapsed(), op)),
            "partial_success" | "failed" | "cancelled" => {
                anyhow::bail!("research {id} ended {}: {op}", op["status"])
            }
            _ => {}
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "research {id} did not end within {limit:?}"
        );
        std::thread::sleep(poll);
    }
}

/// The name and domain of the directory's first company with a domain.
fn first_company(files: &str) -> anyhow::Result<(String, String)> {
    let first = files.split(',').next().unwrap_or_default();
    let file = std::fs::File::open(first).with_context(|| format!("opening {first}"))?;
    for line in std::io::BufReader::new(file).lines() {
        let record: Value = serde_json::from_str(&line?).unwrap_or(Value::Null);
        if record["type"] == "company"
            && let (Some(name), Some(domain)) = (record["name"].as_str(), record["domain"].as_str())
        {
            return Ok((name.to_owned(), domain.to_owned()));
        }
    }
    anyhow::bail!("{first} has no company with a domain")
}

/// The company's site on loopback, until dropped (also what `cargo xtask
/// chaos` serves its research subjects from).
pub(crate) struct Site {
    /// `http://127.0.0.1:<port>/`.
    pub(crate) base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Site {
    /// Serves the site, each page answered after `delay`.
    pub(crate) fn start(delay: Duration) -> anyhow::Result<Site> {
        use axum::http::header;
        use axum::response::IntoResponse as _;

        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let page = |title: &'static str, topic: &'static str| {
            // A few KiB of text, as a real page's readable part.
            let paragraphs: String = (0..20)
                .map(|i| {
                    format!(
                        "<p>{title}: paragraph {i} about {topic}. The company is hiring \
                         engineers and sales people in several offices this year.</p>"
                    )
                })
                .collect();
            format!(
                "<!doctype html><html><head><title>{title}</title></head><body>\
                 <nav><a href=\"/about\">About</a> <a href=\"/careers\">Careers</a> \
                 <a href=\"/news\">News</a></nav><main>{paragraphs}</main></body></html>"
            )
        };
        let pages = std::sync::Arc::new(
            [
                ("/", page("Home", "what the company makes")),
                ("/about", page("About", "the company's history")),
                ("/careers", page("Careers", "open roles")),
                ("/news", page("News", "funding and launches")),
            ]
            .into_iter()
            .collect::<std::collections::HashMap<_, _>>(),
        );
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
                    let pages = pages.clone();
                    async move {
                        tokio::time::sleep(delay).await;
                        if uri.path() == "/robots.txt" {
                            return "User-agent: *\nDisallow: /private\n".into_response();
                        }
                        match pages.get(uri.path()) {
                            Some(html) => ([(header::CONTENT_TYPE, "text/html")], html.clone())
                                .into_response(),
                            None => axum::http::StatusCode::NOT_FOUND.into_response(),
                        }
                    }
                });
                if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                }
            });
        });
        Ok(Site {
            base: format!("http://{addr}/"),
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
