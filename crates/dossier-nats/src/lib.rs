//! How a Dossier service connects to NATS: the server URL, the service's own
//! credentials, and one way of connecting that every service shares — the
//! gateway (core request-reply only) as much as the services that use
//! JetStream through `dossier-broker`.
#![forbid(unsafe_code)]

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

/// `DOSSIER_NATS_URL`: NATS server URL(s), comma separated.
pub const ENV_NATS_URL: &str = "DOSSIER_NATS_URL";
/// `DOSSIER_NATS_USER`: the service's NATS user (with `DOSSIER_NATS_PASSWORD`).
pub const ENV_NATS_USER: &str = "DOSSIER_NATS_USER";
/// `DOSSIER_NATS_PASSWORD`: the password of `DOSSIER_NATS_USER` (never logged).
pub const ENV_NATS_PASSWORD: &str = "DOSSIER_NATS_PASSWORD";

/// A NATS user and password (deployments give each service its own user
/// with least-privilege permissions). Both or neither.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NatsCredentials {
    /// NATS user of this service.
    #[arg(long = "nats-user", env = ENV_NATS_USER, requires = "password")]
    pub user: Option<String>,
    /// Password of the NATS user.
    #[arg(long = "nats-password", env = ENV_NATS_PASSWORD, hide_env_values = true,
          requires = "user", value_parser = parse_secret)]
    pub password: Option<SecretString>,
}

impl NatsCredentials {
    /// Adds the credentials, if any, to connection options.
    pub fn apply(&self, options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
        match (&self.user, &self.password) {
            (Some(user), Some(password)) => {
                options.user_and_password(user.clone(), password.expose_secret().to_owned())
            }
            _ => options,
        }
    }
}

fn parse_secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s))
}

/// Connects to NATS at `url`, naming the connection after the service.
///
/// The first connection is retried in the background rather than failing
/// start-up, and the client keeps reconnecting forever: a service starts
/// (and serves what does not need the broker) while NATS is down, and
/// recovers by itself when it returns. Callers check [`is_connected`] before
/// work that must fail fast when the broker is gone. `request_timeout`
/// bounds every request (publish acks, KV calls, request-reply).
pub async fn connect(
    url: &str,
    credentials: &NatsCredentials,
    service: &str,
    request_timeout: Duration,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    credentials
        .apply(async_nats::ConnectOptions::new())
        .name(service)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(request_timeout))
        .max_reconnects(None)
        .connect(url)
        .await
}

/// Whether the client is connected right now.
pub fn is_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}
