//! One owner of the topology (SYSTEM.md invariant 12): a worker only binds
//! to what the operations service created, waits (not ready) until it
//! exists, and — on a nats-server running the shipped `auth.conf` — may do
//! its job but nothing to the topology.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use dossier_broker::{
    BrokerConfig, EVENTS_STREAM, JOBS_STREAM, LEASES_BUCKET, PROJECTOR_CONSUMER,
    RESULTS_OBJECT_STORE, Topology, TopologyConfig, job_consumer, job_subject, lease_key, payloads,
};
use dossier_contracts::v1::Job;
use dossier_contracts::{Kind, time_ext};
use dossier_testkit::{NatsServer, init_test_logging, wait_until};
use dossier_worker::{Outcome, Worker, WorkerConfig};
use prost::Message as _;
use serde_json::json;

use crate::helpers::{DEADLINE, KIND, handler_fn};

/// How long a refused request is given to (not) be answered.
const REFUSED_WITHIN: Duration = Duration::from_secs(1);

/// A job of [`KIND`] as the operations service publishes it.
fn job() -> Job {
    Job {
        operation_id: uuid::Uuid::now_v7().to_string(),
        tenant_id: "tenant-a".to_owned(),
        kind: KIND.to_proto() as i32,
        payload_json: b"{}".to_vec(),
        created_at: Some(time_ext::now()),
        ..Default::default()
    }
}

fn succeeding() -> impl dossier_worker::Handler {
    handler_fn(|_ctx, _job| async { Ok(Outcome::Succeeded(json!({"ok": true}))) })
}

#[tokio::test]
async fn a_worker_without_the_topology_is_not_ready_until_the_owner_creates_it() {
    init_test_logging();
    let nats = NatsServer::start().await;
    let broker = nats.broker_config();
    let client = nats.client().await;
    let starting = tokio::spawn(async move {
        Worker::new(client, &broker, WorkerConfig::default(), succeeding()).await
    });

    // Nothing exists: the worker does not create it, it waits.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !starting.is_finished(),
        "the worker started without a topology"
    );
    let js = jetstream::new(nats.client().await);
    assert!(js.get_stream(JOBS_STREAM).await.is_err());

    // The owner creates it; the worker binds and is ready.
    Topology::ensure(&js, &nats.topology_config())
        .await
        .unwrap();
    let worker = tokio::time::timeout(DEADLINE, starting)
        .await
        .expect("the worker binds once the topology exists")
        .unwrap()
        .unwrap();
    assert!(worker.readiness().is_ready());
}

#[tokio::test]
async fn a_worker_cannot_change_the_topology_settings() {
    // Topology settings (retention, delivery limits) are not a worker's
    // to read: no worker service accepts them.
    use clap::CommandFactory as _;
    #[derive(clap::Parser)]
    struct WorkerCli {
        #[command(flatten)]
        service: dossier_worker::WorkerServiceConfig,
    }
    let topology_env = [
        dossier_broker::config::ENV_NATS_REPLICAS,
        dossier_broker::config::ENV_DUPLICATE_WINDOW,
        dossier_broker::config::ENV_EVENTS_MAX_AGE,
        dossier_broker::config::ENV_JOBS_MAX_AGE,
        dossier_broker::config::ENV_RESULTS_MAX_AGE,
        dossier_broker::config::ENV_IDEMPOTENCY_TTL,
        dossier_broker::config::ENV_JOB_ACK_WAIT,
        dossier_broker::config::ENV_JOB_MAX_DELIVER,
        dossier_broker::config::ENV_JOB_MAX_ACK_PENDING,
    ];
    let command = WorkerCli::command();
    let read: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    for name in topology_env {
        assert!(!read.iter().any(|r| r == name), "a worker reads {name}");
    }

    // And a worker that starts after the owner (whose jobs are kept 3 days,
    // not the default 7) leaves the jobs stream as the owner made it.
    init_test_logging();
    let nats = NatsServer::start().await;
    let js = jetstream::new(nats.client().await);
    let owner = TopologyConfig {
        jobs_max_age: Duration::from_secs(3 * 24 * 3600),
        ..nats.topology_config()
    };
    Topology::ensure(&js, &owner).await.unwrap();
    let _worker = Worker::new(
        nats.client().await,
        &nats.broker_config(),
        WorkerConfig::default(),
        succeeding(),
    )
    .await
    .unwrap();
    let mut jobs = js.get_stream(JOBS_STREAM).await.unwrap();
    assert_eq!(
        jobs.info().await.unwrap().config.max_age,
        owner.jobs_max_age
    );
}

