//! The webhooks service: tenants' webhook endpoints, and the delivery of
//! their operations' events as signed HTTP calls (Standard Webhooks v1).
//!
//! - **API** (`service.rs`): `dossier.v1.Webhooks` over gRPC, called by the
//!   gateway with a service token for the tenant (audience
//!   `dossier.v1.Webhooks`): register (the URL checked against the
//!   public-internet-only guard, literal and resolved), list, get, delete,
//!   rotate the secret, list deliveries. Endpoints live in
//!   `dossier_webhook_endpoints`, one value per tenant (`endpoints.rs`).
//! - **Events** (`events.rs`): a durable consumer on the operation records'
//!   own stream turns each record revision into deliveries for the
//!   tenant's endpoints, once per event (deterministic `webhook-id`s).
//! - **Deliveries** (`deliver.rs`): a consume loop on the work-queue stream
//!   `DOSSIER_WEBHOOKS` POSTs each, signed (`signing.rs`), retries on the
//!   schedule (nak with delay), disables an endpoint on 410, and records
//!   every attempt in `dossier_webhook_deliveries` (`deliveries.rs`).
//!
//! Stateless: every replica serves the API and shares both consumers. The
//! topology is the operations service's to create; this service binds to
//! it and is not ready until it can.
#![forbid(unsafe_code)]

mod deliver;
mod deliveries;
mod endpoints;
mod error;
mod events;
pub mod metrics;
pub mod schedule;
mod service;
pub mod signing;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dossier_backoff::Backoff;
use dossier_broker::consume::PullHealth;
use dossier_broker::{BrokerConfig, WebhooksTopology};
use dossier_contracts::v1::webhooks_server::WebhooksServer;
use dossier_netguard::{AddressGuard, SystemResolver};
use dossier_service::admin::{Admin, AdminConfig};
use dossier_telemetry::LogConfig;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;

/// `DOSSIER_WEBHOOKS_GRPC_ADDR`: where the gRPC server listens.
pub const ENV_GRPC_ADDR: &str = "DOSSIER_WEBHOOKS_GRPC_ADDR";
/// `DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS`: the public keys of the services
/// allowed to call (see `dossier-identity`).
pub const ENV_SERVICE_TOKEN_PUBLIC_KEYS: &str = "DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS";
/// `DOSSIER_WEBHOOKS_RETRY_SCHEDULE`: the waits between attempts.
pub const ENV_RETRY_SCHEDULE: &str = "DOSSIER_WEBHOOKS_RETRY_SCHEDULE";
/// `DOSSIER_WEBHOOKS_TIMEOUT`: the longest one attempt may take.
pub const ENV_TIMEOUT: &str = "DOSSIER_WEBHOOKS_TIMEOUT";
/// `DOSSIER_WEBHOOKS_ROTATION_GRACE`: how long a rotated secret still signs.
pub const ENV_ROTATION_GRACE: &str = "DOSSIER_WEBHOOKS_ROTATION_GRACE";
/// `DOSSIER_WEBHOOKS_MAX_ENDPOINTS`: most endpoints per tenant.
pub const ENV_MAX_ENDPOINTS: &str = "DOSSIER_WEBHOOKS_MAX_ENDPOINTS";
/// `DOSSIER_WEBHOOKS_ALLOW_HTTP`: accept plain `http://` endpoints (tests, local development).
pub const ENV_ALLOW_HTTP: &str = "DOSSIER_WEBHOOKS_ALLOW_HTTP";
/// `DOSSIER_WEBHOOKS_ALLOW_PRIVATE_NETWORKS`: non-public networks deliveries may reach (tests only).
pub const ENV_ALLOW_PRIVATE_NETWORKS: &str = "DOSSIER_WEBHOOKS_ALLOW_PRIVATE_NETWORKS";
/// `DOSSIER_PUBLIC_BASE_URL`: the API's external base, for the links in deliveries.
pub const ENV_PUBLIC_BASE_URL: &str = "DOSSIER_PUBLIC_BASE_URL";
/// `DOSSIER_WEBHOOKS_CONCURRENCY`: deliveries made at once by one replica.
pub const ENV_CONCURRENCY: &str = "DOSSIER_WEBHOOKS_CONCURRENCY";
/// `DOSSIER_WEBHOOKS_SHUTDOWN_GRACE`: how long shutdown may take.
pub const ENV_SHUTDOWN_GRACE: &str = "DOSSIER_WEBHOOKS_SHUTDOWN_GRACE";
/// `DOSSIER_WEBHOOKS_TLS_CERT`: the gRPC server's certificate chain (PEM).
pub const ENV_TLS_CERT: &str = "DOSSIER_WEBHOOKS_TLS_CERT";
/// `DOSSIER_WEBHOOKS_TLS_KEY`: the gRPC server's private key (PEM).
pub const ENV_TLS_KEY: &str = "DOSSIER_WEBHOOKS_TLS_KEY";
/// `DOSSIER_WEBHOOKS_TLS_CLIENT_CA`: the CA client certificates must chain to (mutual TLS).
pub const ENV_TLS_CLIENT_CA: &str = "DOSSIER_WEBHOOKS_TLS_CLIENT_CA";
/// The services whose tokens the webhooks API accepts.
pub const TRUSTED_CALLERS: &[&str] = &["gateway"];

