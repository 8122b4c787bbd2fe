//! Measurements behind the numbers in the list index's docs (ignored: run
//! `cargo test -p operations --release --test api -- --ignored --nocapture
//! index_rebuild_rate`, `DOSSIER_BENCH_OPERATIONS` sets the size).

use std::time::Instant;

use dossier_contracts::v1::{ListOperationsRequest, Operation};
use dossier_contracts::{Kind, Status, time_ext};
use prost::Message as _;

use crate::helpers::{TestApp, signed};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark"]
async fn index_rebuild_rate() {
    let n: usize = std::env::var("DOSSIER_BENCH_OPERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut app = TestApp::spawn().await;
    app.stop_replica(0).await;

    let written = Instant::now();
    let mut acks = Vec::new();
    for i in 0..n {
        let id = uuid::Uuid::now_v7().to_string();
        let record = Operation {
            id: id.clone(),
            tenant_id: format!("tenant-{}", i % 100),
            kind: Kind::ALL[i % 3].to_proto() as i32,
            status: Status::ALL[i % 6].to_proto() as i32,
            created_at: Some(time_ext::now()),
            updated_at: Some(time_ext::now()),
            request_id: uuid::Uuid::new_v4().to_string(),
            progress: Some(50),
            ..Operation::default()
        };
        acks.push(
            app.js
                .publish(
                    format!("$KV.{}.{id}", dossier_broker::OPERATIONS_BUCKET),
                    record.encode_to_vec().into(),
                )
                .await
                .unwrap(),
        );
        if acks.len() == 5_000 {
            for ack in acks.drain(..) {
                ack.await.unwrap();
            }
        }
    }
    for ack in acks.drain(..) {
        ack.await.unwrap();
    }
    println!("wrote {n} records in {:?}", written.elapsed());

    let before = rss_kib();
    let started = Instant::now();
    app.start_replica().await;
    let took = started.elapsed();
    let after = rss_kib();
    println!(
        "rebuilt the index of {n} operations in {took:?} ({:.0}/s); RSS grew by {} KiB (~{} bytes/operation, an upper bound)",
        n as f64 / took.as_secs_f64(),
        after.saturating_sub(before),
        after.saturating_sub(before) * 1024 / n as u64,
    );

    // Raw KV reads, for comparison with a page.
    let keys: Vec<String> = {
        use futures::StreamExt as _;
        app.topology
            .operations
            .keys()
            .await
            .unwrap()
            .take(100)
            .map(|k| k.unwrap())
            .collect()
            .await
    };
    let started = Instant::now();
    for key in &keys {
        app.topology.operations.entry(key.as_str()).await.unwrap();
    }
    println!("100 sequential KV gets: {:?}", started.elapsed());
    let started = Instant::now();
    futures::future::join_all(
        keys.iter()
            .map(|k| app.topology.operations.entry(k.as_str())),
    )
    .await;
    println!("100 concurrent KV gets: {:?}", started.elapsed());

    let mut client = app.client();
    for (name, status, kind) in [
        ("newest page", 0, 0),
        ("status filter", Status::Failed.to_proto() as i32, 0),
        (
            "status and kind",
            Status::Failed.to_proto() as i32,
            Kind::EnrichmentBatch.to_proto() as i32,
        ),
    ] {
        let started = Instant::now();
        let rounds = 50;
        for _ in 0..rounds {
            let page = client
                .list_operations(signed(ListOperationsRequest {
                    tenant_id: "tenant-7".to_owned(),
                    status,
                    kind,
                    limit: 100,
                    cursor: String::new(),
                }))
                .await
                .unwrap()
                .into_inner();
            assert!(!page.operations.is_empty());
        }
        println!(
            "list {name}: {:?} per page of 100",
            started.elapsed() / rounds
        );
    }
}
