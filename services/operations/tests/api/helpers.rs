//! `TestApp`: a real nats-server, the real operations service (one or more
//! replicas, in-process, on port 0) and typed helpers.

use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use dossier_broker::{BrokerConfig, Topology, TopologyConfig};
use dossier_contracts::v1::operation_event::Event;
use dossier_contracts::v1::operations_client::OperationsClient;
use dossier_contracts::v1::{
    CancelOperationRequest, CreateOperationRequest, CreateOperationResponse, GetOperationRequest,
    ListOperationsRequest, ListOperationsResponse, Operation, OperationEvent, OperationView,
    Tenanted,
};
use dossier_contracts::{Kind, Status, time_ext};
use dossier_testkit::{NatsServer, init_test_logging, wait_for, wait_until};
use futures::StreamExt as _;
use operations::{App, Config};
use prost::Message as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long any condition may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// One running operations service.
pub struct Replica {
    pub client: OperationsClient<Channel>,
    pub health: HealthClient<Channel>,
    token: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Replica {
    /// Shuts the replica down gracefully and waits until it stopped.
    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }

    /// The health status of the whole server.
    pub async fn health(&self) -> Option<ServingStatus> {
        let mut health = self.health.clone();
        let response = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?;
        ServingStatus::try_from(response.into_inner().status).ok()
    }

