//! The research worker: runs `research.deep` operations. Given a company or
//! a person and optional questions, it runs a plan of steps ([`plan`]), each
//! a sub-task with a status, a time budget and an error: resolve the subject
//! (the shared target-account resolution and person matching of
//! `dossier-targeting`), the company profile, the leadership and buying
//! committee with the org shape, look-alike companies, evidence from the
//! company's own web site ([`web`], on public addresses only ([`guard`]),
//! text extracted by [`extract`]), answers to the questions (what each
//! asks, [`intent`]; answered from the report's structure, [`facts`], else
//! by retrieval, [`answer`]; optionally reworded by a [`synthesis`] provider
//! that may add no fact) and the cited report
//! ([`report`]).
//!
//! `main.rs` only reads [`Config`] and runs [`App`], the shared worker
//! service skeleton with this crate's handler; tests build the same [`App`]
//! in-process with their own providers
//! ([`WorkerService::build_with_providers`]).
#![forbid(unsafe_code)]

pub mod answer;
pub mod config;
pub mod extract;
pub mod facts;
/// The address guard, shared with the webhooks service (`dossier-netguard`).
pub use dossier_netguard as guard;
pub mod handler;
pub mod intent;
pub mod plan;
pub mod report;
mod steps;
pub mod synthesis;
pub mod web;

use dossier_directory::ProviderSet;
use dossier_worker::{WorkerService, WorkerServiceConfig, WorkerSpec};

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
    /// What every worker service reads: broker, job loop, directory
    /// providers, admin server, logging.
    #[command(flatten)]
    pub service: WorkerServiceConfig,
    /// Research settings: budgets, the web fetcher and synthesis.
    #[command(flatten)]
    pub research: ResearchConfig,
}

impl WorkerSpec for Config {
    type Handler = ResearchHandler;
    const NAME: &'static str = "research-worker";

    fn service(&self) -> &WorkerServiceConfig {
        &self.service
    }

    /// Checks the research settings too.
    fn handler(&self, providers: ProviderSet) -> anyhow::Result<ResearchHandler> {
        ResearchHandler::new(providers, &self.research)
    }
}

/// A research worker: [`WorkerService::build`] (or
/// [`WorkerService::build_with_providers`]) makes one from a [`Config`].
pub type App = WorkerService<ResearchHandler>;
