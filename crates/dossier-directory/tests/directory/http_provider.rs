//! The HTTP provider against real HTTP servers on loopback: wiremock for
//! answers and failures, and a small hand-made server for the concurrency
//! limit (it holds each request until the test lets it go).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dossier_contracts::api::{Department, Seniority};
use dossier_directory::{
    DirectoryProvider, HttpProvider, HttpProviderConfig, PeopleQuery, ProviderError,
};
use secrecy::SecretString;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Generous: only the hanging-response test relies on a timeout firing.
const WAIT: Duration = Duration::from_secs(20);

fn config(base: &str) -> HttpProviderConfig {
    let mut config = HttpProviderConfig::new("vendor", base);
    config.max_attempts = 3;
    // Backoff is real time; keep it tiny so retries do not slow the suite.
    config.initial_backoff = Duration::from_millis(1);
    config.max_backoff = Duration::from_millis(4);
    config.timeout = WAIT;
    config
}

fn provider(server: &MockServer) -> HttpProvider {
    HttpProvider::new(config(&format!("{}/v1", server.uri()))).unwrap()
}

fn company_json() -> serde_json::Value {
    json!({
        "id": "v-1", "name": "Acme Corp", "domain": "acme.com",
        "linkedinHandle": "acme-corp", "industry": "Software", "sizeBand": "51-200",
        "headquarters": { "city": "San Francisco", "region": "California", "country": "United States" },
        "vendorOnlyField": true
    })
}

fn person_json(id: &str) -> serde_json::Value {
    json!({
        "id": id, "fullName": "Jane Doe", "title": "CTO", "seniority": "c_suite",
        "department": "engineering", "currentCompanyText": "Acme Corp",
        "linkedinUrl": "https://www.linkedin.com/in/jane-doe"
    })
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

#[tokio::test]
async fn success_with_bearer_token_and_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/companies"))
        .and(query_param("domain", "acme.com"))
        .and(header("authorization", "Bearer s3cr3t"))
        .and(header("accept", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": [company_json()] })))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = config(&format!("{}/v1/", server.uri()));
    config.api_key = Some(SecretString::from("s3cr3t"));
    let provider = HttpProvider::new(config).unwrap();
    assert_eq!(provider.name(), "vendor");
    let companies = provider
        .companies_by_domain("https://www.acme.com/")
        .await
        .unwrap();
    assert_eq!(companies.len(), 1);
    assert_eq!(companies[0].linkedin_handle.as_deref(), Some("acme-corp"));
}

#[tokio::test]
async fn people_filters_are_query_parameters() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/people"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [person_json("a"), person_json("b"), person_json("c")]
        })))
        .mount(&server)
        .await;
    let provider = provider(&server);
    let mut q = PeopleQuery::with_limit(2);
    q.titles = vec!["VP Sales".into(), "cto".into()];
    q.seniorities = vec![Seniority::CSuite];
    q.departments = vec![Department::Hr];
    q.locations = vec!["Berlin".into()];
    q.keywords = vec!["rust".into()];
    let people = provider
        .people_at_company_handle("https://www.linkedin.com/company/acme-corp/", &q)
        .await
        .unwrap();
    // The vendor sent three; the limit is ours to enforce.
    assert_eq!(people.len(), 2);

    provider
        .people_by_company_text("ACME Corp.", &PeopleQuery::with_limit(5))
        .await
        .unwrap();
    provider.person_by_email("Jane@Acme.com").await.unwrap();
    provider
        .person_by_linkedin("linkedin.com/in/Jane-Doe")
        .await
        .unwrap();
    provider
        .people_by_name("Jane Doe", Some("acme.com"))
        .await
        .unwrap();

    let received = server.received_requests().await.unwrap();
    let queries: Vec<Vec<(String, String)>> = received
        .iter()
        .map(|r| {
            r.url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .collect();
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        queries[0],
        pairs(&[
            ("companyHandle", "acme-corp"),
            ("title", "VP Sales"),
            ("title", "cto"),
            ("seniority", "c_suite"),
            ("department", "hr"),
            ("location", "Berlin"),
            ("keyword", "rust"),
            ("limit", "2"),
        ])
    );
    assert_eq!(
        queries[1],
        pairs(&[("companyName", "acme"), ("limit", "5")])
    );
    assert_eq!(queries[2], pairs(&[("email", "jane@acme.com")]));
    assert_eq!(queries[3], pairs(&[("linkedinHandle", "jane-doe")]));
    assert_eq!(
        queries[4],
        pairs(&[("fullName", "Jane Doe"), ("companyHint", "acme.com")])
    );
    // None of these carried a token: none was configured.
    assert!(
        received
            .iter()
            .all(|r| !r.headers.contains_key("authorization"))
    );
}

