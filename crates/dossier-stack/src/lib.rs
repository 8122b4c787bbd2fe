//! The whole stack in-process for tests: `spawn_app()` starts a real
//! nats-server, the real operations service and the gateway on free ports,
//! and returns a [`TestApp`] with typed request helpers; worker services are
//! added with [`TestApp::spawn_service`] and can be stopped gracefully or
//! crashed.
//!
//! This is the second half of the test kit (`dossier-testkit` starts
//! nats-server and has the waiting helpers). It lives in its own crate because
//! it depends on the services, and the services' own tests use the kit.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // A test kit fails loudly.

pub mod sse;
pub mod telemetry;

use std::net::SocketAddr;
use std::time::Duration;

use dossier_broker::{JOBS_STREAM, event_subject, job_subject};
use dossier_contracts::v1::{self, Job, OperationEvent, operation_event};
use dossier_contracts::{Kind, Status};
use dossier_service::CancellationToken;
use dossier_testkit::{NatsCluster, NatsServer, TestBroker, wait_for, wait_until};
use gateway::ApiKeys;
use prost::Message as _;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Tenant `acme`'s key.
pub const KEY_A: &str = "dk_test_acme_key";
/// Tenant `globex`'s key.
pub const KEY_G: &str = "dk_test_globex_key";

/// How long a test waits for a condition.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A valid people search.
pub fn search_body() -> Value {
    json!({ "targetAccount": { "domain": "acme.com" }, "filters": { "seniorities": ["vp"] } })
}

/// A valid batch of `n` records.
pub fn batch_body(n: usize) -> Value {
    let records: Vec<Value> = (0..n)
        .map(|i| json!({ "email": format!("p{i}@acme.com") }))
        .collect();
    json!({ "records": records })
}

/// A valid research request.
pub fn research_body() -> Value {
    json!({ "subject": { "company": { "name": "Acme" } }, "questions": ["Who buys?"] })
}

/// A service running in-process. Dropping the handle shuts the service
/// down (in the background, as a signal would).
pub struct Running {
    token: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// The service's own runtime, when it has one (see [`telemetry`]); kept
    /// as long as the service.
    _runtime: Option<telemetry::ServiceRuntime>,
}

impl Running {
    /// Starts `run(token)` on the runtime, typically a service's `App::run`.
    pub fn spawn<F>(run: impl FnOnce(CancellationToken) -> F) -> Running
    where
        F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let token = CancellationToken::new();
        let handle = tokio::spawn(run(token.clone()));
        Running {
            token,
            handle: Some(handle),
            _runtime: None,
        }
    }

    /// Begins a shutdown as a signal would, without waiting for it.
    pub fn begin_shutdown(&self) {
        self.token.cancel();
    }

    /// Shuts the service down as a signal would and waits for it; panics if
    /// it failed.
    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
    }

    /// Kills the service as a crash would: its task is aborted mid-work, no
    /// clean-up runs, nothing is acknowledged.
    pub async fn crash(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
            let _ = handle.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// One test's stack, on a single nats-server (the default) or a
/// [`NatsCluster`] ([`spawn_app_on_cluster`]).
pub struct TestApp<B = NatsServer> {
    /// `http://127.0.0.1:<port>` of the gateway.
    pub address: String,
    /// The test's broker.
    pub nats: B,
    /// What the operations service creates the topology with.
    topology: dossier_broker::TopologyConfig,
    /// HTTP client (no redirects).
    pub client: reqwest::Client,
    /// The gateway's state (readiness).
    pub state: gateway::AppState,
    /// The URL(s) the operations service connects to.
    ops_nats_url: String,
    ops_addr: SocketAddr,
    ops_admin_addr: Option<SocketAddr>,
    ops: Option<Running>,
    gateway: Option<Running>,
    /// The webhooks service.
    webhooks: Option<Running>,
}

/// A decoded answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    /// Reads a response.
    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// `GET url` (absolute) with `key`.
    pub async fn from_url<B: TestBroker>(app: &TestApp<B>, url: &str, key: &str) -> Answer {
        Answer::read(app.client.get(url).bearer_auth(key).send().await.unwrap()).await
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// `X-Request-Id`, checked to be a UUID v7 equal to `meta.requestId`
    /// when the body is JSON.
    pub fn request_id(&self) -> Uuid {
        let id = Uuid::parse_str(self.header("x-request-id").expect("X-Request-Id")).unwrap();
        assert_eq!(id.get_version_num(), 7, "request ids are UUID v7");
        if self.body.is_object() {
            assert_eq!(
                self.body["meta"]["requestId"],
                id.to_string(),
                "meta.requestId mirrors X-Request-Id: {}",
                self.body
            );
        }
        id
    }

    /// Asserts a problem answer: status, type code, shape, request id.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(
            self.body["type"],
            format!("https://dossier.dev/problems/{code}"),
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        self.request_id();
    }

    /// The `pointer`s (or `parameter`s, `header`s) of the problem's errors.
    pub fn locations(&self, key: &str) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors: {}", self.body))
            .iter()
            .map(|e| e[key].as_str().unwrap_or_else(|| panic!("{e}")).to_owned())
            .collect()
    }

    /// The operation id of a 202.
    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap().to_owned()
    }
}

