//! How a Dossier service connects to NATS: the server URL, the service's own
//! credentials, and one way of connecting that every service shares — the
//! gateway (core request-reply only) as much as the services that use
//! JetStream through `dossier-broker`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

/// `DOSSIER_NATS_URL`: NATS server URL(s), comma separated.
pub const ENV_NATS_URL: &str = "DOSSIER_NATS_URL";
/// `DOSSIER_NATS_USER`: the service's NATS user (with `DOSSIER_NATS_PASSWORD`).
pub const ENV_NATS_USER: &str = "DOSSIER_NATS_USER";
/// `DOSSIER_NATS_PASSWORD`: the password of `DOSSIER_NATS_USER` (never logged).
pub const ENV_NATS_PASSWORD: &str = "DOSSIER_NATS_PASSWORD";

/// `DOSSIER_NATS_TLS_CA`: the CA (PEM) the NATS server's certificate must
/// chain to; setting it requires TLS.
pub const ENV_NATS_TLS_CA: &str = "DOSSIER_NATS_TLS_CA";
/// `DOSSIER_NATS_TLS_CERT`: the service's client certificate (PEM).
pub const ENV_NATS_TLS_CERT: &str = "DOSSIER_NATS_TLS_CERT";
/// `DOSSIER_NATS_TLS_KEY`: the client certificate's private key (PEM).
pub const ENV_NATS_TLS_KEY: &str = "DOSSIER_NATS_TLS_KEY";

/// How a service proves itself to NATS and trusts it: a user and password
/// (deployments give each service its own user with least-privilege
/// permissions; both or neither), and TLS — with a CA set the connection is
/// TLS or nothing, with a client certificate the server can require it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NatsCredentials {
    /// NATS user of this service.
    #[arg(long = "nats-user", env = ENV_NATS_USER, requires = "password")]
    pub user: Option<String>,
    /// Password of the NATS user.
    #[arg(long = "nats-password", env = ENV_NATS_PASSWORD, hide_env_values = true,
          requires = "user", value_parser = parse_secret)]
    pub password: Option<SecretString>,
    /// The CA (PEM) the NATS server's certificate must chain to; when set,
    /// the connection must be TLS.
    #[arg(id = "nats_tls_ca", long = "nats-tls-ca", env = ENV_NATS_TLS_CA)]
    pub tls_ca: Option<PathBuf>,
    /// This service's client certificate (PEM), for servers that verify
    /// clients.
    #[arg(id = "nats_tls_cert", long = "nats-tls-cert", env = ENV_NATS_TLS_CERT,
          requires = "nats_tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(id = "nats_tls_key", long = "nats-tls-key", env = ENV_NATS_TLS_KEY,
          requires = "nats_tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl NatsCredentials {
    /// Adds the credentials and TLS settings, if any, to connection options.
    pub fn apply(&self, mut options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.expose_secret().to_owned());
        }
        if self.tls_ca.is_some() || self.tls_cert.is_some() {
            install_crypto_provider();
        }
        if let Some(ca) = &self.tls_ca {
            options = options.require_tls(true).add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        options
    }
}

fn parse_secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s))
}

/// Makes aws-lc-rs the process's TLS crypto provider, once. Two providers
/// are compiled in (async-nats brings ring), and then rustls cannot choose
/// by itself: a TLS connection (async-nats's, or tonic's server) would
/// panic on its first handshake. Every TLS configuration calls this first.
/// Safe to call any number of times.
pub fn install_crypto_provider() {
    // An error means a provider is installed already: nothing to do.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Connects to NATS at `url` (one URL, or several comma separated: the
/// client picks one and moves to another when it is lost), naming the
/// connection after the service.
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
    let options = credentials
        .apply(async_nats::ConnectOptions::new())
        .name(service)
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(request_timeout))
        .max_reconnects(None);
    match server_addrs(url) {
        Ok(servers) => options.connect(servers).await,
        // The client reports the malformed URL in its own words.
        Err(_) => options.connect(url).await,
    }
}

/// The servers of a `DOSSIER_NATS_URL`: one URL or several, comma
/// separated (async-nats parses one URL from a string, not a list).
pub fn server_addrs(url: &str) -> std::io::Result<Vec<async_nats::ServerAddr>> {
    url.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::parse)
        .collect()
}

/// Whether the client is connected right now.
pub fn is_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_separated_url_is_every_server_in_it() {
        let servers = server_addrs("nats://127.0.0.1:4222, nats://127.0.0.1:4223,tls://n3:4222")
            .expect("three valid URLs");
        let ports: Vec<u16> = servers.iter().map(async_nats::ServerAddr::port).collect();
        assert_eq!(ports, [4222, 4223, 4222]);
        assert_eq!(server_addrs("nats://127.0.0.1:4222").unwrap().len(), 1);
        assert!(server_addrs("nats://127.0.0.1:notaport,nats://127.0.0.1:4222").is_err());
    }
}
