//! Worker settings, from flags or `DOSSIER_*` environment variables.

use std::time::Duration;

/// `DOSSIER_WORKER_CONCURRENCY`: jobs one worker process runs at once.
pub const ENV_WORKER_CONCURRENCY: &str = "DOSSIER_WORKER_CONCURRENCY";
/// `DOSSIER_JOB_TIMEOUT`: longest a handler may run for one delivery of a job.
pub const ENV_JOB_TIMEOUT: &str = "DOSSIER_JOB_TIMEOUT";
/// `DOSSIER_RETRY_BACKOFF_BASE`: delay before the second delivery of a failed job.
pub const ENV_RETRY_BACKOFF_BASE: &str = "DOSSIER_RETRY_BACKOFF_BASE";
/// `DOSSIER_RETRY_BACKOFF_MAX`: longest delay between deliveries of a failed job.
pub const ENV_RETRY_BACKOFF_MAX: &str = "DOSSIER_RETRY_BACKOFF_MAX";
/// `DOSSIER_INLINE_RESULT_LIMIT`: largest result (bytes of JSON) sent inside an event.
pub const ENV_INLINE_RESULT_LIMIT: &str = "DOSSIER_INLINE_RESULT_LIMIT";
/// `DOSSIER_PROGRESS_INTERVAL`: least time between two progress events of a job.
pub const ENV_PROGRESS_INTERVAL: &str = "DOSSIER_PROGRESS_INTERVAL";
/// `DOSSIER_CANCEL_GRACE`: how long a cancelled handler may take to stop by itself.
pub const ENV_CANCEL_GRACE: &str = "DOSSIER_CANCEL_GRACE";
/// `DOSSIER_SHUTDOWN_GRACE`: how long running jobs may take to finish on shutdown.
pub const ENV_SHUTDOWN_GRACE: &str = "DOSSIER_SHUTDOWN_GRACE";
/// `DOSSIER_WORKER_ID`: the worker's name in events (default: host name and a random suffix).
pub const ENV_WORKER_ID: &str = "DOSSIER_WORKER_ID";

/// Settings of the worker runtime. `Default` is what a service gets with no
/// flags and no variables set.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerConfig {
    /// Jobs this process runs at once. The worker never holds more
    /// unacknowledged jobs than this, so other replicas take the rest.
    #[arg(long = "worker-concurrency", env = ENV_WORKER_CONCURRENCY, default_value_t = 4,
          value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// Longest a handler may run for one delivery; past it the handler is
    /// dropped and the delivery counts as a retryable `job_timeout` failure.
    #[arg(long = "job-timeout", env = ENV_JOB_TIMEOUT, default_value = "15m",
          value_parser = humantime::parse_duration)]
    pub job_timeout: Duration,
    /// Delay before redelivering a job after its first retryable failure;
    /// doubled on each further failure, jittered.
    #[arg(long = "retry-backoff-base", env = ENV_RETRY_BACKOFF_BASE, default_value = "1s",
          value_parser = humantime::parse_duration)]
    pub retry_backoff_base: Duration,
    /// Longest delay between two deliveries of a failing job.
    #[arg(long = "retry-backoff-max", env = ENV_RETRY_BACKOFF_MAX, default_value = "1m",
          value_parser = humantime::parse_duration)]
    pub retry_backoff_max: Duration,
    /// Largest result, in bytes of JSON, carried inside an event; larger
    /// results go to the `dossier_results` object store. Also capped at half
    /// the server's `max_payload`.
    #[arg(long = "inline-result-limit", env = ENV_INLINE_RESULT_LIMIT, default_value_t = 256 * 1024)]
    pub inline_result_limit: usize,
    /// Least time between two progress events of one job.
    #[arg(long = "progress-interval", env = ENV_PROGRESS_INTERVAL, default_value = "1s",
          value_parser = humantime::parse_duration)]
    pub progress_interval: Duration,
    /// How long a handler told to cancel may take to return by itself before
    /// the runtime drops it.
    #[arg(long = "cancel-grace", env = ENV_CANCEL_GRACE, default_value = "2s",
          value_parser = humantime::parse_duration)]
    pub cancel_grace: Duration,
    /// On shutdown, how long running jobs may take to finish before they are
    /// stopped and handed back to the broker for another replica.
    #[arg(long = "shutdown-grace", env = ENV_SHUTDOWN_GRACE, default_value = "20s",
          value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// The worker's name in events (default: `$HOSTNAME` — the pod name in
    /// Kubernetes — and a random suffix).
    #[arg(long = "worker-id", env = ENV_WORKER_ID)]
    pub worker_id: Option<String>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            worker: WorkerConfig,
        }
        // As in `BrokerConfig`: the defaults live once, in the clap
        // attributes, and `DOSSIER_*` variables override them.
        <Defaults as clap::Parser>::try_parse_from(["defaults"])
            .map(|d| d.worker)
            .unwrap_or_else(|e| unreachable!("worker defaults are valid: {e}"))
    }
}

