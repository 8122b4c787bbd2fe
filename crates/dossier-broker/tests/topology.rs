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
