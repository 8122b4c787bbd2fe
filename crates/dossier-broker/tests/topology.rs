//! The topology is created idempotently, concurrently, and survives a
//! nats-server restart on the same store.

use dossier_broker::{JOBS_STREAM, OPERATIONS_BUCKET, Topology};
use dossier_testkit::NatsServer;

#[tokio::test]
async fn topology_is_idempotent_concurrent_and_durable() {
    let mut nats = NatsServer::start().await;
    let cfg = nats.topology_config();
    let js = async_nats::jetstream::new(nats.client().await);

    // Several services starting at once.
    let (a, b, c) = tokio::join!(
        Topology::ensure(&js, &cfg),
        Topology::ensure(&js, &cfg),
        Topology::ensure(&js, &cfg)
    );
    a.unwrap();
    b.unwrap();
    let topology = c.unwrap();
    topology.operations.put("k", "v".into()).await.unwrap();

    let mut info = js.get_stream(JOBS_STREAM).await.unwrap();
    let info = info.info().await.unwrap();
    assert_eq!(
        info.config.storage,
        async_nats::jetstream::stream::StorageType::File
    );
    assert_eq!(
        info.config.retention,
        async_nats::jetstream::stream::RetentionPolicy::WorkQueue
    );

    nats.restart().await;
    let js = async_nats::jetstream::new(nats.client().await);
    let again = Topology::ensure(&js, &cfg).await.unwrap();
    let kv = js.get_key_value(OPERATIONS_BUCKET).await.unwrap();
    assert_eq!(kv.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(again.jobs.cached_info().config.name, JOBS_STREAM);
}

/// Every stream, bucket and object store has a byte limit and, but for the
/// advisories, refuses new writes when full instead of dropping what it
/// holds; events go once projected; records can carry their own TTL. An
/// older topology (events kept by limits, object stores without limits) is
/// brought to this by `ensure`.
#[tokio::test]
async fn every_store_is_bounded_and_refuses_rather_than_drops() {
    use async_nats::jetstream::stream::{self, DiscardPolicy, RetentionPolicy};
    use dossier_broker::{EVENTS_STREAM, RESULTS_OBJECT_STORE};

    let nats = NatsServer::start().await;
    let cfg = nats.topology_config();
    let js = async_nats::jetstream::new(nats.client().await);
    // What an earlier release left behind.
    js.create_stream(stream::Config {
        name: EVENTS_STREAM.to_owned(),
        subjects: vec!["dossier.events.>".to_owned()],
        retention: RetentionPolicy::Limits,
        ..Default::default()
    })
    .await
    .unwrap();
    js.create_object_store(async_nats::jetstream::object_store::Config {
        bucket: RESULTS_OBJECT_STORE.to_owned(),
        ..Default::default()
    })
    .await
    .unwrap();

    Topology::ensure(&js, &cfg).await.unwrap();

    let limits = &cfg.limits;
    let expected = [
        (JOBS_STREAM.to_owned(), limits.jobs_max_bytes),
        (EVENTS_STREAM.to_owned(), limits.events_max_bytes),
        (
            dossier_broker::ADVISORIES_STREAM.to_owned(),
            limits.advisories_max_bytes,
        ),
        (
            format!("KV_{OPERATIONS_BUCKET}"),
            limits.operations_max_bytes,
        ),
        (
            format!("KV_{}", dossier_broker::IDEMPOTENCY_BUCKET),
            limits.idempotency_max_bytes,
        ),
        (
            format!("KV_{}", dossier_broker::CANCELLATIONS_BUCKET),
            limits.cancellations_max_bytes,
        ),
        (
            format!("KV_{}", dossier_broker::CHECKPOINTS_BUCKET),
            limits.checkpoints_max_bytes,
        ),
        (
            format!("KV_{}", dossier_broker::LEASES_BUCKET),
            limits.leases_max_bytes,
        ),
        (
            format!("OBJ_{RESULTS_OBJECT_STORE}"),
            limits.results_max_bytes,
        ),
        (
            format!("OBJ_{}", dossier_broker::PAYLOADS_OBJECT_STORE),
            limits.payloads_max_bytes,
        ),
    ];
    for (name, max_bytes) in expected {
        let mut stream = js.get_stream(&name).await.unwrap();
        let config = stream.info().await.unwrap().config.clone();
        assert!(max_bytes > 0, "{name} has a default limit");
        assert_eq!(config.max_bytes, max_bytes, "{name}'s byte limit");
        if name != dossier_broker::ADVISORIES_STREAM {
            assert_eq!(config.discard, DiscardPolicy::New, "{name} drops nothing");
        }
    }
    let mut events = js.get_stream(EVENTS_STREAM).await.unwrap();
    assert_eq!(
        events.info().await.unwrap().config.retention,
        RetentionPolicy::Interest,
        "events go once projected"
    );
    let mut records = js
        .get_stream(format!("KV_{OPERATIONS_BUCKET}"))
        .await
        .unwrap();
    let records = records.info().await.unwrap().config.clone();
    assert!(records.allow_message_ttl, "records carry their own TTL");
    assert!(records.subject_delete_marker_ttl.is_some());
}

/// Settings that do not fit together stop the owner at start, naming them.
#[tokio::test]
async fn a_retention_shorter_than_the_jobs_max_age_is_refused() {
    let nats = NatsServer::start().await;
    let cfg = dossier_broker::TopologyConfig {
        operation_retention: std::time::Duration::from_secs(60),
        ..nats.topology_config()
    };
    let js = async_nats::jetstream::new(nats.client().await);
    let error = Topology::ensure(&js, &cfg).await.err().unwrap();
    assert!(
        format!("{error}").contains(dossier_broker::config::ENV_JOBS_MAX_AGE),
        "{error}"
    );
}
