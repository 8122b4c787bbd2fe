//! A server that requires a user and password is reached with the configured
//! credentials, and refuses a client without them.

use std::time::Duration;

use dossier_broker::Topology;
use dossier_nats::NatsCredentials;
use dossier_testkit::NatsServer;

#[tokio::test]
async fn credentials_are_sent_and_required() {
    let nats = NatsServer::start_with(&["--user", "svc", "--pass", "s3cret"]).await;
    let mut cfg = nats.broker_config();
    cfg.credentials = NatsCredentials {
        user: Some("svc".into()),
        password: Some("s3cret".into()),
        ..NatsCredentials::default()
    };
    let client = dossier_broker::connect(&cfg, "test").await.unwrap();
    let js = async_nats::jetstream::new(client);
    Topology::ensure(&js, &nats.topology_config())
        .await
        .unwrap();

    // Without credentials the server refuses the connection.
    let refused = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(nats.url())
        .await;
    assert!(refused.is_err());
    // And the password never shows in the configuration's Debug output.
    assert!(!format!("{cfg:?}").contains("s3cret"));
}

/// Options that connect once (no retries), within two seconds.
fn once(credentials: &NatsCredentials) -> async_nats::ConnectOptions {
    credentials
        .apply(async_nats::ConnectOptions::new())
        .connection_timeout(Duration::from_secs(2))
}

#[tokio::test]
async fn with_a_ca_the_connection_is_tls_to_a_server_of_that_ca_only() {
    let pki = dossier_testkit::TestPki::new();
    let server = pki.issue("nats");
    let (cert, key) = (server.cert.to_str().unwrap(), server.key.to_str().unwrap());
    let nats = NatsServer::start_with(&["--tls", "--tlscert", cert, "--tlskey", key]).await;
    let trusting = NatsCredentials {
        tls_ca: Some(pki.ca()),
        ..NatsCredentials::default()
    };
    let client = once(&trusting).connect(nats.url()).await.unwrap();
    client.flush().await.unwrap();

    // A server certificate of another CA is refused.
    let other = dossier_testkit::TestPki::new();
    let untrusting = NatsCredentials {
        tls_ca: Some(other.ca()),
        ..NatsCredentials::default()
    };
    assert!(once(&untrusting).connect(nats.url()).await.is_err());
    // And with a CA set, a plain-text server is refused, not used.
    let plain = NatsServer::start().await;
    assert!(once(&trusting).connect(plain.url()).await.is_err());
}

#[tokio::test]
async fn a_server_that_verifies_clients_takes_only_those_with_a_certificate_of_its_ca() {
    let pki = dossier_testkit::TestPki::new();
    let server = pki.issue("nats");
    let client_cert = pki.issue("operations");
    let ca = pki.ca();
    let nats = NatsServer::start_with(&[
        "--tlsverify",
        "--tlscert",
        server.cert.to_str().unwrap(),
        "--tlskey",
        server.key.to_str().unwrap(),
        "--tlscacert",
        ca.to_str().unwrap(),
    ])
    .await;
    let without = NatsCredentials {
        tls_ca: Some(ca.clone()),
        ..NatsCredentials::default()
    };
    assert!(once(&without).connect(nats.url()).await.is_err());
    let with = NatsCredentials {
        tls_ca: Some(ca),
        tls_cert: Some(client_cert.cert),
        tls_key: Some(client_cert.key),
        ..NatsCredentials::default()
    };
    let client = once(&with).connect(nats.url()).await.unwrap();
    client.flush().await.unwrap();
}
