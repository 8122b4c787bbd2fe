use std::time::Duration;

use dossier_nats::{ENV_NATS_URL, NatsCredentials};

/// `DOSSIER_NATS_REPLICAS`: stream and bucket replicas (1 locally, 3 in a cluster).
pub const ENV_NATS_REPLICAS: &str = "DOSSIER_NATS_REPLICAS";
/// `DOSSIER_NATS_REQUEST_TIMEOUT`: how long a publish ack or KV call may take.
pub const ENV_NATS_REQUEST_TIMEOUT: &str = "DOSSIER_NATS_REQUEST_TIMEOUT";
/// `DOSSIER_DUPLICATE_WINDOW`: JetStream de-duplication window for jobs and events.
pub const ENV_DUPLICATE_WINDOW: &str = "DOSSIER_DUPLICATE_WINDOW";
/// `DOSSIER_EVENTS_MAX_AGE`: how long events are kept.
pub const ENV_EVENTS_MAX_AGE: &str = "DOSSIER_EVENTS_MAX_AGE";
/// `DOSSIER_JOBS_MAX_AGE`: how long an unprocessed job may wait.
pub const ENV_JOBS_MAX_AGE: &str = "DOSSIER_JOBS_MAX_AGE";
/// `DOSSIER_RESULTS_MAX_AGE`: how long large results are kept.
pub const ENV_RESULTS_MAX_AGE: &str = "DOSSIER_RESULTS_MAX_AGE";
/// `DOSSIER_IDEMPOTENCY_TTL`: how long idempotency keys are remembered.
pub const ENV_IDEMPOTENCY_TTL: &str = "DOSSIER_IDEMPOTENCY_TTL";
/// `DOSSIER_JOB_ACK_WAIT`: redelivery deadline of an unacknowledged job.
pub const ENV_JOB_ACK_WAIT: &str = "DOSSIER_JOB_ACK_WAIT";
/// `DOSSIER_JOB_MAX_DELIVER`: deliveries before a job is given up on.
pub const ENV_JOB_MAX_DELIVER: &str = "DOSSIER_JOB_MAX_DELIVER";
/// `DOSSIER_JOB_MAX_ACK_PENDING`: most unacknowledged jobs per kind.
pub const ENV_JOB_MAX_ACK_PENDING: &str = "DOSSIER_JOB_MAX_ACK_PENDING";
/// `DOSSIER_OPERATION_RETENTION`: how long an operation is kept after it
/// was created (its `expiresAt`).
pub const ENV_OPERATION_RETENTION: &str = "DOSSIER_OPERATION_RETENTION";
/// `DOSSIER_JOBS_MAX_BYTES`: byte limit of the jobs stream.
pub const ENV_JOBS_MAX_BYTES: &str = "DOSSIER_JOBS_MAX_BYTES";
/// `DOSSIER_EVENTS_MAX_BYTES`: byte limit of the events stream.
pub const ENV_EVENTS_MAX_BYTES: &str = "DOSSIER_EVENTS_MAX_BYTES";
/// `DOSSIER_ADVISORIES_MAX_BYTES`: byte limit of the dead-letter advisories stream.
pub const ENV_ADVISORIES_MAX_BYTES: &str = "DOSSIER_ADVISORIES_MAX_BYTES";
/// `DOSSIER_OPERATIONS_MAX_BYTES`: byte limit of the operation records bucket.
pub const ENV_OPERATIONS_MAX_BYTES: &str = "DOSSIER_OPERATIONS_MAX_BYTES";
/// `DOSSIER_IDEMPOTENCY_MAX_BYTES`: byte limit of the idempotency keys bucket.
pub const ENV_IDEMPOTENCY_MAX_BYTES: &str = "DOSSIER_IDEMPOTENCY_MAX_BYTES";
/// `DOSSIER_LEASES_MAX_BYTES`: byte limit of the per-run leases bucket.
pub const ENV_LEASES_MAX_BYTES: &str = "DOSSIER_LEASES_MAX_BYTES";
/// `DOSSIER_CANCELLATIONS_MAX_BYTES`: byte limit of the cancellations bucket.
pub const ENV_CANCELLATIONS_MAX_BYTES: &str = "DOSSIER_CANCELLATIONS_MAX_BYTES";
/// `DOSSIER_CHECKPOINTS_MAX_BYTES`: byte limit of the checkpoints bucket.
pub const ENV_CHECKPOINTS_MAX_BYTES: &str = "DOSSIER_CHECKPOINTS_MAX_BYTES";
/// `DOSSIER_RESULTS_MAX_BYTES`: byte limit of the large results object store.
pub const ENV_RESULTS_MAX_BYTES: &str = "DOSSIER_RESULTS_MAX_BYTES";
/// `DOSSIER_PAYLOADS_MAX_BYTES`: byte limit of the large payloads object store.
pub const ENV_PAYLOADS_MAX_BYTES: &str = "DOSSIER_PAYLOADS_MAX_BYTES";

