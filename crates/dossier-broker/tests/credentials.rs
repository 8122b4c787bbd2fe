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
