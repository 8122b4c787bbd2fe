//! The skeleton of every worker service: the settings they all read
//! ([`WorkerServiceConfig`], which each service's clap `Config` flattens),
//! and [`WorkerService`], a [`Worker`] together with the admin server that
//! reports on it, built the same way for every kind ([`WorkerService::build`]).
//! A service only says what is its own ([`WorkerSpec`]): its name, its own
//! settings, and how its handler is made.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context as _;
use dossier_broker::BrokerConfig;
use dossier_directory::{ProviderSet, ProvidersConfig};
use dossier_service::admin::{Admin, AdminConfig};
use dossier_service::{CancellationToken, Readiness};
use dossier_telemetry::LogConfig;

use crate::{Handler, Worker, WorkerConfig, WorkerError};

/// What every worker service reads (flags or `DOSSIER_*` variables); each
/// service's `Config` flattens it beside its own settings.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerServiceConfig {
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

impl WorkerServiceConfig {
    /// The first steps of every worker service's start: the admin server
    /// first, so probes see a live, not yet ready, process while the
    /// directory loads; then the directory providers, unless the caller made
    /// its own (tests, or an embedding that wires its own).
    pub async fn start(
        &self,
        providers: Option<ProviderSet>,
    ) -> anyhow::Result<(Admin, ProviderSet)> {
        let admin = Admin::start(&self.admin).await?;
        let providers = match providers {
            Some(providers) => providers,
            None => self
                .providers
                .build_off_runtime()
                .await
                .context("cannot set up the directory providers")?,
        };
        Ok((admin, providers))
    }
}

/// What one worker service adds to the skeleton, implemented by its clap
/// `Config`: its name, where its [`WorkerServiceConfig`] is, and how its
/// handler is made from the directory and its own settings.
pub trait WorkerSpec: Send + 'static {
    /// The handler of the service's kind of job.
    type Handler: Handler;
    /// The service's name: its binary's, and its NATS connection's.
    const NAME: &'static str;

    /// The settings every worker service reads.
    fn service(&self) -> &WorkerServiceConfig;

    /// The handler, given the loaded directory providers; fails on invalid
    /// settings (before the service connects to NATS).
    fn handler(&self, providers: ProviderSet) -> anyhow::Result<Self::Handler>;
}

/// A worker service: the job loop of one kind plus its admin server
/// (`/healthz`, `/readyz`, `/metrics`).
pub struct WorkerService<H: Handler> {
    worker: Worker<H>,
    admin: Admin,
}

impl<H: Handler> WorkerService<H> {
    /// Starts the admin server, loads the directory, makes the handler,
    /// connects to NATS and binds the job consumer: the service `config`
    /// describes, ready to [`run`](WorkerService::run).
    pub async fn build<C: WorkerSpec<Handler = H>>(config: C) -> anyhow::Result<Self> {
        Self::build_from(config, None).await
    }

    /// Like [`WorkerService::build`], with providers made by the caller
    /// (tests, or an embedding that wires its own) instead of the
    /// configured ones.
    pub async fn build_with_providers<C: WorkerSpec<Handler = H>>(
        config: C,
        providers: ProviderSet,
    ) -> anyhow::Result<Self> {
        Self::build_from(config, Some(providers)).await
    }

    async fn build_from<C: WorkerSpec<Handler = H>>(
        config: C,
        providers: Option<ProviderSet>,
    ) -> anyhow::Result<Self> {
        let service = config.service();
        let (admin, providers) = service.start(providers).await?;
        let handler = config.handler(providers)?;
        let client = dossier_broker::connect(&service.broker, C::NAME)
            .await
            .map_err(WorkerError::Connect)?;
        let worker = Worker::new(client, &service.broker, service.worker.clone(), handler).await?;
        Ok(Self::new(worker, admin))
    }

    /// Wraps a worker built by the caller (one that shares its NATS
    /// connection with other work).
    pub fn new(worker: Worker<H>, admin: Admin) -> Self {
        worker.report_readiness_to(admin.readiness());
        WorkerService { worker, admin }
    }

    /// The worker's id.
    pub fn worker_id(&self) -> &str {
        self.worker.worker_id()
    }

    /// Where the admin server listens, if configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.addr()
    }

    /// What `/readyz` reports: false until [`WorkerService::run`] is
    /// serving, and from the moment its shutdown begins.
    pub fn readiness(&self) -> Readiness {
        self.admin.readiness().clone()
    }

    /// Runs jobs until `shutdown`, then drains gracefully; ready from now
    /// until shutdown begins.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.run_beside(shutdown, async {}).await
    }

    /// Like [`WorkerService::run`], with `other` work of the service (which
    /// must end on `shutdown` itself) driven in the same future, so that
    /// dropping the service (a test's crash) stops both. The admin server
    /// stops after both have ended.
    pub async fn run_beside(
        self,
        shutdown: CancellationToken,
        other: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let WorkerService { worker, admin } = self;
        admin.serve_until(&shutdown);
        let (jobs, ()) = tokio::join!(worker.run(shutdown), other);
        admin.shutdown().await;
        Ok(jobs?)
    }
}