/// `DOSSIER_WEBHOOKS_MAX_BYTES`: byte limit of the webhook deliveries stream.
pub const ENV_WEBHOOKS_MAX_BYTES: &str = "DOSSIER_WEBHOOKS_MAX_BYTES";
/// `DOSSIER_WEBHOOK_ENDPOINTS_MAX_BYTES`: byte limit of the webhook endpoints bucket.
pub const ENV_WEBHOOK_ENDPOINTS_MAX_BYTES: &str = "DOSSIER_WEBHOOK_ENDPOINTS_MAX_BYTES";
/// `DOSSIER_WEBHOOK_DELIVERIES_MAX_BYTES`: byte limit of the webhook delivery records bucket.
pub const ENV_WEBHOOK_DELIVERIES_MAX_BYTES: &str = "DOSSIER_WEBHOOK_DELIVERIES_MAX_BYTES";
/// `DOSSIER_WEBHOOK_MAX_PENDING`: most webhook deliveries in flight or waiting for a retry.
pub const ENV_WEBHOOK_MAX_PENDING: &str = "DOSSIER_WEBHOOK_MAX_PENDING";

/// How a service reaches the broker, from flags or `DOSSIER_*` environment
/// variables: what every service with JetStream reads. What the topology is
/// made of is [`TopologyConfig`], read by its owner alone.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerConfig {
    /// NATS server URL(s), comma separated.
    #[arg(long = "nats-url", env = ENV_NATS_URL, default_value = "nats://127.0.0.1:4222")]
    pub url: String,
    /// NATS credentials, when the server requires them.
    #[command(flatten)]
    pub credentials: NatsCredentials,
    /// How long a NATS request (publish ack, KV operation) may take.
    #[arg(long = "nats-request-timeout", env = ENV_NATS_REQUEST_TIMEOUT, default_value = "5s",
          value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
}

