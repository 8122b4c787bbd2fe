//! The enrichment worker: matches person records to the directory.
//!
//! - **Batches** (`enrichment.batch` jobs, [`batch`]): records are matched
//!   in chunks, each finished chunk is checkpointed ([`checkpoint`]), and a
//!   redelivered job continues from its last checkpoint; large results go to
//!   the object store and are read in pages.
//! - **One record, synchronously** (`POST /api/enrichment/person`,
//!   `sync.rs`): the gateway sends an `EnrichPersonRequest` on the core NATS
//!   subject `dossier.enrich.person`; one worker of the queue group answers.
//!
//! Both use the same [`Matcher`], so a record gets the same answer
//! either way. `main.rs` only reads [`Config`] and runs [`App`]; tests build
//! the same [`App`] in-process, with their own providers if they like
//! ([`App::build_with_providers`]).
#![forbid(unsafe_code)]

pub mod batch;
pub mod checkpoint;
mod sync;

use std::sync::Arc;

use anyhow::Context as _;
use dossier_directory::ProviderSet;
use dossier_service::CancellationToken;
use dossier_targeting::matching::Matcher;
use dossier_worker::{Worker, WorkerService, WorkerServiceConfig};

pub use batch::EnrichmentHandler;

/// `DOSSIER_ENRICH_CHUNK_SIZE`: records per checkpointed chunk of a batch.
pub const ENV_ENRICH_CHUNK_SIZE: &str = "DOSSIER_ENRICH_CHUNK_SIZE";
/// `DOSSIER_ENRICH_CONCURRENCY`: records one batch matches at once.
pub const ENV_ENRICH_CONCURRENCY: &str = "DOSSIER_ENRICH_CONCURRENCY";
/// `DOSSIER_ENRICH_SYNC_CONCURRENCY`: synchronous requests one worker answers at once.
pub const ENV_ENRICH_SYNC_CONCURRENCY: &str = "DOSSIER_ENRICH_SYNC_CONCURRENCY";

/// Enrichment settings.
#[derive(Debug, Clone, clap::Args)]
pub struct EnrichmentConfig {
    /// Records per chunk of a batch. A chunk is checkpointed when done; after
    /// a crash only the chunk in flight is matched again.
    #[arg(long = "enrich-chunk-size", env = ENV_ENRICH_CHUNK_SIZE, default_value_t = 250,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub chunk_size: u32,
    /// Records one batch matches at once (lookups in flight per job).
    #[arg(long = "enrich-concurrency", env = ENV_ENRICH_CONCURRENCY, default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub record_concurrency: u32,
    /// Synchronous enrichment requests one worker answers at once.
    #[arg(long = "enrich-sync-concurrency", env = ENV_ENRICH_SYNC_CONCURRENCY, default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub sync_concurrency: u32,
}

/// The enrichment worker's configuration (flags or `DOSSIER_*` variables).
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "enrichment-worker",
    about = "Runs enrichment.batch operations and answers synchronous enrichment requests",
    version
)]
pub struct Config {
    /// What every worker service reads: broker, job loop, directory
    /// providers, admin server, logging.
    #[command(flatten)]
    pub service: WorkerServiceConfig,
    /// Batch and synchronous enrichment settings.
    #[command(flatten)]
    pub enrichment: EnrichmentConfig,
}

impl Config {
    /// The defaults (and `DOSSIER_*` variables), for tests and tools that
    /// then set fields in code.
    pub fn from_env() -> anyhow::Result<Config> {
        <Config as clap::Parser>::try_parse_from(["enrichment-worker"])
            .context("invalid enrichment worker configuration")
    }
}

/// A built enrichment worker: the job consumer is bound and synchronous
/// requests are subscribed to.
pub struct App {
    client: async_nats::Client,
    service: WorkerService<EnrichmentHandler>,
    subscriber: async_nats::Subscriber,
    matcher: Arc<Matcher>,
    sync_concurrency: usize,
}

impl App {
    /// Loads the directory, connects to NATS, binds the job consumer and
    /// subscribes to synchronous requests.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        Self::build_from(config, None).await
    }

    /// Like [`App::build`], with providers made by the caller (tests, or an
    /// embedding that wires its own) instead of the configured ones.
    pub async fn build_with_providers(
        config: Config,
        providers: ProviderSet,
    ) -> anyhow::Result<App> {
        Self::build_from(config, Some(providers)).await
    }

    async fn build_from(config: Config, providers: Option<ProviderSet>) -> anyhow::Result<App> {
        let Config {
            service,
            enrichment,
        } = config;
        let (admin, providers) = service.start(providers).await?;
        let client = dossier_broker::connect(&service.broker, "enrichment-worker")
            .await
            .with_context(|| format!("cannot connect to NATS at {}", service.broker.url))?;
        let matcher = Arc::new(Matcher::new(providers));
        let handler = EnrichmentHandler::new(
            matcher.clone(),
            enrichment.chunk_size as usize,
            enrichment.record_concurrency as usize,
        );
        // Subscribed first: binding the job consumer below takes requests the
        // server answers on this connection, and it handles a connection's
        // commands in order, so once the worker is built the subscription
        // is registered and a synchronous request finds a responder.
        // Requests that come before `run` wait in the subscription.
        let subscriber = sync::subscribe(&client)
            .await
            .context("cannot subscribe to synchronous enrichment requests")?;
        let worker = Worker::new(client.clone(), &service.broker, service.worker, handler).await?;
        tracing::info!(
            message = "Enrichment worker ready.",
            worker_id = %worker.worker_id(),
            chunk_size = enrichment.chunk_size,
            record_concurrency = enrichment.record_concurrency,
            providers = matcher.providers().len(),
        );
        Ok(App {
            client,
            service: WorkerService::new(worker, admin),
            subscriber,
            matcher,
            sync_concurrency: enrichment.sync_concurrency as usize,
        })
    }

    /// Runs batch jobs and answers synchronous requests until `shutdown`,
    /// then drains both gracefully.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let App {
            client,
            service,
            subscriber,
            matcher,
            sync_concurrency,
        } = self;
        let sync = sync::serve(
            client.clone(),
            subscriber,
            matcher,
            sync_concurrency,
            shutdown.clone(),
        );
        let jobs = service.run_beside(shutdown, sync).await;
        if let Err(error) = client.flush().await {
            tracing::warn!(message = "Cannot flush the NATS connection.", %error);
        }
        jobs
    }
}

/// Its admin address and readiness are the [`WorkerService`]'s.
impl std::ops::Deref for App {
    type Target = WorkerService<EnrichmentHandler>;

    fn deref(&self) -> &Self::Target {
        &self.service
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_sound_and_defaults_parse() {
        use clap::CommandFactory as _;
        Config::command().debug_assert();
        let config = <Config as clap::Parser>::try_parse_from([
            "enrichment-worker",
            "--enrich-chunk-size",
            "100",
            "--worker-concurrency",
            "2",
        ])
        .unwrap();
        assert_eq!(config.enrichment.chunk_size, 100);
        assert_eq!(config.enrichment.record_concurrency, 16);
        assert_eq!(config.service.worker.concurrency, 2);
        assert!(
            <Config as clap::Parser>::try_parse_from([
                "enrichment-worker",
                "--enrich-chunk-size",
                "0"
            ])
            .is_err()
        );
    }
}
