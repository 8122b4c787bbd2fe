//! The full path: POST through the gateway → 202 → the search worker runs
//! the job → poll → the result with every meta field.

use std::sync::Arc;
use std::time::Duration;

use dossier_contracts::Status;
use dossier_directory::{HttpProvider, HttpProviderConfig, ProviderSet};
use dossier_stack::{KEY_A, Running, TestApp, spawn_app};
use search_worker::{App, Config, ProvidersConfig};
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn config(app: &TestApp, providers: ProvidersConfig) -> Config {
    let mut config = <Config as clap::Parser>::parse_from(["search-worker"]);
    config.service.broker = app.broker_config();
    config.service.providers = providers;
    config
}

fn local_only() -> ProvidersConfig {
    <Config as clap::Parser>::parse_from(["search-worker"])
        .service
        .providers
}

async fn start_worker(app: &TestApp, providers: ProvidersConfig) -> Running {
    let worker = App::build(config(app, providers)).await.unwrap();
    Running::spawn(|token| worker.run(token))
}

async fn search(app: &TestApp, body: Value) -> Value {
    let accepted = app.post_search(&body).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    app.wait_for_terminal(&accepted.id(), KEY_A).await
}

#[tokio::test]
async fn search_through_the_gateway_reports_every_meta_field() {
    let app = spawn_app().await;
    let _worker = start_worker(&app, local_only()).await;

    let op = search(
        &app,
        json!({ "targetAccount": { "name": "Acme Corp", "domain": "acme.com" },
                "filters": { "departments": ["engineering"] }, "limit": 5 }),
    )
    .await;
    assert_eq!(op["status"], Status::Succeeded.as_str(), "{op}");
    assert_eq!(op["kind"], "search.people");
    assert_eq!(op["progress"], 100);
    let result = &op["result"];
    let meta = &result["meta"];
    assert_eq!(meta["targetAccountSearchMode"], "linkedin_company_page");
    assert_eq!(meta["targetAccountOutcome"], "verified_linkedin_handle");
    assert_eq!(meta["providerOutcome"], "hit");
    assert!(meta.get("message").is_none(), "no message on a hit: {meta}");
    let people = result["data"].as_array().unwrap();
    assert!(!people.is_empty() && people.len() <= 5);
    for person in people {
        assert_eq!(person["companyMatchEvidence"], "company_page");
        assert_eq!(person["department"], "engineering");
    }

    // An unavailable path is a clean answer with a message.
    let op = search(
        &app,
        json!({ "targetAccount": { "domain": "unknown-company.example" } }),
    )
    .await;
    assert_eq!(op["status"], "succeeded");
    let meta = &op["result"]["meta"];
    assert_eq!(meta["targetAccountSearchMode"], "unavailable");
    assert_eq!(meta["targetAccountOutcome"], "unresolved");
    assert_eq!(meta["providerOutcome"], "empty_clean");
    assert!(meta["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(op["result"]["data"], json!([]));
}

#[tokio::test]
async fn a_failed_provider_makes_partial_success_and_all_failed_makes_failed() {
    let app = spawn_app().await;
    let vendor = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .mount(&vendor)
        .await;

    let mut providers = local_only();
    providers.vendor_url = Some(vendor.uri());
    providers.provider_deadline = Duration::from_secs(2);
    let worker = start_worker(&app, providers).await;
    let op = search(
        &app,
        json!({ "targetAccount": { "linkedinHandle": "acme-corp" } }),
    )
    .await;
    assert_eq!(op["status"], "partial_success", "{op}");
    assert_eq!(op["result"]["meta"]["providerOutcome"], "hit");
    let vendor_report = op["result"]["meta"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "vendor")
        .cloned()
        .unwrap();
    assert_eq!(vendor_report["status"], "failed");
    worker.stop().await;

    // Only the failing vendor: retried with backoff, then failed with a code.
    let mut config = config(&app, local_only());
    config.service.worker.retry_backoff_base = Duration::from_millis(50);
    config.service.worker.retry_backoff_max = Duration::from_millis(100);
    let mut vendor_config = HttpProviderConfig::new("vendor", vendor.uri());
    vendor_config.max_attempts = 1;
    let only_vendor = ProviderSet::new(vec![Arc::new(HttpProvider::new(vendor_config).unwrap())]);
    let worker = App::build_with_providers(config, only_vendor)
        .await
        .unwrap();
    let _worker = Running::spawn(|token| worker.run(token));
    let op = search(&app, json!({ "targetAccount": { "name": "Acme Corp" } })).await;
    assert_eq!(op["status"], "failed", "{op}");
    assert_eq!(op["error"]["code"], "providers_unavailable");
}
