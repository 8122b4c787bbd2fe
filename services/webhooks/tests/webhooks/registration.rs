//! Registering, reading and deleting endpoints: validation naming the
//! field, the public-internet-only rule, the per-tenant limit, tenants
//! apart.

use std::sync::Arc;

use dossier_stack::{KEY_A, KEY_G, spawn_app, spawn_app_with_webhooks};
use serde_json::json;

use crate::helpers::{Receiver, completed_id, register, start_search_worker};

#[tokio::test]
async fn an_endpoint_is_created_listed_read_and_deleted_and_its_secret_shown_once() {
    let app = spawn_app().await;
    let created = register(
        &app,
        KEY_A,
        "http://127.0.0.1:9/hook",
        &["operation.completed"],
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["eventTypes"], json!(["operation.completed"]));
    assert_eq!(created["disabled"], false);

    let listed = app.get("/api/webhooks", Some(KEY_A)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    listed.request_id();
    let data = listed.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], id);
    assert!(data[0].get("secret").is_none(), "the secret is shown once");
    let one = app.get(&format!("/api/webhooks/{id}"), Some(KEY_A)).await;
    assert_eq!(one.status, 200);
    assert!(one.body["data"].get("secret").is_none());
    assert_eq!(one.body["data"]["url"], "http://127.0.0.1:9/hook");
    assert_eq!(one.body["data"]["description"], "test receiver");

    let deleted = app
        .client
        .delete(app.url(&format!("/api/webhooks/{id}")))
        .bearer_auth(KEY_A)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    app.get(&format!("/api/webhooks/{id}"), Some(KEY_A))
        .await
        .assert_problem(404, "webhook_not_found");
    app.get("/api/webhooks/not-a-uuid", Some(KEY_A))
        .await
        .assert_problem(404, "webhook_not_found");
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field() {
    let app = spawn_app_with_webhooks(|config| config.allow_http = false).await;
    let cases = [
        (json!({ "url": "ftp://hooks.example.com/" }), "/url"),
        (json!({ "url": "not a url" }), "/url"),
        (json!({ "url": "http://hooks.example.com/" }), "/url"),
        (
            json!({ "url": "https://hooks.example.com/", "eventTypes": ["operation.finished"] }),
            "/eventTypes/0",
        ),
        (
            json!({ "url": "https://hooks.example.com/", "eventTypes": [] }),
            "/eventTypes",
        ),
        (
            json!({ "url": "https://hooks.example.com/", "description": "d".repeat(501) }),
            "/description",
        ),
        (json!({ "eventTypes": ["operation.completed"] }), "/url"),
        (
            json!({ "url": "https://hooks.example.com/", "secret": "mine" }),
            "/secret",
        ),
    ];
    for (body, pointer) in cases {
        let answer = app.post("/api/webhooks", &body).await;
        answer.assert_problem(400, "validation");
        assert_eq!(
            answer.locations("pointer"),
            [pointer],
            "{body}: {}",
            answer.body
        );
    }
    let answer = app
        .get(
            &format!("/api/webhooks/{}/deliveries?limit=0", uuid::Uuid::now_v7()),
            Some(KEY_A),
        )
        .await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("parameter"), ["limit"]);
}

/// Names pointing at non-public addresses, as a hostile DNS would.
struct Table;

impl reqwest::dns::Resolve for Table {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let ip: Option<std::net::IpAddr> = match name.as_str() {
            "loopback.test" => Some([127, 0, 0, 1].into()),
            "internal.test" => Some([10, 0, 0, 1].into()),
            "metadata.test" => Some([169, 254, 169, 254].into()),
            "public.test" => Some([93, 184, 215, 14].into()),
            _ => None,
        };
        Box::pin(async move {
            let ip = ip.ok_or("no such name")?;
            Ok(Box::new(std::iter::once(std::net::SocketAddr::new(ip, 0))) as reqwest::dns::Addrs)
        })
    }
}

#[tokio::test]
async fn urls_that_are_or_resolve_to_non_public_addresses_are_refused() {
    let app = spawn_app_with_webhooks(|config| {
        config.allow_private_networks.clear();
        config.allow_http = false;
        config.resolver = Some(webhooks::Resolver(Arc::new(Table)));
    })
    .await;
    for url in [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://loopback.test/hook",
        "https://internal.test/hook",
        "https://metadata.test/hook",
        "https://nowhere.test/hook",
    ] {
        let answer = app.post("/api/webhooks", &json!({ "url": url })).await;
        answer.assert_problem(400, "validation");
        assert_eq!(
            answer.locations("pointer"),
            ["/url"],
            "{url}: {}",
            answer.body
        );
    }
    let ok = app
        .post(
            "/api/webhooks",
            &json!({ "url": "https://public.test/hook" }),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
}

#[tokio::test]
async fn a_tenant_has_at_most_its_limit_of_endpoints() {
    let app = spawn_app_with_webhooks(|config| config.max_endpoints = 2).await;
    for _ in 0..2 {
        register(
            &app,
            KEY_A,
            "http://127.0.0.1:9/hook",
            &["operation.completed"],
        )
        .await;
    }
    app.post(
        "/api/webhooks",
        &json!({ "url": "http://127.0.0.1:9/hook" }),
    )
    .await
    .assert_problem(409, "webhook_limit_reached");
    // Another tenant's limit is its own.
    register(
        &app,
        KEY_G,
        "http://127.0.0.1:9/hook",
        &["operation.completed"],
    )
    .await;
}

#[tokio::test]
async fn tenants_never_see_nor_get_each_others_webhooks() {
    let app = spawn_app().await;
    let acme = Receiver::start().await;
    let globex = Receiver::start().await;
    let endpoint = register(&app, KEY_A, &acme.url(), &["operation.completed"]).await;
    let id = endpoint["id"].as_str().unwrap();
    register(&app, KEY_G, &globex.url(), &["operation.completed"]).await;

    // Another tenant's endpoint does not exist for globex, whatever it asks.
    for path in [
        format!("/api/webhooks/{id}"),
        format!("/api/webhooks/{id}/deliveries"),
    ] {
        app.get(&path, Some(KEY_G))
            .await
            .assert_problem(404, "webhook_not_found");
    }
    app.post_with(
        &format!("/api/webhooks/{id}/rotate-secret"),
        &json!({}),
        KEY_G,
        &[],
    )
    .await
    .assert_problem(404, "webhook_not_found");
    let deleted = app
        .client
        .delete(app.url(&format!("/api/webhooks/{id}")))
        .bearer_auth(KEY_G)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 404);
    let listed = app.get("/api/webhooks", Some(KEY_G)).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    assert_ne!(listed.body["data"][0]["id"], id);

    // Each tenant's events go to its own endpoints only.
    let _worker = start_search_worker(&app).await;
    let of_acme = app.accept_search(KEY_A).await.id();
    let of_globex = app.accept_search(KEY_G).await.id();
    for (receiver, op, key) in [(&acme, &of_acme, KEY_A), (&globex, &of_globex, KEY_G)] {
        let status = app.wait_for_terminal(op, key).await["status"]
            .as_str()
            .unwrap()
            .to_owned();
        let webhook_id = completed_id(op, &status);
        receiver
            .wait_for("the tenant's own event", |r| {
                r.iter().any(|r| r.id() == webhook_id)
            })
            .await;
    }
    let ids = |r: &Receiver| -> Vec<String> {
        r.received()
            .iter()
            .map(|r| r.json()["data"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&acme), [of_acme]);
    assert_eq!(ids(&globex), [of_globex]);
}
