//! The HTTP load generator of `cargo xtask bench`: a small client on hyper,
//! one keep-alive HTTP/1.1 connection per concurrent worker, latencies in
//! an HDR histogram (microseconds, 3 significant digits).
//!
//! - **Closed loop** ([`closed`]): `workers` connections, each sending its
//!   next request as soon as the previous answer is read, for a fixed time.
//!   Gives the saturating rate; its latency hides queueing (coordinated
//!   omission), so it is not the latency under a given load.
//! - **Open loop** ([`open`]): requests are due at a fixed arrival rate
//!   (`start + i / rate`), taken in order by a pool of connections; latency
//!   is measured from the time a request was *due*, not from when a free
//!   connection sent it, so a stall is charged to every request it delayed
//!   (no coordinated omission). Tokio's timer has millisecond granularity: a
//!   request that waits for its due time may leave up to ~1 ms late, and
//!   that lateness is counted in its latency (the honest direction).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// Time given to every worker to connect before a timed run starts (256
/// loopback connects take a few ms; this leaves room on a busy machine).
const CONNECT_TIME: Duration = Duration::from_millis(300);

/// Builds the `i`-th request of a run.
pub(crate) type MakeRequest = Arc<dyn Fn(u64) -> http::Request<Full<Bytes>> + Send + Sync>;

/// What one run measured.
pub(crate) struct Outcome {
    /// Latency of every answered request, µs (2xx or not).
    pub(crate) latency: Histogram<u64>,
    /// Answers with a 2xx status.
    pub(crate) ok: u64,
    /// Answers with another status, and transport errors.
    pub(crate) errors: u64,
    /// From the first request to the last answer.
    pub(crate) elapsed: Duration,
    /// The bodies of the first `keep_bodies` 2xx answers.
    pub(crate) bodies: Vec<Bytes>,
}

impl Outcome {
    /// 2xx answers per second.
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile of latency, in milliseconds.
    pub(crate) fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    /// The figures as JSON.
    pub(crate) fn json(&self) -> Value {
        json!({
            "ok": self.ok,
            "errors": self.errors,
            "seconds": self.elapsed.as_secs_f64(),
            "perSecond": self.rate(),
            "p50Ms": self.ms(0.5),
            "p99Ms": self.ms(0.99),
            "p999Ms": self.ms(0.999),
            "maxMs": self.latency.max() as f64 / 1000.0,
        })
    }
}

/// A fresh histogram for latencies in µs, 1 µs to 10 min.
pub(crate) fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, 3).context("creating a histogram")
}

/// Records `d` in `h` as µs (clamped into the histogram's range).
pub(crate) fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1));
}

/// One keep-alive connection.
pub(crate) struct Connection {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// Not connected yet: the first request connects.
    pub(crate) fn new(addr: SocketAddr) -> Connection {
        Connection { addr, sender: None }
    }

    /// Connects now unless connected, so a timed run does not pay for it.
    pub(crate) async fn connect(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.is_none() {
            let stream = tokio::net::TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        self.sender.as_mut().context("not connected")
    }

    /// Sends `request` (connecting first if needed): the status and body.
    pub(crate) async fn send(
        &mut self,
        request: http::Request<Full<Bytes>>,
    ) -> anyhow::Result<(http::StatusCode, Bytes)> {
        let result = async {
            let sender = self.connect().await?;
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        }
        .await;
        if result.is_err() {
            // A broken connection is replaced on the next request.
            self.sender = None;
        }
        result
    }
}

/// What one worker saw.
struct Part {
    latency: Histogram<u64>,
    ok: u64,
    errors: u64,
    bodies: Vec<Bytes>,
}

impl Part {
    fn new() -> anyhow::Result<Part> {
        Ok(Part {
            latency: histogram()?,
            ok: 0,
            errors: 0,
            bodies: Vec::new(),
        })
    }