/// A server whose users and permissions are the shipped `auth.conf`, each
/// password `pw_<SERVICE>` in place of the `$NATS_PASSWORD_<SERVICE>` that
/// the Kubernetes Secret supplies (as deploy-check's smoke run does).
async fn shipped_auth_server(dir: &Path) -> NatsServer {
    let shipped =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/k8s/base/nats/auth.conf");
    let auth = std::fs::read_to_string(shipped).unwrap();
    let config = dir.join("nats.conf");
    std::fs::write(&config, auth.replace("$NATS_PASSWORD_", "pw_")).unwrap();
    NatsServer::start_with(&["-c", config.to_str().unwrap()]).await
}

async fn connect_as(nats: &NatsServer, user: &str, password: &str) -> async_nats::Client {
    async_nats::ConnectOptions::with_user_and_password(user.to_owned(), password.to_owned())
        .request_timeout(Some(REFUSED_WITHIN))
        .connect(nats.url())
        .await
        .unwrap()
}

/// True unless the JetStream API answered `subject` with success.
async fn refused(client: &async_nats::Client, subject: &str, body: &str) -> bool {
    let answer = tokio::time::timeout(
        REFUSED_WITHIN * 2,
        client.request(subject.to_owned(), body.to_owned().into()),
    )
    .await;
    match answer {
        Ok(Ok(message)) => serde_json::from_slice::<serde_json::Value>(&message.payload)
            .map_or(true, |v| v.get("error").is_some()),
        _ => true,
    }
}

/// True when the JetStream API refuses both purging and deleting `stream`.
async fn cannot_purge_or_delete(client: &async_nats::Client, stream: &str) -> bool {
    refused(client, &format!("$JS.API.STREAM.PURGE.{stream}"), "").await
        && refused(client, &format!("$JS.API.STREAM.DELETE.{stream}"), "").await
}