/// Starts the stack with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the stack, letting the test adjust the gateway's configuration.
pub async fn spawn_app_with(configure: impl FnOnce(&mut gateway::Config)) -> TestApp {
    spawn_app_with_topology(|_| {}, configure).await
}

/// Starts the stack, letting the test adjust the topology the operations
/// service creates (retention, limits; kept across its restarts) and the
/// gateway's configuration.
pub async fn spawn_app_with_topology(
    topology: impl FnOnce(&mut dossier_broker::TopologyConfig),
    configure: impl FnOnce(&mut gateway::Config),
) -> TestApp {
    dossier_testkit::init_test_logging();
    let nats = NatsServer::start().await;
    let mut topology_config = nats.topology_config();
    topology(&mut topology_config);
    let url = nats.url();
    spawn_app_on(nats, topology_config, url, configure, |_| {}).await
}

/// Starts the stack, letting the test adjust the webhooks service's
/// configuration (see [`webhooks_config`] for the stack's defaults).
pub async fn spawn_app_with_webhooks(configure: impl FnOnce(&mut webhooks::Config)) -> TestApp {
    dossier_testkit::init_test_logging();
    let nats = NatsServer::start().await;
    let topology = nats.topology_config();
    let url = nats.url();
    spawn_app_on(nats, topology, url, |_| {}, configure).await
}

/// Starts the stack on a three-node [`NatsCluster`], every stream and
/// bucket at R3; the operations service and the gateway connect to every
/// node (and move to another when theirs dies).
pub async fn spawn_app_on_cluster() -> TestApp<NatsCluster> {
    dossier_testkit::init_test_logging();
    let cluster = NatsCluster::start().await;
    let url = TestBroker::url(&cluster);
    let topology = cluster.topology_config();
    spawn_app_on(cluster, topology, url, |_| {}, |_| {}).await
}

/// Starts the stack on a three-node [`NatsCluster`] whose services (the
/// operations service and the gateway) connect through node `node` only,
/// whichever node leads a stream: as a production replica connected to one
/// of the cluster's nodes does.
pub async fn spawn_app_on_cluster_via(node: usize) -> TestApp<NatsCluster> {
    dossier_testkit::init_test_logging();
    let cluster = NatsCluster::start().await;
    let url = cluster.node_url(node);
    let topology = cluster.topology_config();
    spawn_app_on(cluster, topology, url, |_| {}, |_| {}).await
}

/// The webhooks service's configuration in a test stack: any free port,
/// plain http and loopback receivers allowed (tests clear the allowance to
/// see refusals), a retry schedule of milliseconds, attempts bounded by 2 s.
pub fn webhooks_config(broker: dossier_broker::BrokerConfig) -> webhooks::Config {
    let mut config = webhooks::Config::new(
        broker,
        vec![dossier_testkit::service_keys().public_key().to_owned()],
    )
    .unwrap();
    config.allow_http = true;
    config.allow_private_networks = vec!["127.0.0.0/8".parse().unwrap()];
    config.retry_schedule = webhooks::schedule::parse("50ms,100ms,200ms,400ms,800ms").unwrap();
    config.timeout = Duration::from_secs(2);
    config.shutdown_grace = Duration::from_secs(5);
    config
}

