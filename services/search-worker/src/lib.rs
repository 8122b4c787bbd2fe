//! The search worker: runs `search.people` operations. It resolves the
//! target account ([`dossier_targeting::resolve`]), finds people in it through the company page
//! or the profiles' current company text, ranks them ([`search`]), and
//! reports the outcome fields of the product's API conventions.
#![forbid(unsafe_code)]

pub mod handler;
pub mod search;

use dossier_broker::BrokerConfig;
use dossier_directory::ProviderSet;
use dossier_service::CancellationToken;
use dossier_service::admin::{Admin, AdminConfig};
use dossier_telemetry::LogConfig;
use dossier_worker::{WorkerConfig, WorkerService};

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

/// A built search worker, ready to run; its admin address and readiness
/// are the [`WorkerService`]'s.
pub struct App(WorkerService<SearchHandler>);

impl App {
    /// Starts the admin server, loads the directory, connects to NATS and
    /// binds the job consumer.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        // First, so probes see a live, not yet ready, process while the
        // directory loads.
        let admin = Admin::start(&config.admin).await?;
        let providers = config.providers.build_off_runtime().await?;
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
        let handler = SearchHandler::new(providers);
        let service = WorkerService::connect(
            "search-worker",
            &config.broker,
            config.worker,
            handler,
            admin,
        )
        .await?;
        Ok(App(service))
    }

    /// Runs jobs until `shutdown`, then drains gracefully; ready (`/readyz`)
    /// from now until shutdown begins.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        Ok(self.0.run(shutdown).await?)
    }
}

impl std::ops::Deref for App {
    type Target = WorkerService<SearchHandler>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
