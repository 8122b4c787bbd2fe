//! `cargo xtask bench search`: the people search itself on the generated
//! directory (200,000 people in 20,000 companies), against a plain handle
//! lookup measured in the same run, and the time to load the data set.
//!
//! ```text
//! cargo run --release -p search-worker --example search_bench -- [--searches N] [--out DIR]
//! ```
//!
//! Single-threaded and sequential on purpose: it measures the cost of one
//! search (resolution, lookups, guards, ranking), not the machine's
//! parallelism. Figures are reported as ratios to the baseline because the
//! machines that run it are shared and noisy.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A measuring tool fails loudly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dossier_contracts::api::{
    CompanyRef, Department, SearchFilters, SearchPeopleRequest, Seniority,
};
use dossier_directory::{DirectoryProvider, ProviderSet, load_directory};
use dossier_directory_gen::{DEFAULT_COMPANIES, DEFAULT_PEOPLE, JSONL_FILE_NAME, write_jsonl};
use search_worker::search::search;
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut searches = 3_000usize;
    let mut out = PathBuf::from("bench/results");
    let mut data = PathBuf::from(".dossier/directory");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--searches" => searches = args.next().unwrap().parse().unwrap(),
            "--out" => out = args.next().unwrap().into(),
            "--directory" => data = args.next().unwrap().into(),
            other => panic!("unknown argument {other}"),
        }
    }
    if !data.join(JSONL_FILE_NAME).exists() {
        write_jsonl(&data, 42, DEFAULT_PEOPLE, DEFAULT_COMPANIES).unwrap();
    }

    let started = Instant::now();
    let (dir, stats) = load_directory(&data).unwrap();
    let load = started.elapsed();
    eprintln!(
        "loaded {} people, {} companies in {load:.2?}",
        stats.people, stats.companies
    );
    let dir = Arc::new(dir);

    let requests = requests(&dir, searches);
    let providers = ProviderSet::new(vec![dir.clone()]);

    // Baseline: a plain lookup of the same companies by handle.
    let handles: Vec<String> = dir
        .companies()
        .iter()
        .filter_map(|c| c.linkedin_handle.clone())
        .collect();
    let mut baseline = Vec::with_capacity(searches);
    for i in 0..searches {
        let t = Instant::now();
        let found = dir
            .companies_by_handle(&handles[i % handles.len()])
            .await
            .unwrap();
        baseline.push(t.elapsed());
        std::hint::black_box(found);
    }

    // Warm-up, then the measured searches.
    for request in requests.iter().take(200) {
        std::hint::black_box(search(&providers, request).await);
    }
    let mut times = Vec::with_capacity(searches);
    let mut rows = 0usize;
    let all = Instant::now();
    for request in &requests {
        let t = Instant::now();
        let result = search(&providers, request).await;
        times.push(t.elapsed());
        rows += result.data.len();
    }
    let wall = all.elapsed();

    let s = Summary::of(&mut times, wall);
    let baseline_wall = baseline.iter().sum();
    let b = Summary::of(&mut baseline, baseline_wall);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    let table = [
        (
            "searches per second",
            format!("{:.0}", s.rate),
            format!("{:.0}", b.rate),
            s.rate / b.rate,
        ),
        (
            "search p50 (µs)",
            format!("{:.0}", s.p50),
            format!("{:.1}", b.p50),
            s.p50 / b.p50,
        ),
        (
            "search p99 (µs)",
            format!("{:.0}", s.p99),
            format!("{:.1}", b.p99),
            s.p99 / b.p99,
        ),
        (
            "search max (µs)",
            format!("{:.0}", s.max),
            format!("{:.1}", b.max),
            s.max / b.max,
        ),
        (
            "load 200k people (s)",
            format!("{:.2}", load.as_secs_f64()),
            "3.00 (aim)".to_owned(),
            load.as_secs_f64() / 3.0,
        ),
    ];
    let mut md = format!(
        "# Search benchmark\n\n{} searches over {} people in {} companies ({} rows returned). \
         Baseline: a plain company lookup by LinkedIn handle in the same run.\n\n\
         CPU: {cpu}, {cores} cores.\n\n| figure | value | baseline | ratio |\n|---|---|---|---|\n",
        searches, stats.people, stats.companies, rows
    );
    for (name, value, base, ratio) in &table {
        md.push_str(&format!("| {name} | {value} | {base} | {ratio:.2} |\n"));
    }
    println!("{md}");
    let json = json!({
        "benchmark": "search",
        "cpu": cpu,
        "cores": cores,
        "people": stats.people,
        "companies": stats.companies,
        "searches": searches,
        "load_seconds": load.as_secs_f64(),
        "search": { "per_second": s.rate, "p50_us": s.p50, "p99_us": s.p99, "max_us": s.max },
        "baseline_handle_lookup": { "per_second": b.rate, "p50_us": b.p50, "p99_us": b.p99, "max_us": b.max },
    });
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("search.md"), md).unwrap();
    std::fs::write(
        out.join("search.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
}

/// A deterministic mix of the request shapes users send: a company-page
/// handle, a name with a domain, a name alone; with and without filters.
fn requests(dir: &dossier_directory::LocalDirectory, n: usize) -> Vec<SearchPeopleRequest> {
    let companies = dir.companies();
    let filters = [
        SearchFilters::default(),
        SearchFilters {
            seniorities: vec![Seniority::Vp, Seniority::Director],
            ..Default::default()
        },
        SearchFilters {
            titles: vec!["engineer".into(), "head of sales".into()],
            ..Default::default()
        },
        SearchFilters {
            departments: vec![Department::Engineering, Department::Product],
            locations: vec!["United States".into()],
            ..Default::default()
        },
    ];
    (0..n)
        .map(|i| {
            let c = &companies[(i * 7919) % companies.len()];
            let target = match i % 3 {
                0 if c.linkedin_handle.is_some() => CompanyRef {
                    linkedin_handle: c.linkedin_handle.clone(),
                    ..Default::default()
                },
                0 | 1 => CompanyRef {
                    name: Some(c.name.clone()),
                    domain: c.domain.clone(),
                    ..Default::default()
                },
                _ => CompanyRef {
                    name: Some(c.name.clone()),
                    ..Default::default()
                },
            };
            SearchPeopleRequest {
                target_account: target,
                filters: filters[i % filters.len()].clone(),
                limit: 25,
            }
        })
        .collect()
}

struct Summary {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

impl Summary {
    fn of(times: &mut [Duration], wall: Duration) -> Summary {
        times.sort();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let at = |q: f64| us(times[((times.len() as f64 - 1.0) * q).round() as usize]);
        Summary {
            rate: times.len() as f64 / wall.as_secs_f64(),
            p50: at(0.5),
            p99: at(0.99),
            max: us(times[times.len() - 1]),
        }
    }
}
