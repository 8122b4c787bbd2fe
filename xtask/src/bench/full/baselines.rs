//! Step 1: the broker's and axum's own limits on this machine, in the same
//! run — raw publish-with-ack one at a time and windowed, raw KV gets, a
//! minimal axum handler — against which the stack's figures are read.

use std::time::Duration;

use async_nats::jetstream;
use bytes::Bytes;
use serde_json::json;

use super::results::{Results, Row};
use crate::bench::baseline::{self, Axum, Raw};
use crate::bench::load::Outcome;

/// The baselines the later steps compare with.
pub(super) struct Baselines {
    /// Raw publish, one at a time.
    pub(super) serial: Raw,
    /// Raw publish, `window` in flight.
    pub(super) windowed: Raw,
    /// Raw KV gets, 64 in flight.
    pub(super) kv: Raw,
    /// A minimal axum handler, 64 connections.
    pub(super) minimal: Outcome,
}

/// Measures the baselines on the stack's broker (`window` publishes in
/// flight for the windowed one, `seconds` per timed point).
pub(super) async fn measure(
    js: &jetstream::Context,
    window: usize,
    seconds: Duration,
    results: &mut Results,
) -> anyhow::Result<Baselines> {
    let serial = baseline::publish(js, 3_000, 1).await?;
    let windowed = baseline::publish(js, 100_000, window).await?;
    let kv = baseline::kv_get(js, 10_000, 64, seconds).await?;
    let axum = Axum::start()?;
    let body = Bytes::from(json!({ "targetAccount": { "linkedinHandle": "x" } }).to_string());
    axum.load(64, Duration::from_secs(1), body.clone()).await?;
    let minimal = axum.load(64, seconds, body).await?;
    drop(axum);
    results.row(Row::new(
        "raw JetStream publish, one at a time",
        serial.rate(),
        "msgs/s",
    ));
    results.row(Row::new(
        "raw JetStream publish p50, one at a time",
        serial.ms(0.5),
        "ms",
    ));
    results.row(Row::new(
        format!("raw JetStream publish, {} in flight", window),
        windowed.rate(),
        "msgs/s",
    ));
    results.row(Row::new("raw KV get, 64 in flight", kv.rate(), "gets/s"));
    results.row(Row::new(
        "minimal axum handler, 64 connections",
        minimal.rate(),
        "req/s",
    ));
    results.set(
        "baselines",
        json!({
            "publishSerial": serial.json(),
            "publishWindowed": windowed.json(),
            "window": window,
            "kvGet": kv.json(),
            "axumMinimal": minimal.json(),
        }),
    );
    Ok(Baselines {
        serial,
        windowed,
        kv,
        minimal,
    })
}
