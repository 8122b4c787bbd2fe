use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, object_store, stream};
use dossier_backoff::Backoff;
use dossier_contracts::Kind;
use dossier_contracts::limits::NATS_MAX_PAYLOAD;

use crate::{
    ADVISORIES_STREAM, BrokerConfig, CANCELLATIONS_BUCKET, CHECKPOINTS_BUCKET,
    DEAD_LETTER_CONSUMER, EVENTS_STREAM, IDEMPOTENCY_BUCKET, JOBS_STREAM, OPERATIONS_BUCKET,
    PAYLOADS_OBJECT_STORE, PROJECTOR_CONSUMER, RESULTS_OBJECT_STORE, job_consumer, job_subject,
    max_deliveries_advisory_subject,
};

/// Waits between tries of a topology set-up that lost a race: 100, 200,
/// then 300 ms.
const ENSURE_RETRY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(300));

/// Creating the topology failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot create JetStream {what}: {source}")]
pub struct TopologyError {
    what: String,
    #[source]
    source: async_nats::Error,
}

fn err(what: impl Into<String>) -> impl FnOnce(async_nats::Error) -> TopologyError {
    let what = what.into();
    move |source| TopologyError { what, source }
}

/// Handles to every part of the topology.
#[derive(Clone)]
pub struct Topology {
    /// The JetStream context the handles belong to.
    pub jetstream: jetstream::Context,
    /// The jobs stream.
    pub jobs: stream::Stream,
    /// The events stream.
    pub events: stream::Stream,
    /// The max-deliveries advisories stream.
    pub advisories: stream::Stream,
    /// Operation records.
    pub operations: kv::Store,
    /// Idempotency keys.
    pub idempotency: kv::Store,
    /// Cancellation requests.
    pub cancellations: kv::Store,
    /// Worker checkpoints.
    pub checkpoints: kv::Store,
    /// Large results.
    pub results: object_store::ObjectStore,
    /// Large job payloads.
    pub payloads: object_store::ObjectStore,
}

