//! The admin HTTP server of the services that have no HTTP API of their own
//! (the operations service and the workers): `/healthz` (the process is
//! alive), `/readyz` (it can do its work, see [`Readiness`]) and `/metrics`
//! (the process-wide Prometheus recorder, see [`crate::metrics`]). Off unless
//! [`ENV_ADMIN_ADDR`] is set. The gateway serves the same three paths on its
//! HTTP port.
//!
//! The server starts when the service starts building, before slow start-up
//! work (loading a directory, connecting to the broker), so liveness probes
//! pass and readiness says "not yet" meanwhile; and it runs until the service
//! has stopped, so readiness reads "not ready" during the graceful shutdown
//! and the last metrics can still be scraped.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::Readiness;

/// `DOSSIER_ADMIN_ADDR`: where the admin HTTP server listens (unset: no admin server).
pub const ENV_ADMIN_ADDR: &str = "DOSSIER_ADMIN_ADDR";

/// Admin server settings, flattened into a service's configuration.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AdminConfig {
    /// Address of the admin HTTP server: `/healthz`, `/readyz`, `/metrics`
    /// (port 0: any free port; unset: no admin server).
    #[arg(long = "admin-addr", env = ENV_ADMIN_ADDR)]
    pub admin_addr: Option<SocketAddr>,
}

/// The admin server could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} for the admin server: {source}")]
pub struct AdminError {
    addr: SocketAddr,
    #[source]
    source: std::io::Error,
}

/// A service's readiness and, when configured, the admin server reporting
/// it: what a service starts first thing in its `build`. Readiness starts
/// false; the service adds its conditions and sets it when it runs.
#[derive(Debug)]
pub struct Admin {
    readiness: Readiness,
    server: Option<AdminServer>,
}

impl Admin {
    /// Starts the admin server if `config` names an address (installing the
    /// metrics recorder either way, so the service's metrics are recorded
    /// for whoever renders them).
    pub async fn start(config: &AdminConfig) -> Result<Admin, AdminError> {
        crate::metrics::install();
        let readiness = Readiness::new();
        let server = AdminServer::start(config, readiness.clone()).await?;
        Ok(Admin { readiness, server })
    }

    /// The readiness `/readyz` reports.
    pub fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    /// Where the admin server listens, if it runs.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(AdminServer::local_addr)
    }

    /// Marks the service ready until `shutdown` is cancelled (its
    /// conditions still apply).
    pub fn serve_until(&self, shutdown: &CancellationToken) {
        self.readiness.clear_on(shutdown);
        self.readiness.set(true);
    }

    /// Stops the admin server (when the service has stopped).
    pub async fn shutdown(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }
}

/// A running admin server. It stops when [`AdminServer::shutdown`] is
/// called or when it is dropped (a crashed service takes it down too).
pub struct AdminServer {
    addr: SocketAddr,
    stop: Option<DropGuard>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl AdminServer {
    /// Starts the admin server when the configuration names an address;
    /// `None` when it does not. Installs the metrics recorder.
    pub async fn start(
        config: &AdminConfig,
        readiness: Readiness,
    ) -> Result<Option<AdminServer>, AdminError> {
        match config.admin_addr {
            Some(addr) => Self::bind(addr, readiness).await.map(Some),
            None => Ok(None),
        }
    }

    /// Binds `addr` and serves in the background until shut down.
    pub async fn bind(addr: SocketAddr, readiness: Readiness) -> Result<AdminServer, AdminError> {
        crate::metrics::install();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AdminError { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| AdminError { addr, source })?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, readiness, stop.clone()));
        tracing::info!(message = "Admin server listening.", admin_addr = %bound);
        Ok(AdminServer {
            addr: bound,
            stop: Some(stop.drop_guard()),
            task: Some(task),
        })
    }

    /// The address it listens on (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets requests in flight finish, and
    /// waits for the server to end.
    pub async fn shutdown(mut self) {
        drop(self.stop.take());
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::warn!(message = "The admin server failed.", %error);
        }
    }
}

/// Serves the admin routes on `listener` until `shutdown` is cancelled,
/// then finishes the requests in flight.
pub async fn serve(listener: TcpListener, readiness: Readiness, shutdown: CancellationToken) {
    let served = axum::serve(listener, router(readiness))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(error) = served {
        tracing::warn!(message = "The admin server stopped.", %error);
    }
}

/// The admin routes: `/healthz`, `/readyz`, `/metrics`.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(readiness)
}

/// `GET /healthz`: the process is alive and serving HTTP.
async fn healthz() -> Response {
    status_body(StatusCode::OK, "ok")
}

/// `GET /readyz`: 200 when the service can do its work, else 503.
async fn readyz(State(readiness): State<Readiness>) -> Response {
    if readiness.is_ready() {
        status_body(StatusCode::OK, "ready")
    } else {
        status_body(StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    }
}

/// `GET /metrics`: the Prometheus text exposition.
async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::render(),
    )
        .into_response()
}

fn status_body(code: StatusCode, status: &'static str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"status":"{status}"}}"#),
    )
        .into_response()
}
