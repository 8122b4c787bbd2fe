//! The topology's two paths: [`Topology::ensure`], run by its one owner
//! (the operations service), creates and updates; [`WorkerTopology::bind`],
//! run by everyone else, only looks up what exists.

use std::time::Duration;

use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::context::{GetStreamError, GetStreamErrorKind};
use async_nats::jetstream::stream::{ConsumerError, ConsumerErrorKind};
use async_nats::jetstream::{self, consumer, kv, object_store, stream};
use dossier_backoff::Backoff;
use dossier_contracts::Kind;
use dossier_contracts::limits::NATS_MAX_PAYLOAD;

use crate::{
    ADVISORIES_STREAM, CANCELLATIONS_BUCKET, CHECKPOINTS_BUCKET, DEAD_LETTER_CONSUMER,
    EVENTS_STREAM, IDEMPOTENCY_BUCKET, JOBS_STREAM, LEASES_BUCKET, OPERATIONS_BUCKET,
    PAYLOADS_OBJECT_STORE, PROJECTOR_CONSUMER, RESULTS_OBJECT_STORE, TopologyConfig,
    WEBHOOK_DELIVERIES_BUCKET, WEBHOOK_DELIVERIES_CONSUMER, WEBHOOK_ENDPOINTS_BUCKET,
    WEBHOOK_EVENTS_CONSUMER, WEBHOOKS_STREAM, bucket_stream_name, job_consumer, job_subject,
    max_deliveries_advisory_subject,
};

/// How long a webhook delivery may be in the hands of one replica before
/// JetStream gives it to another: the receiver's timeout (15 s by default)
/// with room for the record writes around it.
const WEBHOOK_ACK_WAIT: Duration = Duration::from_secs(60);

/// How long the delete marker of an expired record stays in the operations
/// bucket: every replica's list index must see it (a replica whose watch
/// was away longer only keeps a stale id, which listing skips), and the
/// sweeper deletes the operation's other data when it does.
const EXPIRY_MARKER_TTL: Duration = Duration::from_secs(60 * 60);

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
    /// Per-run leases and finish marks.
    pub leases: kv::Store,
    /// Large results.
    pub results: object_store::ObjectStore,
    /// Large job payloads.
    pub payloads: object_store::ObjectStore,
    /// Webhook deliveries to make.
    pub webhooks: stream::Stream,
    /// Webhook endpoints.
    pub webhook_endpoints: kv::Store,
    /// Webhook delivery records.
    pub webhook_deliveries: kv::Store,
}