#[tokio::test]
async fn with_the_shipped_permissions_a_worker_does_its_job_and_nothing_to_the_topology() {
    init_test_logging();
    let dir = tempfile::tempdir().unwrap();
    let nats = shipped_auth_server(dir.path()).await;

    // The owner creates the topology.
    let ops = connect_as(&nats, "operations", "pw_OPERATIONS").await;
    let ops_js = jetstream::new(ops.clone());
    let topology_config = nats.topology_config();
    let topology = Topology::ensure(&ops_js, &topology_config).await.unwrap();
    // Another kind's worker stores a large result.
    let research = jetstream::new(connect_as(&nats, "research-worker", "pw_RESEARCH_WORKER").await);
    research
        .get_object_store(RESULTS_OBJECT_STORE)
        .await
        .unwrap()
        .put("another-operation", &mut &b"their result"[..])
        .await
        .unwrap();

    // What the worker needs works: bind, pull, run, publish its events, ack.
    let worker_client = connect_as(&nats, "search-worker", "pw_SEARCH_WORKER").await;
    let broker = BrokerConfig {
        request_timeout: REFUSED_WITHIN,
        ..nats.broker_config()
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = {
        let seen = seen.clone();
        handler_fn(move |_ctx, job| {
            seen.lock().unwrap().push(job.payload_json.len());
            async { Ok(Outcome::Succeeded(json!({"ok": true}))) }
        })
    };
    let worker = tokio::time::timeout(
        DEADLINE,
        Worker::new(
            worker_client.clone(),
            &broker,
            WorkerConfig::default(),
            handler,
        ),
    )
    .await
    .expect("the worker binds with its own permissions")
    .unwrap();
    // One job with its payload inline, one with it in the payloads store
    // (which the worker reads).
    let inline = job();
    let mut large = job();
    let payload = serde_json::to_vec(&json!({"blob": "x".repeat(300 * 1024)})).unwrap();
    large.payload_ref = Some(
        payloads::store(&topology.payloads, &large.operation_id, &payload)
            .await
            .unwrap(),
    );
    large.payload_json = Vec::new();
    for job in [&inline, &large] {
        ops_js
            .publish(job_subject(KIND), job.encode_to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
        assert!(worker.try_process_one(DEADLINE).await.unwrap());
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![inline.payload_json.len(), payload.len()]
    );
    let mut events = ops_js.get_stream(EVENTS_STREAM).await.unwrap();
    wait_until("the worker's events to be stored", DEADLINE, || {
        let mut events = events.clone();
        async move { events.info().await.unwrap().state.messages >= 4 }
    })
    .await;
    let stored_events = events.info().await.unwrap().state.messages;
    let mut jobs = ops_js.get_stream(JOBS_STREAM).await.unwrap();
    wait_until("the job to be acknowledged", DEADLINE, || {
        let mut jobs = jobs.clone();
        async move { jobs.info().await.unwrap().state.messages == 0 }
    })
    .await;

    let wjs = jetstream::ContextBuilder::new()
        .timeout(REFUSED_WITHIN)
        .build(worker_client.clone());

    // Publishing a job: refused, nothing stored.
    let published = match wjs
        .publish(job_subject(KIND), job().encode_to_vec().into())
        .await
    {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    assert!(!published, "a worker published a job");
    assert_eq!(jobs.info().await.unwrap().state.messages, 0);

    // Updating a stream (e.g. its max age): refused, unchanged.
    let mut changed = jobs.cached_info().config.clone();
    changed.max_age = Duration::from_secs(3600);
    assert!(
        wjs.update_stream(changed).await.is_err(),
        "a worker updated a stream"
    );
    assert_eq!(
        jobs.info().await.unwrap().config.max_age,
        topology_config.jobs_max_age
    );
    assert!(
        wjs.create_stream(stream::Config {
            name: "INTRUDER".to_owned(),
            subjects: vec!["intruder.>".to_owned()],
            ..Default::default()
        })
        .await
        .is_err(),
        "a worker created a stream"
    );

    // Purging or deleting a stream: refused, the events are still there.
    assert!(cannot_purge_or_delete(&worker_client, EVENTS_STREAM).await);
    assert_eq!(events.info().await.unwrap().state.messages, stored_events);

    // Creating a durable consumer (here on another kind's events), or
    // changing another kind's job consumer: refused.
    let other = Kind::ResearchDeep;
    let intruder = consumer::pull::Config {
        durable_name: Some("intruder".to_owned()),
        filter_subject: dossier_broker::event_subject(other),
        ..Default::default()
    };
    assert!(
        wjs.create_consumer_on_stream(intruder, EVENTS_STREAM)
            .await
            .is_err(),
        "a worker created a consumer"
    );
    assert!(
        ops_js
            .get_consumer_from_stream::<consumer::pull::Config, _, _>("intruder", EVENTS_STREAM)
            .await
            .is_err()
    );
    // Changing another kind's job consumer, or even its own (delivery
    // limits are the owner's): refused.
    for (kind, whose) in [(other, "another kind's"), (KIND, "its own")] {
        let changed = consumer::pull::Config {
            durable_name: Some(job_consumer(kind)),
            filter_subject: job_subject(kind),
            ack_policy: consumer::AckPolicy::Explicit,
            max_deliver: 100,
            ..Default::default()
        };
        assert!(
            wjs.create_consumer_on_stream(changed, JOBS_STREAM)
                .await
                .is_err(),
            "a worker changed {whose} job consumer"
        );
    }
    for kind in [other, KIND] {
        let mut consumer: consumer::PullConsumer = ops_js
            .get_consumer_from_stream(job_consumer(kind), JOBS_STREAM)
            .await
            .unwrap();
        assert_eq!(
            consumer.info().await.unwrap().config.max_deliver,
            topology_config.consumer.max_deliver
        );
    }

    // Creating (or changing) the projector: refused.
    let projector = consumer::pull::Config {
        durable_name: Some(PROJECTOR_CONSUMER.to_owned()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(1),
        ..Default::default()
    };
    assert!(
        wjs.create_consumer_on_stream(projector, EVENTS_STREAM)
            .await
            .is_err(),
        "a worker changed the projector"
    );
    let mut projector: consumer::PullConsumer = ops_js
        .get_consumer_from_stream(PROJECTOR_CONSUMER, EVENTS_STREAM)
        .await
        .unwrap();
    assert_eq!(
        projector.info().await.unwrap().config.ack_wait,
        Duration::from_secs(30)
    );

    // Purging the results object store (the only way to remove another
    // operation's result chunks): refused, their result is intact.
    let results_stream = format!("OBJ_{RESULTS_OBJECT_STORE}");
    assert!(cannot_purge_or_delete(&worker_client, &results_stream).await);
    let mut theirs = topology.results.get("another-operation").await.unwrap();
    let mut bytes = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut theirs, &mut bytes)
        .await
        .unwrap();
    assert_eq!(bytes, b"their result");

    // Leases: its own kind's only. Another kind's lease can be neither read
    // nor written (taken over, or marked finished), and stays as it was.
    let research_leases = research.get_key_value(LEASES_BUCKET).await.unwrap();
    let theirs = lease_key(other, "another-operation");
    let revision = research_leases
        .put(theirs.as_str(), "held by research".into())
        .await
        .unwrap();
    let leases = wjs.get_key_value(LEASES_BUCKET).await.unwrap();
    assert!(
        leases.put(theirs.as_str(), "taken".into()).await.is_err(),
        "a worker wrote another kind's lease"
    );
    assert!(
        leases.entry(theirs.as_str()).await.is_err(),
        "a worker read another kind's lease"
    );
    let entry = research_leases
        .entry(theirs.as_str())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.revision, revision);
    // Its own kind's: yes (the jobs above took and finished theirs).
    let own = leases
        .entry(lease_key(KIND, &inline.operation_id))
        .await
        .unwrap();
    assert!(own.is_some(), "the worker's own lease is missing");
}
