//! Which directory providers a worker asks, from configuration: local
//! JSONL/CSV files (or, with none named, the embedded demo directory) and
//! optionally an outside vendor over HTTP. Every worker that reads the
//! directory (search, enrichment) flattens [`ProvidersConfig`] into its CLI.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::http::{HttpConfigError, HttpProvider, HttpProviderConfig};
use crate::local::{LoadError, LocalDirectory, LocalDirectoryConfig};
use crate::model::Record;
use crate::provider::DirectoryProvider;
use crate::set::ProviderSet;

/// `DOSSIER_DIRECTORY_FILES`: JSONL/CSV directory files, comma separated.
pub const ENV_DIRECTORY_FILES: &str = "DOSSIER_DIRECTORY_FILES";
/// `DOSSIER_VENDOR_URL`: base URL of an outside data vendor (off when unset).
pub const ENV_VENDOR_URL: &str = "DOSSIER_VENDOR_URL";
/// `DOSSIER_VENDOR_API_KEY`: bearer token for the vendor (never logged).
pub const ENV_VENDOR_API_KEY: &str = "DOSSIER_VENDOR_API_KEY";
/// `DOSSIER_VENDOR_TIMEOUT`: per-request timeout of the vendor.
pub const ENV_VENDOR_TIMEOUT: &str = "DOSSIER_VENDOR_TIMEOUT";
/// `DOSSIER_PROVIDER_DEADLINE`: most time any provider gets per lookup.
pub const ENV_PROVIDER_DEADLINE: &str = "DOSSIER_PROVIDER_DEADLINE";

/// The small demo directory compiled into the workers, so everything works
/// offline from the first run (`cargo xtask up` uses the generated 200,000
/// people instead).
const EMBEDDED_DEMO: &str = include_str!("../fixtures/directory.jsonl");

/// Building the configured providers failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvidersError {
    /// The directory files could not be loaded.
    #[error("cannot load the directory files: {0}")]
    Load(#[from] LoadError),
    /// The embedded demo directory does not parse (a broken build).
    #[error("cannot parse the embedded demo directory: {0}")]
    EmbeddedDemo(#[source] serde_json::Error),
    /// The vendor settings are invalid.
    #[error("cannot configure the vendor provider: {0}")]
    Vendor(#[from] HttpConfigError),
    /// The loading thread panicked or was cancelled.
    #[error("the directory loader stopped: {0}")]
    Loader(#[from] tokio::task::JoinError),
}

/// Directory provider settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ProvidersConfig {
    /// JSONL/CSV directory files, comma separated; none means the embedded demo directory.
    #[arg(long = "directory-files", env = ENV_DIRECTORY_FILES, value_delimiter = ',')]
    pub directory_files: Vec<PathBuf>,
    /// Base URL of an outside data vendor (JSON over HTTP); off when unset.
    #[arg(long, env = ENV_VENDOR_URL)]
    pub vendor_url: Option<String>,
    /// Bearer token for the vendor.
    #[arg(long, env = ENV_VENDOR_API_KEY, hide_env_values = true, value_parser = parse_secret)]
    pub vendor_api_key: Option<SecretString>,
    /// Per-request timeout of the vendor.
    #[arg(long, env = ENV_VENDOR_TIMEOUT, default_value = "5s", value_parser = humantime::parse_duration)]
    pub vendor_timeout: Duration,
    /// Most time any provider gets per lookup; a slower one counts as timed out.
    #[arg(long, env = ENV_PROVIDER_DEADLINE, default_value = "10s", value_parser = humantime::parse_duration)]
    pub provider_deadline: Duration,
}

fn parse_secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s))
}

impl ProvidersConfig {
    /// [`ProvidersConfig::build`] on a blocking thread: loading a large
    /// directory takes seconds of CPU, which must not stall the async
    /// runtime meanwhile (the admin server answers probes during start-up).
    pub async fn build_off_runtime(&self) -> Result<ProviderSet, ProvidersError> {
        let config = self.clone();
        tokio::task::spawn_blocking(move || config.build()).await?
    }

    /// Loads the local directory and connects the vendor.
    pub fn build(&self) -> Result<ProviderSet, ProvidersError> {
        let local = if self.directory_files.is_empty() {
            embedded_demo()?
        } else {
            let config = LocalDirectoryConfig {
                name: "local".to_owned(),
                files: self.directory_files.clone(),
            };
            let (dir, stats) = LocalDirectory::load_with_stats(&config)?;
            tracing::info!(
                message = "Directory loaded.",
                companies = stats.companies,
                people = stats.people,
                files = stats.files,
            );
            dir
        };
        let mut providers: Vec<Arc<dyn DirectoryProvider>> = vec![Arc::new(local)];
        if let Some(url) = &self.vendor_url {
            let mut config = HttpProviderConfig::new("vendor", url.clone());
            config.api_key = self.vendor_api_key.clone();
            config.timeout = self.vendor_timeout;
            providers.push(Arc::new(HttpProvider::new(config)?));
        }
        Ok(ProviderSet::new(providers).with_deadline(self.provider_deadline))
    }
}

/// The embedded demo directory (`fixtures/directory.jsonl`), named `local`.
pub fn embedded_demo() -> Result<LocalDirectory, ProvidersError> {
    let records = EMBEDDED_DEMO
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str::<Record>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ProvidersError::EmbeddedDemo)?;
    Ok(LocalDirectory::from_records("local", records))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_demo_loads_and_flags_parse() {
        let dir = embedded_demo().unwrap();
        assert!(dir.people().len() > 100);

        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            providers: ProvidersConfig,
        }
        let cli = <Cli as clap::Parser>::try_parse_from([
            "worker",
            "--directory-files",
            "a.jsonl,b.csv",
            "--provider-deadline",
            "2s",
        ])
        .unwrap();
        assert_eq!(cli.providers.directory_files.len(), 2);
        assert_eq!(cli.providers.provider_deadline, Duration::from_secs(2));
        assert!(cli.providers.vendor_url.is_none());
    }
}
