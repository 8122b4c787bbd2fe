//! Deliveries: signed, once per event, retried until the receiver is
//! back, stopped by 410, signed twice during a rotation.

use dossier_contracts::Status;
use dossier_stack::{KEY_A, spawn_app, spawn_app_with_webhooks};
use serde_json::json;

use crate::helpers::{
    Receiver, completed_id, deliveries, finish_search, register, start_search_worker,
    wait_for_delivery,
};

#[tokio::test]
async fn a_finished_search_is_delivered_once_signed_with_the_endpoints_secret() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let endpoint = register(&app, KEY_A, &receiver.url(), &["operation.completed"]).await;
    let secret = endpoint["secret"].as_str().unwrap();
    let endpoint_id = endpoint["id"].as_str().unwrap();

    // A real search, through the real search worker, to its end.
    let _worker = start_search_worker(&app).await;
    let id = app.accept_search(KEY_A).await.id();
    let op = app.wait_for_terminal(&id, KEY_A).await;
    assert_eq!(op["status"], Status::Succeeded.as_str(), "{op}");

    let webhook_id = completed_id(&id, "succeeded");
    let delivery = wait_for_delivery(&app, endpoint_id, &webhook_id, "delivered").await;
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{delivery}");
    assert_eq!(attempts[0]["statusCode"], 204);
    assert!(attempts[0]["error"].is_null());
    assert_eq!(delivery["operationId"], id);
    assert_eq!(delivery["eventType"], "operation.completed");

    let received = receiver.received();
    assert_eq!(received.len(), 1, "one event, one request: {received:?}");
    let request = &received[0];
    assert_eq!(request.id(), webhook_id);
    request
        .verify(secret)
        .expect("a valid Standard Webhooks signature");
    assert_eq!(request.headers["content-type"], "application/json");
    let body = request.json();
    assert_eq!(body["type"], "operation.completed");
    assert!(body["timestamp"].is_string());
    let data = &body["data"];
    assert_eq!(data["id"], id);
    assert_eq!(data["kind"], "search.people");
    assert_eq!(data["status"], "succeeded");
    assert_eq!(data["progress"], 100);
    assert_eq!(
        data["pollUrl"],
        format!("http://127.0.0.1:8080/api/operations/{id}")
    );
    // Another endpoint's secret does not verify it.
    let other = register(&app, KEY_A, &receiver.url(), &["operation.completed"]).await;
    assert!(request.verify(other["secret"].as_str().unwrap()).is_err());
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_every_event_once_it_is_up_under_one_id_each() {
    let app = spawn_app().await;
    // Down twice over: first nothing listens on the port, then the server
    // answers 503.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/hook");
    let endpoint = register(&app, KEY_A, &url, &["operation.completed"]).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let secret = endpoint["secret"].as_str().unwrap();

    let first = finish_search(&app).await;
    let first_id = completed_id(&first, "succeeded");
    dossier_testkit::wait_until(
        "a refused connection to be recorded",
        dossier_stack::DEADLINE,
        || async {
            deliveries(&app, endpoint_id, KEY_A).await.iter().any(|d| {
                d["webhookId"] == first_id
                    && d["attempts"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|a| a["error"] == "connect")
            })
        },
    )
    .await;

    let receiver = Receiver::on(tokio::net::TcpListener::bind(addr).await.unwrap());
    receiver.answer(503);
    let mut ids = vec![first_id.clone()];
    for _ in 0..2 {
        ids.push(completed_id(&finish_search(&app).await, "succeeded"));
    }
    // Every event is refused at least once more while the receiver is down.
    receiver
        .wait_for("every event refused by the 503 receiver", |received| {
            ids.iter().all(|id| received.iter().any(|r| &r.id() == id))
        })
        .await;
    receiver.answer(200);
    for id in &ids {
        let delivery = wait_for_delivery(&app, endpoint_id, id, "delivered").await;
        let attempts = delivery["attempts"].as_array().unwrap();
        assert!(attempts.len() >= 2, "{delivery}");
        let last = attempts.last().unwrap();
        assert_eq!(last["statusCode"], 200, "{delivery}");
        assert!(
            attempts[..attempts.len() - 1]
                .iter()
                .all(|a| a["statusCode"] == 503 || a["error"] == "connect"),
            "{delivery}"
        );
        let numbers: Vec<u64> = attempts
            .iter()
            .map(|a| a["attempt"].as_u64().unwrap())
            .collect();
        assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>());
    }
    // Each event arrived under one id on every attempt, each attempt signed.
    let received = receiver.received();
    for request in &received {
        assert!(ids.contains(&request.id()), "{:?}", request.headers);
        request.verify(secret).unwrap();
    }
    for id in &ids {
        let bodies: Vec<_> = received
            .iter()
            .filter(|r| &r.id() == id)
            .map(|r| r.body.clone())
            .collect();
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one body per id");
    }
    // The deliveries list holds the three, paged two at a time.
    assert_eq!(deliveries(&app, endpoint_id, KEY_A).await.len(), 3);
}

