//! The search worker: runs `search.people` operations. It resolves the
//! target account ([`resolve`]), finds people in it through the company page
//! or the profiles' current company text, ranks them ([`search`]), and
//! reports the outcome fields of the product's API conventions.
#![forbid(unsafe_code)]

pub mod handler;
pub mod search;

/// Target-account resolution, shared with the research worker.
pub use dossier_directory::resolve;

use dossier_broker::BrokerConfig;
use dossier_directory::ProviderSet;
use dossier_service::CancellationToken;
use dossier_service::admin::{Admin, AdminConfig};
use dossier_telemetry::LogConfig;
use dossier_worker::{Worker, WorkerConfig};

pub use dossier_directory::ProvidersConfig;
pub use handler::SearchHandler;

/// The search worker's configuration (flags or `DOSSIER_*` variables).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "search-worker",
    about = "Runs search.people operations",
    version
)]
pub struct Config {
    /// Broker settings.
    #[command(flatten)]
    pub broker: BrokerConfig,
    /// Job loop settings.
    #[command(flatten)]
    pub worker: WorkerConfig,
    /// Directory providers.
    #[command(flatten)]
    pub providers: ProvidersConfig,
    /// The admin HTTP server (`/healthz`, `/readyz`, `/metrics`).
    #[command(flatten)]
    pub admin: AdminConfig,
    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
}

/// A built search worker, ready to run.
pub struct App {
    worker: Worker<SearchHandler>,
    admin: Admin,
}

impl App {
    /// Starts the admin server, loads the directory, connects to NATS and
    /// binds the job consumer.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        // First, so probes see a live, not yet ready, process while the
        // directory loads.
        let admin = Admin::start(&config.admin).await?;
        let providers = config.providers.build()?;
        Self::build_inner(config, providers, admin).await
    }

    /// Like [`App::build`], with providers made by the caller (tests, or an
    /// embedding that wires its own) instead of `config.providers`.
    pub async fn build_with_providers(
        config: Config,
        providers: ProviderSet,
    ) -> anyhow::Result<App> {
        let admin = Admin::start(&config.admin).await?;
        Self::build_inner(config, providers, admin).await
    }

    async fn build_inner(
        config: Config,
        providers: ProviderSet,
        admin: Admin,
    ) -> anyhow::Result<App> {
        let client = dossier_broker::connect(&config.broker, "search-worker").await?;
        let worker = Worker::new(
            client,
            &config.broker,
            config.worker,
            SearchHandler::new(providers),
        )
        .await?;
        worker.report_readiness_to(admin.readiness());
        Ok(App { worker, admin })
    }

    /// Where the admin server listens, if configured.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin.addr()
    }

    /// What `/readyz` reports: false until [`App::run`] is serving, and
    /// from the moment its shutdown begins.
    pub fn readiness(&self) -> dossier_service::Readiness {
        self.admin.readiness().clone()
    }

    /// Runs jobs until `shutdown`, then drains gracefully; ready (`/readyz`)
    /// from now until shutdown begins.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.admin.serve_until(&shutdown);
        self.worker.run(shutdown).await?;
        self.admin.shutdown().await;
        Ok(())
    }
}
