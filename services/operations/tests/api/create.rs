//! The accept path: durable accept (invariant 1) and read-your-writes
//! (invariant 2), also across a restart of the service (invariant 4).

use dossier_broker::payloads;
use dossier_contracts::limits::{INLINE_JOB_PAYLOAD_BYTES, NATS_MAX_PAYLOAD};
use dossier_contracts::v1::operation_event::Event;
use dossier_contracts::v1::{Job, ListOperationsRequest, Progressed, Started};
use dossier_contracts::{Kind, Status};
use prost::Message as _;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::{RESEARCH, SEARCH, TestApp, create_request, event_for, signed, status};

#[tokio::test]
async fn created_operations_are_readable_at_once_and_after_a_restart() {
    let mut app = TestApp::spawn().await;
    let response = app
        .create("acme", Kind::SearchPeople, SEARCH, "")
        .await
        .unwrap();
    assert!(response.created);
    let op = response.operation.unwrap();
    assert_eq!(status(&op), Status::Queued);
    assert_eq!(op.tenant_id, "acme");
    // What answers leave out is in the record.
    let record = app.record(&op.id).await;
    assert_eq!(record.request_id, "0af76519-16cd-43dd-8448-eb211c80319c");
    assert_eq!(record.attempt, 0);
    assert!(op.created_at.is_some() && op.updated_at.is_some());
    assert_eq!(uuid::Uuid::parse_str(&op.id).unwrap().get_version_num(), 7);

    // Read your writes: no waiting.
    assert_eq!(app.get("acme", &op.id).await.unwrap(), op);

    app.stop_replica(0).await;
    // Events published while the service is down are projected after.
    app.publish_event(&event_for(&op, 1, Event::Started(Started {})))
        .await;
    app.publish_event(&event_for(
        &op,
        1,
        Event::Progressed(Progressed { progress: 30 }),
    ))
    .await;
    app.start_replica().await;

    let got = app.get("acme", &op.id).await.unwrap();
    assert_eq!(got.id, op.id);
    let projected = app
        .wait_for_op("acme", &op.id, "progress 30", |o| o.progress == Some(30))
        .await;
    assert_eq!(status(&projected), Status::Processing);
    assert!(projected.started_at.is_some());
    assert_eq!(app.record(&op.id).await.attempt, 1);

    // The list index was rebuilt from KV.
    let list = app
        .list(ListOperationsRequest {
            tenant_id: "acme".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(list.operations.len(), 1);
    assert_eq!(list.operations[0].id, op.id);
}

#[tokio::test]
async fn the_job_is_stored_before_the_answer_with_the_operation_id_as_message_id() {
    let app = TestApp::spawn().await;
    let payload = r#"{"targetAccount":{"domain":"acme.com"}}"#;
    let op = app
        .create("acme", Kind::SearchPeople, payload, "")
        .await
        .unwrap()
        .operation
        .unwrap();

    assert_eq!(app.job_count().await, 1);
    let stored = app
        .topology
        .jobs
        .get_last_raw_message_by_subject(&dossier_broker::job_subject(Kind::SearchPeople))
        .await
        .unwrap();
    assert_eq!(
        stored
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .unwrap()
            .as_str(),
        op.id
    );
    assert!(stored.headers.get("traceparent").is_some());
    let job = Job::decode(stored.payload).unwrap();
    assert_eq!(job.operation_id, op.id);
    assert_eq!(job.tenant_id, "acme");
    assert_eq!(job.kind, Kind::SearchPeople.to_proto() as i32);
    assert_eq!(job.payload_json, payload.as_bytes());
    assert_eq!(job.created_at, op.created_at);
    // The request id and the trace context travel in the job's headers.
    let header = |name: &str| stored.headers.get(name).unwrap().as_str().to_owned();
    assert_eq!(
        header("Dossier-Request-Id"),
        app.record(&op.id).await.request_id
    );
    assert!(header("traceparent").contains("0af7651916cd43dd8448eb211c80319c"));

    let info = app.topology.jobs.cached_info();
    assert_eq!(
        info.config.storage,
        async_nats::jetstream::stream::StorageType::File
    );
}

#[tokio::test]
async fn a_large_payload_is_stored_before_its_job_which_refers_to_it() {
    let app = TestApp::spawn().await;
    // Larger than tonic's default 4 MiB message and than NATS's 1 MiB: the
    // largest batch, with long names.
    let name = "x".repeat(480);
    let records: Vec<String> = (0..10_000)
        .map(|i| format!(r#"{{"fullName":"{name}","companyName":"Acme","externalId":"{i}"}}"#))
        .collect();
    let payload = format!(r#"{{"records":[{}]}}"#, records.join(","));
    assert!(payload.len() > 4 * 1024 * 1024);
    assert!(payload.len() > INLINE_JOB_PAYLOAD_BYTES);
    let op = app
        .create("acme", Kind::EnrichmentBatch, &payload, "big-1")
        .await
        .unwrap()
        .operation
        .unwrap();

    // The job is small and refers to the stored payload.
    let stored = app
        .topology
        .jobs
        .get_last_raw_message_by_subject(&dossier_broker::job_subject(Kind::EnrichmentBatch))
        .await
        .unwrap();
    assert!(
        stored.payload.len() < 1024,
        "{} bytes",
        stored.payload.len()
    );
    let job = Job::decode(stored.payload).unwrap();
    assert!(job.payload_json.is_empty());
    let reference = job.payload_ref.unwrap();
    assert_eq!(reference.object, op.id);
    assert_eq!(reference.size, payload.len() as u64);
    assert_eq!(reference.sha256, payloads::sha256_hex(payload.as_bytes()));
    let bytes = payloads::load(&app.topology.payloads, &reference)
        .await
        .unwrap();
    assert_eq!(bytes, payload.as_bytes());

    // An idempotent retry answers the same operation: one job, one payload.
    let again = app
        .create("acme", Kind::EnrichmentBatch, &payload, "big-1")
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.operation.unwrap().id, op.id);
    assert_eq!(app.job_count().await, 1);

    // The jobs stream takes no message the server would refuse.
    let info = app.topology.jobs.cached_info();
    assert_eq!(info.config.max_message_size, NATS_MAX_PAYLOAD as i32);
}

#[tokio::test]
async fn with_the_broker_down_create_is_unavailable_and_nothing_is_half_accepted() {
    let mut app = TestApp::spawn().await;
    app.nats.kill();
    app.replicas[0].wait_health(ServingStatus::NotServing).await;

    for key in ["", "key-1"] {
        let error = app
            .create("acme", Kind::ResearchDeep, RESEARCH, key)
            .await
            .unwrap_err();
        assert_eq!(error.code(), Code::Unavailable, "{error:?}");
    }

    app.nats.start_again().await;
    app.replicas[0].wait_health(ServingStatus::Serving).await;
    let js = async_nats::jetstream::new(app.nats.client().await);
    app.js = js;
    assert_eq!(app.record_count().await, 0);
    assert_eq!(app.job_count().await, 0);

    // And the service accepts again.
    let op = app.create_ok("acme", Kind::ResearchDeep).await;
    assert_eq!(app.get("acme", &op.id).await.unwrap().id, op.id);
}

#[tokio::test]
async fn invalid_requests_are_rejected() {
    let app = TestApp::spawn().await;
    let mut client = app.client();
    let valid = || create_request("acme", Kind::SearchPeople, SEARCH, "");

    let cases = [
        ("empty tenant", {
            let mut r = valid();
            r.tenant_id = String::new();
            r
        }),
        ("tenant with a dot", {
            let mut r = valid();
            r.tenant_id = "a.b".to_owned();
            r
        }),
        ("no kind", {
            let mut r = valid();
            r.kind = 0;
            r
        }),
        ("not JSON", {
            let mut r = valid();
            r.payload_json = b"{nope".to_vec();
            r
        }),
        ("key too long", {
            let mut r = valid();
            r.idempotency_key = "k".repeat(256);
            r
        }),
        // What the gateway refuses, the service refuses too (a direct
        // caller skips the gateway).
        ("key with a control character", {
            let mut r = valid();
            r.idempotency_key = "key\u{7}bell".to_owned();
            r
        }),
        ("key with a space", {
            let mut r = valid();
            r.idempotency_key = "a b".to_owned();
            r
        }),
        ("key outside ASCII", {
            let mut r = valid();
            r.idempotency_key = "é".repeat(10);
            r
        }),
        ("search without a target account", {
            let mut r = valid();
            r.payload_json = br#"{"targetAccount":{}}"#.to_vec();
            r
        }),
        ("search with an unknown field", {
            let mut r = valid();
            r.payload_json = br#"{"targetAccount":{"name":"Acme"},"blob":1}"#.to_vec();
            r
        }),
        ("an empty batch", {
            let mut r = valid();
            r.kind = Kind::EnrichmentBatch.to_proto() as i32;
            r.payload_json = br#"{"records":[]}"#.to_vec();
            r
        }),
        ("research without a subject", {
            let mut r = valid();
            r.kind = Kind::ResearchDeep.to_proto() as i32;
            r.payload_json = br#"{"subject":{}}"#.to_vec();
            r
        }),
        ("a payload of another kind", {
            let mut r = valid();
            r.kind = Kind::ResearchDeep.to_proto() as i32;
            r
        }),
    ];
    for (name, request) in cases {
        let error = client.create_operation(signed(request)).await.unwrap_err();
        assert_eq!(error.code(), Code::InvalidArgument, "{name}: {error:?}");
    }
    assert_eq!(app.job_count().await, 0);
    assert_eq!(app.record_count().await, 0);

    let mut longest = valid();
    longest.idempotency_key = "~".repeat(255);
    client.create_operation(signed(longest)).await.unwrap();
}

#[tokio::test]
async fn the_service_carries_on_through_a_broker_restart() {
    let mut app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;

    app.nats.restart().await;
    app.replicas[0].wait_health(ServingStatus::Serving).await;
    app.js = async_nats::jetstream::new(app.nats.client().await);

    // Records and jobs survived (file storage), and projection resumes.
    assert_eq!(app.get("acme", &op.id).await.unwrap().id, op.id);
    assert_eq!(app.job_count().await, 1);
    app.publish_event(&event_for(&op, 1, Event::Started(Started {})))
        .await;
    app.wait_for_status("acme", &op.id, Status::Processing)
        .await;
    let second = app.create_ok("acme", Kind::SearchPeople).await;
    assert_eq!(app.job_count().await, 2);
    assert_eq!(app.get("acme", &second.id).await.unwrap().id, second.id);
}

#[tokio::test]
async fn an_accept_that_stored_nothing_releases_its_key_and_says_so() {
    let app = TestApp::spawn().await;
    // The payloads store is gone (an operator's mistake): a large payload
    // cannot be stored, so the accept fails before its job.
    app.js
        .delete_object_store(dossier_broker::PAYLOADS_OBJECT_STORE)
        .await
        .unwrap();
    let name = "x".repeat(480);
    let big = |company: &str| {
        let records: Vec<String> = (0..2_000)
            .map(|i| {
                format!(r#"{{"fullName":"{name}","companyName":"{company}","externalId":"{i}"}}"#)
            })
            .collect();
        format!(r#"{{"records":[{}]}}"#, records.join(","))
    };
    let error = app
        .create("acme", Kind::EnrichmentBatch, &big("Acme"), "key-released")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unavailable, "{error:?}");
    assert_eq!(app.record_count().await, 0);
    assert_eq!(app.job_count().await, 0);

    // The store is back: a corrected body may use the key at once (the
    // claim was released, not kept for 24 hours).
    dossier_broker::Topology::ensure(&app.js, &app.topology_config)
        .await
        .unwrap();
    let created = app
        .create(
            "acme",
            Kind::EnrichmentBatch,
            &big("Globex"),
            "key-released",
        )
        .await
        .unwrap();
    assert!(created.created);
    assert_eq!(app.job_count().await, 1);
}

#[tokio::test]
async fn an_accept_whose_job_may_be_stored_names_the_operation_and_settles_it() {
    let app = TestApp::spawn().await;
    // The jobs stream is gone for a moment: the publish fails after the
    // accept began, so its outcome is unknown to the caller.
    app.js
        .delete_stream(dossier_broker::JOBS_STREAM)
        .await
        .unwrap();
    let error = app
        .create("acme", Kind::SearchPeople, SEARCH, "key-unknown")
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::DeadlineExceeded, "{error:?}");
    let id = error
        .metadata()
        .get(dossier_contracts::v1::OPERATION_ID_METADATA)
        .expect("the operation is named")
        .to_str()
        .unwrap()
        .to_owned();

    // The stream is back: the service settles the accept by itself — the
    // job is stored once and the record appears, so polling tells the truth.
    dossier_broker::Topology::ensure(&app.js, &app.topology_config)
        .await
        .unwrap();
    let op = app.wait_for_status("acme", &id, Status::Queued).await;
    assert_eq!(op.id, id);
    assert_eq!(app.job_count().await, 1);
    // A retry with the key answers the same operation and stores no job.
    let retry = app
        .create("acme", Kind::SearchPeople, SEARCH, "key-unknown")
        .await
        .unwrap();
    assert!(!retry.created);
    assert_eq!(retry.operation.unwrap().id, id);
    assert_eq!(app.job_count().await, 1);
}