#[tokio::test]
async fn unusable_input_makes_no_request() {
    let server = MockServer::start().await;
    let provider = provider(&server);
    assert!(
        provider
            .companies_by_handle("not a handle")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        provider
            .companies_by_domain("nope")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(provider.person_by_email("nope").await.unwrap().is_empty());
    assert!(
        provider
            .people_at_company_handle("acme", &PeopleQuery::with_limit(0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test]
async fn server_error_then_success_is_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/companies"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/companies"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": [company_json()] })))
        .with_priority(2)
        .mount(&server)
        .await;
    let companies = provider(&server)
        .companies_by_handle("acme-corp")
        .await
        .unwrap();
    assert_eq!(companies.len(), 1);
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn persistent_server_error_is_unavailable_after_every_attempt() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/companies"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let error = provider(&server)
        .companies_by_name("Acme")
        .await
        .unwrap_err();
    match &error {
        ProviderError::Unavailable { attempts, reason } => {
            assert_eq!(*attempts, 3);
            assert!(reason.contains("503"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!error.is_timeout());
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn hanging_response_times_out_without_retry() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/companies"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "data": [] }))
                .set_delay(Duration::from_secs(60)),
        )
        .mount(&server)
        .await;
    let mut config = config(&format!("{}/v1", server.uri()));
    config.timeout = Duration::from_millis(150);
    let error = HttpProvider::new(config)
        .unwrap()
        .companies_by_domain("acme.com")
        .await
        .unwrap_err();
    assert_eq!(error, ProviderError::Timeout(Duration::from_millis(150)));
    assert!(error.is_timeout());
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/companies"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    Mock::given(path("/v1/people"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "7"))
        .mount(&server)
        .await;
    let provider = provider(&server);
    assert_eq!(
        provider.companies_by_domain("acme.com").await.unwrap_err(),
        ProviderError::Rejected(403)
    );
    assert_eq!(
        provider.person_by_email("a@acme.com").await.unwrap_err(),
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn invalid_body_is_an_invalid_response() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/companies"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>"))
        .mount(&server)
        .await;
    assert!(matches!(
        provider(&server).companies_by_domain("acme.com").await,
        Err(ProviderError::InvalidResponse(_))
    ));
}

#[tokio::test]
async fn connection_refused_is_retried_then_unavailable() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let provider = HttpProvider::new(config(&format!("http://127.0.0.1:{port}/v1"))).unwrap();
    match provider.companies_by_domain("acme.com").await {
        Err(ProviderError::Unavailable { attempts: 3, .. }) => {}
        other => panic!("{other:?}"),
    }
}

/// A loopback HTTP server that answers `{"data":[]}` to each request only
/// when the test releases it, and records how many it held at once.
struct HoldingServer {
    base: String,
    release: Arc<Semaphore>,
    arrived: watch::Receiver<usize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl HoldingServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let release = Arc::new(Semaphore::new(0));
        let (arrived_tx, arrived) = watch::channel(0usize);
        let arrived_tx = Arc::new(arrived_tx);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let (rel, max) = (release.clone(), max_in_flight.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (release, in_flight, max, arrived_tx) = (
                    rel.clone(),
                    in_flight.clone(),
                    max.clone(),
                    arrived_tx.clone(),
                );
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    arrived_tx.send_modify(|n| *n += 1);
                    release.acquire().await.unwrap().forget();
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    let body = br#"{"data":[]}"#;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        HoldingServer {
            base,
            release,
            arrived,
            max_in_flight,
        }
    }

    async fn wait_arrived(&mut self, n: usize) {
        tokio::time::timeout(WAIT, self.arrived.wait_for(|&a| a >= n))
            .await
            .expect("requests arrive")
            .unwrap();
    }
}

#[tokio::test]
async fn concurrency_limit_is_respected() {
    const LIMIT: usize = 2;
    const REQUESTS: usize = 6;
    let mut server = HoldingServer::start().await;
    let mut config = config(&server.base);
    config.max_concurrency = LIMIT;
    let provider = Arc::new(HttpProvider::new(config).unwrap());
    let calls: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let provider = provider.clone();
            tokio::spawn(async move { provider.companies_by_domain(&format!("c{i}.com")).await })
        })
        .collect();
    // Let the requests through one at a time: each release admits exactly
    // one more, so at most LIMIT are ever held.
    server.wait_arrived(LIMIT).await;
    for released in 1..=REQUESTS {
        server.release.add_permits(1);
        let next = (LIMIT + released).min(REQUESTS);
        server.wait_arrived(next).await;
        assert!(server.max_in_flight.load(Ordering::SeqCst) <= LIMIT);
    }
    for call in calls {
        assert!(call.await.unwrap().unwrap().is_empty());
    }
    assert_eq!(server.max_in_flight.load(Ordering::SeqCst), LIMIT);
}
