//! The JetStream topology every Dossier service shares: streams, consumers,
//! key-value buckets and the object store, plus the subjects that connect
//! them. One service owns it: the operations service creates and updates all
//! of it ([`Topology::ensure`], from [`TopologyConfig`]); every other service
//! only binds to what exists ([`WorkerTopology::bind`]) and is not ready
//! until it does.
//!
//! | name | kind | what |
//! |---|---|---|
//! | `DOSSIER_JOBS` | stream, work queue, `discard: new` | one message per accepted operation on `dossier.jobs.<kind>` |
//! | `jobs-<kind-slug>` | durable pull consumer | the workers of one kind share it |
//! | `DOSSIER_EVENTS` | stream, interest | worker status events on `dossier.events.<kind>`, removed once projected |
//! | `projector` | durable pull consumer | operations replicas share it |
//! | `DOSSIER_ADVISORIES` | stream | JetStream max-deliveries advisories for jobs |
//! | `dossier_operations` | KV, per-record TTL | operation records (the read model), each gone at its `expires_at` |
//! | `dossier_idempotency` | KV, 24 h | idempotency keys |
//! | `dossier_cancellations` | KV | cancellation requests, watched by workers |
//! | `dossier_checkpoints` | KV | worker checkpoints of long jobs |
//! | `dossier_leases` | KV | one entry per operation: the run that holds it, or that it is finished ([`lease_key`]) |
//! | `dossier_results` | object store | results too large for a message |
//! | `dossier_payloads` | object store | job payloads too large for a message ([`payloads`]) |
//! | `webhook-events` | durable pull consumer on `KV_dossier_operations` | every revision of every operation record, for the webhooks service |
//! | `DOSSIER_WEBHOOKS` | stream, work queue, `discard: new` | one message per webhook delivery to make, on `dossier.webhooks.<tenant>` |
//! | `webhook-deliveries` | durable pull consumer | the webhooks service's replicas share it |
//! | `dossier_webhook_endpoints` | KV | each tenant's webhook endpoints (with their signing secrets) under the tenant id |
//! | `dossier_webhook_deliveries` | KV, the operations' retention | each delivery and its attempts, `<endpoint id>.<webhook id>` |
//!
//! Every stream, bucket and object store has a byte limit
//! ([`StorageLimits`]) and refuses new writes when full rather than drop
//! what it holds (the advisories stream alone drops its oldest).
//!
//! Besides JetStream, one core NATS subject carries request-reply calls that
//! store nothing: `dossier_contracts::subjects::ENRICH_PERSON` (synchronous
//! enrichment), defined with its messages in the contracts crate. How a
//! service connects to NATS at all is `dossier-nats`.
//!
//! Every consumer of these subjects runs the one bounded consume loop of
//! [`consume`].
#![forbid(unsafe_code)]

pub mod config;
pub mod consume;
pub mod lease;
pub mod payloads;
mod topology;

pub use config::{BrokerConfig, ConsumerConfig, StorageLimits, TopologyConfig};
pub use topology::{BindError, Topology, TopologyError, WebhooksTopology, WorkerTopology};

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::Statistics;
use dossier_contracts::Kind;

/// The jobs stream.
pub const JOBS_STREAM: &str = "DOSSIER_JOBS";
/// The events stream.
pub const EVENTS_STREAM: &str = "DOSSIER_EVENTS";
/// The stream that keeps max-deliveries advisories for the jobs stream.
pub const ADVISORIES_STREAM: &str = "DOSSIER_ADVISORIES";
/// The operations service's shared consumer on the events stream.
pub const PROJECTOR_CONSUMER: &str = "projector";
/// The operations service's shared consumer on the advisories stream.
pub const DEAD_LETTER_CONSUMER: &str = "dead-letters";
/// Operation records.
pub const OPERATIONS_BUCKET: &str = "dossier_operations";
/// Idempotency keys.
pub const IDEMPOTENCY_BUCKET: &str = "dossier_idempotency";
/// Cancellation requests.
pub const CANCELLATIONS_BUCKET: &str = "dossier_cancellations";
/// Worker checkpoints.
pub const CHECKPOINTS_BUCKET: &str = "dossier_checkpoints";
/// Per-run leases and finish marks of operations (see [`lease_key`]).
pub const LEASES_BUCKET: &str = "dossier_leases";
/// Large results.
pub const RESULTS_OBJECT_STORE: &str = "dossier_results";
/// Job payloads too large to travel inside a job (see [`payloads`]).
pub const PAYLOADS_OBJECT_STORE: &str = "dossier_payloads";

