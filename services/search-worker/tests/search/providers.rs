//! Provider failure and timeout, through the real HTTP provider against a
//! server on loopback that fails or hangs.

use std::sync::Arc;
use std::time::Duration;

use dossier_contracts::api::{CompanyRef, SearchFilters, SearchPeopleRequest};
use dossier_directory::{
    DirectoryProvider, HttpProvider, HttpProviderConfig, ProviderSet, embedded_demo,
};
use search_worker::search::{ProviderOutcomeKind, ProviderStatus, search};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn vendor(response: ResponseTemplate) -> (MockServer, Arc<dyn DirectoryProvider>) {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(response)
        .mount(&server)
        .await;
    let mut config = HttpProviderConfig::new("vendor", server.uri());
    config.max_attempts = 2;
    config.initial_backoff = Duration::from_millis(10);
    config.timeout = Duration::from_millis(300);
    (server, Arc::new(HttpProvider::new(config).unwrap()))
}

fn request(target: CompanyRef) -> SearchPeopleRequest {
    SearchPeopleRequest {
        target_account: target,
        filters: SearchFilters::default(),
        limit: 25,
    }
}

fn acme_page() -> CompanyRef {
    CompanyRef {
        linkedin_handle: Some("acme-corp".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_failing_vendor_beside_the_directory_is_reported_but_rows_are_kept() {
    let (_server, vendor) = vendor(ResponseTemplate::new(500)).await;
    let providers = ProviderSet::new(vec![Arc::new(embedded_demo().unwrap()), vendor]);
    let result = search(&providers, &request(acme_page())).await;
    assert_eq!(result.meta.provider_outcome, ProviderOutcomeKind::Hit);
    assert!(result.any_provider_failed());
    assert!(!result.all_providers_failed());
    let vendor = result
        .meta
        .providers
        .iter()
        .find(|p| p.name == "vendor")
        .unwrap();
    assert_eq!(vendor.status, ProviderStatus::Failed);
    assert!(
        vendor.error.as_deref().unwrap().contains("unavailable"),
        "{vendor:?}"
    );
}

#[tokio::test]
async fn no_rows_and_a_failed_provider_is_empty_partial_failure() {
    let (_server, vendor) = vendor(ResponseTemplate::new(503)).await;
    let providers = ProviderSet::new(vec![Arc::new(embedded_demo().unwrap()), vendor]);
    let target = CompanyRef {
        name: Some("Vandelay Industries".into()),
        ..Default::default()
    };
    let result = search(&providers, &request(target)).await;
    assert!(result.data.is_empty());
    assert_eq!(
        result.meta.provider_outcome,
        ProviderOutcomeKind::EmptyPartialFailure
    );
    assert!(
        result
            .meta
            .message
            .as_deref()
            .unwrap()
            .contains("did not answer")
    );
}

#[tokio::test]
async fn a_hanging_vendor_times_out_and_does_not_hold_the_search() {
    let (_server, vendor) =
        vendor(ResponseTemplate::new(200).set_delay(Duration::from_secs(30))).await;
    let providers = ProviderSet::new(vec![Arc::new(embedded_demo().unwrap()), vendor])
        .with_deadline(Duration::from_millis(500));
    let result = search(&providers, &request(acme_page())).await;
    assert_eq!(result.meta.provider_outcome, ProviderOutcomeKind::Hit);
    let vendor = result
        .meta
        .providers
        .iter()
        .find(|p| p.name == "vendor")
        .unwrap();
    assert_eq!(vendor.status, ProviderStatus::TimedOut, "{vendor:?}");
}

#[tokio::test]
async fn every_provider_failing_is_all_failed() {
    let (_server, vendor) = vendor(ResponseTemplate::new(500)).await;
    let providers = ProviderSet::new(vec![vendor]);
    let target = CompanyRef {
        name: Some("Acme Corp".into()),
        domain: Some("acme.com".into()),
        ..Default::default()
    };
    let result = search(&providers, &request(target)).await;
    assert!(result.all_providers_failed());
    assert!(result.data.is_empty());
}
