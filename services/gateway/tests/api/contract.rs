//! The response contract: the 202 shape, request ids on every answer, and
//! fully qualified poll URLs.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{
    KEY_A, KEY_G, batch_body, research_body, search_body, spawn_app, spawn_app_with,
};

fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn accepted_answers_have_exactly_the_contract_fields_and_poll_urls_read_the_write() {
    let app = spawn_app().await;
    for (path, body, kind) in [
        ("/api/search/people", search_body(), "search.people"),
        ("/api/enrichment/batch", batch_body(3), "enrichment.batch"),
        ("/api/research", research_body(), "research.deep"),
    ] {
        let accepted = app.post(path, &body).await;
        assert_eq!(accepted.status, 202, "{}", accepted.body);
        assert_eq!(
            keys(&accepted.body),
            ["id", "meta", "operationId", "pollUrl", "status"]
        );
        assert_eq!(keys(&accepted.body["meta"]), ["requestId"]);
        accepted.request_id();
        let id = accepted.id();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7);
        assert_eq!(accepted.body["operationId"], id);
        assert_eq!(accepted.body["status"], "queued");
        let poll_url = accepted.body["pollUrl"].as_str().unwrap();
        assert_eq!(poll_url, app.url(&format!("/api/operations/{id}")));
        assert_eq!(accepted.header("location"), Some(poll_url));
        assert_eq!(accepted.header("retry-after"), Some("1"));
        assert_eq!(accepted.header("content-type"), Some("application/json"));

        // Read your writes: the poll URL finds it at once.
        let polled = crate::helpers::Answer::from_url(&app, poll_url, KEY_A).await;
        assert_eq!(polled.status, 200, "{}", polled.body);
        assert_eq!(
            keys(&polled.body),
            [
                "cancelRequested",
                "completedAt",
                "createdAt",
                "error",
                "expiresAt",
                "id",
                "kind",
                "meta",
                "operationId",
                "pollUrl",
                "progress",
                "result",
                "startedAt",
                "status",
                "updatedAt"
            ]
        );
        assert_eq!(polled.body["id"], id);
        assert_eq!(polled.body["operationId"], id);
        assert_eq!(polled.body["kind"], kind);
        assert_eq!(polled.body["status"], "queued");
        assert_eq!(polled.body["result"], Value::Null);
        assert_eq!(polled.body["error"], Value::Null);
        assert_eq!(polled.body["completedAt"], Value::Null);
        assert_eq!(polled.body["cancelRequested"], false);
        assert_eq!(polled.body["pollUrl"], poll_url);
        let created = polled.body["createdAt"].as_str().unwrap();
        let created =
            time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
                .unwrap();
        // Kept 30 days (the default retention), then 410.
        let expires = polled.body["expiresAt"].as_str().unwrap();
        let expires =
            time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
                .unwrap();
        assert_eq!(expires - created, time::Duration::days(30));
        assert_eq!(polled.header("retry-after"), Some("1"), "not finished yet");
        assert_ne!(polled.request_id(), accepted.request_id());
    }
}

#[tokio::test]
async fn every_answer_carries_a_fresh_request_id_mirrored_in_the_body() {
    let mut app = spawn_app_with(|c| c.max_body_bytes = 4096).await;
    let mut ids = HashSet::new();
    let mut seen = |answer: &crate::helpers::Answer, status: u16| {
        assert_eq!(answer.status, status, "{}", answer.body);
        assert!(ids.insert(answer.request_id()), "request ids are fresh");
    };

    seen(&app.get("/api/me", Some(KEY_A)).await, 200);
    seen(&app.get("/healthz", None).await, 200);
    seen(&app.get("/readyz", None).await, 200);
    let accepted = app.accept_search(KEY_A).await;
    seen(&accepted, 202);
    seen(&app.post_search(&json!({"targetAccount": {}})).await, 400);
    seen(&app.get("/api/me", None).await, 401);
    seen(&app.get("/api/me", Some("wrong")).await, 401);
    seen(&app.get("/no/such/route", None).await, 404);
    seen(
        &app.get(
            &format!("/api/operations/{}", uuid::Uuid::now_v7()),
            Some(KEY_A),
        )
        .await,
        404,
    );
    seen(&app.get("/api/search/people", Some(KEY_A)).await, 405);
    let cancelled = app.cancel_operation(&accepted.id(), KEY_A).await;
    seen(&cancelled, 200);
    seen(&app.cancel_operation(&accepted.id(), KEY_A).await, 409);
    let big = json!({"targetAccount": {"name": "x".repeat(5000)}});
    seen(&app.post_search(&big).await, 413);
    let text = app
        .client
        .post(app.url("/api/search/people"))
        .bearer_auth(KEY_A)
        .header("content-type", "text/plain")
        .body(search_body().to_string())
        .send()
        .await
        .unwrap();
    seen(&crate::helpers::Answer::read(text).await, 415);
    let other_tenant = app.get_operation(&accepted.id(), KEY_G).await;
    seen(&other_tenant, 404);

    app.stop_operations().await;
    seen(&app.post_search(&search_body()).await, 503);
    seen(&app.get("/readyz", None).await, 503);
}

