//! The admin port: alive from the start, ready only while serving, in step
//! with gRPC health, and not ready from the moment shutdown begins.

use operations::App;
use tokio_util::sync::CancellationToken;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::{DEADLINE, TestApp};

async fn status(admin: &str, path: &str) -> Option<u16> {
    let response = reqwest::get(format!("{admin}{path}")).await.ok()?;
    Some(response.status().as_u16())
}

#[tokio::test]
async fn readiness_follows_the_service_from_start_to_shutdown() {
    let app = TestApp::spawn().await;
    let mut config = app.config();
    config.admin.admin_addr = Some("127.0.0.1:0".parse().unwrap());
    let ops = App::build(config).await.unwrap();
    let admin = format!("http://{}", ops.admin_addr().unwrap());
    let readiness = ops.readiness();

    // Built, not yet running: alive, not ready.
    assert_eq!(status(&admin, "/healthz").await, Some(200));
    assert_eq!(status(&admin, "/readyz").await, Some(503));
    assert!(!readiness.is_ready());

    let grpc = ops.grpc_addr();
    let token = CancellationToken::new();
    let running = tokio::spawn(ops.run(token.clone()));
    dossier_testkit::wait_until("the admin port to say ready", DEADLINE, || async {
        status(&admin, "/readyz").await == Some(200)
    })
    .await;
    // gRPC health agrees.
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(serving, ServingStatus::Serving as i32);
    let metrics = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("# HELP dossier_jobs_pending "),
        "queue depth is described: {metrics}"
    );

    // Not ready from the very moment shutdown begins, before the service
    // stops anything.
    token.cancel();
    assert!(!readiness.is_ready());
    running.await.unwrap().unwrap();
    // Stopped: the admin server is gone too.
    assert_eq!(status(&admin, "/healthz").await, None);
}
