//! The search worker: runs `search.people` operations. It resolves the
//! target account ([`resolve`]), finds people in it through the company page
//! or the profiles' current company text, ranks them ([`search`]), and
//! reports the outcome fields of the product's API conventions.
#![forbid(unsafe_code)]

pub mod handler;
pub mod resolve;
pub mod search;

use dossier_broker::BrokerConfig;
use dossier_directory::ProviderSet;
use dossier_service::CancellationToken;
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
    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
}

/// A built search worker, ready to run.
pub struct App {
    worker: Worker<SearchHandler>,
}

impl App {
    /// Loads the directory, connects to NATS and binds the job consumer.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let providers = config.providers.build()?;
        Self::build_with_providers(config, providers).await
    }

    /// Like [`App::build`], with providers made by the caller (tests, or an
    /// embedding that wires its own) instead of `config.providers`.
    pub async fn build_with_providers(
        config: Config,
        providers: ProviderSet,
    ) -> anyhow::Result<App> {
        let client = dossier_broker::connect(&config.broker, "search-worker").await?;
        let worker = Worker::new(
            client,
            &config.broker,
            config.worker,
            SearchHandler::new(providers),
        )
        .await?;
        Ok(App { worker })
    }

    /// Runs jobs until `shutdown`, then drains gracefully.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.worker.run(shutdown).await?;
        Ok(())
    }
}
