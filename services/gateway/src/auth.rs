//! API keys: the keys file, constant-time lookup, and the [`Caller`]
//! extractor that authenticates a request.
//!
//! Keys are never stored in plain text. The keys file (TOML, named by
//! `DOSSIER_API_KEYS_FILE`) holds one table per key:
//!
//! ```toml
//! [[keys]]
//! tenant = "acme"
//! id = "key_1"
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! ```
//!
//! A presented key is hashed with SHA-256 and compared with *every*
//! configured hash in constant time, so neither the position of a match nor
//! how many leading bytes matched shows in the response time. The key
//! format, hashing and that comparison are `dossier-keys`'s (shared with
//! `cargo xtask keygen`).

use std::path::Path;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use dossier_keys::{hash_key, is_valid_name};
use http::request::Parts;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use crate::rate_limit::RateLimiter;

/// `X-API-Key`.
pub const X_API_KEY: &str = "x-api-key";

/// The keys file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The file could not be read.
    #[error("cannot read API keys file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("API keys file {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: toml::de::Error,
    },
    /// An entry is invalid.
    #[error("API key entry {index} (id `{id}`): {problem}")]
    Entry {
        /// 0-based position in the file.
        index: usize,
        /// The entry's id as written.
        id: String,
        /// What is wrong.
        problem: String,
    },
    /// No keys are configured: every request would be refused.
    #[error("no API keys configured")]
    Empty,
}

/// One configured key, as the keys file describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// The tenant the key belongs to.
    pub tenant: String,
    /// The key's id (shown by `GET /api/me`, never secret).
    pub id: String,
    /// Hex SHA-256 of the key.
    pub sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

#[derive(Clone)]
struct StoredKey {
    tenant: Arc<str>,
    id: Arc<str>,
    hash: [u8; 32],
}

/// The configured API keys. Cheap to clone.
#[derive(Clone)]
pub struct ApiKeys {
    keys: Arc<[StoredKey]>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hashes are not secrets, but there is no reason to print them.
        f.debug_struct("ApiKeys")
            .field("count", &self.keys.len())
            .finish()
    }
}

impl ApiKeys {
    /// Validates entries: tenant and id are 1-64 of `[A-Za-z0-9_-]`, the hash
    /// is 64 hex digits, ids and hashes are unique, and there is at least one.
    pub fn new(entries: impl IntoIterator<Item = KeyEntry>) -> Result<ApiKeys, KeysError> {
        let mut keys: Vec<StoredKey> = Vec::new();
        for (index, entry) in entries.into_iter().enumerate() {
            let problem = |problem: &str| KeysError::Entry {
                index,
                id: entry.id.clone(),
                problem: problem.to_owned(),
            };
            if !is_valid_name(&entry.tenant) {
                return Err(problem("tenant must be 1-64 of [A-Za-z0-9_-]"));
            }
            if !is_valid_name(&entry.id) {
                return Err(problem("id must be 1-64 of [A-Za-z0-9_-]"));
            }
            let Some(hash) = dossier_keys::decode_hash(&entry.sha256) else {
                return Err(problem(
                    "sha256 must be the 64 hex digits of the key's SHA-256",
                ));
            };
            if keys.iter().any(|k| *k.id == *entry.id) {
                return Err(problem("id is used by an earlier entry"));
            }
            if keys.iter().any(|k| k.hash == hash) {
                return Err(problem("the same key is configured twice"));
            }
            keys.push(StoredKey {
                tenant: entry.tenant.as_str().into(),
                id: entry.id.as_str().into(),
                hash,
            });
        }
        if keys.is_empty() {
            return Err(KeysError::Empty);
        }
        Ok(ApiKeys { keys: keys.into() })
    }

    /// Keys from `(tenant, key id, plain key)` triples, for tests and tools.
    pub fn from_plain<'a>(
        keys: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) -> Result<ApiKeys, KeysError> {
        ApiKeys::new(keys.into_iter().map(|(tenant, id, key)| KeyEntry {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            sha256: hash_key(key),
        }))
    }

    /// Parses a keys file's text; `path` only names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<ApiKeys, KeysError> {
        let file: KeysFile = toml::from_str(text).map_err(|source| KeysError::Parse {
            path: path.to_owned(),
            source,
        })?;
        ApiKeys::new(file.keys)
    }

    /// Reads and validates a keys file.
    pub fn load(path: &Path) -> Result<ApiKeys, KeysError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeysError::Read {
            path: shown.clone(),
            source,
        })?;
        ApiKeys::parse(&text, &shown)
    }

    /// How many keys are configured.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no keys are configured (never true for a built value).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The caller a key belongs to. Compares the key's hash with every
    /// configured hash in constant time and without an early exit.
    pub fn authenticate(&self, key: &SecretString) -> Option<Caller> {
        let presented = dossier_keys::digest(key.expose_secret());
        let found = dossier_keys::find_constant_time(self.keys.iter().map(|k| &k.hash), &presented);
        let stored = found.and_then(|i| self.keys.get(i))?;
        Some(Caller {
            tenant_id: stored.tenant.clone(),
            key_id: stored.id.clone(),
        })
    }
}

/// The authenticated caller of a request. As an extractor it answers 401
/// (with `WWW-Authenticate: Bearer`) for a missing, malformed or unknown key,
/// and 429 when the tenant is over its rate limit.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The tenant the key belongs to.
    pub tenant_id: Arc<str>,
    /// The key's id.
    pub key_id: Arc<str>,
}

/// The API key a request presents, if any: `Authorization: Bearer <key>`
/// (scheme case-insensitive) or `X-API-Key: <key>`. `Err` when a header is
/// present but malformed, or both name different keys.
fn presented_key(parts: &Parts) -> Result<Option<SecretString>, ()> {
    let mut found: Option<String> = None;
    let mut authorization = parts.headers.get_all(http::header::AUTHORIZATION).iter();
    if let Some(value) = authorization.next() {
        if authorization.next().is_some() {
            return Err(());
        }
        let value = value.to_str().map_err(|_| ())?;
        let (scheme, key) = value.trim().split_once(' ').ok_or(())?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(());
        }
        let key = key.trim();
        if key.is_empty() {
            return Err(());
        }
        found = Some(key.to_owned());
    }
    let mut api_key = parts.headers.get_all(X_API_KEY).iter();
    if let Some(value) = api_key.next() {
        if api_key.next().is_some() {
            return Err(());
        }
        let key = value.to_str().map_err(|_| ())?.trim();
        if key.is_empty() {
            return Err(());
        }
        match &found {
            Some(bearer) if bearer != key => return Err(()),
            Some(_) => {}
            None => found = Some(key.to_owned()),
        }
    }
    Ok(found.map(SecretString::from))
}

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let key = presented_key(parts)
            .ok()
            .flatten()
            .ok_or(ApiError::Unauthorized)?;
        let caller = state
            .keys()
            .authenticate(&key)
            .ok_or(ApiError::Unauthorized)?;
        tracing::Span::current().record("tenant.id", &*caller.tenant_id);
        if let Some(limiter) = state.rate_limiter() {
            check_rate(limiter, &caller)?;
        }
        Ok(caller)
    }
}

fn check_rate(limiter: &RateLimiter, caller: &Caller) -> Result<(), ApiError> {
    limiter
        .check(&caller.tenant_id)
        .map_err(|retry_after| ApiError::RateLimited {
            retry_after_secs: retry_after.as_secs_f64().ceil() as u64,
            limit: Some(limiter.burst()),
        })
}

#[cfg(test)]
mod tests {
    use dossier_keys::generate_key;

    use super::*;

    /// The key format and hash are checked in `dossier-keys`
    /// (`generated_keys_have_the_format_and_hash_to_their_entry`).
    #[test]
    fn generated_keys_authenticate() {
        let (key, _) = generate_key();
        let keys =
            ApiKeys::from_plain([("acme", "k1", "secret-a"), ("globex", "k2", key.as_str())])
                .unwrap();
        let caller = keys.authenticate(&SecretString::from(key)).unwrap();
        assert_eq!((&*caller.tenant_id, &*caller.key_id), ("globex", "k2"));
        let caller = keys
            .authenticate(&SecretString::from("secret-a".to_owned()))
            .unwrap();
        assert_eq!(&*caller.tenant_id, "acme");
        assert!(
            keys.authenticate(&SecretString::from("secret-b".to_owned()))
                .is_none()
        );
    }

    #[test]
    fn keys_file_is_parsed_and_validated() {
        let good = format!(
            "[[keys]]\ntenant = \"acme\"\nid = \"key_1\"\nsha256 = \"{}\"\n",
            hash_key("k")
        );
        assert_eq!(ApiKeys::parse(&good, "keys.toml").unwrap().len(), 1);

        let bad_tenant = good.replace("acme", "ac me");
        let err = ApiKeys::parse(&bad_tenant, "keys.toml").unwrap_err();
        assert!(err.to_string().contains("tenant must be"), "{err}");

        let long_tenant = good.replace("acme", &"a".repeat(65));
        assert!(ApiKeys::parse(&long_tenant, "keys.toml").is_err());

        let bad_hash = good.replace(&hash_key("k"), "abc");
        let err = ApiKeys::parse(&bad_hash, "keys.toml").unwrap_err();
        assert!(err.to_string().contains("sha256"), "{err}");

        let twice = format!("{good}{}", good.replace("key_1", "key_2"));
        let err = ApiKeys::parse(&twice, "keys.toml").unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");

        let unknown = format!("{good}extra = 1\n");
        let err = ApiKeys::parse(&unknown, "keys.toml").unwrap_err();
        assert!(err.to_string().contains("keys.toml"), "{err}");

        assert!(matches!(ApiKeys::parse("", "k"), Err(KeysError::Empty)));

        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &good).unwrap();
        let keys = ApiKeys::load(file.path()).unwrap();
        let caller = keys
            .authenticate(&SecretString::from("k".to_owned()))
            .unwrap();
        assert_eq!((&*caller.tenant_id, &*caller.key_id), ("acme", "key_1"));
        assert!(matches!(
            ApiKeys::load(Path::new("/nonexistent/keys.toml")),
            Err(KeysError::Read { .. })
        ));
    }
}
