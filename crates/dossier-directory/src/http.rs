//! A [`DirectoryProvider`] backed by an outside data vendor speaking JSON over
//! HTTP.
//!
//! # The vendor API
//!
//! Every call is a `GET` below the configured base URL, answered with HTTP 200
//! and `{"data": [ … ]}` holding [`Company`] or [`Person`] records (camelCase,
//! as in this crate's model; unknown fields are ignored). An empty `data` is
//! a clean "nothing found". With an API key, requests carry
//! `Authorization: Bearer <key>`.
//!
//! | call | question |
//! |---|---|
//! | `GET {base}/companies?handle=acme-corp` | companies by LinkedIn handle |
//! | `GET {base}/companies?domain=acme.com` | companies by domain |
//! | `GET {base}/companies?name=Acme` | companies by name or alias |
//! | `GET {base}/people?companyHandle=acme-corp&…filters` | people at a company page |
//! | `GET {base}/people?companyName=acme&…filters` | people by profile company text |
//! | `GET {base}/people?email=jane@acme.com` | people by email |
//! | `GET {base}/people?linkedinHandle=jane-doe` | people by profile handle |
//! | `GET {base}/people?fullName=Jane%20Doe&companyHint=acme.com` | people by name |
//!
//! People filters are repeated parameters: `title`, `seniority`,
//! `department` (snake_case values as in the public API), `location`,
//! `keyword`, and `limit`.
//!
//! # Failure handling
//!
//! * Each attempt has its own timeout; a timed-out attempt is **not** retried
//!   (a vendor that is slow now is likely still slow, and retrying would
//!   multiply the caller's wait) and gives [`ProviderError::Timeout`].
//! * Connection failures and 5xx answers are retried with exponential
//!   backoff and jitter, up to `maxAttempts` attempts in all, then give
//!   [`ProviderError::Unavailable`].
//! * 4xx answers are not retried: 429 gives [`ProviderError::RateLimited`],
//!   others [`ProviderError::Rejected`].
//! * At most `maxConcurrency` requests are in flight per provider; the limit
//!   protects the vendor (and our rate quota) from a burst of batch jobs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use dossier_backoff::Backoff;
use dossier_contracts::api::linkedin::company_handle;
use dossier_contracts::api::normalize_domain;
use reqwest::header::{ACCEPT, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::sync::Semaphore;

use crate::model::{Company, Person};
use crate::normalize::{normalize_company_name, profile_key};
use crate::provider::{DirectoryProvider, PeopleQuery, ProviderError};

/// Settings of one HTTP provider. Durations are humantime strings in
/// configuration files (`"2s"`, `"150ms"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpProviderConfig {
    /// The provider name reported in outcomes and logs.
    pub name: String,
    /// The vendor API's base URL (`https://vendor.example/v1`).
    pub base_url: String,
    /// Bearer token; wrapped so it never appears in `Debug` output or logs.
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// Time budget of one attempt, connection and body included.
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Attempts in all, first one included (at least 1).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each later one.
    #[serde(default = "default_initial_backoff", deserialize_with = "duration")]
    pub initial_backoff: Duration,
    /// Longest wait between retries.
    #[serde(default = "default_max_backoff", deserialize_with = "duration")]
    pub max_backoff: Duration,
    /// Most requests in flight at once (at least 1).
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_max_attempts() -> u32 {
    3
}
fn default_initial_backoff() -> Duration {
    Duration::from_millis(100)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(2)
}
fn default_max_concurrency() -> usize {
    8
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

impl HttpProviderConfig {
    /// A configuration with the defaults: 5 s per attempt, 3 attempts,
    /// backoff from 100 ms to 2 s, 8 requests in flight, no API key.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        HttpProviderConfig {
            name: name.into(),
            base_url: base_url.into(),
            api_key: None,
            timeout: default_timeout(),
            max_attempts: default_max_attempts(),
            initial_backoff: default_initial_backoff(),
            max_backoff: default_max_backoff(),
            max_concurrency: default_max_concurrency(),
        }
    }
}

/// Why an [`HttpProvider`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpConfigError {
    /// `baseUrl` is not an absolute `http` or `https` URL.
    #[error("invalid base URL {url:?}: {reason}")]
    BaseUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A numeric setting is out of range.
    #[error("invalid setting {0}: must be at least 1")]
    Setting(&'static str),
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// A directory provider that asks an outside vendor over HTTP (see the
/// module docs for the API it expects).
#[derive(Debug)]
pub struct HttpProvider {
    name: String,
    /// Always ends with `/`, so joining a relative path keeps its last
    /// segment (`…/v1/` + `people` = `…/v1/people`).
    base: Url,
    client: reqwest::Client,
    api_key: Option<SecretString>,
    timeout: Duration,
    max_attempts: u32,
    /// Waits between attempts: exponential, capped, with equal jitter so
    /// that many clients failing together do not retry in lockstep.
    backoff: Backoff,
    /// One permit per in-flight request. Held for a single attempt only, not
    /// across backoff waits, so a provider retrying one request does not
    /// starve the others.
    permits: Arc<Semaphore>,
}

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    data: Vec<T>,
}

