//! Router-level tests with `tower::ServiceExt::oneshot`: authentication,
//! request ids, problem shapes and header validation. The operations service
//! is deliberately unreachable here (a refused port), which also covers the
//! 503 answers; the full stack is tested in `tests/api`.

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use uuid::Uuid;

use crate::{ApiKeys, AppState, Config, router};

const KEY_A: &str = "secret-key-acme";
/// How long a test waits for a condition before failing.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
const KEY_G: &str = "secret-key-globex";

fn config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::from_env().unwrap();
    // Port 1 on loopback refuses connections at once: the operations service
    // is "down" for every test here.
    config.operations_url = "http://127.0.0.1:1".to_owned();
    config.service_token_key = Some(dossier_testkit::service_keys().private_key().to_owned());
    config.public_base_url = None;
    config.rate_limit_per_second = None;
    edit(&mut config);
    config
}

fn app_with(edit: impl FnOnce(&mut Config)) -> Router {
    let keys = ApiKeys::from_plain([("acme", "key_a", KEY_A), ("globex", "key_g", KEY_G)]).unwrap();
    let config = config(edit);
    let state = AppState::new(&config, keys, "127.0.0.1:8080".parse().unwrap()).unwrap();
    router(state)
}

fn app() -> Router {
    app_with(|_| {})
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn request_id(&self) -> Uuid {
        let header = self.headers["x-request-id"].to_str().unwrap();
        Uuid::parse_str(header).unwrap()
    }

    /// A problem answer with the status, type code, and the request id in the
    /// header and in the body.
    fn assert_problem(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{}",
            self.body
        );
        assert_eq!(
            self.body["type"],
            format!("https://dossier.dev/problems/{code}"),
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status.as_u16());
        assert!(self.body["title"].is_string());
        assert!(self.body["detail"].is_string());
        self.assert_request_id();
    }

    fn assert_request_id(&self) {
        let id = self.request_id();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(
            self.body["meta"]["requestId"],
            id.to_string(),
            "{}",
            self.body
        );
    }

    fn locations(&self, key: &str) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors in {}", self.body))
            .iter()
            .map(|e| {
                assert!(e["detail"].is_string(), "{e}");
                e[key]
                    .as_str()
                    .unwrap_or_else(|| panic!("no {key} in {e}"))
                    .to_owned()
            })
            .collect()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let response = app.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
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

fn get(path: &str) -> http::request::Builder {
    Request::builder().method(Method::GET).uri(path)
}

