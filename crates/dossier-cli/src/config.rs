//! Where the client finds the API and its key: flags, then `DOSSIER_*`
//! environment variables (clap reads both), then a TOML file, then the
//! local default URL.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::error::CliError;

/// The API's base URL variable.
pub const ENV_API_URL: &str = "DOSSIER_API_URL";
/// The API key variable.
pub const ENV_API_KEY: &str = "DOSSIER_API_KEY";
/// The configuration file variable.
pub const ENV_CONFIG: &str = "DOSSIER_CONFIG";
/// The gateway `cargo xtask up` runs.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8080";

/// The configuration file's contents (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Base URL of the API.
    pub api_url: Option<String>,
    /// The API key. `SecretString` so it never prints in a debug dump.
    pub api_key: Option<SecretString>,
}

/// What a command connects with.
#[derive(Debug)]
pub struct Settings {
    /// Base URL, without a trailing slash.
    pub api_url: String,
    /// The key (never printed).
    pub api_key: SecretString,
}

/// The default file: `$XDG_CONFIG_HOME/dossier/config.toml`, else
/// `~/.config/dossier/config.toml`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("dossier").join("config.toml"))
}

/// Reads `path`; a missing file is an empty configuration only when it was
/// not named explicitly.
pub fn read_file(path: &Path, explicit: bool) -> Result<FileConfig, CliError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| {
            CliError::Usage(format!(
                "invalid configuration file {}: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(CliError::Usage(format!(
            "cannot read the configuration file {}: {e}",
            path.display()
        ))),
    }
}

/// Resolves the settings: the flag or variable (`url`, `key`) wins over the
/// file, which wins over the default URL. No key at all is an error that
/// says where to put one.
pub fn resolve(
    url: Option<String>,
    key: Option<String>,
    config: Option<&Path>,
) -> Result<Settings, CliError> {
    let file = match config {
        Some(path) => read_file(path, true)?,
        None => match default_path() {
            Some(path) => read_file(&path, false)?,
            None => FileConfig::default(),
        },
    };
    let api_url = url
        .filter(|u| !u.trim().is_empty())
        .or(file.api_url)
        .unwrap_or_else(|| DEFAULT_API_URL.to_owned());
    let api_url = api_url.trim().trim_end_matches('/').to_owned();
    if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
        return Err(CliError::Usage(format!(
            "the API URL must start with http:// or https:// (got `{api_url}`)"
        )));
    }
    let api_key = key
        .filter(|k| !k.trim().is_empty())
        .map(|k| SecretString::from(k.trim().to_owned()))
        .or(file.api_key)
        .ok_or_else(|| {
            CliError::NoKey(format!(
                "no API key: pass --api-key, set {ENV_API_KEY}, or put api_key in {}",
                default_path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "~/.config/dossier/config.toml".to_owned())
            ))
        })?;
    Ok(Settings { api_url, api_key })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn flags_win_over_the_file_which_wins_over_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "api_url = \"https://file.example/\"\napi_key = \"k-file\"\n",
        )
        .unwrap();
        let from_file = resolve(None, None, Some(&path)).unwrap();
        assert_eq!(from_file.api_url, "https://file.example");
        assert_eq!(from_file.api_key.expose_secret(), "k-file");
        let flags = resolve(
            Some("http://flag.example".into()),
            Some("k-flag".into()),
            Some(&path),
        )
        .unwrap();
        assert_eq!(flags.api_url, "http://flag.example");
        assert_eq!(flags.api_key.expose_secret(), "k-flag");
        // The key never shows in a debug dump.
        let settings = resolve(None, Some("k-secret".into()), Some(&path)).unwrap();
        assert!(!format!("{settings:?}").contains("k-secret"));
    }

    #[test]
    fn a_named_file_that_is_missing_or_wrong_is_a_usage_error() {
        let missing = resolve(
            None,
            Some("k".into()),
            Some(Path::new("/no/such/file.toml")),
        );
        assert!(matches!(missing, Err(CliError::Usage(_))));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "api_kye = \"typo\"\n").unwrap();
        let typo = resolve(None, Some("k".into()), Some(&path));
        assert!(matches!(typo, Err(CliError::Usage(m)) if m.contains("api_kye")));
    }
}
