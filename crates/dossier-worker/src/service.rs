//! A [`Worker`] together with the admin server that reports on it: what
//! every worker service's `App` holds, so each service only builds its
//! handler.

use std::future::Future;
use std::net::SocketAddr;

use dossier_broker::BrokerConfig;
use dossier_service::admin::Admin;
use dossier_service::{CancellationToken, Readiness};

use crate::{Handler, Worker, WorkerConfig, WorkerError};

/// A worker service: the job loop of one kind plus its admin server
/// (`/healthz`, `/readyz`, `/metrics`).
pub struct WorkerService<H: Handler> {
    worker: Worker<H>,
    admin: Admin,
}

impl<H: Handler> WorkerService<H> {
    /// Connects to NATS as `name`, binds `handler`'s job consumer, and makes
    /// `admin`'s readiness require the worker's (NATS connected, consumer
    /// bound, not shutting down).
    ///
    /// Start `admin` before slow start-up work such as loading a directory,
    /// so probes see a live, not yet ready, process meanwhile.
    pub async fn connect(
        name: &str,
        broker: &BrokerConfig,
        config: WorkerConfig,
        handler: H,
        admin: Admin,
    ) -> Result<Self, WorkerError> {
        let client = dossier_broker::connect(broker, name).await?;
        let worker = Worker::new(client, broker, config, handler).await?;
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
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
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
    ) -> Result<(), WorkerError> {
        let WorkerService { worker, admin } = self;
        admin.serve_until(&shutdown);
        let (jobs, ()) = tokio::join!(worker.run(shutdown), other);
        admin.shutdown().await;
        jobs
    }
}