impl WorkerConfig {
    /// Checks the settings that a struct literal (rather than clap) may get wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.concurrency == 0 {
            return Err("concurrency must be at least 1".to_owned());
        }
        if self.job_timeout.is_zero() {
            return Err("job_timeout must be positive".to_owned());
        }
        if self.retry_backoff_base > self.retry_backoff_max {
            return Err(format!(
                "retry_backoff_base ({:?}) exceeds retry_backoff_max ({:?})",
                self.retry_backoff_base, self.retry_backoff_max
            ));
        }
        if self.worker_id.as_deref().is_some_and(str::is_empty) {
            return Err("worker_id must not be empty".to_owned());
        }
        Ok(())
    }

    /// The configured worker id, else `$HOSTNAME` (or `worker`) with a random
    /// suffix, so two workers in one pod or test never share an id.
    pub(crate) fn resolve_worker_id(&self) -> String {
        if let Some(id) = &self.worker_id {
            return id.clone();
        }
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".to_owned());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}", &suffix[..8])
    }
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err(format!("`{s}` is not a concurrency from 1 to 1024")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_sound() {
        let config = WorkerConfig::default();
        assert_eq!(config.concurrency, 4);
        assert_eq!(config.inline_result_limit, 256 * 1024);
        assert_eq!(config.progress_interval, Duration::from_secs(1));
        assert_eq!(config.cancel_grace, Duration::from_secs(2));
        assert!(config.validate().is_ok());
        let a = config.resolve_worker_id();
        assert_ne!(a, config.resolve_worker_id());
    }

    #[test]
    fn flattens_beside_the_broker_settings_in_a_service_cli() {
        use clap::{CommandFactory as _, Parser as _};

        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            broker: dossier_broker::BrokerConfig,
            #[command(flatten)]
            worker: WorkerConfig,
        }
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "worker",
            "--worker-concurrency",
            "8",
            "--job-timeout",
            "30s",
            "--worker-id",
            "search-1",
        ])
        .unwrap();
        assert_eq!(cli.worker.concurrency, 8);
        assert_eq!(cli.worker.job_timeout, Duration::from_secs(30));
        assert_eq!(cli.worker.resolve_worker_id(), "search-1");
        assert!(Cli::try_parse_from(["worker", "--worker-concurrency", "0"]).is_err());
    }

    #[test]
    fn validation_rejects_nonsense() {
        let config = WorkerConfig {
            concurrency: 0,
            ..WorkerConfig::default()
        };
        assert!(config.validate().is_err());
        let config = WorkerConfig {
            retry_backoff_base: Duration::from_secs(10),
            retry_backoff_max: Duration::from_secs(1),
            ..WorkerConfig::default()
        };
        assert!(config.validate().is_err());
        assert!(parse_concurrency("0").is_err());
        assert_eq!(parse_concurrency("8"), Ok(8));
    }
}
