//! Log lines of a real run: JSON lines whose request, trace and operation ids
//! are top-level fields, and no secret in them (nor in exported spans) even
//! at the most verbose level.

use dossier_contracts::Status;
use dossier_stack::telemetry::{
    OtlpReceiver, Telemetry, TelemetryOptions, spawn_app_with_telemetry,
    spawn_app_with_telemetry_and,
};
use dossier_stack::{KEY_A, batch_body, search_body};
use secrecy::SecretString;
use serde_json::Value;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::traces::{start_workers, start_workers_with, stop_all};

/// The lines with `message` whose `target` starts with `target`.
fn lines<'a>(logs: &'a [Value], target: &str, message: &str) -> Vec<&'a Value> {
    logs.iter()
        .filter(|l| {
            l["message"] == message && l["target"].as_str().is_some_and(|t| t.starts_with(target))
        })
        .collect()
}

/// Logs: every line emitted inside a request or a job carries `request_id`,
/// `trace_id` and `operation_id` at the top level of its JSON object.
#[tokio::test]
async fn log_lines_carry_request_trace_and_operation_ids() {
    let telemetry = Telemetry::new(TelemetryOptions::default());
    let app = spawn_app_with_telemetry(&telemetry).await;
    let workers = start_workers(&app, &telemetry).await;

    let accepted = app.post_search(&search_body()).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let request_id = accepted.request_id();
    let id = accepted.id();
    app.wait_for_status(&id, KEY_A, Status::Succeeded).await;
    stop_all(app, workers).await;

    let logs = telemetry.logs().json_lines();
    let expect = |line: &Value| {
        assert_eq!(line["request_id"], request_id.to_string(), "{line}");
        assert_eq!(line["trace_id"], request_id.simple().to_string(), "{line}");
        assert_eq!(line["operation_id"], id, "{line}");
        assert!(
            line["timestamp"].is_string() && line["level"] == "INFO",
            "{line}"
        );
    };
    let gateway = lines(&logs, "gateway", "Operation accepted.");
    assert_eq!(gateway.len(), 1, "{gateway:?}");
    expect(gateway[0]);
    // The access log line is written inside the request span too.
    let finished: Vec<_> = lines(&logs, "gateway", "Request finished.")
        .into_iter()
        .filter(|l| l["request_id"] == request_id.to_string())
        .collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["status"], 202);
    assert_eq!(finished[0]["trace_id"], request_id.simple().to_string());

    for message in ["Job started.", "Job finished."] {
        let worker: Vec<_> = lines(&logs, "dossier_worker", message)
            .into_iter()
            .filter(|l| l["operation_id"] == id)
            .collect();
        assert_eq!(worker.len(), 1, "{message}");
        expect(worker[0]);
        assert_eq!(worker[0]["span"], "nats");
    }
}