/// What the streams, buckets and consumers are made of (retention, replicas,
/// delivery limits). Only the topology's owner, the operations service,
/// reads these settings ([`crate::Topology::ensure`]); every other service
/// binds to what exists and takes the settings from the broker, so no
/// service's environment can change another's streams. Defaults suit a
/// laptop; a cluster sets `DOSSIER_NATS_REPLICAS=3`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopologyConfig {
    /// Stream and bucket replicas: 1 locally, 3 in a cluster.
    #[arg(long = "nats-replicas", env = ENV_NATS_REPLICAS, default_value_t = 1,
          value_parser = parse_replicas)]
    pub replicas: usize,
    /// Window in which JetStream drops a re-published job or event with the
    /// same message id.
    #[arg(long, env = ENV_DUPLICATE_WINDOW, default_value = "2m", value_parser = humantime::parse_duration)]
    pub duplicate_window: Duration,
    /// How long events (and dead-letter advisories) are kept.
    #[arg(long, env = ENV_EVENTS_MAX_AGE, default_value = "7days", value_parser = humantime::parse_duration)]
    pub events_max_age: Duration,
    /// How long an unprocessed job may wait in the jobs stream.
    #[arg(long, env = ENV_JOBS_MAX_AGE, default_value = "7days", value_parser = humantime::parse_duration)]
    pub jobs_max_age: Duration,
    /// How long large results are kept in the object store.
    #[arg(long, env = ENV_RESULTS_MAX_AGE, default_value = "30days", value_parser = humantime::parse_duration)]
    pub results_max_age: Duration,
    /// How long idempotency keys are remembered.
    #[arg(long, env = ENV_IDEMPOTENCY_TTL, default_value = "24h", value_parser = humantime::parse_duration)]
    pub idempotency_ttl: Duration,
    /// How long an operation is kept after it was created (its `expiresAt`):
    /// then its record, result, payload and checkpoints are deleted and
    /// reads answer 410. At least the jobs' max age and the idempotency TTL.
    #[arg(long, env = ENV_OPERATION_RETENTION, default_value = "30days",
          value_parser = humantime::parse_duration)]
    pub operation_retention: Duration,
    /// Job consumer settings.
    #[command(flatten)]
    pub consumer: ConsumerConfig,
    /// Byte limits of the streams, buckets and object stores.
    #[command(flatten)]
    pub limits: StorageLimits,
}

impl TopologyConfig {
    /// Checks that the settings fit together, naming the variables that do
    /// not: an operation must outlive its queued job (else a job could run
    /// for an operation already deleted), its idempotency key (else a
    /// replay could re-run it) and must not outlive its large result.
    pub fn validate(&self) -> Result<(), String> {
        let retention = self.operation_retention;
        if retention < Duration::from_secs(1) {
            return Err(format!("{ENV_OPERATION_RETENTION} must be at least 1s"));
        }
        if self.jobs_max_age.is_zero() || self.jobs_max_age > retention {
            return Err(format!(
                "{ENV_JOBS_MAX_AGE} ({}) must be set and at most {ENV_OPERATION_RETENTION} ({})",
                humantime::format_duration(self.jobs_max_age),
                humantime::format_duration(retention)
            ));
        }
        if self.idempotency_ttl > retention {
            return Err(format!(
                "{ENV_IDEMPOTENCY_TTL} ({}) must be at most {ENV_OPERATION_RETENTION} ({})",
                humantime::format_duration(self.idempotency_ttl),
                humantime::format_duration(retention)
            ));
        }
        if !self.results_max_age.is_zero() && self.results_max_age < retention {
            return Err(format!(
                "{ENV_RESULTS_MAX_AGE} ({}) must be at least {ENV_OPERATION_RETENTION} ({}), \
                 or a result would vanish before its operation",
                humantime::format_duration(self.results_max_age),
                humantime::format_duration(retention)
            ));
        }
        Ok(())
    }
}

