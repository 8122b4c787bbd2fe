//! The ceilings every stack figure is a ratio of, measured in the same run
//! against the same nats-server: raw JetStream publish-with-ack (one at a
//! time and windowed) on a stream configured like the jobs stream, raw KV
//! gets on a bucket configured like the operations bucket, and a minimal
//! axum handler under the same load generator as the gateway.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_nats::jetstream::{self, context::PublishAckFuture, kv, stream};
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use serde_json::{Value, json};

use super::load::{self, Outcome};

/// The bench's own stream and bucket, deleted after use.
const STREAM: &str = "DOSSIER_BENCH_JOBS";
const SUBJECT: &str = "dossier.bench.jobs";
const BUCKET: &str = "dossier_bench_kv";

/// A rate and latency distribution of raw broker calls.
pub(crate) struct Raw {
    pub(crate) count: u64,
    pub(crate) elapsed: Duration,
    pub(crate) latency: Histogram<u64>,
}

impl Raw {
    /// Calls per second.
    pub(crate) fn rate(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile, ms.
    pub(crate) fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// The figures as JSON.
    pub(crate) fn json(&self) -> Value {
        json!({
            "count": self.count,
            "seconds": self.elapsed.as_secs_f64(),
            "perSecond": self.rate(),
            "p50Ms": self.ms(0.5),
            "p99Ms": self.ms(0.99),
        })
    }
}

/// A job-sized payload (a search job is a few hundred bytes of protobuf).
fn payload() -> Bytes {
    Bytes::from(vec![b'x'; 400])
}

/// Publish-with-ack to a stream with the jobs stream's configuration, at
/// most `window` acks outstanding (1 = one at a time), each with a unique
/// `Nats-Msg-Id` as the accept path sends (so de-duplication costs the same).
pub(crate) async fn publish(
    js: &jetstream::Context,
    count: u64,
    window: usize,
) -> anyhow::Result<Raw> {
    let mut config = js
        .get_stream(dossier_broker::JOBS_STREAM)
        .await
        .context("reading the jobs stream")?
        .info()
        .await
        .context("reading the jobs stream's configuration")?
        .config
        .clone();
    config.name = STREAM.to_owned();
    config.subjects = vec![SUBJECT.to_owned()];
    config.description = Some("cargo xtask bench: raw publish baseline".to_owned());
    let _ = js.delete_stream(STREAM).await;
    js.create_stream(config)
        .await
        .context("creating the bench stream")?;

    let body = payload();
    let mut latency = load::histogram()?;
    let mut pending: FuturesUnordered<_> = FuturesUnordered::new();
    let started = Instant::now();
    for i in 0..count {
        if pending.len() >= window.max(1)
            && let Some(done) = pending.next().await
        {
            acked(done, &mut latency)?;
        }
        let sent = Instant::now();
        let ack: PublishAckFuture = js
            .send_publish(
                SUBJECT,
                jetstream::message::PublishMessage::build()
                    .payload(body.clone())
                    .message_id(format!("bench-{}-{i}", started.elapsed().as_nanos())),
            )
            .await
            .context("publishing")?;
        pending.push(async move { (ack.await, sent) });
    }
    while let Some(done) = pending.next().await {
        acked(done, &mut latency)?;
    }
    let elapsed = started.elapsed();
    js.delete_stream(STREAM)
        .await
        .context("deleting the bench stream")?;
    Ok(Raw {
        count,
        elapsed,
        latency,
    })
}

fn acked(
    (ack, sent): (
        Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
        Instant,
    ),
    latency: &mut Histogram<u64>,
) -> anyhow::Result<()> {
    ack.context("publish not acknowledged")?;
    load::record(latency, sent.elapsed());
    Ok(())
}

/// KV gets with `in_flight` outstanding for `duration`, over `keys`
/// operation-sized records in a bucket configured like the operations bucket.
pub(crate) async fn kv_get(
    js: &jetstream::Context,
    keys: usize,
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<Raw> {
    let _ = js.delete_key_value(BUCKET).await;
    let store = js
        .create_key_value(kv::Config {
            bucket: BUCKET.to_owned(),
            description: "cargo xtask bench: raw KV baseline".to_owned(),
            history: 1,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("creating the bench bucket")?;
    let ids: Vec<String> = (0..keys.max(1))
        .map(|_| uuid::Uuid::now_v7().to_string())
        .collect();
    // An operation record is ~150-300 bytes of protobuf.
    let value = Bytes::from(vec![b'r'; 250]);
    futures::stream::iter(ids.iter())
        .map(|id| store.put(id, value.clone()))
        .buffer_unordered(256)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .context("filling the bench bucket")?;

    let started = Instant::now();
    let deadline = started + duration;
    let workers = (0..in_flight.max(1)).map(|w| {
        let (store, ids) = (store.clone(), &ids);
        async move {
            let mut latency = load::histogram()?;
            let mut i = w;
            while Instant::now() < deadline {
                let sent = Instant::now();
                store
                    .entry(&ids[i % ids.len()])
                    .await
                    .context("KV get")?
                    .context("a bench key is missing")?;
                load::record(&mut latency, sent.elapsed());
                i += in_flight;
            }
            anyhow::Ok(latency)
        }
    });
    let mut latency = load::histogram()?;
    for part in futures::future::join_all(workers).await {
        latency.add(part?).context("merging histograms")?;
    }
    let elapsed = started.elapsed();
    js.delete_key_value(BUCKET)
        .await
        .context("deleting the bench bucket")?;
    Ok(Raw {
        count: latency.len(),
        elapsed,
        latency,
    })
}

/// The minimal handler: the gateway's accept answer without the work
/// behind it (no auth, no validation, no gRPC, no broker).
async fn accepted() -> (http::StatusCode, axum::Json<Value>) {
    (
        http::StatusCode::ACCEPTED,
        axum::Json(json!({
            "id": "0190f0f0-0000-7000-8000-000000000000",
            "operationId": "0190f0f0-0000-7000-8000-000000000000",
            "status": "queued",
            "pollUrl": "http://127.0.0.1/api/operations/0190f0f0-0000-7000-8000-000000000000",
            "meta": { "requestId": "0190f0f0-0000-7000-8000-000000000001" },
        })),
    )
}

/// A minimal axum server on its own two-thread runtime (as a service gets
/// on this machine), so it does not share the load generator's threads.
/// Runs until the returned guard is dropped.
pub(crate) struct Axum {
    pub(crate) addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Axum {
    pub(crate) fn start() -> anyhow::Result<Axum> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let app =
                    axum::Router::new().route("/api/search/people", axum::routing::post(accepted));
                if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await;
                }
            });
        });
        Ok(Axum {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Closed-loop load on the handler with `workers` connections.
    pub(crate) async fn load(
        &self,
        workers: usize,
        duration: Duration,
        body: Bytes,
    ) -> anyhow::Result<Outcome> {
        let make = load::fixed("none", "POST", "/api/search/people", Some(body));
        load::closed(self.addr, workers, duration, make, 0).await
    }
}

impl Drop for Axum {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