#[tokio::test]
async fn poll_urls_follow_forwarded_headers_then_host() {
    let app = spawn_app().await;
    let id_of = |a: &crate::helpers::Answer| a.id();

    let forwarded = app
        .post_with(
            "/api/search/people",
            &search_body(),
            KEY_A,
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "api.example.com"),
            ],
        )
        .await;
    assert_eq!(
        forwarded.body["pollUrl"],
        format!(
            "https://api.example.com/api/operations/{}",
            id_of(&forwarded)
        )
    );
    assert_eq!(
        forwarded.header("location"),
        forwarded.body["pollUrl"].as_str()
    );

    let host = app
        .post_with(
            "/api/search/people",
            &search_body(),
            KEY_A,
            &[("host", "gateway.internal:8443")],
        )
        .await;
    assert_eq!(
        host.body["pollUrl"],
        format!(
            "http://gateway.internal:8443/api/operations/{}",
            id_of(&host)
        )
    );

    // Values that are not a plain scheme or host[:port] are ignored.
    let evil = app
        .post_with(
            "/api/search/people",
            &search_body(),
            KEY_A,
            &[
                ("x-forwarded-proto", "javascript"),
                ("x-forwarded-host", "evil.com/phish?x="),
                ("host", "gateway.internal"),
            ],
        )
        .await;
    assert_eq!(
        evil.body["pollUrl"],
        format!("http://gateway.internal/api/operations/{}", id_of(&evil))
    );

    // The poll URL of a GET follows the same rules.
    let got = app
        .client
        .get(app.url(&format!("/api/operations/{}", id_of(&host))))
        .bearer_auth(KEY_A)
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", "api.example.com")
        .send()
        .await
        .unwrap();
    let got = crate::helpers::Answer::read(got).await;
    assert_eq!(
        got.body["pollUrl"],
        format!("https://api.example.com/api/operations/{}", id_of(&host))
    );
}

#[tokio::test]
async fn a_configured_public_base_url_wins() {
    let app = spawn_app_with(|c| {
        c.public_base_url = Some("https://dossier.example.com/v".to_owned());
    })
    .await;
    let accepted = app
        .post_with(
            "/api/search/people",
            &search_body(),
            KEY_A,
            &[("x-forwarded-host", "other.example.com")],
        )
        .await;
    let expected = format!(
        "https://dossier.example.com/v/api/operations/{}",
        accepted.id()
    );
    assert_eq!(accepted.body["pollUrl"], expected);
    assert_eq!(accepted.header("location"), Some(expected.as_str()));
}

#[tokio::test]
async fn metrics_count_requests_in_prometheus_text() {
    let app = spawn_app().await;
    app.accept_search(KEY_A).await;
    let answer =
        crate::helpers::Answer::read(app.client.get(app.url("/metrics")).send().await.unwrap())
            .await;
    assert_eq!(answer.status, 200);
    assert!(answer.header("x-request-id").is_some());
    let text = answer.body.as_str().unwrap();
    assert!(
        text.contains("dossier_gateway_http_requests_total{")
            && text.contains(r#"route="/api/search/people""#),
        "{text}"
    );
    assert!(
        text.contains("dossier_gateway_operations_accepted_total{"),
        "{text}"
    );
}