/// Byte limits of every stream, bucket and object store (`1GiB`, `512MiB`,
/// or plain bytes). Each store refuses new writes when full (JetStream
/// `discard: new`), so a full store never silently drops queued work: a
/// full jobs stream refuses new accepts (503 storage full), and a full
/// events stream makes workers retry their events. The defaults add up to
/// about 6 GiB, inside the 8 GB JetStream store of the shipped deployment;
/// JetStream reserves each limit up front, so their sum (per replica) must
/// fit the server's `max_file_store`.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageLimits {
    /// Byte limit of the jobs stream (queued jobs). When full, new accepts
    /// are refused with 503 "storage is full"; queued jobs are kept.
    #[arg(long, env = ENV_JOBS_MAX_BYTES, default_value = "512MiB", value_parser = parse_bytes)]
    pub jobs_max_bytes: i64,
    /// Byte limit of the events stream (events not yet projected).
    #[arg(long, env = ENV_EVENTS_MAX_BYTES, default_value = "512MiB", value_parser = parse_bytes)]
    pub events_max_bytes: i64,
    /// Byte limit of the dead-letter advisories stream (the oldest go first).
    #[arg(long, env = ENV_ADVISORIES_MAX_BYTES, default_value = "16MiB", value_parser = parse_bytes)]
    pub advisories_max_bytes: i64,
    /// Byte limit of the operation records bucket (inline results included).
    /// When full, new accepts are refused; existing records still update.
    #[arg(long, env = ENV_OPERATIONS_MAX_BYTES, default_value = "2GiB", value_parser = parse_bytes)]
    pub operations_max_bytes: i64,
    /// Byte limit of the idempotency keys bucket.
    #[arg(long, env = ENV_IDEMPOTENCY_MAX_BYTES, default_value = "64MiB", value_parser = parse_bytes)]
    pub idempotency_max_bytes: i64,
    /// Byte limit of the cancellation requests bucket.
    #[arg(long, env = ENV_CANCELLATIONS_MAX_BYTES, default_value = "16MiB", value_parser = parse_bytes)]
    pub cancellations_max_bytes: i64,
    /// Byte limit of the per-run leases bucket (about 100 bytes an
    /// operation, kept 8 days).
    #[arg(long, env = ENV_LEASES_MAX_BYTES, default_value = "128MiB", value_parser = parse_bytes)]
    pub leases_max_bytes: i64,
    /// Byte limit of the worker checkpoints bucket.
    #[arg(long, env = ENV_CHECKPOINTS_MAX_BYTES, default_value = "256MiB", value_parser = parse_bytes)]
    pub checkpoints_max_bytes: i64,
    /// Byte limit of the large results object store.
    #[arg(long, env = ENV_RESULTS_MAX_BYTES, default_value = "2GiB", value_parser = parse_bytes)]
    pub results_max_bytes: i64,
    /// Byte limit of the large job payloads object store.
    #[arg(long, env = ENV_PAYLOADS_MAX_BYTES, default_value = "512MiB", value_parser = parse_bytes)]
    pub payloads_max_bytes: i64,
    /// Byte limit of the webhook deliveries stream (deliveries not yet
    /// made, their retries included). When full, new deliveries wait.
    #[arg(long, env = ENV_WEBHOOKS_MAX_BYTES, default_value = "256MiB", value_parser = parse_bytes)]
    pub webhooks_max_bytes: i64,
    /// Byte limit of the webhook endpoints bucket (every tenant's
    /// endpoints, at most 20 each).
    #[arg(long, env = ENV_WEBHOOK_ENDPOINTS_MAX_BYTES, default_value = "16MiB", value_parser = parse_bytes)]
    pub webhook_endpoints_max_bytes: i64,
    /// Byte limit of the webhook delivery records bucket (each delivery
    /// and its attempts, kept for the operations' retention).
    #[arg(long, env = ENV_WEBHOOK_DELIVERIES_MAX_BYTES, default_value = "256MiB", value_parser = parse_bytes)]
    pub webhook_deliveries_max_bytes: i64,
}

impl StorageLimits {
    /// What JetStream reserves for all of them on each replica: the least
    /// `max_file_store` a server of the topology needs. (Destructured so
    /// that a new limit cannot be left out.)
    pub fn reserved(&self) -> i64 {
        let StorageLimits {
            jobs_max_bytes,
            events_max_bytes,
            advisories_max_bytes,
            operations_max_bytes,
            idempotency_max_bytes,
            cancellations_max_bytes,
            leases_max_bytes,
            checkpoints_max_bytes,
            results_max_bytes,
            payloads_max_bytes,
            webhooks_max_bytes,
            webhook_endpoints_max_bytes,
            webhook_deliveries_max_bytes,
        } = *self;
        jobs_max_bytes
            + events_max_bytes
            + advisories_max_bytes
            + operations_max_bytes
            + idempotency_max_bytes
            + cancellations_max_bytes
            + leases_max_bytes
            + checkpoints_max_bytes
            + results_max_bytes
            + payloads_max_bytes
            + webhooks_max_bytes
            + webhook_endpoints_max_bytes
            + webhook_deliveries_max_bytes
    }
}

