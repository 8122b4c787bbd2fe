//! The search worker: runs `search.people` operations. It resolves the
//! target account ([`dossier_targeting::resolve`]), finds people in it through the company page
//! or the profiles' current company text, ranks them ([`search`]), and
//! reports the outcome fields of the product's API conventions.
#![forbid(unsafe_code)]

pub mod handler;
pub mod search;

use dossier_directory::ProviderSet;
use dossier_worker::{WorkerService, WorkerServiceConfig, WorkerSpec};

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
    /// What every worker service reads: broker, job loop, directory
    /// providers, admin server, logging.
    #[command(flatten)]
    pub service: WorkerServiceConfig,
}

impl WorkerSpec for Config {
    type Handler = SearchHandler;
    const NAME: &'static str = "search-worker";

    fn service(&self) -> &WorkerServiceConfig {
        &self.service
    }

    fn handler(&self, providers: ProviderSet) -> anyhow::Result<SearchHandler> {
        Ok(SearchHandler::new(providers))
    }
}

/// A search worker: [`WorkerService::build`] (or
/// [`WorkerService::build_with_providers`]) makes one from a [`Config`].
pub type App = WorkerService<SearchHandler>;
