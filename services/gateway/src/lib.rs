//! The Dossier gateway: the public HTTP API.
//!
//! It authenticates callers by API key, validates request bodies with the
//! shared types of `dossier_contracts::api`, and hands work to the
//! operations service over gRPC, which stores the job in JetStream before it
//! answers, so a `202 Accepted` always means the job is durable. Polling,
//! listing, result pages and cancelling go through the same service.
//! Synchronous enrichment is a NATS request-reply call to the enrichment
//! workers ([`enrich`]), the gateway's only use of NATS. The gateway keeps
//! no state of its own and scales out behind a load balancer.
//!
//! Every response carries a fresh `X-Request-Id` (UUID v7) that is also the
//! trace id of the request's trace unless the caller sent a `traceparent`
//! (see [`context`]); every error is an RFC 9457 problem (see [`error`]).
//!
//! `main.rs` only reads [`Config`] and calls [`App::build`] and [`App::run`];
//! tests boot the same [`App`] on port 0, or call [`router`] directly.
#![forbid(unsafe_code)]

pub mod admission;
pub mod auth;
pub mod context;
pub mod enrich;
pub mod error;
pub mod extract;
pub mod grpc;
pub mod metrics;
pub mod openapi;
pub mod prefer;
mod query;
pub mod rate_limit;
mod routes;
mod views;
mod watch;

#[cfg(test)]
mod router_tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dossier_contracts::limits::MAX_BODY_BYTES;
use dossier_contracts::v1::Tenanted;
use dossier_contracts::v1::operations_client::OperationsClient;
use dossier_contracts::v1::webhooks_client::WebhooksClient;
use dossier_service::{CancellationToken, Readiness};
use dossier_telemetry::LogConfig;
use tokio::net::TcpListener;
use tonic::transport::Channel;

pub use auth::{ApiKeys, Caller, KeyEntry, KeysError};
pub use error::ApiError;
pub use routes::router;

/// `DOSSIER_HTTP_ADDR`: where the HTTP API listens.
pub const ENV_HTTP_ADDR: &str = "DOSSIER_HTTP_ADDR";
/// `DOSSIER_OPERATIONS_URL`: the operations service's gRPC URL.
pub const ENV_OPERATIONS_URL: &str = "DOSSIER_OPERATIONS_URL";
/// `DOSSIER_WEBHOOKS_URL`: the webhooks service's gRPC URL.
pub const ENV_WEBHOOKS_URL: &str = "DOSSIER_WEBHOOKS_URL";
/// `DOSSIER_SERVICE_TOKEN_KEY`: the private key that signs the gateway's
/// service tokens.
pub const ENV_SERVICE_TOKEN_KEY: &str = "DOSSIER_SERVICE_TOKEN_KEY";
/// `DOSSIER_API_KEYS_FILE`: the TOML file of API key hashes.
pub const ENV_API_KEYS_FILE: &str = "DOSSIER_API_KEYS_FILE";
/// `DOSSIER_PUBLIC_BASE_URL`: the external base of `pollUrl`s, e.g. `https://api.example.com`.
pub const ENV_PUBLIC_BASE_URL: &str = "DOSSIER_PUBLIC_BASE_URL";
/// `DOSSIER_MAX_BODY_BYTES`: the largest accepted request body.
pub const ENV_MAX_BODY_BYTES: &str = "DOSSIER_MAX_BODY_BYTES";
/// `DOSSIER_REQUEST_TIMEOUT`: the longest a request may take end to end.
pub const ENV_REQUEST_TIMEOUT: &str = "DOSSIER_REQUEST_TIMEOUT";
/// `DOSSIER_OPERATIONS_TIMEOUT`: the longest one call to the operations service may take.
pub const ENV_OPERATIONS_TIMEOUT: &str = "DOSSIER_OPERATIONS_TIMEOUT";
/// `DOSSIER_OPERATIONS_CONNECT_TIMEOUT`: the longest connecting to the operations service may take.
pub const ENV_OPERATIONS_CONNECT_TIMEOUT: &str = "DOSSIER_OPERATIONS_CONNECT_TIMEOUT";
/// `DOSSIER_READINESS_TIMEOUT`: the longest `/readyz` waits for the operations health check.
pub const ENV_READINESS_TIMEOUT: &str = "DOSSIER_READINESS_TIMEOUT";
/// `DOSSIER_RATE_LIMIT_PER_SECOND`: per-tenant request rate (unset: no limit).
pub const ENV_RATE_LIMIT_PER_SECOND: &str = "DOSSIER_RATE_LIMIT_PER_SECOND";
/// `DOSSIER_RATE_LIMIT_BURST`: per-tenant burst (default: the rate).
pub const ENV_RATE_LIMIT_BURST: &str = "DOSSIER_RATE_LIMIT_BURST";
/// `DOSSIER_MAX_IN_FLIGHT`: most API requests running at once (more: 503).
pub const ENV_MAX_IN_FLIGHT: &str = "DOSSIER_MAX_IN_FLIGHT";
/// `DOSSIER_MAX_STREAMS`: most event streams and `Prefer: wait` requests open at once (more: 503).
pub const ENV_MAX_STREAMS: &str = "DOSSIER_MAX_STREAMS";
/// `DOSSIER_SSE_HEARTBEAT`: how often a quiet event stream sends a heartbeat comment.
pub const ENV_SSE_HEARTBEAT: &str = "DOSSIER_SSE_HEARTBEAT";
/// `DOSSIER_SHUTDOWN_GRACE`: how long in-flight requests may finish after a shutdown signal.
pub const ENV_SHUTDOWN_GRACE: &str = "DOSSIER_SHUTDOWN_GRACE";
/// `DOSSIER_ENRICH_TIMEOUT`: the longest a synchronous enrichment may take.
pub const ENV_ENRICH_TIMEOUT: &str = "DOSSIER_ENRICH_TIMEOUT";

