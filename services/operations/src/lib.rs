//! The operations service: the single owner of operation state.
//!
//! - **Accept** (`CreateOperation`, see `accept.rs`): validates, stores the
//!   job on `DOSSIER_JOBS` (publish acked from file storage), then creates the
//!   operation record. It is the only component that publishes jobs.
//! - **Project** (`projector.rs`): consumes worker events from the shared
//!   `projector` consumer and merges them into records with compare-and-set
//!   ([`merge`] holds the rules), and turns max-deliveries advisories into
//!   failed operations.
//! - **Serve** (`service.rs`): Get, List (from an in-memory index, see
//!   `index.rs`), Cancel, Watch and GetOperationResults (result items in
//!   pages, see `results.rs`) over gRPC, plus gRPC health and reflection.
//!   Answers are `OperationView`s, made from the stored records in one
//!   place (`view.rs`); every call runs in the server span of
//!   `dossier_telemetry::grpc::ServerTraceLayer`.
//! - **Expire** (`retention.rs`): every record carries `expires_at` and a
//!   per-message TTL up to it; when it expires the list index drops it and
//!   a sweeper deletes its result, payload and checkpoints. Reads of an
//!   expired operation answer NOT_FOUND with reason `OPERATION_EXPIRED`.
//!
//! ## State and replicas
//!
//! The durable read model is the `dossier_operations` KV bucket: one record
//! per operation. Nothing else is durable here, so the service is stateless
//! and runs as N replicas: all of them share the projector consumer, write
//! records only by compare-and-set, and each keeps its own list index, which
//! it rebuilds from the bucket at start and keeps current by watching it.
//! A replica reports NOT_SERVING (gRPC health, and 503 on the admin port's
//! `/readyz`) until that rebuild is done and its projector's consumer is
//! bound, whenever the broker is disconnected, and from the moment shutdown
//! begins. Its metrics (`metrics.rs`) are served on the admin port.
//!
//! ## Shutdown
//!
//! On the shutdown token: health turns NOT_SERVING, the gRPC server stops
//! accepting calls and finishes the ones running (open watches end with
//! UNAVAILABLE so the caller re-watches another replica), the projector
//! stops pulling and finishes the events in hand, and the NATS connection is
//! drained — all within [`Config::shutdown_grace`].
#![forbid(unsafe_code)]

mod accept;
mod error;
mod fence;
mod index;
pub mod merge;
pub mod metrics;
mod projector;
mod records;
mod results;
mod retention;
mod service;
mod view;
mod watchers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dossier_backoff::Backoff;
use dossier_broker::consume::PullHealth;
use dossier_broker::{BrokerConfig, Topology, TopologyConfig};
use dossier_contracts::limits::MAX_GRPC_MESSAGE_BYTES;
use dossier_contracts::v1::operations_server::OperationsServer;
use dossier_service::admin::{Admin, AdminConfig};
use dossier_telemetry::LogConfig;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;

pub use error::Error;

/// `DOSSIER_OPERATIONS_GRPC_ADDR`: where the gRPC server listens.
pub const ENV_GRPC_ADDR: &str = "DOSSIER_OPERATIONS_GRPC_ADDR";
/// `DOSSIER_OPERATIONS_SHUTDOWN_GRACE`: how long shutdown may take.
pub const ENV_SHUTDOWN_GRACE: &str = "DOSSIER_OPERATIONS_SHUTDOWN_GRACE";
/// `DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS`: the public keys of the services
/// allowed to call (see `dossier-identity`).
pub const ENV_SERVICE_TOKEN_PUBLIC_KEYS: &str = "DOSSIER_SERVICE_TOKEN_PUBLIC_KEYS";
/// `DOSSIER_OPERATIONS_REFLECTION`: serve gRPC reflection.
pub const ENV_REFLECTION: &str = "DOSSIER_OPERATIONS_REFLECTION";
/// `DOSSIER_OPERATIONS_TLS_CERT`: the gRPC server's certificate chain (PEM).
pub const ENV_TLS_CERT: &str = "DOSSIER_OPERATIONS_TLS_CERT";
/// `DOSSIER_OPERATIONS_TLS_KEY`: the gRPC server's private key (PEM).
pub const ENV_TLS_KEY: &str = "DOSSIER_OPERATIONS_TLS_KEY";
/// `DOSSIER_OPERATIONS_TLS_CLIENT_CA`: the CA client certificates must
/// chain to (mutual TLS).
pub const ENV_TLS_CLIENT_CA: &str = "DOSSIER_OPERATIONS_TLS_CLIENT_CA";
/// The services whose tokens the operations API accepts.
pub const TRUSTED_CALLERS: &[&str] = &["gateway"];
/// `DOSSIER_QUEUE_METRICS_INTERVAL`: how often the queue depth gauges are refreshed.
pub const ENV_QUEUE_METRICS_INTERVAL: &str = "DOSSIER_QUEUE_METRICS_INTERVAL";