#[tokio::test]
async fn a_410_disables_the_endpoint_and_nothing_more_is_sent_to_it() {
    let app = spawn_app().await;
    let gone = Receiver::start().await;
    gone.answer(410);
    let sentinel = Receiver::start().await;
    let endpoint = register(&app, KEY_A, &gone.url(), &["operation.completed"]).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    register(&app, KEY_A, &sentinel.url(), &["operation.completed"]).await;

    let first = completed_id(&finish_search(&app).await, "succeeded");
    let delivery = wait_for_delivery(&app, endpoint_id, &first, "failed").await;
    let attempts = delivery["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "410 is not retried: {delivery}");
    assert_eq!(attempts[0]["statusCode"], 410);
    assert_eq!(attempts[0]["error"], "gone");
    let shown = app
        .get(&format!("/api/webhooks/{endpoint_id}"), Some(KEY_A))
        .await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body["data"]["disabled"], true, "{}", shown.body);
    assert!(shown.body["data"]["disabledAt"].is_string());

    // The next event reaches the other endpoint, and not the disabled one.
    let second = completed_id(&finish_search(&app).await, "succeeded");
    sentinel
        .wait_for("the sentinel to get the second event", |r| {
            r.iter().any(|r| r.id() == second)
        })
        .await;
    let got: Vec<String> = gone.received().iter().map(|r| r.id()).collect();
    assert_eq!(got, [first]);
}

#[tokio::test]
async fn during_a_rotation_both_secrets_sign_and_each_verifies() {
    let app = spawn_app().await;
    let receiver = Receiver::start().await;
    let endpoint = register(&app, KEY_A, &receiver.url(), &["operation.completed"]).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap();

    let rotated = app
        .post_with(
            &format!("/api/webhooks/{endpoint_id}/rotate-secret"),
            &json!({}),
            KEY_A,
            &[],
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    assert_eq!(rotated.header("cache-control"), Some("no-store"));
    let new = rotated.body["data"]["secret"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(rotated.body["data"]["previousSecretExpiresAt"].is_string());

    let id = completed_id(&finish_search(&app).await, "succeeded");
    receiver
        .wait_for("the event", |r| r.iter().any(|r| r.id() == id))
        .await;
    let request = &receiver.received()[0];
    let signatures = request.headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    request.verify(new).expect("the new secret verifies");
    request
        .verify(old)
        .expect("the old secret verifies during the grace");
}

#[tokio::test]
async fn progress_goes_only_to_endpoints_that_asked_for_it() {
    let app = spawn_app().await;
    let both = Receiver::start().await;
    let completed_only = Receiver::start().await;
    register(
        &app,
        KEY_A,
        &both.url(),
        &["operation.progress", "operation.completed"],
    )
    .await;
    register(&app, KEY_A, &completed_only.url(), &["operation.completed"]).await;
    let id = app.accept_search(KEY_A).await.id();
    app.publish_event(
        &id,
        dossier_contracts::Kind::SearchPeople,
        dossier_contracts::v1::operation_event::Event::Progressed(
            dossier_contracts::v1::Progressed { progress: 40 },
        ),
    )
    .await;
    let progress_id = format!("msg_{}_progress_40", id.replace('-', ""));
    both.wait_for("the progress event", |r| {
        r.iter().any(|r| r.id() == progress_id)
    })
    .await;
    let progress = both
        .received()
        .into_iter()
        .find(|r| r.id() == progress_id)
        .unwrap();
    assert_eq!(progress.json()["type"], "operation.progress");
    assert_eq!(progress.json()["data"]["progress"], 40);
    app.succeed_operation(&id, &json!({ "data": [] })).await;
    let done = completed_id(&id, "succeeded");
    both.wait_for("the completed event", |r| r.iter().any(|r| r.id() == done))
        .await;
    completed_only
        .wait_for("the completed event", |r| r.iter().any(|r| r.id() == done))
        .await;
    assert!(completed_only.received().iter().all(|r| r.id() == done));
}

#[tokio::test]
async fn a_name_that_resolves_to_a_private_address_at_delivery_is_refused() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Public at registration, loopback (the receiver) afterwards: DNS
    /// rebinding.
    struct Rebinding(Arc<AtomicUsize>);
    impl reqwest::dns::Resolve for Rebinding {
        fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            let first = self.0.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move {
                let ip: std::net::IpAddr = if first {
                    [93, 184, 215, 14].into()
                } else {
                    [127, 0, 0, 1].into()
                };
                Ok(Box::new(std::iter::once(std::net::SocketAddr::new(ip, 0)))
                    as reqwest::dns::Addrs)
            })
        }
    }

    let receiver = Receiver::start().await;
    let app = spawn_app_with_webhooks(|config| {
        config.allow_private_networks.clear();
        config.resolver = Some(webhooks::Resolver(Arc::new(Rebinding(Arc::default()))));
    })
    .await;
    let url = format!("http://rebinding.test:{}/hook", receiver.addr.port());
    let endpoint = register(&app, KEY_A, &url, &["operation.completed"]).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let id = completed_id(&finish_search(&app).await, "succeeded");
    dossier_testkit::wait_until("a refused attempt", dossier_stack::DEADLINE, || async {
        deliveries(&app, endpoint_id, KEY_A).await.iter().any(|d| {
            d["webhookId"] == id
                && d["attempts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a["error"] == "not_public")
        })
    })
    .await;
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
}