/// Gateway settings, from flags or environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "gateway", about = "The Dossier HTTP API gateway.")]
pub struct Config {
    /// Address the HTTP API listens on (port 0: any free port).
    #[arg(long, env = ENV_HTTP_ADDR, default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// gRPC URL of the operations service.
    #[arg(long, env = ENV_OPERATIONS_URL, default_value = "http://127.0.0.1:50051")]
    pub operations_url: String,
    /// gRPC URL of the webhooks service (`/api/webhooks`); when it is
    /// `https://`, the TLS settings of the operations service apply to it.
    #[arg(long, env = ENV_WEBHOOKS_URL, default_value = "http://127.0.0.1:50052")]
    pub webhooks_url: String,
    /// The Ed25519 private key (PKCS#8 PEM file) that signs the service
    /// token of every call to the operations service (see
    /// `dossier-identity`). Required; `cargo xtask up` generates one.
    #[arg(long, env = ENV_SERVICE_TOKEN_KEY)]
    pub service_token_key: Option<PathBuf>,
    /// TLS to the operations service (for an `https://` URL).
    #[command(flatten)]
    pub operations_tls: grpc::ClientTls,
    /// NATS server URL(s), comma separated, for synchronous enrichment
    /// (request-reply to the enrichment workers; no JetStream).
    #[arg(long, env = dossier_nats::ENV_NATS_URL, default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// The gateway's NATS user, when the server requires one (it needs only
    /// to publish `dossier.enrich.person` and receive replies).
    #[command(flatten)]
    pub nats_credentials: dossier_nats::NatsCredentials,
    /// Longest a synchronous enrichment may take (longer: 503).
    #[arg(long, env = ENV_ENRICH_TIMEOUT, default_value = "5s", value_parser = humantime::parse_duration)]
    pub enrich_timeout: Duration,
    /// TOML file of API keys: `[[keys]]` tables with `tenant`, `id` and
    /// `sha256` (hex SHA-256 of the key). Required unless `api_keys` is set
    /// in-process.
    #[arg(long, env = ENV_API_KEYS_FILE)]
    pub api_keys_file: Option<PathBuf>,
    /// Keys given in-process (tests, embedding); take precedence over the file.
    #[arg(skip)]
    pub api_keys: Option<ApiKeys>,
    /// External base URL of the API (`https://api.example.com`), used for
    /// `pollUrl` and `Location`. Unset: derived from `X-Forwarded-*` or `Host`.
    #[arg(long, env = ENV_PUBLIC_BASE_URL, value_parser = extract::parse_public_base_url)]
    pub public_base_url: Option<String>,
    /// Largest accepted request body in bytes (larger: 413); at most the
    /// contract's 8 MiB, which every hop behind the gateway is sized for.
    #[arg(long, env = ENV_MAX_BODY_BYTES, default_value_t = MAX_BODY_BYTES,
          value_parser = parse_max_body_bytes)]
    pub max_body_bytes: usize,
    /// Longest a request may take end to end (longer: 503).
    #[arg(long, env = ENV_REQUEST_TIMEOUT, default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// Longest one call to the operations service may take (longer: 503).
    #[arg(long, env = ENV_OPERATIONS_TIMEOUT, default_value = "10s", value_parser = humantime::parse_duration)]
    pub operations_timeout: Duration,
    /// Longest connecting to the operations service may take.
    #[arg(long, env = ENV_OPERATIONS_CONNECT_TIMEOUT, default_value = "2s", value_parser = humantime::parse_duration)]
    pub operations_connect_timeout: Duration,
    /// Longest `/readyz` waits for the operations service's health check.
    #[arg(long, env = ENV_READINESS_TIMEOUT, default_value = "1s", value_parser = humantime::parse_duration)]
    pub readiness_timeout: Duration,
    /// Requests per second per tenant, on average (unset: no rate limit).
    #[arg(long, env = ENV_RATE_LIMIT_PER_SECOND, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_per_second: Option<u32>,
    /// Requests a tenant may burst above the rate (default: the rate).
    #[arg(long, env = ENV_RATE_LIMIT_BURST, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: Option<u32>,
    /// Most API requests running at once; one more is answered 503 with
    /// `Retry-After` at once instead of queueing (the probes are not
    /// counted).
    #[arg(long, env = ENV_MAX_IN_FLIGHT, default_value_t = 512,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Most event streams (`GET /api/operations/{id}/events`) and requests
    /// waiting under `Prefer: wait` open at once; one more stream is
    /// answered 503 with `Retry-After`, one more wait is answered at once
    /// without waiting. They hold no in-flight permit once answering.
    #[arg(long, env = ENV_MAX_STREAMS, default_value_t = 2_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams: u32,
    /// How often a quiet event stream sends a heartbeat comment, so proxies
    /// and clients see the connection is alive.
    #[arg(long, env = ENV_SSE_HEARTBEAT, default_value = "15s", value_parser = parse_heartbeat)]
    pub sse_heartbeat: Duration,
    /// How long in-flight requests may finish after a shutdown signal.
    #[arg(long, env = ENV_SHUTDOWN_GRACE, default_value = "20s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
}