/// How one attempt ended, when it did not succeed.
enum AttemptError {
    /// Worth another attempt (connection failure, 5xx).
    Retry(String),
    /// Final.
    Fail(ProviderError),
}

impl HttpProvider {
    /// Builds a provider from its configuration; fails fast on a bad URL or
    /// an out-of-range setting.
    pub fn new(config: HttpProviderConfig) -> Result<Self, HttpConfigError> {
        let bad_url = |reason: &str| HttpConfigError::BaseUrl {
            url: config.base_url.clone(),
            reason: reason.to_owned(),
        };
        let mut base = Url::parse(config.base_url.trim()).map_err(|e| bad_url(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(bad_url("not an http(s) URL"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad_url("must not have a query or fragment"));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if config.max_attempts == 0 {
            return Err(HttpConfigError::Setting("maxAttempts"));
        }
        if config.max_concurrency == 0 {
            return Err(HttpConfigError::Setting("maxConcurrency"));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            // A vendor API does not redirect; following one could carry the
            // bearer token somewhere it was not meant for.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(HttpConfigError::Client)?;
        Ok(HttpProvider {
            name: config.name,
            base,
            client,
            api_key: config.api_key,
            timeout: config.timeout,
            max_attempts: config.max_attempts,
            backoff: Backoff::new(config.initial_backoff, config.max_backoff).jittered(),
            permits: Arc::new(Semaphore::new(config.max_concurrency)),
        })
    }

    /// `GET {base}/{path}?{query}` with retries; the records in `data`.
    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<T>, ProviderError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| ProviderError::InvalidRequest(e.to_string()))?;
        url.query_pairs_mut().extend_pairs(query);
        let mut attempt = 1;
        loop {
            match self.attempt(&url).await {
                Ok(body) => {
                    return serde_json::from_slice::<Envelope<T>>(&body)
                        .map(|e| e.data)
                        .map_err(|e| ProviderError::InvalidResponse(e.to_string()));
                }
                Err(AttemptError::Fail(error)) => return Err(error),
                Err(AttemptError::Retry(reason)) if attempt >= self.max_attempts => {
                    return Err(ProviderError::Unavailable {
                        attempts: attempt,
                        reason,
                    });
                }
                Err(AttemptError::Retry(reason)) => {
                    let wait = self.backoff.delay(attempt);
                    tracing::warn!(
                        message = "Directory provider request failed; retrying.",
                        provider = %self.name,
                        path,
                        attempt,
                        wait_ms = wait.as_millis() as u64,
                        error = %reason,
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, url: &Url) -> Result<bytes::Bytes, AttemptError> {
        // The semaphore is never closed, so `acquire` cannot fail; map it
        // anyway rather than panic.
        let _permit = self.permits.acquire().await.map_err(|_| {
            AttemptError::Fail(ProviderError::Unavailable {
                attempts: 0,
                reason: "provider is shut down".to_owned(),
            })
        })?;
        let mut request = self
            .client
            .get(url.clone())
            .timeout(self.timeout)
            .header(ACCEPT, "application/json");
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status();
        if status.is_success() {
            return response.bytes().await.map_err(|e| self.classify(e));
        }
        Err(if status.is_server_error() {
            AttemptError::Retry(format!("status {status}"))
        } else if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            AttemptError::Fail(ProviderError::RateLimited { retry_after })
        } else if status.is_client_error() {
            AttemptError::Fail(ProviderError::Rejected(status.as_u16()))
        } else {
            AttemptError::Fail(ProviderError::InvalidResponse(format!(
                "unexpected status {status}"
            )))
        })
    }

    fn classify(&self, error: reqwest::Error) -> AttemptError {
        if error.is_timeout() {
            return AttemptError::Fail(ProviderError::Timeout(self.timeout));
        }
        // The URL carries the question (emails, names): keep it out of
        // errors that end up in logs.
        AttemptError::Retry(error.without_url().to_string())
    }

    async fn people(
        &self,
        mut params: Vec<(&'static str, String)>,
        query: &PeopleQuery,
    ) -> Result<Vec<Person>, ProviderError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        params.extend(query.titles.iter().map(|t| ("title", t.clone())));
        params.extend(
            query
                .seniorities
                .iter()
                .filter_map(|s| Some(("seniority", wire(s)?))),
        );
        params.extend(
            query
                .departments
                .iter()
                .filter_map(|d| Some(("department", wire(d)?))),
        );
        params.extend(query.locations.iter().map(|l| ("location", l.clone())));
        params.extend(query.keywords.iter().map(|k| ("keyword", k.clone())));
        params.push(("limit", query.limit.to_string()));
        let mut people: Vec<Person> = self.get("people", &params).await?;
        // The vendor's limit is a request, not a promise.
        people.truncate(query.limit);
        Ok(people)
    }
}

/// The snake_case wire name of an enum value (`c_suite`).
fn wire<T: Serialize>(value: &T) -> Option<String> {
    match serde_json::to_value(value).ok()? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}

#[async_trait]
impl DirectoryProvider for HttpProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn companies_by_handle(&self, handle: &str) -> Result<Vec<Company>, ProviderError> {
        // Input no provider could match is answered without a round trip.
        let Some(handle) = company_handle(handle) else {
            return Ok(Vec::new());
        };
        self.get("companies", &[("handle", handle)]).await
    }

    async fn companies_by_domain(&self, domain: &str) -> Result<Vec<Company>, ProviderError> {
        let Some(domain) = normalize_domain(domain) else {
            return Ok(Vec::new());
        };
        self.get("companies", &[("domain", domain)]).await
    }

    async fn companies_by_name(&self, name: &str) -> Result<Vec<Company>, ProviderError> {
        if normalize_company_name(name).is_empty() {
            return Ok(Vec::new());
        }
        self.get("companies", &[("name", name.trim().to_owned())])
            .await
    }

    async fn people_at_company_handle(
        &self,
        handle: &str,
        query: &PeopleQuery,
    ) -> Result<Vec<Person>, ProviderError> {
        let Some(handle) = company_handle(handle) else {
            return Ok(Vec::new());
        };
        self.people(vec![("companyHandle", handle)], query).await
    }

    async fn people_by_company_text(
        &self,
        company_name: &str,
        query: &PeopleQuery,
    ) -> Result<Vec<Person>, ProviderError> {
        let key = normalize_company_name(company_name);
        if key.is_empty() {
            return Ok(Vec::new());
        }
        self.people(vec![("companyName", key)], query).await
    }

    async fn person_by_email(&self, email: &str) -> Result<Vec<Person>, ProviderError> {
        let email = email.trim();
        if !email.contains('@') {
            return Ok(Vec::new());
        }
        self.get("people", &[("email", email.to_lowercase())]).await
    }

    async fn person_by_linkedin(&self, profile: &str) -> Result<Vec<Person>, ProviderError> {
        let handle = profile_key(profile);
        let Some(handle) = handle else {
            return Ok(Vec::new());
        };
        self.get("people", &[("linkedinHandle", handle)]).await
    }

    async fn people_by_name(
        &self,
        full_name: &str,
        company_hint: Option<&str>,
    ) -> Result<Vec<Person>, ProviderError> {
        let full_name = full_name.trim();
        if full_name.is_empty() {
            return Ok(Vec::new());
        }
        let mut params = vec![("fullName", full_name.to_owned())];
        if let Some(hint) = company_hint.map(str::trim).filter(|h| !h.is_empty()) {
            params.push(("companyHint", hint.to_owned()));
        }
        self.get("people", &params).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_is_validated_and_gets_a_trailing_slash() {
        let p = HttpProvider::new(HttpProviderConfig::new("v", "http://127.0.0.1:9/v1")).unwrap();
        assert_eq!(p.base.as_str(), "http://127.0.0.1:9/v1/");
        assert_eq!(
            p.base.join("people").unwrap().as_str(),
            "http://127.0.0.1:9/v1/people"
        );
        for bad in ["ftp://x/", "not a url", "http://x/v1?key=1", "mailto:a@b.c"] {
            assert!(
                matches!(
                    HttpProvider::new(HttpProviderConfig::new("v", bad)),
                    Err(HttpConfigError::BaseUrl { .. })
                ),
                "{bad}"
            );
        }
        let mut zero = HttpProviderConfig::new("v", "http://x/");
        zero.max_attempts = 0;
        assert!(matches!(
            HttpProvider::new(zero),
            Err(HttpConfigError::Setting("maxAttempts"))
        ));
    }

    #[test]
    fn config_parses_durations_and_hides_the_key() {
        let config: HttpProviderConfig = serde_json::from_str(
            r#"{"name":"vendor","baseUrl":"http://x/","apiKey":"s3cr3t-token",
                "timeout":"250ms","initialBackoff":"10ms","maxAttempts":4}"#,
        )
        .unwrap();
        assert_eq!(config.timeout, Duration::from_millis(250));
        assert_eq!(config.initial_backoff, Duration::from_millis(10));
        assert_eq!(config.max_backoff, Duration::from_secs(2));
        assert_eq!(config.max_attempts, 4);
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        let provider = HttpProvider::new(config).unwrap();
        assert!(!format!("{provider:?}").contains("s3cr3t"));
    }

    #[test]
    fn backoff_is_the_configured_one_with_jitter() {
        // The delays themselves are tested with `dossier_backoff::Backoff`.
        let mut config = HttpProviderConfig::new("v", "http://x/");
        config.initial_backoff = Duration::from_millis(100);
        config.max_backoff = Duration::from_millis(300);
        let p = HttpProvider::new(config).unwrap();
        assert_eq!(
            p.backoff,
            Backoff::new(Duration::from_millis(100), Duration::from_millis(300)).jittered()
        );
    }

    #[test]
    fn enum_wire_names() {
        use dossier_contracts::api::{Department, Seniority};
        assert_eq!(wire(&Seniority::CSuite).as_deref(), Some("c_suite"));
        assert_eq!(wire(&Department::Hr).as_deref(), Some("hr"));
    }
}