fn post_json(path: &str, body: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {KEY_A}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

const SEARCH: &str = r#"{"targetAccount":{"domain":"acme.com"}}"#;

#[tokio::test]
async fn me_answers_the_callers_tenant_with_either_header() {
    let app = app();
    let a = send(
        &app,
        get("/api/me")
            .header(header::AUTHORIZATION, format!("Bearer {KEY_A}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body["data"],
        json!({"tenantId": "acme", "keyId": "key_a"})
    );
    a.assert_request_id();

    let g = send(
        &app,
        get("/api/me")
            .header("x-api-key", KEY_G)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.body["data"]["tenantId"], "globex");

    let lower = send(
        &app,
        get("/api/me")
            .header(header::AUTHORIZATION, format!("bearer {KEY_A}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        lower.status,
        StatusCode::OK,
        "the scheme is case-insensitive"
    );
    assert_ne!(a.request_id(), g.request_id(), "a fresh id per request");
}

#[tokio::test]
async fn missing_unknown_or_malformed_keys_are_401() {
    let app = app();
    let cases: Vec<(&str, Option<(&str, String)>)> = vec![
        ("no key", None),
        (
            "unknown key",
            Some(("authorization", "Bearer nope".to_owned())),
        ),
        ("unknown x-api-key", Some(("x-api-key", "nope".to_owned()))),
        (
            "basic scheme",
            Some(("authorization", format!("Basic {KEY_A}"))),
        ),
        ("no scheme", Some(("authorization", KEY_A.to_owned()))),
        (
            "empty bearer",
            Some(("authorization", "Bearer ".to_owned())),
        ),
        ("empty x-api-key", Some(("x-api-key", String::new()))),
    ];
    for (what, header) in cases {
        let mut req = get("/api/me");
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        let answer = send(&app, req.body(Body::empty()).unwrap()).await;
        answer.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
        assert_eq!(answer.headers[header::WWW_AUTHENTICATE], "Bearer", "{what}");
    }
    // Two different keys at once are refused rather than guessed between.
    let answer = send(
        &app,
        get("/api/me")
            .header(header::AUTHORIZATION, format!("Bearer {KEY_A}"))
            .header("x-api-key", KEY_G)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    // Authentication comes before body validation.
    let answer = send(
        &app,
        Request::post("/api/search/people")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{"))
            .unwrap(),
    )
    .await;
    answer.assert_problem(StatusCode::UNAUTHORIZED, "unauthorized");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_with_request_ids() {
    let app = app();
    let answer = send(&app, get("/nope").body(Body::empty()).unwrap()).await;
    answer.assert_problem(StatusCode::NOT_FOUND, "not_found");

    let answer = send(
        &app,
        Request::delete("/api/me").body(Body::empty()).unwrap(),
    )
    .await;
    answer.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let allow = answer.headers[header::ALLOW].to_str().unwrap();
    assert!(allow.contains("GET"), "{allow}");

    let answer = send(&app, get("/api/search/people").body(Body::empty()).unwrap()).await;
    answer.assert_problem(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(answer.headers[header::ALLOW], "POST");
}

#[tokio::test]
async fn bodies_must_be_json() {
    let app = app();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut req = Request::post("/api/search/people")
            .header(header::AUTHORIZATION, format!("Bearer {KEY_A}"));
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let answer = send(&app, req.body(Body::from(SEARCH)).unwrap()).await;
        answer.assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = app_with(|c| c.max_body_bytes = 64);
    let big = format!(r#"{{"targetAccount":{{"name":"{}"}}}}"#, "x".repeat(100));
    // Streamed (no Content-Length): the limit trips while reading.
    let answer = send(&app, post_json("/api/search/people", &big)).await;
    answer.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(
        answer.body["detail"],
        "The request body is larger than the limit of 64 bytes."
    );
    // Declared: refused before reading.
    let mut req = post_json("/api/search/people", &big);
    req.headers_mut()
        .insert(header::CONTENT_LENGTH, big.len().into());
    let answer = send(&app, req).await;
    answer.assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    assert_eq!(
        answer.body["detail"],
        "The request body is larger than the limit of 64 bytes."
    );
}

#[tokio::test]
async fn a_gateway_without_a_service_token_key_or_with_tls_half_set_does_not_start() {
    let keys = ApiKeys::from_plain([("acme", "key_a", KEY_A)]).unwrap();
    let start =
        |config: &Config| AppState::new(config, keys.clone(), "127.0.0.1:8080".parse().unwrap());
    let error = start(&config(|c| c.service_token_key = None))
        .err()
        .unwrap();
    assert!(
        format!("{error:#}").contains("DOSSIER_SERVICE_TOKEN_KEY"),
        "{error:#}"
    );
    // A public key is not a signing key.
    let public = dossier_testkit::service_keys().public_key().to_owned();
    assert!(start(&config(|c| c.service_token_key = Some(public))).is_err());
    // https:// needs the CA to trust; a CA on http:// would go unused.
    let error = start(&config(|c| {
        c.operations_url = "https://ops:50051".to_owned()
    }))
    .err()
    .unwrap();
    assert!(
        format!("{error:#}").contains("DOSSIER_OPERATIONS_TLS_CA"),
        "{error:#}"
    );
    let pki = dossier_testkit::TestPki::new();
    assert!(
        start(&config(
            |c| c.operations_tls.operations_tls_ca = Some(pki.ca())
        ))
        .is_err()
    );
    assert!(
        start(&config(|c| {
            c.operations_url = "https://ops:50051".to_owned();
            c.operations_tls.operations_tls_ca = Some(pki.ca());
        }))
        .is_ok()
    );
}

#[tokio::test]
async fn a_body_limit_over_the_contracts_is_refused_at_start() {
    let keys = ApiKeys::from_plain([("acme", "key_a", KEY_A)]).unwrap();
    let config = config(|c| c.max_body_bytes = dossier_contracts::limits::MAX_BODY_BYTES + 1);
    assert!(AppState::new(&config, keys, "127.0.0.1:8080".parse().unwrap()).is_err());
}

#[tokio::test]
async fn invalid_bodies_name_each_field() {
    let app = app();
    let answer = send(&app, post_json("/api/search/people", "{")).await;
    answer.assert_problem(StatusCode::BAD_REQUEST, "malformed_json");

    let cases = [
        (
            "/api/search/people",
            r#"{"targetAccount":{"domain":"acme.com"},"limt":5}"#,
            vec!["/limt"],
        ),
        (
            "/api/search/people",
            r#"{"targetAccount":{"domain":"acme.com"},"limit":"5"}"#,
            vec!["/limit"],
        ),
        ("/api/search/people", r#"{}"#, vec!["/targetAccount"]),
        (
            "/api/enrichment/batch",
            r#"{"records":[{"email":"a@b.co"},{"email":"bad"},{"fullName":"X"}]}"#,
            vec!["/records/1/email", "/records/2"],
        ),
        ("/api/research", r#"{"subject":{}}"#, vec!["/subject"]),
        (
            "/api/enrichment/person",
            r#"{"emial":"a@b.co"}"#,
            vec!["/emial"],
        ),
    ];
    for (path, body, pointers) in cases {
        let answer = send(&app, post_json(path, body)).await;
        answer.assert_problem(StatusCode::BAD_REQUEST, "validation");
        assert_eq!(answer.locations("pointer"), pointers, "{path} {body}");
    }
}

#[tokio::test]
async fn idempotency_keys_are_checked_and_named() {
    let app = app();
    let long = "k".repeat(256);
    for bad in ["", long.as_str(), "has space", "tab\there"] {
        let mut req = post_json("/api/search/people", SEARCH);
        req.headers_mut()
            .insert("idempotency-key", bad.parse().unwrap());
        let answer = send(&app, req).await;
        answer.assert_problem(StatusCode::BAD_REQUEST, "validation");
        assert_eq!(answer.locations("header"), ["Idempotency-Key"], "{bad:?}");
    }
    let mut req = post_json("/api/search/people", SEARCH);
    req.headers_mut().insert(
        "idempotency-key",
        http::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
    );
    let answer = send(&app, req).await;
    assert_eq!(answer.locations("header"), ["Idempotency-Key"]);
}

#[tokio::test]
async fn operations_service_down_is_503_with_retry_after() {
    let app = app();
    for (path, body) in [
        ("/api/search/people", SEARCH),
        (
            "/api/enrichment/batch",
            r#"{"records":[{"email":"a@b.co"}]}"#,
        ),
        (
            "/api/research",
            r#"{"subject":{"company":{"name":"Acme"}}}"#,
        ),
    ] {
        let answer = send(&app, post_json(path, body)).await;
        answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");
        assert_eq!(answer.headers[header::RETRY_AFTER], "1");
    }
    let answer = send(
        &app,
        get(&format!("/api/operations/{}", Uuid::now_v7()))
            .header("x-api-key", KEY_A)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable");

    let answer = send(&app, get("/readyz").body(Body::empty()).unwrap()).await;
    answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "not_ready");
    assert!(answer.headers.contains_key(header::RETRY_AFTER));

    let answer = send(&app, get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.assert_request_id();
}

#[tokio::test]
async fn non_uuid_operation_ids_are_404() {
    let app = app();
    for path in [
        "/api/operations/not-a-uuid",
        "/api/operations/%FF",
        "/api/operations/1234/cancel",
    ] {
        let method = if path.ends_with("cancel") {
            Method::POST
        } else {
            Method::GET
        };
        let answer = send(
            &app,
            Request::builder()
                .method(method)
                .uri(path)
                .header("x-api-key", KEY_A)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        answer.assert_problem(StatusCode::NOT_FOUND, "operation_not_found");
    }
}

#[tokio::test]
async fn bad_list_parameters_are_named() {
    let app = app();
    let answer = send(
        &app,
        get("/api/operations?limit=0&status=done&kind=x&extra=1")
            .header("x-api-key", KEY_A)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    answer.assert_problem(StatusCode::BAD_REQUEST, "validation");
    assert_eq!(
        answer.locations("parameter"),
        ["limit", "status", "kind", "extra"]
    );
}

#[tokio::test]
async fn sync_enrichment_validates_then_is_unavailable() {
    let app = app();
    let answer = send(
        &app,
        post_json("/api/enrichment/person", r#"{"email":"a@b.co"}"#),
    )
    .await;
    answer.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "enrichment_unavailable");
    assert!(answer.headers.contains_key(header::RETRY_AFTER));
    let answer = send(
        &app,
        post_json("/api/enrichment/person", r#"{"email":"nope"}"#),
    )
    .await;
    assert_eq!(answer.locations("pointer"), ["/email"]);
}

#[tokio::test]
async fn tenants_over_their_rate_get_429() {
    let app = app_with(|c| {
        c.rate_limit_per_second = Some(1);
        c.rate_limit_burst = Some(2);
    });
    let me = |key: &str| {
        get("/api/me")
            .header("x-api-key", key)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send(&app, me(KEY_A)).await.status, StatusCode::OK);
    assert_eq!(send(&app, me(KEY_A)).await.status, StatusCode::OK);
    let answer = send(&app, me(KEY_A)).await;
    answer.assert_problem(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert_eq!(answer.headers[header::RETRY_AFTER], "1");
    // The quota (the burst), none left, and when there is room again.
    assert_eq!(answer.headers["ratelimit-limit"], "2");
    assert_eq!(answer.headers["ratelimit-remaining"], "0");
    assert_eq!(answer.headers["ratelimit-reset"], "1");
    assert_eq!(send(&app, me(KEY_G)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn past_its_in_flight_limit_the_gateway_sheds_with_503_instead_of_queueing() {
    let app = app_with(|c| c.max_in_flight = 1);
    // The first request holds the only permit: its body never finishes
    // arriving, so its handler is still reading it.
    let (body_tx, body_rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    body_tx.send(Ok(b"{\"records\":[".to_vec())).await.unwrap();
    let held = post_json("/api/enrichment/batch", "")
        .map(|_| Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(body_rx)));
    let first = tokio::spawn({
        let app = app.clone();
        async move { app.oneshot(held).await.unwrap().status() }
    });
    let me = || {
        get("/api/me")
            .header("x-api-key", KEY_A)
            .body(Body::empty())
            .unwrap()
    };
    // Until the first request is admitted, /api/me may still get through;
    // after it, every other API request is shed at once — never queued.
    let shed = dossier_testkit::wait_for("a request to be shed", DEADLINE, || {
        let app = app.clone();
        async move {
            let answer = send(&app, me()).await;
            (answer.status == StatusCode::SERVICE_UNAVAILABLE).then_some(answer)
        }
    })
    .await;
    shed.assert_problem(StatusCode::SERVICE_UNAVAILABLE, "overloaded");
    assert_eq!(shed.headers[header::RETRY_AFTER], "1");
    // The probes are not behind the limit.
    let health = send(&app, get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(health.status, StatusCode::OK);
    let metrics = send(&app, get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(metrics.status, StatusCode::OK);

    // The first request ends (its body is cut short: a 400), freeing the
    // permit for the next one.
    drop(body_tx);
    assert_eq!(first.await.unwrap(), StatusCode::BAD_REQUEST);
    assert_eq!(send(&app, me()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn health_and_metrics_need_no_key() {
    let app = app();
    let answer = send(&app, get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.body["data"]["status"], "ok");
    let answer = send(&app, get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn a_panic_becomes_a_500_problem() {
    let response = crate::routes::panic_response(Box::new("boom"));
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["type"], "https://dossier.dev/problems/internal");
    assert!(
        !body["detail"].as_str().unwrap().contains("boom"),
        "internals stay hidden"
    );
}