/// How often readiness is re-checked.
const READINESS_INTERVAL: Duration = Duration::from_millis(100);
/// Waits between attempts to bind the topology or reopen a consumer.
pub(crate) const RECONNECT: Backoff =
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

/// The service's configuration, from flags or environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "webhooks", version, about = "Dossier webhooks service")]
pub struct Config {
    /// Address of the gRPC server (port 0 picks a free port).
    #[arg(long, env = ENV_GRPC_ADDR, default_value = "127.0.0.1:50052")]
    pub grpc_addr: SocketAddr,
    /// Public keys (SPKI PEM files, comma separated) of the services allowed
    /// to call: every call must carry a token one of them signed for this
    /// API. `cargo xtask up` generates a local pair.
    #[arg(long, env = ENV_SERVICE_TOKEN_PUBLIC_KEYS, value_delimiter = ',', required = true)]
    pub service_token_public_keys: Vec<PathBuf>,
    /// The waits before each retry of a failed delivery, comma separated
    /// (the first attempt is immediate); after the last the delivery fails.
    /// The default spans about 2.7 days.
    #[arg(long, env = ENV_RETRY_SCHEDULE, default_value = schedule::DEFAULT,
          value_parser = schedule::parse)]
    pub retry_schedule: schedule::Schedule,
    /// The longest one delivery attempt may take (connecting included);
    /// longer is a failed attempt (`timeout`).
    #[arg(long, env = ENV_TIMEOUT, default_value = "15s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// How long the previous secret still signs (a second signature)
    /// after a rotation.
    #[arg(long, env = ENV_ROTATION_GRACE, default_value = "24h", value_parser = humantime::parse_duration)]
    pub rotation_grace: Duration,
    /// Most webhook endpoints per tenant.
    #[arg(long, env = ENV_MAX_ENDPOINTS, default_value_t = 20,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub max_endpoints: u16,
    /// Accept plain `http://` endpoint URLs (tests and local development
    /// only; https otherwise).
    #[arg(long, env = ENV_ALLOW_HTTP)]
    pub allow_http: bool,
    /// Non-public networks (CIDRs or addresses, comma separated) endpoints
    /// may be on: for tests and local receivers only; empty (the default)
    /// refuses loopback, private, link-local and every other non-public
    /// address, at registration and at every connection.
    #[arg(long, env = ENV_ALLOW_PRIVATE_NETWORKS, value_delimiter = ',',
          value_parser = dossier_netguard::parse_network)]
    pub allow_private_networks: Vec<IpNet>,
    /// The API's external base URL (`https://api.example.com`), for the
    /// `pollUrl` in deliveries.
    #[arg(long, env = ENV_PUBLIC_BASE_URL, default_value = "http://127.0.0.1:8080")]
    pub public_base_url: String,
    /// Deliveries made at once by one replica.
    #[arg(long, env = ENV_CONCURRENCY, default_value_t = deliver::DEFAULT_CONCURRENCY,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// How long a graceful shutdown may take before tasks are abandoned.
    #[arg(long, env = ENV_SHUTDOWN_GRACE, default_value = "20s",
          value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// TLS of the gRPC server (plain TCP when unset).
    #[command(flatten)]
    pub tls: ServerTls,
    /// Resolves endpoint host names (tests point names at chosen
    /// addresses); the system's resolver when unset.
    #[arg(skip)]
    pub resolver: Option<Resolver>,
    /// NATS connection.
    #[command(flatten)]
    pub broker: BrokerConfig,
    /// The admin HTTP server (`/healthz`, `/readyz`, `/metrics`).
    #[command(flatten)]
    pub admin: AdminConfig,
    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
}

/// The gRPC server's TLS: with a certificate and key it speaks only TLS;
/// with a client CA too, only to clients holding a certificate of that CA.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerTls {
    /// The server's certificate chain (PEM).
    #[arg(long = "tls-cert", env = ENV_TLS_CERT, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long = "tls-key", env = ENV_TLS_KEY, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The CA that client certificates must chain to (mutual TLS).
    #[arg(long = "tls-client-ca", env = ENV_TLS_CLIENT_CA, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

