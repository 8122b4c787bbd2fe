//! The research worker: runs `research.deep` operations. Given a company or
//! a person and optional questions, it runs a plan of steps ([`plan`]), each
//! a sub-task with a status, a time budget and an error: resolve the subject
//! (the shared target-account resolution and person matching of
//! `dossier-targeting`), the company profile, the leadership and buying
//! committee with the org shape, look-alike companies, evidence from the
//! company's own web site ([`web`], text extracted by [`extract`]), answers
//! to the questions ([`answer`], optionally written by a [`synthesis`]
//! provider) and the cited report ([`report`]).
//!
//! `main.rs` only reads [`Config`] and runs [`App`]; tests build the same
//! [`App`] in-process with their own providers
//! ([`App::build_with_providers`]).
#![forbid(unsafe_code)]

pub mod answer;
pub mod config;
pub mod extract;
pub mod handler;
pub mod plan;
pub mod report;
mod steps;
pub mod synthesis;
pub mod web;

use dossier_broker::BrokerConfig;
use dossier_directory::ProviderSet;
use dossier_service::CancellationToken;
use dossier_service::admin::{Admin, AdminConfig};
use dossier_telemetry::LogConfig;
use dossier_worker::{WorkerConfig, WorkerService};

pub use config::{ResearchConfig, SiteOverride};
pub use dossier_directory::ProvidersConfig;
pub use handler::ResearchHandler;

/// The research worker's configuration (flags or `DOSSIER_*` variables).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "research-worker",
    about = "Runs research.deep operations",
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
    /// Research settings: budgets, the web fetcher and synthesis.
    #[command(flatten)]
    pub research: ResearchConfig,
    /// The admin HTTP server (`/healthz`, `/readyz`, `/metrics`).
    #[command(flatten)]
    pub admin: AdminConfig,
    /// Logging.
    #[command(flatten)]
    pub log: LogConfig,
}

/// A built research worker, ready to run; its admin address and readiness
/// are the [`WorkerService`]'s.
pub struct App(WorkerService<ResearchHandler>);

impl App {
    /// Loads the directory, checks the research settings, connects to NATS
    /// and binds the job consumer.
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
        let handler = ResearchHandler::new(providers, &config.research)?;
        let service = WorkerService::connect(
            "research-worker",
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
    type Target = WorkerService<ResearchHandler>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
