//! The test kit's servers reserve stream bytes independently of the free
//! disk, with or without a caller's configuration file.

use async_nats::jetstream::{self, stream};
use dossier_testkit::NatsServer;

/// More than any test machine has free, less than the kit's limit: a
/// reservation nats-server refuses under its default limit (75 % of the
/// free disk) and grants under the kit's.
const RESERVED: i64 = 900 * (1 << 30);

async fn reserves(client: async_nats::Client) -> Result<(), String> {
    jetstream::new(client)
        .create_stream(stream::Config {
            name: "RESERVATION".into(),
            subjects: vec!["reservation".into()],
            max_bytes: RESERVED,
            ..Default::default()
        })
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_server_reserves_beyond_the_free_disk() {
    let nats = NatsServer::start().await;
    reserves(nats.client().await).await.unwrap();
}

#[tokio::test]
async fn a_server_with_a_configuration_file_keeps_the_store_limit() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nats.conf");
    std::fs::write(&config, "authorization { user: svc, password: s3cret }\n").unwrap();
    let nats = NatsServer::start_with(&["-c", config.to_str().unwrap()]).await;
    // The caller's file applies: anonymous clients are refused.
    assert!(async_nats::connect(nats.url()).await.is_err());
    let client = async_nats::ConnectOptions::with_user_and_password("svc".into(), "s3cret".into())
        .connect(nats.url())
        .await
        .unwrap();
    reserves(client).await.unwrap();
}
