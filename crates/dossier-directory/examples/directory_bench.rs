//! Generates a directory, loads it and times people searches: a quick local
//! check of the load and query budgets (load < 3 s, p99 < 5 ms for 200,000
//! people). Run in release:
//!
//! ```text
//! cargo run --release -p dossier-directory --example directory_bench -- [people] [companies]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // A throwaway tool.

use std::time::{Duration, Instant};

use dossier_contracts::api::{Department, Seniority};
use dossier_directory::{DirectoryProvider, PeopleQuery, load_directory};
use dossier_directory_gen::{DEFAULT_COMPANIES, DEFAULT_PEOPLE, write_jsonl};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let people = args.next().map_or(DEFAULT_PEOPLE, |a| a.parse().unwrap());
    let companies = args
        .next()
        .map_or(DEFAULT_COMPANIES, |a| a.parse().unwrap());
    let tmp = std::env::temp_dir().join(format!("dossier-directory-bench-{people}-{companies}"));
    let started = Instant::now();
    let path = write_jsonl(&tmp, 1, people, companies).unwrap();
    println!("generated {} in {:?}", path.display(), started.elapsed());

    let (dir, stats) = load_directory(&tmp).unwrap();
    println!(
        "loaded {} companies, {} people, {} MB: parse {:?}, index {:?}, total {:?}",
        stats.companies,
        stats.people,
        stats.bytes / 1_000_000,
        stats.parse,
        stats.index,
        stats.total()
    );

    let mut handles: Vec<String> = dir
        .companies()
        .iter()
        .filter_map(|c| c.linkedin_handle.clone())
        .collect();
    handles.truncate(2_000);
    let names: Vec<String> = dir
        .companies()
        .iter()
        .take(2_000)
        .map(|c| c.name.clone())
        .collect();
    let mut queries = vec![PeopleQuery::with_limit(25)];
    let mut q = PeopleQuery::with_limit(100);
    q.titles = vec![
        "engineer".into(),
        "vp sales".into(),
        "head of marketing".into(),
    ];
    q.seniorities = vec![Seniority::Director, Seniority::Vp, Seniority::Senior];
    queries.push(q);
    let mut q = PeopleQuery::with_limit(25);
    q.departments = vec![Department::Engineering, Department::Product];
    q.locations = vec!["United States".into(), "London".into()];
    q.keywords = vec!["python".into()];
    queries.push(q);

    let mut times: Vec<Duration> = Vec::new();
    let mut rows = 0;
    for (i, handle) in handles.iter().enumerate() {
        let q = &queries[i % queries.len()];
        let t = Instant::now();
        rows += dir.people_at_company_handle(handle, q).await.unwrap().len();
        times.push(t.elapsed());
        let t = Instant::now();
        rows += dir
            .people_by_company_text(&names[i % names.len()], q)
            .await
            .unwrap()
            .len();
        times.push(t.elapsed());
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "{} searches, {rows} rows: p50 {:?}, p99 {:?}, max {:?}",
        times.len(),
        pct(0.5),
        pct(0.99),
        times[times.len() - 1]
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