/// Starts the operations service (creating the topology with `topology`),
/// the webhooks service and the gateway on `nats`, all connecting to `url`.
async fn spawn_app_on<B: TestBroker>(
    nats: B,
    topology: dossier_broker::TopologyConfig,
    url: String,
    configure: impl FnOnce(&mut gateway::Config),
    configure_webhooks: impl FnOnce(&mut webhooks::Config),
) -> TestApp<B> {
    let mut ops_config = operations_config(&nats, &topology);
    ops_config.broker.url = url.clone();
    let ops_url = url.clone();
    let (ops, ops_addr, ops_admin_addr) = start_operations(ops_config).await;

    let mut webhooks_config = webhooks_config(nats.broker_config());
    webhooks_config.broker.url = url.clone();
    configure_webhooks(&mut webhooks_config);
    let webhooks_app = webhooks::App::build(webhooks_config).await.unwrap();
    let webhooks_addr = webhooks_app.grpc_addr();
    let webhooks = Running::spawn(|token| webhooks_app.run(token));

    let mut config = gateway::Config::from_env().unwrap();
    config.http_addr = "127.0.0.1:0".parse().unwrap();
    config.operations_url = format!("http://{ops_addr}");
    config.webhooks_url = format!("http://{webhooks_addr}");
    config.service_token_key = Some(dossier_testkit::service_keys().private_key().to_owned());
    config.nats_url = url;
    config.api_keys =
        Some(ApiKeys::from_plain([("acme", "key_a", KEY_A), ("globex", "key_g", KEY_G)]).unwrap());
    config.public_base_url = None;
    config.rate_limit_per_second = None;
    configure(&mut config);
    let app = gateway::App::build(config).await.unwrap();
    let mut test_app = assemble(
        (nats, topology),
        (ops, ops_addr, ops_admin_addr),
        app,
        |app| Running::spawn(|token| app.run(token)),
    )
    .await;
    test_app.ops_nats_url = ops_url;
    test_app.webhooks = Some(webhooks);
    test_app
}

/// The [`TestApp`] of the running operations service and the built
/// gateway, started with `start`; returns once the gateway is ready.
async fn assemble<B: TestBroker>(
    (nats, topology): (B, dossier_broker::TopologyConfig),
    (ops, ops_addr, ops_admin_addr): (Running, SocketAddr, Option<SocketAddr>),
    app: gateway::App,
    start: impl FnOnce(gateway::App) -> Running,
) -> TestApp<B> {
    let http_addr = app.http_addr();
    let state = app.state().clone();
    let gateway = start(app);
    let test_app = TestApp {
        address: format!("http://{http_addr}"),
        ops_nats_url: nats.url(),
        nats,
        topology,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        ops_addr,
        ops_admin_addr,
        ops: Some(ops),
        gateway: Some(gateway),
        webhooks: None,
    };
    test_app.wait_until_ready().await;
    test_app
}

/// The operations service's configuration in a test stack: any free ports,
/// its admin server on, queue gauges refreshed often.
fn operations_config(
    nats: &impl TestBroker,
    topology: &dossier_broker::TopologyConfig,
) -> operations::Config {
    let mut config = operations::Config::new(
        nats.broker_config(),
        vec![dossier_testkit::service_keys().public_key().to_owned()],
    );
    config.topology = topology.clone();
    config.admin.admin_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.queue_metrics_interval = Duration::from_millis(100);
    config
}

async fn start_operations(config: operations::Config) -> (Running, SocketAddr, Option<SocketAddr>) {
    let app = operations::App::build(config).await.unwrap();
    let addr = app.grpc_addr();
    let admin_addr = app.admin_addr();
    (Running::spawn(|token| app.run(token)), addr, admin_addr)
}

impl<B: TestBroker> TestApp<B> {
    /// Broker settings of this stack (short ack wait and few deliveries, see
    /// [`TestBroker::broker_config`]), for services a test adds.
    pub fn broker_config(&self) -> dossier_broker::BrokerConfig {
        self.nats.broker_config()
    }

    /// Topology settings the stack's operations service created the
    /// topology with (see [`TestBroker::topology_config`] and
    /// [`spawn_app_with_topology`]).
    pub fn topology_config(&self) -> dossier_broker::TopologyConfig {
        self.topology.clone()
    }

    /// Polls the operation until its status is terminal; returns its body,
    /// checked against the OpenAPI document (every worker test that waits
    /// for a result thereby checks the result's documented shape).
    pub async fn wait_for_terminal(&self, id: &str, key: &str) -> Value {
        let body = self.wait_for_terminal_unchecked(id, key).await;
        assert_documented("OperationResponse", &body);
        body
    }