/// No secret is logged: a full run with an API key, a vendor key, a NATS
/// password and the research worker's synthesis key, logging at `trace`;
/// then every log line and every exported span attribute is searched for
/// each of them.
#[tokio::test]
async fn no_secret_reaches_the_logs_or_the_traces() {
    const NATS_USER: &str = "dossier";
    const NATS_PASSWORD: &str = "nats-pass-7a1c9e3f0b";
    const VENDOR_KEY: &str = "vendor-key-5d2b8c4e91";
    const SYNTHESIS_KEY: &str = "sk-synthesis-3f8a61d2c7";

    let vendor = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", format!("Bearer {VENDOR_KEY}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({ "data": [] })))
        .mount(&vendor)
        .await;
    // The research worker's synthesis provider, asked with its key.
    let model = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("authorization", format!("Bearer {SYNTHESIS_KEY}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "choices": [{ "message": { "role": "assistant", "content": "Not found in the sources." } }]
        })))
        .mount(&model)
        .await;
    let receiver = OtlpReceiver::start().await;
    let telemetry = Telemetry::new(TelemetryOptions {
        otlp_endpoint: Some(receiver.endpoint().to_owned()),
        log_filter: "trace".to_owned(),
        json: true,
    });
    let credentials = dossier_nats::NatsCredentials {
        user: Some(NATS_USER.to_owned()),
        password: Some(SecretString::from(NATS_PASSWORD)),
        ..dossier_nats::NatsCredentials::default()
    };
    let gateway_credentials = credentials.clone();
    let app = spawn_app_with_telemetry_and(
        &telemetry,
        |args| args.extend(["--user", NATS_USER, "--pass", NATS_PASSWORD]),
        move |config| config.nats_credentials = gateway_credentials,
    )
    .await;

    let mut broker = app.broker_config();
    broker.credentials = credentials;
    let mut search = <search_worker::Config as clap::Parser>::parse_from(["search-worker"]);
    search.service.broker = broker.clone();
    search.service.providers.vendor_url = Some(vendor.uri());
    search.service.providers.vendor_api_key = Some(SecretString::from(VENDOR_KEY));
    let mut enrichment = enrichment_worker::Config::from_env().unwrap();
    enrichment.service.broker = broker.clone();
    enrichment.service.providers = search.service.providers.clone();
    let mut research = <research_worker::Config as clap::Parser>::parse_from(["research-worker"]);
    research.service.broker = broker;
    research.research.synthesis_url = Some(format!("{}/v1/chat/completions", model.uri()));
    research.research.synthesis_api_key = Some(SecretString::from(SYNTHESIS_KEY));
    // No site to read (a closed loopback port): the web step fails at once.
    research.research.site_overrides = vec!["acme.com=http://127.0.0.1:9".parse().unwrap()];
    let mut workers = start_workers_with(&telemetry, search, enrichment).await;
    workers.push(
        telemetry
            .service("research-worker")
            .start(research_worker::App::build(research), |app, token| {
                app.run(token)
            })
            .await,
    );

    let search = app.post_search(&search_body()).await;
    assert_eq!(search.status, 202, "{}", search.body);
    let batch = app.post_batch(&batch_body(2)).await;
    assert_eq!(batch.status, 202, "{}", batch.body);
    let person = app
        .post_person(&serde_json::json!({ "email": "p0@acme.com" }))
        .await;
    assert_eq!(person.status, 200, "{}", person.body);
    let research = app
        .post_research(&serde_json::json!({
            "subject": { "company": { "name": "Acme Corp", "domain": "acme.com" } },
            "questions": ["How many people does Acme employ?"]
        }))
        .await;
    assert_eq!(research.status, 202, "{}", research.body);
    for accepted in [&search, &batch, &research] {
        app.wait_for_terminal_unchecked(&accepted.id(), KEY_A).await;
    }
    // A rejected key is logged about too.
    assert_eq!(
        app.get("/api/me", Some("dk_wrong_key_0123456789"))
            .await
            .status,
        401
    );
    stop_all(app, workers).await;
    telemetry.flush().await;

    // The vendor was asked with its key: the secret was in play.
    assert!(!vendor.received_requests().await.unwrap().is_empty());
    assert!(!model.received_requests().await.unwrap().is_empty());
    let logs = telemetry.logs().text();
    // The NATS client logs its CONNECT (with the password masked) at trace:
    // the capture covered where the password goes.
    assert!(
        logs.contains("write operation: CONNECT"),
        "trace level captured"
    );
    let spans = receiver.spans();
    assert!(!spans.is_empty());
    let attributes = format!("{spans:?}");
    for secret in [
        KEY_A,
        VENDOR_KEY,
        NATS_PASSWORD,
        SYNTHESIS_KEY,
        "dk_wrong_key_0123456789",
    ] {
        if let Some(line) = logs.lines().find(|l| l.contains(secret)) {
            panic!("`{secret}` was logged: {line}");
        }
        assert!(
            !attributes.contains(secret),
            "`{secret}` is in an exported span"
        );
    }
}