/// Settings of each kind's job consumer.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsumerConfig {
    /// Redelivery deadline of an unacknowledged job. Workers send in-progress
    /// acks well before it while a job runs, so only a dead worker's jobs are
    /// redelivered.
    #[arg(long = "job-ack-wait", env = ENV_JOB_ACK_WAIT, default_value = "30s",
          value_parser = humantime::parse_duration)]
    pub ack_wait: Duration,
    /// Deliveries before a job is given up on and its operation failed.
    #[arg(long = "job-max-deliver", env = ENV_JOB_MAX_DELIVER, default_value_t = 5,
          value_parser = clap::value_parser!(i64).range(1..=100))]
    pub max_deliver: i64,
    /// Most unacknowledged jobs per kind across all workers.
    #[arg(long = "job-max-ack-pending", env = ENV_JOB_MAX_ACK_PENDING, default_value_t = 1_000,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub max_ack_pending: i64,
    /// Most webhook deliveries in flight or waiting for their next retry
    /// across the webhooks service's replicas: a delivery waiting for a
    /// retry stays unacknowledged, so receivers that fail for days hold
    /// this many at most before new deliveries wait behind them.
    #[arg(long = "webhook-max-pending", env = ENV_WEBHOOK_MAX_PENDING, default_value_t = 50_000,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub webhook_max_pending: i64,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            broker: BrokerConfig,
        }
        // The defaults live in one place, the clap attributes above, and
        // `DOSSIER_*` variables override them exactly as in a service. Parsing
        // cannot fail on defaults; a bad variable is reported by the service
        // that reads its configuration with clap first.
        <Defaults as clap::Parser>::try_parse_from(["defaults"])
            .map(|d| d.broker)
            .unwrap_or_else(|e| unreachable!("broker defaults are valid: {e}"))
    }
}

impl Default for TopologyConfig {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            topology: TopologyConfig,
        }
        // As in `BrokerConfig`: the defaults live once, in the clap attributes.
        <Defaults as clap::Parser>::try_parse_from(["defaults"])
            .map(|d| d.topology)
            .unwrap_or_else(|e| unreachable!("topology defaults are valid: {e}"))
    }
}

/// Parses a byte size: plain bytes, or a number with `KiB`, `MiB`, `GiB` or
/// `TiB` (binary units; the suffix's case does not matter). At least one
/// KiB: JetStream needs room for a message or two.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let scale: i64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "`{s}` is not a byte size (e.g. 512MiB, 2GiB, 1048576)"
            ));
        }
    };
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n >= 1024)
        .ok_or_else(|| format!("`{s}` is not a byte size of at least 1KiB"))
}

fn parse_replicas(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=5) => Ok(n),
        _ => Err(format!("`{s}` is not a replica count from 1 to 5")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_in_binary_units() {
        assert_eq!(parse_bytes("2048"), Ok(2048));
        assert_eq!(parse_bytes("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_bytes("512mib"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert!(parse_bytes("12").is_err());
        assert!(parse_bytes("1GB").is_err());
        assert!(parse_bytes("GiB").is_err());
        assert!(parse_bytes("99999999999TiB").is_err());
    }

    #[test]
    fn retention_must_outlive_jobs_and_keys_and_not_outlive_results() {
        assert_eq!(TopologyConfig::default().validate(), Ok(()));
        let day = Duration::from_secs(24 * 3600);
        let short = TopologyConfig {
            operation_retention: 3 * day,
            ..TopologyConfig::default()
        };
        assert!(short.validate().unwrap_err().contains(ENV_JOBS_MAX_AGE));
        let keys = TopologyConfig {
            operation_retention: Duration::from_secs(3600),
            jobs_max_age: Duration::from_secs(60),
            ..TopologyConfig::default()
        };
        assert!(keys.validate().unwrap_err().contains(ENV_IDEMPOTENCY_TTL));
        let results = TopologyConfig {
            operation_retention: 40 * day,
            ..TopologyConfig::default()
        };
        assert!(
            results
                .validate()
                .unwrap_err()
                .contains(ENV_RESULTS_MAX_AGE)
        );
    }
}
