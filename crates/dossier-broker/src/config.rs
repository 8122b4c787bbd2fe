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
    /// Job consumer settings.
    #[command(flatten)]
    pub consumer: ConsumerConfig,
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

fn parse_replicas(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=5) => Ok(n),
        _ => Err(format!("`{s}` is not a replica count from 1 to 5")),
    }
}
