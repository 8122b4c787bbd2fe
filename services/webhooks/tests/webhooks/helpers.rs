//! A webhook receiver on loopback and the requests the tests repeat.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use dossier_stack::{Answer, DEADLINE, Running, TestApp};
use dossier_testkit::wait_for;
use serde_json::{Value, json};

/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Received {
    /// `webhook-id`.
    pub(crate) fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_owned()
    }

    /// The body as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Checks the signature with `secret` (`whsec_…`) through the
    /// independent implementation.
    pub(crate) fn verify(&self, secret: &str) -> Result<(), standardwebhooks::WebhookError> {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&self.body, &self.headers)
    }
}

#[derive(Clone)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

/// An HTTP server on loopback that records every request and answers with
/// a status the test sets.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    shared: Shared,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// A receiver answering 204 on a free port.
    pub(crate) async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::on(listener)
    }

    /// A receiver answering 204 on `listener`.
    pub(crate) fn on(listener: tokio::net::TcpListener) -> Receiver {
        let shared = Shared {
            received: Arc::default(),
            status: Arc::new(AtomicU16::new(204)),
        };
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Receiver {
            addr,
            shared,
            _server: server,
        }
    }

    /// `http://127.0.0.1:<port>/hook`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers `status` from now on.
    pub(crate) fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Every request so far.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until the requests received so far satisfy `done`.
    pub(crate) async fn wait_for(&self, what: &str, mut done: impl FnMut(&[Received]) -> bool) {
        wait_for(what, DEADLINE, || {
            let received = self.received();
            let ok = done(&received);
            async move { ok.then_some(()) }
        })
        .await;
    }
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    shared
        .received
        .lock()
        .unwrap()
        .push(Received { headers, body });
    StatusCode::from_u16(shared.status.load(Ordering::SeqCst)).unwrap()
}

/// The real search worker on `app`'s broker, running until dropped.
pub(crate) async fn start_search_worker(app: &TestApp) -> Running {
    let mut config = <search_worker::Config as clap::Parser>::parse_from(["search-worker"]);
    config.service.broker = app.broker_config();
    let worker = search_worker::App::build(config).await.unwrap();
    Running::spawn(|token| worker.run(token))
}

/// Registers an endpoint for `key`'s tenant; asserts the 201 and returns
/// its body's `data` (with `secret`).
pub(crate) async fn register(app: &TestApp, key: &str, url: &str, events: &[&str]) -> Value {
    let answer = app
        .post_with(
            "/api/webhooks",
            &json!({ "url": url, "eventTypes": events, "description": "test receiver" }),
            key,
            &[],
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer.request_id();
    let data = answer.body["data"].clone();
    assert!(data["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        answer.header("location").unwrap(),
        app.url(&format!("/api/webhooks/{}", data["id"].as_str().unwrap()))
    );
    data
}

/// Accepts a search as tenant `acme` and finishes it as a worker would;
/// returns the operation id.
pub(crate) async fn finish_search(app: &TestApp) -> String {
    let id = app.accept_search(dossier_stack::KEY_A).await.id();
    app.succeed_operation(&id, &json!({ "data": [], "meta": {} }))
        .await;
    id
}

/// `GET /api/webhooks/{id}/deliveries` as `key`, every page.
pub(crate) async fn deliveries(app: &TestApp, endpoint: &str, key: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/webhooks/{endpoint}/deliveries?limit=2{cursor}");
        let page: Answer = app.get(&path, Some(key)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        all.extend(page.body["data"].as_array().unwrap().iter().cloned());
        match page.body["meta"]["nextCursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return all,
        }
    }
}

/// Waits until `endpoint`'s delivery `webhook_id` has `status`; returns it.
pub(crate) async fn wait_for_delivery(
    app: &TestApp,
    endpoint: &str,
    webhook_id: &str,
    status: &str,
) -> Value {
    wait_for(
        &format!("delivery {webhook_id} to be {status}"),
        DEADLINE,
        || async {
            deliveries(app, endpoint, dossier_stack::KEY_A)
                .await
                .into_iter()
                .find(|d| d["webhookId"] == webhook_id && d["status"] == status)
        },
    )
    .await
}

/// The `webhook-id` of operation `id`'s terminal event in `status`.
pub(crate) fn completed_id(operation: &str, status: &str) -> String {
    format!("msg_{}_{status}", operation.replace('-', ""))
}
