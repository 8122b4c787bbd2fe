//! What every Dossier service binary shares: one shutdown signal (Ctrl-C or
//! SIGTERM) turned into a [`CancellationToken`], and a readiness flag that
//! health endpoints report and that turns false as soon as shutdown starts,
//! before the service stops taking work; the admin HTTP server ([`admin`]:
//! `/healthz`, `/readyz`, `/metrics`) and the process-wide Prometheus
//! recorder ([`metrics`]); the parsing of a service's configuration with
//! its hidden `--print-env` ([`config`]).
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod metrics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

pub use tokio_util::sync::CancellationToken;

/// A token cancelled on the first Ctrl-C or SIGTERM.
pub fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(message = "Shutdown signal received.");
        trigger.cancel();
    });
    token
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(message = "Cannot listen for SIGTERM; only Ctrl-C stops the service.", %error);
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Whether a service can do its work: a flag the service sets, and
/// conditions it adds ([`Readiness::require`]) that are checked on every
/// read. Cheap to clone and read; clones share everything.
#[derive(Clone, Default)]
pub struct Readiness(Arc<ReadinessInner>);

#[derive(Default)]
struct ReadinessInner {
    flag: AtomicBool,
    conditions: RwLock<Vec<Condition>>,
}

type Condition = Box<dyn Fn() -> bool + Send + Sync>;

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl Readiness {
    /// Not ready yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the service ready or not (the conditions still apply).
    pub fn set(&self, ready: bool) {
        self.0.flag.store(ready, Ordering::Release);
    }

    /// Adds a condition that must hold for the service to be ready, e.g.
    /// "the broker is connected". Checked on every [`Readiness::is_ready`],
    /// so keep it cheap and non-blocking.
    pub fn require(&self, condition: impl Fn() -> bool + Send + Sync + 'static) {
        self.0
            .conditions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Box::new(condition));
    }

    /// Whether the service is ready: the flag is set and every condition holds.
    pub fn is_ready(&self) -> bool {
        self.0.flag.load(Ordering::Acquire)
            && self
                .0
                .conditions
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .all(|condition| condition())
    }

    /// Turns readiness off from the very moment `shutdown` is cancelled (a
    /// condition, not a task that might run late), so load balancers stop
    /// sending work before the service stops taking it.
    pub fn clear_on(&self, shutdown: &CancellationToken) {
        let shutdown = shutdown.clone();
        self.require(move || !shutdown.is_cancelled());
    }
}

/// The error and its sources, `a: b: c`, for log lines (a source whose text
/// the message already ends with is not repeated: async-nats errors often
/// repeat their source in their own message).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_the_flag_and_every_condition_and_ends_with_shutdown() {
        let readiness = Readiness::new();
        assert!(!readiness.is_ready(), "not ready before it is set");
        readiness.set(true);
        assert!(readiness.is_ready());

        let connected = Arc::new(AtomicBool::new(false));
        let seen = connected.clone();
        readiness.require(move || seen.load(Ordering::Relaxed));
        assert!(!readiness.is_ready(), "a condition that fails");
        connected.store(true, Ordering::Relaxed);
        assert!(readiness.clone().is_ready(), "clones share conditions");

        let shutdown = CancellationToken::new();
        readiness.clear_on(&shutdown);
        assert!(readiness.is_ready());
        shutdown.cancel();
        assert!(!readiness.is_ready(), "false the moment shutdown begins");
    }
}