    fn answer(
        &mut self,
        answer: anyhow::Result<(http::StatusCode, Bytes)>,
        took: Duration,
        keep: usize,
    ) {
        match answer {
            Ok((status, body)) => {
                record(&mut self.latency, took);
                if status.is_success() {
                    self.ok += 1;
                    if self.bodies.len() < keep {
                        self.bodies.push(body);
                    }
                } else {
                    self.errors += 1;
                }
            }
            Err(_) => self.errors += 1,
        }
    }
}

async fn gather(
    parts: Vec<tokio::task::JoinHandle<anyhow::Result<Part>>>,
    started: Instant,
) -> anyhow::Result<Outcome> {
    // Every worker connects before `started`; a run's time starts there.
    let mut outcome = Outcome {
        latency: histogram()?,
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        bodies: Vec::new(),
    };
    for part in parts {
        let part = part.await.context("a load worker panicked")??;
        outcome
            .latency
            .add(&part.latency)
            .context("merging histograms")?;
        outcome.ok += part.ok;
        outcome.errors += part.errors;
        outcome.bodies.extend(part.bodies);
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// Closed loop: `workers` connections send back to back for `duration`.
/// Keeps up to `keep_bodies` 2xx bodies per worker.
pub(crate) async fn closed(
    addr: SocketAddr,
    workers: usize,
    duration: Duration,
    make: MakeRequest,
    keep_bodies: usize,
) -> anyhow::Result<Outcome> {
    let started = Instant::now() + CONNECT_TIME;
    let deadline = started + duration;
    let next = Arc::new(AtomicU64::new(0));
    let parts = (0..workers.max(1))
        .map(|_| {
            let (make, next) = (make.clone(), next.clone());
            tokio::spawn(async move {
                let mut part = Part::new()?;
                let mut connection = Connection::new(addr);
                connection.connect().await?;
                tokio::time::sleep_until(started.into()).await;
                while Instant::now() < deadline {
                    let request = make(next.fetch_add(1, Ordering::Relaxed));
                    let sent = Instant::now();
                    let answer = connection.send(request).await;
                    part.answer(answer, sent.elapsed(), keep_bodies);
                }
                Ok(part)
            })
        })
        .collect();
    gather(parts, started).await
}

/// Open loop: `rate` requests per second for `duration`, sent by up to
/// `workers` connections; latency counted from each request's due time.
pub(crate) async fn open(
    addr: SocketAddr,
    workers: usize,
    rate: f64,
    duration: Duration,
    make: MakeRequest,
) -> anyhow::Result<Outcome> {
    let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let started = Instant::now() + CONNECT_TIME;
    let next = Arc::new(AtomicU64::new(0));
    let parts = (0..workers.max(1))
        .map(|_| {
            let (make, next) = (make.clone(), next.clone());
            tokio::spawn(async move {
                let mut part = Part::new()?;
                let mut connection = Connection::new(addr);
                connection.connect().await?;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let due = started + interval.mul_f64(i as f64);
                    tokio::time::sleep_until(due.into()).await;
                    let answer = connection.send(make(i)).await;
                    part.answer(answer, due.elapsed(), 0);
                }
                Ok(part)
            })
        })
        .collect();
    gather(parts, started).await
}

/// A request builder for `method path` with the API key and an optional
/// JSON body, the same for every `i`.
pub(crate) fn fixed(key: &str, method: &str, path: &str, body: Option<Bytes>) -> MakeRequest {
    let (path, auth, method) = (path.to_owned(), format!("Bearer {key}"), method.to_owned());
    Arc::new(move |_| request(&method, &path, &auth, body.clone()))
}

/// One request for `path` (origin form, as HTTP/1.1 clients send it):
/// `Host`, `Authorization` and, with a body, JSON content type.
pub(crate) fn request(
    method: &str,
    path: &str,
    auth: &str,
    body: Option<Bytes>,
) -> http::Request<Full<Bytes>> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, "127.0.0.1")
        .header(http::header::AUTHORIZATION, auth);
    if body.is_some() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    builder
        .body(Full::new(body.unwrap_or_default()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::bench::baseline::Axum;

    fn search() -> MakeRequest {
        fixed(
            "key",
            "POST",
            "/api/search/people",
            Some(Bytes::from_static(b"{}")),
        )
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn closed_loop_counts_every_answer_once() {
        let server = Axum::start().unwrap();
        let outcome = closed(server.addr, 4, Duration::from_millis(200), search(), 3)
            .await
            .unwrap();
        assert!(outcome.ok > 0);
        assert_eq!(outcome.errors, 0);
        assert_eq!(outcome.latency.len(), outcome.ok);
        // At most 3 bodies kept per worker, each the handler's 202 body.
        assert!(!outcome.bodies.is_empty() && outcome.bodies.len() <= 12);
        assert!(outcome.bodies.iter().all(|b| b.starts_with(b"{")));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn open_loop_sends_exactly_rate_times_duration() {
        let server = Axum::start().unwrap();
        let outcome = open(server.addr, 8, 200.0, Duration::from_millis(250), search())
            .await
            .unwrap();
        assert_eq!(outcome.ok, 50);
        assert_eq!(outcome.errors, 0);
        assert_eq!(outcome.latency.len(), 50);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn non_2xx_answers_are_errors_not_successes() {
        let server = Axum::start().unwrap();
        let missing = fixed("key", "GET", "/nowhere", None);
        let outcome = open(server.addr, 2, 100.0, Duration::from_millis(100), missing)
            .await
            .unwrap();
        assert_eq!(outcome.ok, 0);
        assert_eq!(outcome.errors, 10);
        // Answered requests still have a latency.
        assert_eq!(outcome.latency.len(), 10);
    }
}