/// How often readiness (broker connected, index caught up) is re-checked.
const READINESS_INTERVAL: Duration = Duration::from_millis(100);
/// Waits between attempts to reopen a watch or a consumer after broker
/// trouble: from 100 ms, doubling, at most 5 s.
pub(crate) const RECONNECT: Backoff =
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5));

/// The service's configuration, from flags or environment variables.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "operations", version, about = "Dossier operations service")]
pub struct Config {
    /// Address of the gRPC server (port 0 picks a free port).
    #[arg(long, env = ENV_GRPC_ADDR, default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// How long a graceful shutdown may take before tasks are abandoned.
    #[arg(long, env = ENV_SHUTDOWN_GRACE, default_value = "10s",
          value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// How often the pending counts of the job and projector consumers
    /// (queue depth gauges on `/metrics`) are read from the broker.
    #[arg(long, env = ENV_QUEUE_METRICS_INTERVAL, default_value = "5s",
          value_parser = humantime::parse_duration)]
    pub queue_metrics_interval: Duration,
    /// Public keys (SPKI PEM files, comma separated) of the services allowed
    /// to call: every call must carry a token one of them signed (several
    /// while a key is rotated). `cargo xtask up` generates a local pair.
    #[arg(long, env = ENV_SERVICE_TOKEN_PUBLIC_KEYS, value_delimiter = ',', required = true)]
    pub service_token_public_keys: Vec<PathBuf>,
    /// Serve gRPC reflection (`grpc.reflection.v1` and `v1alpha`), for tools
    /// like grpcurl; off unless asked for.
    #[arg(long, env = ENV_REFLECTION)]
    pub reflection: bool,
    /// TLS of the gRPC server (plain TCP when unset).
    #[command(flatten)]
    pub tls: ServerTls,
    /// NATS connection.
    #[command(flatten)]
    pub broker: BrokerConfig,
    /// The JetStream topology this service owns: it alone creates and
    /// updates streams, buckets and consumers, so it alone reads these.
    #[command(flatten)]
    pub topology: TopologyConfig,
    /// The admin HTTP server (`/healthz`, `/readyz`, `/metrics`).
    #[command(flatten)]
    pub admin: AdminConfig,
    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
}

impl Config {
    /// Defaults for everything but the broker and the callers' public keys,
    /// listening on a free loopback port: what tests and embedders start
    /// from.
    pub fn new(broker: BrokerConfig, service_token_public_keys: Vec<PathBuf>) -> Config {
        Config {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            service_token_public_keys,
            reflection: false,
            tls: ServerTls::default(),
            shutdown_grace: Duration::from_secs(10),
            queue_metrics_interval: Duration::from_secs(5),
            broker,
            topology: TopologyConfig::default(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
        }
    }
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
        let tls = dossier_identity::grpc::server_tls(cert, key, self.tls_client_ca.as_deref())?;
        Ok(Some(tls))
    }
}