impl Topology {
    /// Creates (or updates to this configuration) every stream, consumer,
    /// bucket and object store, the job consumer of every kind included.
    /// Only the topology's owner, the operations service, calls it (its NATS
    /// user is the only one allowed to); every other service binds
    /// ([`WorkerTopology::bind`]). Safe to run from several replicas at
    /// once: each step is create-or-update, and a lost race is retried.
    pub async fn ensure(
        js: &jetstream::Context,
        cfg: &TopologyConfig,
    ) -> Result<Topology, TopologyError> {
        cfg.validate()
            .map_err(|e| err("topology: invalid settings")(e.into()))?;
        let mut attempt = 0;
        loop {
            // Boxed: the set-up is one large future (every stream, bucket
            // and consumer), too large for the stack of a test thread in a
            // debug build.
            match Box::pin(Self::ensure_once(js, cfg)).await {
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
        cfg: &TopologyConfig,
    ) -> Result<Topology, TopologyError> {
        let replicas = cfg.replicas;
        let limits = &cfg.limits;
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
            // Full: the publish is refused (the accept answers 503 storage
            // full); queued jobs are never dropped to make room.
            max_bytes: limits.jobs_max_bytes,
            discard: stream::DiscardPolicy::New,
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
            // An event is removed once the projector (the only consumer)
            // has acked it: the record then holds what it said, a result
            // included, so nothing is stored twice. `max_age` only bounds
            // events no projector took.
            retention: stream::RetentionPolicy::Interest,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            max_age: cfg.events_max_age,
            duplicate_window: cfg.duplicate_window,
            // Full: a worker's publish is refused and retried, never an
            // unprojected event dropped.
            max_bytes: limits.events_max_bytes,
            discard: stream::DiscardPolicy::New,
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
            // The server publishes advisories and cannot be told "full":
            // when full, the oldest (long handled) go first.
            max_bytes: limits.advisories_max_bytes,
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

        // Buckets refuse a new key when full (`discard: new`); updates of
        // existing keys still fit, so projection goes on.
        let bucket = |name: &'static str,
                      description: &'static str,
                      max_age: Duration,
                      max_bytes: i64| BucketConfig {
            name,
            description,
            max_age,
            max_bytes,
            replicas,
            delete_markers: None,
            direct_reads: false,
        };
        let operations = kv_bucket(
            js,
            BucketConfig {
                // Each record is written with a per-message TTL up to its
                // `expires_at`; when it expires the server leaves a delete
                // marker, which every replica's watch sees (the list index
                // drops the id, the sweeper deletes the rest).
                delete_markers: Some(EXPIRY_MARKER_TTL),
                ..bucket(
                    OPERATIONS_BUCKET,
                    "operation records",
                    Duration::ZERO,
                    limits.operations_max_bytes,
                )
            },
        )
        .await?;
        let idempotency = kv_bucket(
            js,
            bucket(
                IDEMPOTENCY_BUCKET,
                "idempotency keys",
                cfg.idempotency_ttl,
                limits.idempotency_max_bytes,
            ),
        )
        .await?;
        let cancellations = kv_bucket(
            js,
            bucket(
                CANCELLATIONS_BUCKET,
                "cancellation requests",
                cfg.events_max_age,
                limits.cancellations_max_bytes,
            ),
        )
        .await?;
        let checkpoints = kv_bucket(
            js,
            bucket(
                CHECKPOINTS_BUCKET,
                "worker checkpoints",
                cfg.jobs_max_age,
                limits.checkpoints_max_bytes,
            ),
        )
        .await?;
        let leases = kv_bucket(
            js,
            BucketConfig {
                direct_reads: true,
                ..bucket(
                    LEASES_BUCKET,
                    "per-run leases and finish marks of operations",
                    leases_max_age(cfg),
                    limits.leases_max_bytes,
                )
            },
        )
        .await?;
        let results = object_store(
            js,
            bucket(
                RESULTS_OBJECT_STORE,
                "results too large for a message",
                cfg.results_max_age,
                limits.results_max_bytes,
            ),
        )
        .await?;
        let payloads = object_store(
            js,
            bucket(
                PAYLOADS_OBJECT_STORE,
                "job payloads too large for a message",
                payloads_max_age(cfg.jobs_max_age),
                limits.payloads_max_bytes,
            ),
        )
        .await?;

        // Boxed: the set-up future is large enough as it is for the stack
        // of a test thread.
        let (webhooks, webhook_endpoints, webhook_deliveries) =
            Box::pin(ensure_webhooks(js, cfg)).await?;

        Ok(Topology {
            jetstream: js.clone(),
            jobs,
            events,
            advisories,
            operations,
            idempotency,
            cancellations,
            checkpoints,
            leases,
            results,
            payloads,
            webhooks,
            webhook_endpoints,
            webhook_deliveries,
        })
    }
}

/// The webhooks service's part: the deliveries stream and its consumer, the
/// consumer of operation record revisions on the records bucket's own
/// stream (which must exist: call after the bucket), the endpoints and
/// delivery records buckets.
async fn ensure_webhooks(
    js: &jetstream::Context,
    cfg: &TopologyConfig,
) -> Result<(stream::Stream, kv::Store, kv::Store), TopologyError> {
    let replicas = cfg.replicas;
    let bucket = |name, description, max_age, max_bytes| BucketConfig {
        name,
        description,
        max_age,
        max_bytes,
        replicas,
        delete_markers: None,
        direct_reads: false,
    };
    let endpoints = kv_bucket(
        js,
        bucket(
            WEBHOOK_ENDPOINTS_BUCKET,
            "webhook endpoints, one value per tenant",
            Duration::ZERO,
            cfg.limits.webhook_endpoints_max_bytes,
        ),
    )
    .await?;
    let deliveries = kv_bucket(
        js,
        bucket(
            WEBHOOK_DELIVERIES_BUCKET,
            "webhook deliveries and their attempts",
            cfg.operation_retention,
            cfg.limits.webhook_deliveries_max_bytes,
        ),
    )
    .await?;
    // Every revision of every record, from the moment this consumer is
    // first made (not the bucket's history: nothing that ended before
    // webhooks existed is announced). The bucket keeps one revision per
    // key, so revisions a slow consumer has not read yet are replaced by
    // newer ones: intermediate states may be coalesced, a terminal one
    // never is (it is a record's last revision).
    let records = js
        .get_stream(bucket_stream_name(OPERATIONS_BUCKET))
        .await
        .map_err(|e| err(WEBHOOK_EVENTS_CONSUMER)(e.into()))?;
    records
        .create_consumer(consumer::pull::Config {
            durable_name: Some(WEBHOOK_EVENTS_CONSUMER.to_owned()),
            description: Some("webhooks service: operation record revisions".to_owned()),
            deliver_policy: consumer::DeliverPolicy::New,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 10_000,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| err(WEBHOOK_EVENTS_CONSUMER)(e.into()))?;

    js.create_or_update_stream(stream::Config {
        name: WEBHOOKS_STREAM.to_owned(),
        description: Some("Webhook deliveries to make, one per endpoint and event".to_owned()),
        subjects: vec!["dossier.webhooks.>".to_owned()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        // Longer than the retry schedule (about 3 days).
        max_age: cfg.jobs_max_age,
        duplicate_window: cfg.duplicate_window,
        max_message_size: NATS_MAX_PAYLOAD as i32,
        max_bytes: cfg.limits.webhooks_max_bytes,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|e| err(WEBHOOKS_STREAM)(e.into()))?;
    let webhooks = js
        .get_stream(WEBHOOKS_STREAM)
        .await
        .map_err(|e| err(WEBHOOKS_STREAM)(e.into()))?;
    webhooks
        .create_consumer(consumer::pull::Config {
            durable_name: Some(WEBHOOK_DELIVERIES_CONSUMER.to_owned()),
            description: Some("webhooks service: deliveries".to_owned()),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: WEBHOOK_ACK_WAIT,
            // The service counts attempts against its retry schedule and
            // gives up itself (a delivery waiting for a retry is nak'ed
            // with the delay, so it stays pending).
            max_deliver: -1,
            max_ack_pending: cfg.consumer.webhook_max_pending,
            num_replicas: replicas,
            ..Default::default()
        })
        .await
        .map_err(|e| err(WEBHOOK_DELIVERIES_CONSUMER)(e.into()))?;
    Ok((webhooks, endpoints, deliveries))
}

/// How long a lease entry is kept: its finish mark must outlive every
/// delivery of the operation's job, so that none runs it again. A job may
/// be published again (an idempotent retry after the duplicate window) for
/// as long as its idempotency key lives, and then wait in the jobs stream
/// for up to the jobs' max age; a day more covers late deliveries. Renewed
/// entries are rewritten, so only finished (or abandoned) ones grow old.
/// Unlimited jobs keep their leases without limit too.
fn leases_max_age(cfg: &TopologyConfig) -> Duration {
    if cfg.jobs_max_age.is_zero() {
        Duration::ZERO
    } else {
        cfg.idempotency_ttl + cfg.jobs_max_age + Duration::from_secs(24 * 60 * 60)
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

/// What a KV bucket or an object store is made of.
struct BucketConfig<'a> {
    name: &'a str,
    description: &'a str,
    max_age: Duration,
    replicas: usize,
    /// Byte limit (`discard: new`: a full store refuses new writes).
    max_bytes: i64,
    /// Records may carry their own TTL, and an expired one leaves a delete
    /// marker kept this long (watchers see it).
    delete_markers: Option<Duration>,
    /// Whether any replica may answer a read (see [`kv_bucket`]): only for
    /// the leases, whose every decision is a compare-and-set on the
    /// leader, so a stale read costs a retry, never a wrong answer; and
    /// direct reads name the key in the subject, which lets NATS
    /// permissions keep each worker to its own kind's leases.
    direct_reads: bool,
}

/// Creates or updates the stream of the object store `config.name`, reads
/// through its leader (see [`kv_bucket`]), and binds it.
async fn object_store(
    js: &jetstream::Context,
    config: BucketConfig<'_>,
) -> Result<object_store::ObjectStore, TopologyError> {
    let name = config.name;
    let what = || format!("object store {name}");
    // The stream layout of async-nats' `create_object_store`, but with
    // `allow_direct` off, and updated when it exists.
    js.create_or_update_stream(stream::Config {
        name: format!("OBJ_{name}"),
        subjects: vec![format!("$O.{name}.C.>"), format!("$O.{name}.M.>")],
        discard: stream::DiscardPolicy::New,
        ..bucket_stream(&config)
    })
    .await
    .map_err(|e| err(what())(e.into()))?;
    js.get_object_store(name)
        .await
        .map_err(|e| err(what())(e.into()))
}

/// Creates or updates the stream of the KV bucket `config.name` (history 1)
/// and binds it.
///
/// Reads go through the bucket's leader: `allow_direct` is off. With it on
/// (what async-nats' `create_key_value` always sets) any replica answers a
/// get, and a follower that has not applied the latest write yet answers
/// with the value before it, or "no such key": a record read right after
/// the write that created it could be missing (measured at R3: about 1 get
/// in 300 right after its write). Read your writes, a worker finding the
/// cancellation marker or checkpoint just written, and an accept finding
/// the claim of its idempotency key all need the leader's answer.
async fn kv_bucket(
    js: &jetstream::Context,
    config: BucketConfig<'_>,
) -> Result<kv::Store, TopologyError> {
    let name = config.name;
    let what = || format!("bucket {name}");
    // The stream layout of async-nats' `create_key_value`, but with
    // `allow_direct` off.
    js.create_or_update_stream(stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: 1,
        deny_delete: true,
        discard: stream::DiscardPolicy::New,
        ..bucket_stream(&config)
    })
    .await
    .map_err(|e| err(what())(e.into()))?;
    js.get_key_value(name)
        .await
        .map_err(|e| err(what())(e.into()))
}

/// What the streams of KV buckets and object stores share: file storage,
/// roll-ups (how a key or an object is replaced) and reads through the
/// leader.
fn bucket_stream(config: &BucketConfig<'_>) -> stream::Config {
    stream::Config {
        description: Some(config.description.to_owned()),
        max_age: config.max_age,
        max_bytes: config.max_bytes,
        storage: stream::StorageType::File,
        num_replicas: config.replicas,
        allow_rollup: true,
        allow_direct: config.direct_reads,
        allow_message_ttl: config.delete_markers.is_some(),
        subject_delete_marker_ttl: config.delete_markers,
        ..Default::default()
    }
}

/// What the workers of one kind use, bound to what the owner created: their
/// kind's job consumer, the cancellations, checkpoints and leases buckets,
/// and the results and payloads object stores. Binding only looks up (stream and consumer info),
/// so a worker's NATS user needs no right to create or change any of it.
#[derive(Clone)]
pub struct WorkerTopology {
    /// The JetStream context the handles belong to (events are published
    /// through it).
    pub jetstream: jetstream::Context,
    /// The kind's durable job consumer (`jobs-<kind-slug>`).
    pub jobs: PullConsumer,
    /// Cancellation requests.
    pub cancellations: kv::Store,
    /// Worker checkpoints.
    pub checkpoints: kv::Store,
    /// Per-run leases (only the kind's own keys, `<kind-slug>.*`).
    pub leases: kv::Store,
    /// Large results.
    pub results: object_store::ObjectStore,
    /// Large job payloads (read only).
    pub payloads: object_store::ObjectStore,
}

/// What the webhooks service uses, bound to what the owner created: the
/// consumer of operation record revisions, the deliveries stream and its
/// consumer, the endpoints and delivery records buckets.
#[derive(Clone)]
pub struct WebhooksTopology {
    /// The JetStream context the handles belong to (deliveries are
    /// published through it).
    pub jetstream: jetstream::Context,
    /// The records bucket's own stream (`KV_dossier_operations`), holding
    /// the [`WEBHOOK_EVENTS_CONSUMER`].
    pub records: stream::Stream,
    /// The deliveries stream, holding the [`WEBHOOK_DELIVERIES_CONSUMER`].
    pub webhooks: stream::Stream,
    /// Webhook endpoints.
    pub endpoints: kv::Store,
    /// Webhook delivery records.
    pub deliveries: kv::Store,
}

impl WebhooksTopology {
    /// Binds to the parts of the topology the webhooks service uses. Never
    /// creates or updates anything: what is missing is
    /// [`BindError::Missing`], named, for the caller to report and retry.
    pub async fn bind(js: &jetstream::Context) -> Result<Self, BindError> {
        let records_stream = bucket_stream_name(OPERATIONS_BUCKET);
        let consumer = |name: &str, stream: &str| format!("consumer {name} on stream {stream}");
        let _: PullConsumer = js
            .get_consumer_from_stream(WEBHOOK_EVENTS_CONSUMER, &records_stream)
            .await
            .map_err(|e| consumer_error(consumer(WEBHOOK_EVENTS_CONSUMER, &records_stream), e))?;
        let _: PullConsumer = js
            .get_consumer_from_stream(WEBHOOK_DELIVERIES_CONSUMER, WEBHOOKS_STREAM)
            .await
            .map_err(|e| {
                consumer_error(consumer(WEBHOOK_DELIVERIES_CONSUMER, WEBHOOKS_STREAM), e)
            })?;
        let records = js
            .get_stream(&records_stream)
            .await
            .map_err(|e| lookup_error(format!("stream {records_stream}"), e.into()))?;
        let webhooks = js
            .get_stream(WEBHOOKS_STREAM)
            .await
            .map_err(|e| lookup_error(format!("stream {WEBHOOKS_STREAM}"), e.into()))?;
        Ok(WebhooksTopology {
            jetstream: js.clone(),
            records,
            webhooks,
            endpoints: bind_bucket(js, WEBHOOK_ENDPOINTS_BUCKET).await?,
            deliveries: bind_bucket(js, WEBHOOK_DELIVERIES_BUCKET).await?,
        })
    }
}

/// Binding to the topology failed.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A part of the topology does not exist (yet): its owner has not
    /// created it. Retrying is the answer; the service is not ready.
    #[error("JetStream {what} does not exist (the operations service creates it)")]
    Missing {
        /// The missing stream, consumer, bucket or object store.
        what: String,
    },
    /// The lookup itself failed (the broker unreachable, a permission).
    #[error("cannot look up JetStream {what}: {source}")]
    Lookup {
        /// What was looked up.
        what: String,
        /// Why it failed.
        #[source]
        source: async_nats::Error,
    },
}

impl WorkerTopology {
    /// Binds to the parts of the topology the workers of `kind` use. Never
    /// creates or updates anything: what is missing is [`BindError::Missing`],
    /// named, for the caller to report and retry.
    pub async fn bind(js: &jetstream::Context, kind: Kind) -> Result<Self, BindError> {
        let name = job_consumer(kind);
        let what = format!("consumer {name} on stream {JOBS_STREAM}");
        let jobs: PullConsumer = js
            .get_consumer_from_stream(&name, JOBS_STREAM)
            .await
            .map_err(|e| consumer_error(what, e))?;
        let cancellations = bind_bucket(js, CANCELLATIONS_BUCKET).await?;
        let checkpoints = bind_bucket(js, CHECKPOINTS_BUCKET).await?;
        let leases = bind_bucket(js, LEASES_BUCKET).await?;
        let results = bind_object_store(js, RESULTS_OBJECT_STORE).await?;
        let payloads = bind_object_store(js, PAYLOADS_OBJECT_STORE).await?;
        Ok(WorkerTopology {
            jetstream: js.clone(),
            jobs,
            cancellations,
            checkpoints,
            leases,
            results,
            payloads,
        })
    }
}

async fn bind_object_store(
    js: &jetstream::Context,
    store: &str,
) -> Result<object_store::ObjectStore, BindError> {
    js.get_object_store(store)
        .await
        .map_err(|e| lookup_error(format!("object store {store}"), e.into()))
}

async fn bind_bucket(js: &jetstream::Context, bucket: &str) -> Result<kv::Store, BindError> {
    js.get_key_value(bucket)
        .await
        .map_err(|e| lookup_error(format!("bucket {bucket}"), e.into()))
}

fn consumer_error(what: String, error: ConsumerError) -> BindError {
    if let ConsumerErrorKind::JetStream(e) = error.kind()
        && is_not_found(e.error_code())
    {
        return BindError::Missing { what };
    }
    BindError::Lookup {
        what,
        source: error.into(),
    }
}

/// Missing when the error, or one it was made from, is a stream lookup that
/// found no stream; else a failed lookup.
fn lookup_error(what: String, error: async_nats::Error) -> BindError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = cause {
        if let Some(get) = e.downcast_ref::<GetStreamError>()
            && let GetStreamErrorKind::JetStream(js) = get.kind()
            && is_not_found(js.error_code())
        {
            return BindError::Missing { what };
        }
        cause = e.source();
    }
    BindError::Lookup {
        what,
        source: error,
    }
}

fn is_not_found(code: ErrorCode) -> bool {
    code == ErrorCode::STREAM_NOT_FOUND || code == ErrorCode::CONSUMER_NOT_FOUND
}
