//! The topology is created idempotently, concurrently, and survives a
//! nats-server restart on the same store; its buckets read through their
//! leaders, so a read right after a write sees it on a cluster too.

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::StorageType;
use dossier_broker::{
    JOBS_STREAM, OPERATIONS_BUCKET, RESULTS_OBJECT_STORE, Topology, WorkerTopology,
};
use dossier_contracts::Kind;
use dossier_testkit::{NatsCluster, NatsServer, TestBroker as _};
use futures::StreamExt as _;

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

/// Every KV bucket and object store is read through its stream's leader
/// (`allow_direct` off), including buckets an earlier version created with
/// direct reads on: a follower may answer a direct get before it has
/// applied the write just acknowledged.
#[tokio::test]
async fn buckets_and_object_stores_read_through_their_leader_even_when_made_before() {
    let nats = NatsServer::start().await;
    let js = async_nats::jetstream::new(nats.client().await);
    // What earlier versions made: async-nats' defaults, direct reads on.
    let old = js
        .create_key_value(kv::Config {
            bucket: OPERATIONS_BUCKET.to_owned(),
            storage: StorageType::File,
            ..Default::default()
        })
        .await
        .unwrap();
    old.put("kept", "v".into()).await.unwrap();
    js.create_object_store(async_nats::jetstream::object_store::Config {
        bucket: RESULTS_OBJECT_STORE.to_owned(),
        storage: StorageType::File,
        ..Default::default()
    })
    .await
    .unwrap();

    let topology = Topology::ensure(&js, &nats.topology_config())
        .await
        .unwrap();
    let names: Vec<String> = js
        .stream_names()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
        .await;
    let buckets: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("KV_") || n.starts_with("OBJ_"))
        .collect();
    // Seven of the operations and the workers, two of the webhooks service.
    assert_eq!(buckets.len(), 9, "{names:?}");
    for name in buckets {
        let mut stream = js.get_stream(name).await.unwrap();
        let config = stream.info().await.unwrap().config.clone();
        // The leases are the one exception (see the topology's
        // `BucketConfig::direct_reads`).
        let leases = *name == format!("KV_{}", dossier_broker::LEASES_BUCKET);
        assert_eq!(config.allow_direct, leases, "{name}: direct reads");
    }
    let kept = topology.operations.get("kept").await.unwrap();
    assert_eq!(kept.as_deref(), Some(&b"v"[..]));
}

/// Read your writes at R3, at the broker: through a node that leads
/// nothing, a record, a checkpoint and a result read right after their
/// write are there, thousands of times from concurrent writers. With direct
/// reads a follower answers some of them before it applied the write (seen:
/// 11 of 3,000 sequential and 39 of 4,800 concurrent KV reads missed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_r3_a_read_right_after_a_write_sees_it_through_any_node() {
    const WRITERS: usize = 16;
    const KEYS_PER_WRITER: usize = 150;
    const OBJECTS_PER_WRITER: usize = 10;
    let cluster = NatsCluster::start().await;
    let js = async_nats::jetstream::new(cluster.node_client(0).await);
    let topology = Topology::ensure(&js, &cluster.topology_config())
        .await
        .unwrap();
    let worker = WorkerTopology::bind(&js, Kind::EnrichmentBatch)
        .await
        .unwrap();
    cluster.move_leaders_off(0).await;

    let writers = (0..WRITERS).map(|w| {
        let (operations, checkpoints, results) = (
            topology.operations.clone(),
            worker.checkpoints.clone(),
            worker.results.clone(),
        );
        tokio::spawn(async move {
            let mut misses = Vec::new();
            for i in 0..KEYS_PER_WRITER {
                let key = format!("op-{w}-{i}");
                operations.create(&key, "queued".into()).await.unwrap();
                if operations.entry(&key).await.unwrap().is_none() {
                    misses.push(key.clone());
                }
                let key = format!("{key}.enrichment");
                checkpoints.put(&key, "chunk".into()).await.unwrap();
                if checkpoints.get(&key).await.unwrap().is_none() {
                    misses.push(key);
                }
            }
            for i in 0..OBJECTS_PER_WRITER {
                let name = format!("result-{w}-{i}");
                results
                    .put(name.as_str(), &mut &b"{\"data\":[]}"[..])
                    .await
                    .unwrap();
                if results.get(&name).await.is_err() {
                    misses.push(name);
                }
            }
            misses
        })
    });
    let mut misses = Vec::new();
    for writer in writers.collect::<Vec<_>>() {
        misses.extend(writer.await.unwrap());
    }
    assert!(
        misses.is_empty(),
        "{} of {} reads right after their write missed: {misses:?}",
        misses.len(),
        WRITERS * (2 * KEYS_PER_WRITER + OBJECTS_PER_WRITER)
    );
}