impl Config {
    /// The defaults (and `DOSSIER_*` variables), for tests and tools that
    /// then set fields in code.
    pub fn from_env() -> anyhow::Result<Config> {
        <Config as clap::Parser>::try_parse_from(["gateway"])
            .context("invalid gateway configuration")
    }

    fn keys(&self) -> anyhow::Result<ApiKeys> {
        if let Some(keys) = &self.api_keys {
            return Ok(keys.clone());
        }
        let path = self.api_keys_file.as_deref().with_context(|| {
            format!("no API keys configured: set {ENV_API_KEYS_FILE} to a keys file")
        })?;
        ApiKeys::load(path).with_context(|| format!("cannot load API keys from {}", path.display()))
    }
}

/// Parses `DOSSIER_MAX_BODY_BYTES`: 1 byte to the contract's
/// [`MAX_BODY_BYTES`]. A larger limit would accept bodies the gRPC hop to
/// the operations service is not sized for, which could never succeed.
fn parse_max_body_bytes(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_BODY_BYTES).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is not a byte count from 1 to {MAX_BODY_BYTES}"
        )),
    }
}

/// Parses `DOSSIER_SSE_HEARTBEAT`: a duration above zero.
fn parse_heartbeat(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("the heartbeat interval must be above zero".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<StateInner>);

struct StateInner {
    keys: ApiKeys,
    channel: Channel,
    operations: OperationsClient<grpc::OperationsChannel>,
    webhooks: WebhooksClient<grpc::WebhooksChannel>,
    signer: dossier_identity::TokenSigner,
    public_base_url: Option<String>,
    listen_addr: SocketAddr,
    readiness: Readiness,
    readiness_timeout: Duration,
    max_body_bytes: usize,
    request_timeout: Duration,
    rate_limiter: Option<rate_limit::RateLimiter>,
    admission: admission::Admission,
    streams: admission::StreamSlots,
    sse_heartbeat: Duration,
    /// Cancelled when the gateway begins to shut down: open streams and
    /// waits end then, instead of holding the shutdown for its grace.
    stopping: CancellationToken,
    metrics: metrics::Metrics,
    enrichment: Option<enrich::EnrichClient>,
}

impl AppState {
    /// State for a gateway answering on `listen_addr` with `keys`. Connects
    /// to the operations service lazily, so it never fails because the
    /// service is down. Must be called inside a Tokio runtime. Without a
    /// NATS client synchronous enrichment answers 503 (see
    /// [`AppState::with_enrichment`]).
    pub fn new(config: &Config, keys: ApiKeys, listen_addr: SocketAddr) -> anyhow::Result<Self> {
        Self::with_enrichment(config, keys, listen_addr, None)
    }

    /// [`AppState::new`] with the NATS client of synchronous enrichment.
    pub fn with_enrichment(
        config: &Config,
        keys: ApiKeys,
        listen_addr: SocketAddr,
        enrichment: Option<enrich::EnrichClient>,
    ) -> anyhow::Result<Self> {
        // Set in-process, the limit skipped clap's check.
        anyhow::ensure!(
            (1..=MAX_BODY_BYTES).contains(&config.max_body_bytes),
            "{ENV_MAX_BODY_BYTES} must be from 1 to {MAX_BODY_BYTES}"
        );
        let channel = grpc::channel(
            &config.operations_url,
            &config.operations_tls,
            config.operations_connect_timeout,
            config.operations_timeout,
        )?;
        // The operations service's TLS settings serve the webhooks service
        // too when its URL is https (one CA, one client certificate).
        let webhooks_tls = if config.webhooks_url.starts_with("https://") {
            config.operations_tls.clone()
        } else {
            grpc::ClientTls::default()
        };
        let webhooks = grpc::channel(
            &config.webhooks_url,
            &webhooks_tls,
            config.operations_connect_timeout,
            config.operations_timeout,
        )?;
        let key = config.service_token_key.as_deref().with_context(|| {
            format!("no service token key configured: set {ENV_SERVICE_TOKEN_KEY}")
        })?;
        let signer = dossier_identity::TokenSigner::from_file(key, grpc::SERVICE_NAME)
            .with_context(|| format!("invalid {ENV_SERVICE_TOKEN_KEY}"))?;
        let readiness = Readiness::new();
        readiness.set(true);
        let rate_limiter = config.rate_limit_per_second.map(|rate| {
            rate_limit::RateLimiter::new(rate, config.rate_limit_burst.unwrap_or(rate))
        });
        Ok(AppState(Arc::new(StateInner {
            keys,
            operations: grpc::operations_client(channel.clone()),
            webhooks: grpc::webhooks_client(webhooks),
            signer,
            channel,
            public_base_url: config.public_base_url.clone(),
            listen_addr,
            readiness,
            readiness_timeout: config.readiness_timeout,
            max_body_bytes: config.max_body_bytes,
            request_timeout: config.request_timeout,
            rate_limiter,
            admission: admission::Admission::new(config.max_in_flight as usize),
            streams: admission::StreamSlots::new(config.max_streams as usize),
            // Set in-process, the interval skipped clap's check.
            sse_heartbeat: config.sse_heartbeat.max(Duration::from_millis(1)),
            stopping: CancellationToken::new(),
            metrics: metrics::Metrics::install(),
            enrichment,
        })))
    }

    /// The client of synchronous enrichment, when NATS is configured.
    pub fn enrichment(&self) -> Option<&enrich::EnrichClient> {
        self.0.enrichment.as_ref()
    }

    /// The configured API keys.
    pub fn keys(&self) -> &ApiKeys {
        &self.0.keys
    }

    /// A client of the operations service (clones share one channel).
    pub fn operations(&self) -> OperationsClient<grpc::OperationsChannel> {
        self.0.operations.clone()
    }

    /// A client of the webhooks service (clones share one channel).
    pub fn webhooks(&self) -> WebhooksClient<grpc::WebhooksChannel> {
        self.0.webhooks.clone()
    }

    /// `message` as a call to the webhooks service: with a service token
    /// for its API and the tenant it acts for.
    pub fn signed_for_webhooks<T: Tenanted>(
        &self,
        message: T,
    ) -> Result<tonic::Request<T>, ApiError> {
        self.0
            .signer
            .request_for(dossier_identity::WEBHOOKS_AUDIENCE, message)
            .map_err(|e| {
                ApiError::Internal(anyhow::Error::new(e).context("cannot sign a service token"))
            })
    }

    /// `message` as a call to the operations service: with the service
    /// token for the tenant it acts for.
    pub fn signed<T: Tenanted>(&self, message: T) -> Result<tonic::Request<T>, ApiError> {
        self.0.signer.request(message).map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("cannot sign a service token"))
        })
    }

    /// The channel to the operations service.
    pub fn channel(&self) -> Channel {
        self.0.channel.clone()
    }

    /// The configured public base URL, without a trailing slash.
    pub fn public_base_url(&self) -> Option<&str> {
        self.0.public_base_url.as_deref()
    }

    /// The address the listener is bound to.
    pub fn listen_addr(&self) -> SocketAddr {
        self.0.listen_addr
    }

    /// Whether the gateway takes work; false once shutdown begins.
    pub fn readiness(&self) -> &Readiness {
        &self.0.readiness
    }

    /// How long `/readyz` waits for the operations health check.
    pub fn readiness_timeout(&self) -> Duration {
        self.0.readiness_timeout
    }

    /// The largest accepted body.
    pub fn max_body_bytes(&self) -> usize {
        self.0.max_body_bytes
    }

    /// The end-to-end request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.0.request_timeout
    }

    /// The per-tenant rate limiter, when configured.
    pub fn rate_limiter(&self) -> Option<&rate_limit::RateLimiter> {
        self.0.rate_limiter.as_ref()
    }

    /// The in-flight limit of API requests.
    pub fn admission(&self) -> &admission::Admission {
        &self.0.admission
    }

    /// The metrics recorder.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.0.metrics
    }

    /// The limit of event streams and waiting requests.
    pub fn streams(&self) -> &admission::StreamSlots {
        &self.0.streams
    }

    /// The heartbeat interval of event streams.
    pub fn sse_heartbeat(&self) -> Duration {
        self.0.sse_heartbeat
    }

    /// Cancelled once the gateway begins to shut down.
    pub fn stopping(&self) -> &CancellationToken {
        &self.0.stopping
    }
}