impl ServerTls {
    /// The server's TLS settings, `None` when TLS is off.
    fn load(&self) -> anyhow::Result<Option<tonic::transport::ServerTlsConfig>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            anyhow::ensure!(
                self.tls_client_ca.is_none(),
                "{ENV_TLS_CLIENT_CA} needs {ENV_TLS_CERT} and {ENV_TLS_KEY}"
            );
            return Ok(None);
        };
        dossier_nats::install_crypto_provider();
        Ok(Some(dossier_identity::grpc::server_tls(
            cert,
            key,
            self.tls_client_ca.as_deref(),
        )?))
    }
}

/// A resolver of host names given in-process (see [`Config::resolver`]).
#[derive(Clone)]
pub struct Resolver(pub Arc<dyn reqwest::dns::Resolve>);

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resolver")
    }
}

impl Config {
    /// Defaults (and `DOSSIER_*` variables) for everything but the broker
    /// and the callers' public keys, listening on a free loopback port:
    /// what tests and embedders start from.
    pub fn new(
        broker: BrokerConfig,
        service_token_public_keys: Vec<PathBuf>,
    ) -> anyhow::Result<Config> {
        let mut config = <Config as clap::Parser>::try_parse_from([
            "webhooks",
            "--service-token-public-keys",
            "unset",
        ])
        .context("invalid webhooks configuration")?;
        config.grpc_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.service_token_public_keys = service_token_public_keys;
        config.broker = broker;
        Ok(config)
    }
}

/// The settings the handlers and the delivery worker read.
pub(crate) struct Settings {
    pub(crate) schedule: Vec<Duration>,
    pub(crate) timeout: Duration,
    pub(crate) rotation_grace: Duration,
    pub(crate) max_endpoints: usize,
    pub(crate) allow_http: bool,
    pub(crate) guard: AddressGuard,
    pub(crate) resolver: Arc<dyn reqwest::dns::Resolve>,
}

/// What the handlers and background tasks share.
pub(crate) struct Shared {
    pub(crate) topology: WebhooksTopology,
    pub(crate) endpoints: endpoints::Endpoints,
    pub(crate) deliveries: deliveries::Deliveries,
    pub(crate) sender: deliver::Sender,
    pub(crate) settings: Settings,
    /// The API's external base, without a trailing slash.
    pub(crate) public_base_url: String,
    pub(crate) events_health: PullHealth,
    pub(crate) deliveries_health: PullHealth,
}

