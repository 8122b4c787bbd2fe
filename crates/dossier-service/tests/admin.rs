//! The admin server over real HTTP on a free port.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly.

use dossier_service::Readiness;
use dossier_service::admin::{AdminConfig, AdminServer};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn health_readiness_and_metrics_over_http_until_shutdown() {
    let readiness = Readiness::new();
    let config = AdminConfig {
        admin_addr: Some("127.0.0.1:0".parse().unwrap()),
    };
    let server = AdminServer::start(&config, readiness.clone())
        .await
        .unwrap()
        .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    // Alive before it is ready: liveness must pass while the service starts.
    assert_eq!(get(addr, "/healthz").await.0, 200);
    let (status, _, body) = get(addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (503, r#"{"status":"not_ready"}"#));

    readiness.set(true);
    let (status, _, body) = get(addr, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));

    metrics::describe_counter!("dossier_admin_test_total", "A counter of this test.");
    metrics::counter!("dossier_admin_test_total", "kind" => "search.people").increment(3);
    metrics::histogram!("dossier_admin_test_duration_seconds").record(0.2);
    let (status, content_type, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(
        body.contains("# HELP dossier_admin_test_total A counter of this test."),
        "{body}"
    );
    assert!(
        body.contains(r#"dossier_admin_test_total{kind="search.people"} 3"#),
        "{body}"
    );
    // Duration histograms get the shared buckets.
    assert!(
        body.contains(r#"dossier_admin_test_duration_seconds_bucket{le="0.25"} 1"#),
        "{body}"
    );
    assert!(
        body.contains(r#"dossier_admin_test_duration_seconds_bucket{le="900"} 1"#),
        "{body}"
    );

    // Shutdown begins: not ready at once, while the server still answers.
    let shutdown = dossier_service::CancellationToken::new();
    readiness.clear_on(&shutdown);
    shutdown.cancel();
    assert_eq!(get(addr, "/readyz").await.0, 503);

    server.shutdown().await;
    assert!(
        reqwest::get(format!("http://{addr}/healthz"))
            .await
            .is_err(),
        "closed after shutdown"
    );
}

#[tokio::test]
async fn unset_address_means_no_server_and_a_taken_port_is_a_clear_error() {
    assert!(
        AdminServer::start(&AdminConfig::default(), Readiness::new())
            .await
            .unwrap()
            .is_none()
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = AdminConfig {
        admin_addr: Some(taken.local_addr().unwrap()),
    };
    let error = AdminServer::start(&config, Readiness::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("cannot listen on"), "{error}");
}

#[test]
fn the_admin_address_is_read_from_its_variable() {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminConfig,
    }
    let cli = Cli::try_parse_from(["svc", "--admin-addr", "0.0.0.0:9090"]).unwrap();
    assert_eq!(cli.admin.admin_addr, Some("0.0.0.0:9090".parse().unwrap()));
    assert_eq!(dossier_service::admin::ENV_ADMIN_ADDR, "DOSSIER_ADMIN_ADDR");
}