/// What the handlers and background tasks share.
pub(crate) struct Shared {
    pub(crate) client: async_nats::Client,
    pub(crate) topology: Topology,
    pub(crate) records: records::Records,
    pub(crate) index: Arc<index::Index>,
    /// The open `WatchOperation` calls, fed by the index's bucket watch.
    pub(crate) watchers: Arc<watchers::Watchers>,
    /// Recently read large results, parsed for paging.
    pub(crate) results: results::Cache,
    /// Bound on one broker round trip (publish ack, KV call).
    pub(crate) request_timeout: Duration,
    /// Cancelled when shutdown begins; long-lived streams end on it.
    pub(crate) shutdown: CancellationToken,
    /// How the projector's pulls go: bound while it holds a subscription
    /// on its consumer.
    pub(crate) projector: PullHealth,
}

/// A built, not yet running, operations service: the listener is bound and
/// the broker topology exists.
pub struct App {
    config: Config,
    verifier: Arc<dossier_identity::TokenVerifier>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    listener: TcpListener,
    client: async_nats::Client,
    topology: Topology,
    admin: Admin,
}

impl App {
    /// Starts the admin server (not ready yet), binds the gRPC listener,
    /// connects to NATS and ensures the JetStream topology. Serves no gRPC
    /// yet.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        // Keys and certificates first: a misconfigured service stops here.
        let verifier = Arc::new(
            dossier_identity::TokenVerifier::from_files(
                &config.service_token_public_keys,
                TRUSTED_CALLERS,
            )
            .with_context(|| format!("invalid {ENV_SERVICE_TOKEN_PUBLIC_KEYS}"))?,
        );
        let tls = config.tls.load().context("invalid gRPC TLS settings")?;
        let admin = Admin::start(&config.admin).await?;
        metrics::describe();
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.grpc_addr))?;
        let client = dossier_broker::connect(&config.broker, "operations")
            .await
            .with_context(|| format!("cannot connect to NATS at {}", config.broker.url))?;
        let jetstream = async_nats::jetstream::context::ContextBuilder::new()
            .timeout(config.broker.request_timeout)
            .build(client.clone());
        let topology = Topology::ensure(&jetstream, &config.topology)
            .await
            .context("cannot set up the JetStream topology")?;
        Ok(App {
            config,
            verifier,
            tls,
            listener,
            client,
            topology,
            admin,
        })
    }

    /// Where the admin server listens, if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.addr()
    }

    /// What `/readyz` reports: false until [`App::run`] is serving, and
    /// from the moment its shutdown begins.
    pub fn readiness(&self) -> dossier_service::Readiness {
        self.admin.readiness().clone()
    }

    /// The address the gRPC server listens on (the real port when the
    /// configuration asked for port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        // `local_addr` of a bound socket only fails on exotic platforms;
        // the configured address is the best answer there.
        self.listener.local_addr().unwrap_or(self.config.grpc_addr)
    }

    /// Serves gRPC and runs the projector, the dead-letter handler and the
    /// list index until `shutdown` is cancelled, then shuts down gracefully.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let App {
            config,
            verifier,
            tls,
            listener,
            client,
            topology,
            admin,
        } = self;
        // `/readyz` follows the gRPC health status (see `report_health`),
        // and turns false the moment shutdown begins.
        admin.readiness().clear_on(&shutdown);
        let addr = listener.local_addr().context("listener has no address")?;
        // Background work stops on shutdown, or when the server fails.
        let stop = shutdown.child_token();
        let shared = Arc::new(Shared {
            client: client.clone(),
            records: records::Records::new(
                topology.operations.clone(),
                topology.jetstream.clone(),
                config.topology.operation_retention,
            ),
            index: Arc::new(index::Index::new()),
            watchers: Arc::new(watchers::Watchers::new()),
            results: results::Cache::new(results::CACHE_BYTES),
            topology,
            request_timeout: config.broker.request_timeout,
            shutdown: stop.clone(),
            projector: PullHealth::new(),
        });

        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, false).await;
        let reflection = if config.reflection {
            Some(reflection_services()?)
        } else {
            None
        };

        let mut tasks = JoinSet::new();
        let (removed, to_sweep) = tokio::sync::mpsc::channel(retention::SWEEP_QUEUE);
        tasks.spawn(index::run(
            shared.index.clone(),
            shared.watchers.clone(),
            shared.topology.operations.clone(),
            removed,
            stop.clone(),
        ));
        tasks.spawn(retention::sweep(shared.clone(), to_sweep, stop.clone()));
        tasks.spawn(projector::run_projector(shared.clone(), stop.clone()));
        tasks.spawn(projector::run_dead_letters(shared.clone(), stop.clone()));
        tasks.spawn(report_health(
            health,
            admin.readiness().clone(),
            shared.clone(),
            stop.clone(),
        ));
        tasks.spawn(metrics::report_queues(
            shared.clone(),
            config.queue_metrics_interval,
            stop.clone(),
        ));

        tracing::info!(
            message = "Operations service listening.",
            %addr,
            tls = tls.is_some(),
            reflection = config.reflection
        );
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = tls {
            server = server
                .tls_config(tls)
                .context("invalid gRPC TLS settings")?;
        }
        let (reflection_v1, reflection_v1alpha) = reflection.unzip();
        let served = server
            // Every call to the operations service in a server span that
            // continues the caller's trace; health and reflection untraced.
            .layer(dossier_telemetry::grpc::ServerTraceLayer::new(
                dossier_contracts::v1::operations_server::SERVICE_NAME,
            ))
            .add_service(health_service)
            .add_optional_service(reflection_v1)
            .add_optional_service(reflection_v1alpha)
            // Only calls with a valid service token reach the handlers (which
            // then check that it acts for the request's tenant). The largest
            // valid body reaches `CreateOperation` whole: the message limit
            // is the gateway's, not tonic's default 4 MiB.
            .add_service(tonic::service::interceptor::InterceptedService::new(
                OperationsServer::new(service::OperationsService::new(shared.clone()))
                    .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES),
                dossier_identity::grpc::authenticate(verifier),
            ))
            .serve_with_incoming_shutdown(
                // Without TCP_NODELAY small responses wait for the peer's
                // delayed ACK (~40 ms per call).
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
            // Acks and nakes of the last events go out before the
            // connection closes; then drain the subscriptions.
            if let Err(error) = client.flush().await {
                tracing::warn!(message = "Cannot flush the NATS connection.", %error);
            }
            if let Err(error) = client.drain().await {
                tracing::warn!(message = "Cannot drain the NATS connection.", %error);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(message = "Shutdown grace period over; abandoning background tasks.");
            tasks.abort_all();
        }
        admin.shutdown().await;
        tracing::info!(message = "Operations service stopped.");
        served.context("gRPC server failed")
    }
}

