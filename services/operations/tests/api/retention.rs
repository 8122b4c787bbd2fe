//! Retention and storage limits: an operation expires with everything it
//! stored, reads of it answer "expired" (the gateway's 410), the list and
//! its index drop it; events go once projected; a full jobs stream refuses
//! new accepts and keeps what is queued.

use std::time::{Duration, SystemTime};

use dossier_contracts::v1::operation_event::Event;
use dossier_contracts::v1::{
    ListOperationsRequest, OperationEvent, OperationView, Progressed, ResultRef, Succeeded,
    result_ref,
};
use dossier_contracts::{Kind, Status, reasons};
use dossier_testkit::wait_until;
use futures::StreamExt as _;
use tonic_types::StatusExt as _;

use crate::helpers::{DEADLINE, TestApp, event_for, status};

/// Retention of these tests: short, so operations expire during the test.
const RETENTION: Duration = Duration::from_secs(3);

/// A stack whose operations expire `RETENTION` after their creation (jobs
/// and idempotency keys may not outlive them).
async fn short_lived() -> TestApp {
    TestApp::spawn_with(|cfg| {
        cfg.operation_retention = RETENTION;
        cfg.jobs_max_age = Duration::from_secs(2);
        cfg.idempotency_ttl = Duration::from_secs(1);
        cfg.duplicate_window = Duration::from_secs(1);
    })
    .await
}

fn reason(status: &tonic::Status) -> Option<String> {
    status
        .get_details_error_info()
        .filter(|info| info.domain == reasons::DOMAIN)
        .map(|info| info.reason)
}

fn is_expired(result: &Result<OperationView, tonic::Status>) -> bool {
    matches!(result, Err(s) if s.code() == tonic::Code::NotFound
        && reason(s).as_deref() == Some(reasons::OPERATION_EXPIRED))
}

/// The worker's event: `op` succeeded with the result at `location`.
fn succeeded(op: &OperationView, location: result_ref::Location, size: usize) -> OperationEvent {
    event_for(
        op,
        1,
        Event::Succeeded(Succeeded {
            result: Some(ResultRef {
                location: Some(location),
                size_bytes: size as u64,
            }),
        }),
    )
}