    /// Waits until the replica reports `status`.
    pub async fn wait_health(&self, status: ServingStatus) {
        wait_until(&format!("health {status:?}"), DEADLINE, || async {
            self.health().await == Some(status)
        })
        .await;
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// A nats-server, the topology, and replicas of the service.
pub struct TestApp {
    // Declared first: dropped (stopped) before the server goes away.
    pub replicas: Vec<Replica>,
    pub broker: BrokerConfig,
    /// What the service (the topology's owner) creates the topology with.
    pub topology_config: TopologyConfig,
    pub js: jetstream::Context,
    pub topology: Topology,
    pub nats: NatsServer,
}

impl TestApp {
    /// A server and one ready replica.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// Like [`TestApp::spawn`], with topology settings adjusted first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut TopologyConfig)) -> TestApp {
        init_test_logging();
        dossier_telemetry::init_propagator();
        let nats = NatsServer::start().await;
        let broker = nats.broker_config();
        let mut topology_config = nats.topology_config();
        adjust(&mut topology_config);
        let js = jetstream::new(nats.client().await);
        let topology = Topology::ensure(&js, &topology_config).await.unwrap();
        let mut app = TestApp {
            replicas: Vec::new(),
            broker,
            topology_config,
            js,
            topology,
            nats,
        };
        app.start_replica().await;
        app
    }

    /// A replica's configuration: this test's broker and topology.
    pub fn config(&self) -> Config {
        let mut config = Config::new(
            self.broker.clone(),
            vec![dossier_testkit::service_keys().public_key().to_owned()],
        );
        config.topology = self.topology_config.clone();
        config
    }

    /// Builds and runs one more replica and waits until it is SERVING.
    pub async fn start_replica(&mut self) -> usize {
        let app = App::build(self.config()).await.unwrap();
        let addr = app.grpc_addr();
        let token = CancellationToken::new();
        let handle = tokio::spawn(app.run(token.clone()));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        let replica = Replica {
            client: OperationsClient::new(channel.clone()),
            health: HealthClient::new(channel),
            token,
            handle: Some(handle),
        };
        replica.wait_health(ServingStatus::Serving).await;
        self.replicas.push(replica);
        self.replicas.len() - 1
    }

    /// Stops replica `i` gracefully.
    pub async fn stop_replica(&mut self, i: usize) {
        self.replicas.remove(i).stop().await;
    }

    /// The first replica's client.
    pub fn client(&self) -> OperationsClient<Channel> {
        self.replicas[0].client.clone()
    }

    pub async fn create(
        &self,
        tenant: &str,
        kind: Kind,
        payload: &str,
        idempotency_key: &str,
    ) -> Result<CreateOperationResponse, tonic::Status> {
        self.client()
            .create_operation(from_gateway(create_request(
                tenant,
                kind,
                payload,
                idempotency_key,
            )))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Creates an operation that must succeed and returns it.
    pub async fn create_ok(&self, tenant: &str, kind: Kind) -> OperationView {
        let response = self
            .create(tenant, kind, valid_payload(kind), "")
            .await
            .unwrap();
        assert!(response.created);
        response.operation.unwrap()
    }

    pub async fn get(&self, tenant: &str, id: &str) -> Result<OperationView, tonic::Status> {
        get_on(&self.client(), tenant, id).await
    }

    pub async fn cancel(&self, tenant: &str, id: &str) -> Result<OperationView, tonic::Status> {
        self.client()
            .cancel_operation(signed(CancelOperationRequest {
                tenant_id: tenant.to_owned(),
                id: id.to_owned(),
            }))
            .await
            .map(|r| r.into_inner().operation.unwrap())
    }

    pub async fn list(
        &self,
        request: ListOperationsRequest,
    ) -> Result<ListOperationsResponse, tonic::Status> {
        self.client()
            .list_operations(signed(request))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Takes `op`'s lease as a worker's run does (a live hold for a minute),
    /// so that the service sees a run holding it.
    pub async fn hold_lease(&self, op: &OperationView) {
        use dossier_broker::lease::{Held, Lease, State};
        let expires_at = std::time::SystemTime::now() + Duration::from_secs(60);
        let lease = Lease {
            worker_id: "test-worker".to_owned(),
            attempt: 1,
            nonce: 7,
            cancel_requested: false,
            state: Some(State::Held(Held {
                expires_at: Some(expires_at.into()),
            })),
        };
        self.put_lease(op, lease).await;
    }

    /// Writes `op`'s lease entry as it is.
    pub async fn put_lease(&self, op: &OperationView, lease: dossier_broker::lease::Lease) {
        let key = dossier_broker::lease_key(Kind::from_proto(op.kind).unwrap(), &op.id);
        self.topology
            .leases
            .put(key, lease.to_bytes())
            .await
            .unwrap();
    }

    /// What `op`'s lease entry says now.
    pub async fn lease(&self, op: &OperationView) -> dossier_broker::lease::Found {
        let key = dossier_broker::lease_key(Kind::from_proto(op.kind).unwrap(), &op.id);
        let entry = self.topology.leases.entry(key).await.unwrap();
        dossier_broker::lease::read(entry.as_ref()).0
    }

    /// Publishes an event as a worker does (acked, `Nats-Msg-Id` = event id).
    pub async fn publish_event(&self, event: &OperationEvent) {
        self.publish_event_of_request(event, "").await;
    }

    /// [`TestApp::publish_event`] with the request id a worker's event
    /// headers carry (`Dossier-Request-Id`).
    pub async fn publish_event_of_request(&self, event: &OperationEvent, request_id: &str) {
        let kind = Kind::from_proto(event.kind).unwrap();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event.event_id.as_str());
        if !request_id.is_empty() {
            headers.insert(
                dossier_telemetry::propagation::REQUEST_ID_HEADER,
                request_id,
            );
        }
        self.js
            .publish_with_headers(
                dossier_broker::event_subject(kind),
                headers,
                event.encode_to_vec().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Waits until every published event has been projected and acked.
    pub async fn wait_projected(&self) {
        let events = self.topology.events.clone();
        wait_until("the projector to drain the events", DEADLINE, || {
            let events = events.clone();
            async move {
                let mut consumer: consumer::PullConsumer = events
                    .get_consumer(dossier_broker::PROJECTOR_CONSUMER)
                    .await
                    .unwrap();
                let info = consumer.info().await.unwrap();
                info.num_pending == 0 && info.num_ack_pending == 0
            }
        })
        .await;
    }

    /// Waits until `id` satisfies `check` (read through replica 0).
    pub async fn wait_for_op(
        &self,
        tenant: &str,
        id: &str,
        what: &str,
        check: impl Fn(&OperationView) -> bool,
    ) -> OperationView {
        let client = self.client();
        let check = &check;
        wait_for(what, DEADLINE, || {
            let client = client.clone();
            async move {
                get_on(&client, tenant, id)
                    .await
                    .ok()
                    .filter(|op| check(op))
            }
        })
        .await
    }

    /// Waits until `id` has `status`.
    pub async fn wait_for_status(&self, tenant: &str, id: &str, status: Status) -> OperationView {
        self.wait_for_op(tenant, id, &format!("status {status}"), |op| {
            op.status == status.to_proto() as i32
        })
        .await
    }

    /// The durable job consumer of `kind`, as its workers pull it.
    pub async fn job_consumer(&self, kind: Kind) -> consumer::PullConsumer {
        self.topology
            .jobs
            .get_consumer(&dossier_broker::job_consumer(kind))
            .await
            .unwrap()
    }

    /// Messages in the jobs stream.
    pub async fn job_count(&self) -> u64 {
        let mut jobs = self
            .js
            .get_stream(dossier_broker::JOBS_STREAM)
            .await
            .unwrap();
        jobs.info().await.unwrap().state.messages
    }

    /// The record of `id` as stored in KV (what answers leave out: the
    /// request id, the attempt, the result reference).
    pub async fn record(&self, id: &str) -> Operation {
        let kv = self
            .js
            .get_key_value(dossier_broker::OPERATIONS_BUCKET)
            .await
            .unwrap();
        Operation::decode(kv.get(id).await.unwrap().unwrap()).unwrap()
    }

    /// Keys in the operations bucket.
    pub async fn record_count(&self) -> usize {
        let kv = self
            .js
            .get_key_value(dossier_broker::OPERATIONS_BUCKET)
            .await
            .unwrap();
        match kv.keys().await {
            Ok(keys) => keys.collect::<Vec<_>>().await.len(),
            Err(_) => 0,
        }
    }
}

/// A valid search payload.
pub const SEARCH: &str = r#"{"targetAccount":{"name":"Acme"}}"#;
/// A valid research payload.
pub const RESEARCH: &str = r#"{"subject":{"company":{"domain":"acme.com"}}}"#;
/// A valid batch payload.
pub const BATCH: &str = r#"{"records":[{"email":"ada@acme.com"}]}"#;

/// A valid payload of `kind`: the service checks payloads as the gateway does.
pub fn valid_payload(kind: Kind) -> &'static str {
    match kind {
        Kind::SearchPeople => SEARCH,
        Kind::ResearchDeep => RESEARCH,
        Kind::EnrichmentBatch => BATCH,
    }
}

pub fn create_request(
    tenant: &str,
    kind: Kind,
    payload: &str,
    idempotency_key: &str,
) -> CreateOperationRequest {
    CreateOperationRequest {
        tenant_id: tenant.to_owned(),
        kind: kind.to_proto() as i32,
        payload_json: payload.as_bytes().to_vec(),
        idempotency_key: idempotency_key.to_owned(),
    }
}

/// The trace the gateway's calls continue in these tests.
pub const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
/// The request id the gateway's calls carry in these tests.
pub const REQUEST_ID: &str = "0af76519-16cd-43dd-8448-eb211c80319c";

/// `message` with a service token for its tenant, as every call needs.
pub fn signed<T: Tenanted>(message: T) -> tonic::Request<T> {
    dossier_testkit::service_keys().signed(message)
}

/// `message` as the gateway sends it: its metadata carries a service token
/// for its tenant, the caller's trace context and request id.
pub fn from_gateway<T: Tenanted>(message: T) -> tonic::Request<T> {
    let mut request = signed(message);
    let metadata = request.metadata_mut();
    metadata.insert("traceparent", TRACEPARENT.parse().unwrap());
    metadata.insert("x-request-id", REQUEST_ID.parse().unwrap());
    request
}

pub async fn get_on(
    client: &OperationsClient<Channel>,
    tenant: &str,
    id: &str,
) -> Result<OperationView, tonic::Status> {
    client
        .clone()
        .get_operation(signed(GetOperationRequest {
            tenant_id: tenant.to_owned(),
            id: id.to_owned(),
        }))
        .await
        .map(tonic::Response::into_inner)
}

/// An event about `op` as a worker would publish it.
pub fn event_for(op: &OperationView, attempt: u32, event: Event) -> OperationEvent {
    OperationEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        operation_id: op.id.clone(),
        tenant_id: op.tenant_id.clone(),
        kind: op.kind,
        attempt,
        worker_id: "test-worker".to_owned(),
        occurred_at: Some(time_ext::now()),
        operation_created_at: op.created_at,
        event: Some(event),
    }
}

pub fn status(op: &OperationView) -> Status {
    Status::from_proto(op.status).unwrap()
}