/// The reflection services, `grpc.reflection.v1` and `v1alpha` (which
/// older clients, like the stock Python one, speak only).
fn reflection_services() -> anyhow::Result<(
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
)> {
    let builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(dossier_contracts::v1::FILE_DESCRIPTOR_SET)
    };
    Ok((
        builder()
            .build_v1()
            .context("cannot build the reflection service")?,
        builder()
            .build_v1alpha()
            .context("cannot build the reflection service")?,
    ))
}

/// Keeps the gRPC health status and `/readyz` in step: SERVING (ready) only
/// while the broker is connected, the projector's consumer is bound and the
/// list index caught up; NOT_SERVING at once when shutdown begins.
async fn report_health(
    health: tonic_health::server::HealthReporter,
    readiness: dossier_service::Readiness,
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
        let connected = dossier_nats::is_connected(&shared.client);
        let projector_bound = shared.projector.is_bound();
        let index_caught_up = shared.index.is_caught_up();
        let ready = connected && projector_bound && index_caught_up;
        if ready != reported {
            if ready {
                tracing::info!(message = "Ready.");
            } else {
                tracing::warn!(
                    message = "Not ready.",
                    broker_connected = connected,
                    projector_bound,
                    index_caught_up
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
    // "" is the whole server, as Kubernetes' gRPC probe asks by default.
    health.set_service_status("", status).await;
    health
        .set_service_status(
            <OperationsServer<service::OperationsService> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
}