    /// [`TestApp::wait_for_terminal`] without the document check, for tests
    /// whose worker is a test double returning made-up results.
    pub async fn wait_for_terminal_unchecked(&self, id: &str, key: &str) -> Value {
        wait_for(&format!("operation {id} to end"), DEADLINE, || async {
            let answer = self.get_operation(id, key).await;
            let status = answer.body["status"]
                .as_str()
                .and_then(|s| s.parse::<Status>().ok());
            (answer.status == 200 && status.is_some_and(Status::is_terminal)).then_some(answer.body)
        })
        .await
    }

    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `http://127.0.0.1:<port>` of the operations service's admin server.
    pub fn operations_admin(&self) -> String {
        format!(
            "http://{}",
            self.ops_admin_addr.expect("operations admin server")
        )
    }

    /// Scrapes `url` (a `/metrics` page) over HTTP.
    pub async fn scrape(&self, url: &str) -> Scrape {
        let response = self.client.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {url}");
        Scrape::parse(&response.text().await.unwrap())
    }

    /// Waits until `/readyz` answers 200 (the operations service serves).
    pub async fn wait_until_ready(&self) {
        wait_until("the gateway to be ready", DEADLINE, || async {
            self.get("/readyz", None).await.status == 200
        })
        .await;
    }

    /// `GET path`, with `key` as a bearer token when given.
    pub async fn get(&self, path: &str, key: Option<&str>) -> Answer {
        let mut request = self.client.get(self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        Answer::read(request.send().await.unwrap()).await
    }

    /// `GET path` with `key` as a bearer token and extra headers.
    pub async fn get_with(&self, path: &str, key: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.get(self.url(path)).bearer_auth(key);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Answer::read(request.send().await.unwrap()).await
    }

    /// `POST path` with a JSON body, `key` as bearer token, extra headers.
    pub async fn post_with(
        &self,
        path: &str,
        body: &Value,
        key: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self
            .client
            .post(self.url(path))
            .bearer_auth(key)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Answer::read(request.send().await.unwrap()).await
    }

    /// `POST path` as tenant `acme`.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_with(path, body, KEY_A, &[]).await
    }

    /// `POST /api/search/people` as tenant `acme`.
    pub async fn post_search(&self, body: &Value) -> Answer {
        self.post("/api/search/people", body).await
    }

    /// `POST /api/enrichment/batch` as tenant `acme`.
    pub async fn post_batch(&self, body: &Value) -> Answer {
        self.post("/api/enrichment/batch", body).await
    }

    /// `POST /api/enrichment/person` as tenant `acme`.
    pub async fn post_person(&self, body: &Value) -> Answer {
        self.post("/api/enrichment/person", body).await
    }

    /// Every item of a finished operation's result (`op`, as polled), in
    /// order: the first page from the operation, then each page its
    /// `page.next` link leads to, checking that pages join up (a result
    /// without `page` fits one page and is all there).
    pub async fn all_result_items(&self, op: &Value, key: &str) -> Vec<Value> {
        let result = &op["result"];
        let mut items: Vec<Value> = result["data"].as_array().unwrap().clone();
        if result.get("page").is_none() {
            // The result fits one page and is served whole.
            return items;
        }
        let mut page = result["page"].clone();
        assert_eq!(page["offset"], 0, "{page}");
        assert_eq!(page["count"], items.len(), "{page}");
        while let Some(next) = page["next"].as_str() {
            let answer = Answer::from_url(self, next, key).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            answer.request_id();
            page = answer.body["page"].clone();
            assert_eq!(page["offset"], items.len(), "pages join up: {page}");
            let data = answer.body["data"].as_array().unwrap();
            assert_eq!(page["count"], data.len());
            items.extend(data.iter().cloned());
        }
        assert!(page["nextCursor"].is_null());
        assert_eq!(page["total"], items.len(), "{page}");
        items
    }

    /// `POST /api/research` as tenant `acme`.
    pub async fn post_research(&self, body: &Value) -> Answer {
        self.post("/api/research", body).await
    }

    /// Accepts a search as tenant `key`'s owner; asserts the 202.
    pub async fn accept_search(&self, key: &str) -> Answer {
        let answer = self
            .post_with("/api/search/people", &search_body(), key, &[])
            .await;
        assert_eq!(answer.status, 202, "{}", answer.body);
        answer
    }