/// Whether `tenant` is a tenant id (1-64 of `[A-Za-z0-9_-]`), and so a
/// valid key and subject token.
pub(crate) fn is_valid_tenant(tenant: &str) -> bool {
    (1..=64).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A built, not yet running, webhooks service: the listener is bound and
/// NATS connected.
pub struct App {
    config: Config,
    verifier: Arc<dossier_identity::TokenVerifier>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    listener: TcpListener,
    client: async_nats::Client,
    admin: Admin,
}

impl App {
    /// Checks the configuration, starts the admin server (not ready yet),
    /// binds the gRPC listener and connects to NATS.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let verifier = Arc::new(
            dossier_identity::TokenVerifier::from_files(
                &config.service_token_public_keys,
                TRUSTED_CALLERS,
            )
            .with_context(|| format!("invalid {ENV_SERVICE_TOKEN_PUBLIC_KEYS}"))?
            .for_audience(dossier_identity::WEBHOOKS_AUDIENCE),
        );
        let tls = config.tls.load().context("invalid gRPC TLS settings")?;
        url::Url::parse(&config.public_base_url)
            .with_context(|| format!("{ENV_PUBLIC_BASE_URL} is not a URL"))?;
        if !config.allow_private_networks.is_empty() {
            tracing::warn!(
                message = "Webhook deliveries may connect to these non-public networks \
                           (for tests and local receivers only).",
                networks = ?config.allow_private_networks,
            );
        }
        let admin = Admin::start(&config.admin).await?;
        metrics::describe();
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.grpc_addr))?;
        let client = dossier_broker::connect(&config.broker, "webhooks")
            .await
            .with_context(|| format!("cannot connect to NATS at {}", config.broker.url))?;
        Ok(App {
            config,
            verifier,
            tls,
            listener,
            client,
            admin,
        })
    }

    /// Where the admin server listens, if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.addr()
    }

    /// The address the gRPC server listens on.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.grpc_addr)
    }

    /// Binds the topology (waiting for its owner to create it), then serves
    /// gRPC and runs the fan-out and the delivery worker until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let App {
            config,
            verifier,
            tls,
            listener,
            client,
            admin,
        } = self;
        admin.readiness().clear_on(&shutdown);
        let addr = listener.local_addr().context("listener has no address")?;
        let stop = shutdown.child_token();
        let jetstream = async_nats::jetstream::context::ContextBuilder::new()
            .timeout(config.broker.request_timeout)
            .build(client.clone());
        let Some(topology) = bind(&jetstream, &stop).await else {
            admin.shutdown().await;
            return Ok(());
        };
        let resolver = config
            .resolver
            .clone()
            .map_or_else(|| Arc::new(SystemResolver) as Arc<_>, |r| r.0);
        let guard = AddressGuard::new(&config.allow_private_networks);
        let sender = deliver::Sender::new(resolver.clone(), guard.clone(), config.timeout)
            .context("cannot build the HTTP client")?;
        let deliveries_stream = jetstream
            .get_stream(dossier_broker::bucket_stream_name(
                dossier_broker::WEBHOOK_DELIVERIES_BUCKET,
            ))
            .await
            .context("cannot look up the deliveries bucket's stream")?;
        let shared = Arc::new(Shared {
            endpoints: endpoints::Endpoints::new(topology.endpoints.clone()),
            deliveries: deliveries::Deliveries::new(
                topology.deliveries.clone(),
                deliveries_stream,
                dossier_broker::WEBHOOK_DELIVERIES_BUCKET,
            ),
            topology,
            sender,
            settings: Settings {
                schedule: config.retry_schedule.0.clone(),
                timeout: config.timeout,
                rotation_grace: config.rotation_grace,
                max_endpoints: usize::from(config.max_endpoints),
                allow_http: config.allow_http,
                guard,
                resolver,
            },
            public_base_url: config.public_base_url.trim_end_matches('/').to_owned(),
            events_health: PullHealth::new(),
            deliveries_health: PullHealth::new(),
        });

        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, false).await;
        let mut tasks = JoinSet::new();
        tasks.spawn(events::run(shared.clone(), stop.clone()));
        tasks.spawn(deliver::run(
            shared.clone(),
            usize::from(config.concurrency),
            stop.clone(),
        ));
        tasks.spawn(report_health(
            health,
            admin.readiness().clone(),
            client.clone(),
            shared.clone(),
            stop.clone(),
        ));

        tracing::info!(message = "Webhooks service listening.", %addr, tls = tls.is_some());
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            server = server
                .tls_config(tls)
                .context("invalid gRPC TLS settings")?;
        }
        let served = server
            .layer(dossier_telemetry::grpc::ServerTraceLayer::new(
                dossier_contracts::v1::webhooks_server::SERVICE_NAME,
            ))
            .add_service(health_service)
            .add_service(tonic::service::interceptor::InterceptedService::new(
                WebhooksServer::new(service::WebhooksService::new(shared.clone())),
                dossier_identity::grpc::authenticate(verifier),
            ))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                stop.clone().cancelled_owned(),
            )
            .await;
        stop.cancel();
        drop(shared);
        let drained = tokio::time::timeout(config.shutdown_grace, async {
            while let Some(done) = tasks.join_next().await {
                if let Err(error) = done {
                    tracing::error!(message = "A background task failed.", %error);
                }
            }
            if let Err(error) = client.flush().await {
                tracing::warn!(message = "Cannot flush the NATS connection.", %error);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(message = "Shutdown grace period over; abandoning background tasks.");
            tasks.abort_all();
        }
        admin.shutdown().await;
        tracing::info!(message = "Webhooks service stopped.");
        served.context("gRPC server failed")
    }
}

/// Binds the topology, retrying with a growing pause until its owner (the
/// operations service) has made it; `None` when shutdown came first.
async fn bind(
    js: &async_nats::jetstream::Context,
    stop: &CancellationToken,
) -> Option<WebhooksTopology> {
    let mut retries = RECONNECT.retries();
    loop {
        match WebhooksTopology::bind(js).await {
            Ok(topology) => return Some(topology),
            Err(error) => {
                tracing::warn!(message = "Not ready: cannot bind the JetStream topology.", %error);
                if retries.pause(stop).await {
                    return None;
                }
            }
        }
    }
}

/// Keeps the gRPC health status and `/readyz` in step: SERVING only while
/// the broker is connected and both consumers are bound.
async fn report_health(
    health: tonic_health::server::HealthReporter,
    readiness: dossier_service::Readiness,
    client: async_nats::Client,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(READINESS_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                readiness.set(false);
                set_health(&health, false).await;
                return;
            }
            _ = ticker.tick() => {}
        }
        let connected = dossier_nats::is_connected(&client);
        let events = shared.events_health.is_bound();
        let deliveries = shared.deliveries_health.is_bound();
        let ready = connected && events && deliveries;
        if ready != reported {
            if ready {
                tracing::info!(message = "Ready.");
            } else {
                tracing::warn!(
                    message = "Not ready.",
                    broker_connected = connected,
                    events,
                    deliveries
                );
            }
            readiness.set(ready);
            set_health(&health, ready).await;
            reported = ready;
        }
    }
}

async fn set_health(health: &tonic_health::server::HealthReporter, ready: bool) {
    let status = if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    health.set_service_status("", status).await;
    health
        .set_service_status(
            <WebhooksServer<service::WebhooksService> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
}