impl Topology {
    /// Creates (or updates to this configuration) every stream, consumer,
    /// bucket and object store. Safe to run from several services at once:
    /// each step is create-or-update, and a lost race is retried.
    pub async fn ensure(
        js: &jetstream::Context,
        cfg: &BrokerConfig,
    ) -> Result<Topology, TopologyError> {
        let mut attempt = 0;
        loop {
            match Self::ensure_once(js, cfg).await {
                Ok(t) => return Ok(t),
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    tracing::debug!(message = "Retrying topology set-up.", attempt, error = %e);
                    tokio::time::sleep(ENSURE_RETRY.delay(attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn ensure_once(
        js: &jetstream::Context,
        cfg: &BrokerConfig,
    ) -> Result<Topology, TopologyError> {
        let replicas = cfg.replicas;
        js.create_or_update_stream(stream::Config {
            name: JOBS_STREAM.to_owned(),
            description: Some("Dossier jobs, one per accepted operation".to_owned()),
            subjects: vec!["dossier.jobs.>".to_owned()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            max_age: cfg.jobs_max_age,
            duplicate_window: cfg.duplicate_window,
            // A job is small: a payload past the inline limit travels as a
            // reference to the payloads object store. The stream refuses
            // nothing the server would accept, and nothing larger.
            max_message_size: NATS_MAX_PAYLOAD as i32,
            ..Default::default()
        })
        .await
        .map_err(|e| err(JOBS_STREAM)(e.into()))?;
        let jobs = js
            .get_stream(JOBS_STREAM)
            .await
            .map_err(|e| err(JOBS_STREAM)(e.into()))?;

        for kind in Kind::ALL {
            let name = job_consumer(kind);
            jobs.create_consumer(consumer::pull::Config {
                durable_name: Some(name.clone()),
                description: Some(format!("{kind} workers")),
                filter_subject: job_subject(kind),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: cfg.consumer.ack_wait,
                max_deliver: cfg.consumer.max_deliver,
                max_ack_pending: cfg.consumer.max_ack_pending,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| err(format!("consumer {name}"))(e.into()))?;
        }

        js.create_or_update_stream(stream::Config {
            name: EVENTS_STREAM.to_owned(),
            description: Some("Dossier operation status events".to_owned()),
            subjects: vec!["dossier.events.>".to_owned()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            max_age: cfg.events_max_age,
            duplicate_window: cfg.duplicate_window,
            ..Default::default()
        })
        .await
        .map_err(|e| err(EVENTS_STREAM)(e.into()))?;
        let events = js
            .get_stream(EVENTS_STREAM)
            .await
            .map_err(|e| err(EVENTS_STREAM)(e.into()))?;
        events
            .create_consumer(consumer::pull::Config {
                durable_name: Some(PROJECTOR_CONSUMER.to_owned()),
                description: Some("operations service projection".to_owned()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 10_000,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| err(PROJECTOR_CONSUMER)(e.into()))?;

        js.create_or_update_stream(stream::Config {
            name: ADVISORIES_STREAM.to_owned(),
            description: Some("Jobs JetStream gave up on after their last delivery".to_owned()),
            subjects: vec![max_deliveries_advisory_subject()],
            retention: stream::RetentionPolicy::Limits,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            max_age: cfg.events_max_age,
            ..Default::default()
        })
        .await
        .map_err(|e| err(ADVISORIES_STREAM)(e.into()))?;
        let advisories = js
            .get_stream(ADVISORIES_STREAM)
            .await
            .map_err(|e| err(ADVISORIES_STREAM)(e.into()))?;
        advisories
            .create_consumer(consumer::pull::Config {
                durable_name: Some(DEAD_LETTER_CONSUMER.to_owned()),
                description: Some(
                    "operations service: fail jobs past their last delivery".to_owned(),
                ),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| err(DEAD_LETTER_CONSUMER)(e.into()))?;

        let bucket = |name: &str, description: &str, max_age: Duration| kv::Config {
            bucket: name.to_owned(),
            description: description.to_owned(),
            history: 1,
            max_age,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        };
        let operations = kv_bucket(
            js,
            bucket(OPERATIONS_BUCKET, "operation records", Duration::ZERO),
        )
        .await?;
        let idempotency = kv_bucket(
            js,
            bucket(IDEMPOTENCY_BUCKET, "idempotency keys", cfg.idempotency_ttl),
        )
        .await?;
        let cancellations = kv_bucket(
            js,
            bucket(
                CANCELLATIONS_BUCKET,
                "cancellation requests",
                cfg.events_max_age,
            ),
        )
        .await?;
        let checkpoints = kv_bucket(
            js,
            bucket(CHECKPOINTS_BUCKET, "worker checkpoints", cfg.jobs_max_age),
        )
        .await?;

        let object_bucket =
            |name: &str, description: &str, max_age: Duration| object_store::Config {
                bucket: name.to_owned(),
                description: Some(description.to_owned()),
                max_age,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            };
        let results = object_store(
            js,
            object_bucket(
                RESULTS_OBJECT_STORE,
                "results too large for a message",
                cfg.results_max_age,
            ),
        )
        .await?;
        let payloads = object_store(
            js,
            object_bucket(
                PAYLOADS_OBJECT_STORE,
                "job payloads too large for a message",
                payloads_max_age(cfg.jobs_max_age),
            ),
        )
        .await?;

        Ok(Topology {
            jetstream: js.clone(),
            jobs,
            events,
            advisories,
            operations,
            idempotency,
            cancellations,
            checkpoints,
            results,
            payloads,
        })
    }
}

/// How long a stored payload is kept: longer than the job that refers to
/// it may wait (the job is published after its payload, so it expires
/// first), with a day to spare for the job's last deliveries. Unlimited
/// jobs keep their payloads without limit too.
fn payloads_max_age(jobs_max_age: Duration) -> Duration {
    if jobs_max_age.is_zero() {
        Duration::ZERO
    } else {
        jobs_max_age + Duration::from_secs(24 * 60 * 60)
    }
}

/// Binds the object store, creating it when it does not exist yet.
async fn object_store(
    js: &jetstream::Context,
    config: object_store::Config,
) -> Result<object_store::ObjectStore, TopologyError> {
    let name = config.bucket.clone();
    match js.get_object_store(&name).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_object_store(config)
            .await
            .map_err(|e| err(format!("object store {name}"))(e.into())),
    }
}

async fn kv_bucket(
    js: &jetstream::Context,
    config: kv::Config,
) -> Result<kv::Store, TopologyError> {
    let name = config.bucket.clone();
    js.create_or_update_key_value(config)
        .await
        .map_err(|e| err(format!("bucket {name}"))(e.into()))
}