    /// `GET /api/operations/{id}`.
    pub async fn get_operation(&self, id: &str, key: &str) -> Answer {
        self.get(&format!("/api/operations/{id}"), Some(key)).await
    }

    /// `GET /api/operations?{query}`.
    pub async fn list_operations(&self, query: &str, key: &str) -> Answer {
        self.get(&format!("/api/operations?{query}"), Some(key))
            .await
    }

    /// The ids of every operation of the tenant, following cursors.
    pub async fn all_operation_ids(&self, query: &str, key: &str, limit: u32) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = format!("limit={limit}");
            if !query.is_empty() {
                q.push('&');
                q.push_str(query);
            }
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={c}"));
            }
            let page = self.list_operations(&q, key).await;
            assert_eq!(page.status, 200, "{}", page.body);
            page.request_id();
            let data = page.body["data"].as_array().unwrap();
            assert!(data.len() <= limit as usize);
            ids.extend(data.iter().map(|op| op["id"].as_str().unwrap().to_owned()));
            match page.body["meta"]["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => {
                    assert!(page.body["meta"]["nextCursor"].is_null());
                    return ids;
                }
            }
        }
    }

    /// `POST /api/operations/{id}/cancel`.
    pub async fn cancel_operation(&self, id: &str, key: &str) -> Answer {
        Answer::read(
            self.client
                .post(self.url(&format!("/api/operations/{id}/cancel")))
                .bearer_auth(key)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Polls the operation until it has `status`; returns its body.
    pub async fn wait_for_status(&self, id: &str, key: &str, status: Status) -> Value {
        wait_for(
            &format!("operation {id} to be {status}"),
            DEADLINE,
            || async {
                let answer = self.get_operation(id, key).await;
                (answer.status == 200 && answer.body["status"] == status.as_str())
                    .then_some(answer.body)
            },
        )
        .await
    }

    /// Publishes a worker event for operation `id` of tenant `acme`, as a
    /// worker would (taking the operation's lease before `Started`), and
    /// waits for the broker's ack.
    pub async fn publish_event(&self, id: &str, kind: Kind, event: operation_event::Event) {
        let now = dossier_contracts::time_ext::now();
        let message = OperationEvent {
            event_id: Uuid::now_v7().to_string(),
            operation_id: id.to_owned(),
            tenant_id: "acme".to_owned(),
            kind: kind.to_proto() as i32,
            attempt: 1,
            worker_id: "test-worker".to_owned(),
            occurred_at: Some(now),
            operation_created_at: Some(now),
            event: Some(event),
        };
        let js = async_nats::jetstream::new(self.nats.client().await);
        if matches!(message.event, Some(operation_event::Event::Started(_))) {
            // A run takes the operation's lease before it starts: the
            // operations service decides cancellations on it.
            let lease = dossier_broker::lease::Lease {
                worker_id: message.worker_id.clone(),
                attempt: 1,
                nonce: 1,
                cancel_requested: false,
                state: Some(dossier_broker::lease::State::Held(
                    dossier_broker::lease::Held {
                        expires_at: Some(
                            (std::time::SystemTime::now() + Duration::from_secs(60)).into(),
                        ),
                    },
                )),
            };
            let leases = js
                .get_key_value(dossier_broker::LEASES_BUCKET)
                .await
                .unwrap();
            leases
                .put(dossier_broker::lease_key(kind, id), lease.to_bytes())
                .await
                .unwrap();
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", message.event_id.as_str());
        js.publish_with_headers(event_subject(kind), headers, message.encode_to_vec().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Fails operation `id` (a search of tenant `acme`) as a worker would.
    pub async fn fail_operation(&self, id: &str) {
        self.publish_event(
            id,
            Kind::SearchPeople,
            operation_event::Event::Failed(v1::Failed {
                error: Some(v1::OperationError {
                    code: "provider_unavailable".to_owned(),
                    message: "The provider did not answer.".to_owned(),
                    details_json: r#"{"provider":"test"}"#.to_owned(),
                }),
            }),
        )
        .await;
    }

    /// Finishes operation `id` (a search of tenant `acme`) with `result`
    /// (inline), as a worker would.
    pub async fn succeed_operation(&self, id: &str, result: &Value) {
        let bytes = serde_json::to_vec(result).unwrap();
        self.publish_event(
            id,
            Kind::SearchPeople,
            operation_event::Event::Succeeded(v1::Succeeded {
                result: Some(v1::ResultRef {
                    size_bytes: bytes.len() as u64,
                    location: Some(v1::result_ref::Location::InlineJson(bytes)),
                }),
            }),
        )
        .await;
    }

    /// The newest job of `kind` on the jobs stream, with its headers (which
    /// carry the request id and the trace context).
    pub async fn last_job(&self, kind: Kind) -> (Job, async_nats::HeaderMap) {
        let js = async_nats::jetstream::new(self.nats.client().await);
        let stream = js.get_stream(JOBS_STREAM).await.unwrap();
        let message = stream
            .get_last_raw_message_by_subject(&job_subject(kind))
            .await
            .unwrap();
        (Job::decode(message.payload).unwrap(), message.headers)
    }

    /// How many jobs the jobs stream holds.
    pub async fn job_count(&self) -> u64 {
        let js = async_nats::jetstream::new(self.nats.client().await);
        let mut stream = js.get_stream(JOBS_STREAM).await.unwrap();
        stream.info().await.unwrap().state.messages
    }

    /// Stops the operations service (clean shutdown).
    pub async fn stop_operations(&mut self) {
        if let Some(ops) = self.ops.take() {
            ops.stop().await;
        }
    }

    /// Starts the operations service again on its old address.
    pub async fn start_operations(&mut self) {
        assert!(self.ops.is_none(), "operations is running");
        let mut config = operations_config(&self.nats, &self.topology);
        config.broker.url = self.ops_nats_url.clone();
        config.grpc_addr = self.ops_addr;
        let (ops, _, admin_addr) = start_operations(config).await;
        self.ops_admin_addr = admin_addr;
        self.ops = Some(ops);
    }

    /// Stops the webhooks service (clean shutdown) and waits for it.
    pub async fn stop_webhooks(&mut self) {
        if let Some(webhooks) = self.webhooks.take() {
            webhooks.stop().await;
        }
    }

    /// Stops the gateway (as a shutdown signal would) and waits for it.
    pub async fn stop_gateway(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            gateway.stop().await;
        }
    }
}

/// One sample of a [`Scrape`]: metric name, labels, value.
pub type Sample = (String, Vec<(String, String)>, f64);

/// A parsed Prometheus text page: the samples, and the metadata lines.
#[derive(Debug, Clone)]
pub struct Scrape {
    /// `(name, labels, value)` of every sample.
    pub samples: Vec<Sample>,
    /// The whole page, for failure messages and `# HELP`/`# TYPE` checks.
    pub text: String,
}

impl Scrape {
    /// Parses the text format as the exporter writes it (no timestamps);
    /// label values keep their escapes.
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("sample value: {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let rest = rest.strip_suffix('}').unwrap();
                    let labels = split_labels(rest)
                        .into_iter()
                        .map(|pair| {
                            let (k, v) = pair.split_once('=').unwrap();
                            (k.to_owned(), v.trim_matches('"').to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
                None => (series.to_owned(), Vec::new()),
            };
            samples.push((name, labels, value));
        }
        Scrape {
            samples,
            text: text.to_owned(),
        }
    }

    /// The sum of the samples of `name` whose labels include all of
    /// `labels` (0 when there is none).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    /// Whether any sample of `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

/// Splits `a="x",b="y,z"` at the commas outside quotes.
fn split_labels(labels: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&labels[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < labels.len() {
        parts.push(&labels[start..]);
    }
    parts
}

/// Polls operation `id` of tenant `acme` until its progress is `progress`.
pub async fn wait_for_progress<B: TestBroker>(app: &TestApp<B>, id: &str, progress: u32) {
    wait_until(
        &format!("operation {id} at {progress}%"),
        DEADLINE,
        || async { app.get_operation(id, KEY_A).await.body["progress"] == progress },
    )
    .await;
}

/// Asserts that `value` is valid against the OpenAPI document's component
/// schema `schema` (e.g. `OperationResponse`), listing what is not.
pub fn assert_documented(schema: &str, value: &Value) {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let document = DOCUMENT.get_or_init(gateway::openapi::document);
    // The document as the root schema, pointing at the component: its other
    // members are not JSON Schema keywords, and `#/components/...` resolves.
    let mut root = document.clone();
    root["$ref"] = Value::from(format!("#/components/schemas/{schema}"));
    let validator = jsonschema::draft202012::new(&root).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not a documented {schema}: {errors:#?}\n{value}"
    );
}