/// The stream of webhook deliveries to make.
pub const WEBHOOKS_STREAM: &str = "DOSSIER_WEBHOOKS";
/// The webhooks service's shared consumer on [`WEBHOOKS_STREAM`].
pub const WEBHOOK_DELIVERIES_CONSUMER: &str = "webhook-deliveries";
/// The webhooks service's shared consumer on the operation records'
/// own stream: every record revision is a possible webhook event.
pub const WEBHOOK_EVENTS_CONSUMER: &str = "webhook-events";
/// Webhook endpoints, one value per tenant.
pub const WEBHOOK_ENDPOINTS_BUCKET: &str = "dossier_webhook_endpoints";
/// Webhook deliveries and their attempts.
pub const WEBHOOK_DELIVERIES_BUCKET: &str = "dossier_webhook_deliveries";

/// The stream behind KV bucket `bucket` (`KV_<bucket>`).
pub fn bucket_stream_name(bucket: &str) -> String {
    format!("KV_{bucket}")
}

/// Subject of a tenant's webhook deliveries, e.g. `dossier.webhooks.acme`.
pub fn webhook_subject(tenant: &str) -> String {
    format!("dossier.webhooks.{tenant}")
}

/// Subject of a kind's jobs, e.g. `dossier.jobs.search.people`.
pub fn job_subject(kind: Kind) -> String {
    format!("dossier.jobs.{}", kind.as_str())
}

/// Subject of a kind's events, e.g. `dossier.events.search.people`.
pub fn event_subject(kind: Kind) -> String {
    format!("dossier.events.{}", kind.as_str())
}

/// Durable consumer name of a kind's workers, e.g. `jobs-search-people`.
pub fn job_consumer(kind: Kind) -> String {
    format!("jobs-{}", kind.slug())
}

/// Key of an operation's entry in [`LEASES_BUCKET`]:
/// `<kind-slug>.<operation id>`. The kind comes first so that a worker's
/// NATS permissions can be limited to its own kind's leases.
pub fn lease_key(kind: Kind, operation_id: &str) -> String {
    format!("{}.{operation_id}", kind.slug())
}

/// The advisory subject JetStream publishes when a job consumer gives up on a
/// message after its last delivery.
pub fn max_deliveries_advisory_subject() -> String {
    format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{JOBS_STREAM}.*")
}

/// Connects to NATS with the broker settings, naming the connection after
/// the service (see [`dossier_nats::connect`]).
pub async fn connect(
    config: &BrokerConfig,
    service: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    dossier_nats::connect(
        &config.url,
        &config.credentials,
        service,
        config.request_timeout,
    )
    .await
}

/// Completes once the client has connected again since `connects` (its
/// `connection.connects` count) was read. Polled: the client offers no
/// reconnect notification to a library that did not build it.
pub async fn reconnected(connection: &Statistics, connects: u64) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if connection.connects.load(Ordering::Relaxed) != connects {
            return;
        }
    }
}

/// Whether `error`, or one it was made from, is JetStream refusing a write
/// for want of room: a stream or bucket at its byte or message limit
/// (`discard: new`), or the server out of storage.
pub fn is_storage_full(error: &(dyn std::error::Error + 'static)) -> bool {
    use async_nats::jetstream::ErrorCode;
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(js) = e.downcast_ref::<async_nats::jetstream::Error>() {
            let code = js.error_code();
            // STREAM_STORE_FAILED is any failed store; only "maximum bytes
            // (or messages) exceeded" is a full stream.
            return code == ErrorCode::STORAGE_RESOURCES_EXCEEDED
                || code == ErrorCode::INSUFFICIENT_RESOURCES
                || (code == ErrorCode::STREAM_STORE_FAILED && js.to_string().contains("maximum"));
        }
        cause = e.source();
    }
    false
}