/// A batch payload over the inline limit, so the accept stores it in the
/// payloads object store.
fn large_batch() -> String {
    let records: Vec<String> = (0..6_000)
        .map(|i| format!(r#"{{"email":"person-{i}@example.com","fullName":"Person Number {i}"}}"#))
        .collect();
    let payload = format!(r#"{{"records":[{}]}}"#, records.join(","));
    assert!(payload.len() > 300 * 1024);
    payload
}

#[tokio::test]
async fn an_expired_operation_goes_with_its_record_result_payload_and_checkpoints() {
    let app = short_lived().await;
    let created = app
        .create("acme", Kind::EnrichmentBatch, &large_batch(), "")
        .await
        .unwrap()
        .operation
        .unwrap();
    let id = created.id.clone();
    // expiresAt is the creation plus the retention.
    let created_at = SystemTime::try_from(created.created_at.unwrap()).unwrap();
    let expires_at = SystemTime::try_from(created.expires_at.unwrap()).unwrap();
    assert_eq!(expires_at.duration_since(created_at).unwrap(), RETENTION);
    // What a worker stores for it: a large result, checkpoints, and a
    // cancellation marker.
    let topology = &app.topology;
    assert!(topology.payloads.info(&id).await.is_ok(), "payload stored");
    let result = format!(r#"{{"data":[{}]}}"#, vec!["1"; 100_000].join(","));
    // Named as workers name result objects: `<operation>.<run>`.
    let result_name = format!("{id}.7");
    topology
        .results
        .put(result_name.as_str(), &mut result.as_bytes())
        .await
        .unwrap();
    for chunk in ["chunk-0", "chunk-1"] {
        topology
            .checkpoints
            .put(format!("{id}.{chunk}"), "done".into())
            .await
            .unwrap();
    }
    topology.cancellations.put(&id, "{}".into()).await.unwrap();
    let stored = result_ref::Location::ObjectName(result_name.clone());
    app.publish_event(&succeeded(&created, stored, result.len()))
        .await;

    // Past its expiry: "expired", for its tenant and for any other alike
    // (an id older than the retention tells nothing of who had it).
    wait_until("the operation to expire", DEADLINE, || async {
        is_expired(&app.get("acme", &id).await)
    })
    .await;
    assert!(is_expired(&app.get("globex", &id).await));
    // A fresh id no one has is plain "not found".
    let unknown = app.get("acme", &uuid::Uuid::now_v7().to_string()).await;
    assert!(
        matches!(&unknown, Err(s) if s.code() == tonic::Code::NotFound && reason(s).is_none()),
        "{unknown:?}"
    );

    // Everything it stored goes.
    let records = app
        .js
        .get_key_value(dossier_broker::OPERATIONS_BUCKET)
        .await
        .unwrap();
    wait_until("the record to be deleted", DEADLINE, || async {
        records.get(&id).await.unwrap().is_none()
    })
    .await;
    // An object store keeps a small tombstone of a deleted object; its
    // chunks are purged.
    let gone = |store: async_nats::jetstream::object_store::ObjectStore, name: String| async move {
        let tombstone = store.info(&name).await.map(|info| info.deleted);
        store.get(&name).await.is_err() && tombstone.unwrap_or(true)
    };
    wait_until("the result and payload to be deleted", DEADLINE, || async {
        gone(topology.results.clone(), result_name.clone()).await
            && gone(topology.payloads.clone(), id.clone()).await
    })
    .await;
    for store in ["OBJ_dossier_results", "OBJ_dossier_payloads"] {
        let mut stream = app.js.get_stream(store).await.unwrap();
        let bytes = stream.info().await.unwrap().state.bytes;
        assert!(bytes < 1024, "{store} still holds {bytes} bytes");
    }
    wait_until(
        "the checkpoints and marker to be purged",
        DEADLINE,
        || async {
            let checkpoints = topology.checkpoints.keys().await.unwrap().count().await;
            let cancellations = topology.cancellations.keys().await.unwrap().count().await;
            checkpoints == 0 && cancellations == 0
        },
    )
    .await;

    // A late event does not bring it back.
    app.publish_event(&event_for(
        &created,
        2,
        Event::Progressed(Progressed { progress: 50 }),
    ))
    .await;
    app.wait_projected().await;
    assert!(records.get(&id).await.unwrap().is_none());
    assert!(is_expired(&app.get("acme", &id).await));
}

#[tokio::test]
async fn expired_operations_leave_the_list_and_its_index() {
    let app = short_lived().await;
    let first = app.create_ok("acme", Kind::SearchPeople).await;
    let second = app.create_ok("acme", Kind::SearchPeople).await;
    wait_until("both to expire", DEADLINE, || async {
        is_expired(&app.get("acme", &first.id).await)
            && is_expired(&app.get("acme", &second.id).await)
    })
    .await;
    // A page of one: were the ids still indexed, the page would be empty
    // but point at a next one.
    async fn nothing_listed(app: &TestApp) -> bool {
        let page = app
            .list(ListOperationsRequest {
                tenant_id: "acme".to_owned(),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        page.operations.is_empty() && page.next_cursor.is_empty()
    }
    wait_until("the list index to drop them", DEADLINE, || {
        nothing_listed(&app)
    })
    .await;
    // A replica started now rebuilds its index without them.
    let mut app = app;
    app.stop_replica(0).await;
    app.start_replica().await;
    assert!(nothing_listed(&app).await);
}

#[tokio::test]
async fn an_id_older_than_the_retention_is_expired_for_every_tenant() {
    // Default retention (30 days): an id made 31 days ago.
    let app = TestApp::spawn().await;
    let old = SystemTime::now() - Duration::from_secs(31 * 24 * 3600);
    let since = old.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, since.as_secs(), since.subsec_nanos());
    let id = uuid::Uuid::new_v7(ts).to_string();
    for tenant in ["acme", "globex"] {
        assert!(is_expired(&app.get(tenant, &id).await), "{tenant}");
    }
    // And an operation that exists is not expired for its tenant, and only
    // "not found" for another.
    let op = app.create_ok("acme", Kind::SearchPeople).await;
    assert!(app.get("acme", &op.id).await.is_ok());
    let foreign = app.get("globex", &op.id).await;
    assert!(
        matches!(&foreign, Err(s) if s.code() == tonic::Code::NotFound && reason(s).is_none()),
        "{foreign:?}"
    );
}

#[tokio::test]
async fn a_projected_event_is_not_kept_beside_its_record() {
    let app = TestApp::spawn().await;
    let op = app.create_ok("acme", Kind::SearchPeople).await;
    let result = br#"{"data":[{"fullName":"Ada"}],"meta":{}}"#;
    let inline = result_ref::Location::InlineJson(result.to_vec());
    app.publish_event(&succeeded(&op, inline, result.len()))
        .await;
    let done = app.wait_for_status("acme", &op.id, Status::Succeeded).await;
    assert_eq!(done.result_json.as_deref(), Some(&result[..]));
    app.wait_projected().await;
    // The result lives in the record only: the event is gone once acked.
    wait_until("the projected event to be removed", DEADLINE, || async {
        let mut events = app
            .js
            .get_stream(dossier_broker::EVENTS_STREAM)
            .await
            .unwrap();
        events.info().await.unwrap().state.messages == 0
    })
    .await;
}

#[tokio::test]
async fn a_full_jobs_stream_refuses_accepts_and_keeps_the_queued_jobs() {
    let app = TestApp::spawn_with(|cfg| cfg.limits.jobs_max_bytes = 4 * 1024).await;
    let mut accepted = Vec::new();
    let refused = loop {
        assert!(accepted.len() < 200, "the jobs stream never filled up");
        match app
            .create("acme", Kind::SearchPeople, crate::helpers::SEARCH, "")
            .await
        {
            Ok(created) => accepted.push(created.operation.unwrap().id),
            Err(refused) => break refused,
        }
    };
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert_eq!(reason(&refused).as_deref(), Some(reasons::STORAGE_FULL));
    assert!(!accepted.is_empty());
    // Nothing queued was dropped to make room.
    assert_eq!(app.job_count().await, accepted.len() as u64);
    for id in &accepted {
        assert_eq!(status(&app.get("acme", id).await.unwrap()), Status::Queued);
    }

    // Room comes back as the queue drains: a worker takes one job.
    let jobs = app.job_consumer(Kind::SearchPeople).await;
    let mut batch = jobs.fetch().max_messages(1).messages().await.unwrap();
    let job = batch.next().await.unwrap().unwrap();
    job.double_ack().await.unwrap();
    let again = app
        .create("acme", Kind::SearchPeople, crate::helpers::SEARCH, "")
        .await;
    assert!(again.is_ok(), "{again:?}");
}