/// A built gateway: the bound listener and the router.
pub struct App {
    listener: TcpListener,
    state: AppState,
    shutdown_grace: Duration,
}

impl App {
    /// Loads the keys (failing with a clear message when they are missing
    /// or invalid) and binds the listener. Needs neither the operations
    /// service nor NATS to be up (both are connected in the background).
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let keys = config.keys()?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http_addr))?;
        let addr = listener
            .local_addr()
            .context("cannot read the listener's address")?;
        let enrichment = enrich::connect(
            &config.nats_url,
            &config.nats_credentials,
            config.enrich_timeout,
        )
        .await
        .with_context(|| format!("cannot connect to NATS at {}", config.nats_url))?;
        let state = AppState::with_enrichment(&config, keys, addr, Some(enrichment))?;
        tracing::info!(
            message = "Gateway built.",
            http_addr = %addr,
            operations_url = %config.operations_url,
            nats_url = %config.nats_url,
            api_keys = state.keys().len(),
            rate_limit = ?config.rate_limit_per_second,
        );
        Ok(App {
            listener,
            state,
            shutdown_grace: config.shutdown_grace,
        })
    }

    /// The address the HTTP API listens on.
    pub fn http_addr(&self) -> SocketAddr {
        self.state.listen_addr()
    }

    /// The shared state (readiness, clients).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled: readiness turns false at once,
    /// new connections stop, and in-flight requests get the grace period to
    /// finish.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.state.readiness().clear_on(&shutdown);
        let router = router(self.state.clone());
        tracing::info!(message = "Gateway listening.", http_addr = %self.http_addr());
        let stopping = self.state.stopping().clone();
        let signal = shutdown.clone();
        let serve = axum::serve(self.listener, router)
            .with_graceful_shutdown(async move {
                signal.cancelled().await;
                // Streams and waits end now; their clients come back (to
                // another replica) with their last event id.
                stopping.cancel();
            })
            .into_future();
        let grace = self.shutdown_grace;
        tokio::select! {
            result = serve => result.context("HTTP server failed")?,
            () = async {
                shutdown.cancelled().await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(message = "Shutdown grace period over; dropping open connections.", grace = ?grace);
            }
        }
        tracing::info!(message = "Gateway stopped.");
        Ok(())
    }
}
