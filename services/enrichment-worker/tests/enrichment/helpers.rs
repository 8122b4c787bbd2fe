//! A provider wrapper that counts, fails and holds lookups, and helpers to
//! start the worker against a test stack.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use dossier_directory::{
    Company, DirectoryProvider, PeopleQuery, Person, ProviderError, ProviderSet, embedded_demo,
};
use dossier_stack::{Running, TestApp};
use enrichment_worker::{App, Config};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// Emails at this domain fail on every provider call.
pub const FLAKY_DOMAIN: &str = "flaky.example";

/// What a [`TestProvider`] records and how it behaves; shared by the
/// providers of several workers, so counts add up across a crash.
#[derive(Default)]
pub struct Probe {
    /// `person_by_email` calls per email argument.
    email_calls: Mutex<HashMap<String, usize>>,
    /// Every lookup, whatever the method.
    pub lookups: AtomicUsize,
    /// Hold `person_by_email` calls after this many (none: never hold).
    hold_after: Mutex<Option<usize>>,
    /// Calls being held right now.
    pub held: AtomicUsize,
    released: AtomicBool,
    release: Notify,
    /// Fail every call, whatever its argument.
    pub fail_all: AtomicBool,
}

impl Probe {
    /// A probe that holds email lookups after the first `n`.
    pub fn holding_after(n: usize) -> Arc<Probe> {
        let probe = Probe::default();
        *probe.hold_after.lock().unwrap() = Some(n);
        Arc::new(probe)
    }

    /// Lets held calls (and all later ones) through.
    pub fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        self.release.notify_waiters();
    }

    /// `person_by_email` calls per email.
    pub fn email_calls(&self) -> HashMap<String, usize> {
        self.email_calls.lock().unwrap().clone()
    }

    async fn hold(&self, calls_so_far: usize) {
        let limit = *self.hold_after.lock().unwrap();
        if limit.is_none_or(|n| calls_so_far <= n) {
            return;
        }
        self.held.fetch_add(1, Ordering::SeqCst);
        loop {
            let released = self.release.notified();
            if self.released.load(Ordering::SeqCst) {
                break;
            }
            released.await;
        }
        self.held.fetch_sub(1, Ordering::SeqCst);
    }

    fn check(&self, argument: &str) -> Result<(), ProviderError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.fail_all.load(Ordering::SeqCst) || argument.ends_with(FLAKY_DOMAIN) {
            return Err(ProviderError::Unavailable {
                attempts: 1,
                reason: "test provider down".to_owned(),
            });
        }
        Ok(())
    }
}

/// The embedded demo directory behind a [`Probe`].
pub struct TestProvider {
    inner: Arc<dyn DirectoryProvider>,
    probe: Arc<Probe>,
}

impl TestProvider {
    /// A provider set of the demo directory behind `probe`.
    pub fn set(probe: Arc<Probe>) -> ProviderSet {
        ProviderSet::new(vec![Arc::new(TestProvider {
            inner: Arc::new(embedded_demo().unwrap()),
            probe,
        })])
    }
}

#[async_trait]
impl DirectoryProvider for TestProvider {
    fn name(&self) -> &str {
        "local"
    }

    async fn companies_by_handle(&self, handle: &str) -> Result<Vec<Company>, ProviderError> {
        self.probe.check(handle)?;
        self.inner.companies_by_handle(handle).await
    }

    async fn companies_by_domain(&self, domain: &str) -> Result<Vec<Company>, ProviderError> {
        self.probe.check(domain)?;
        self.inner.companies_by_domain(domain).await
    }

    async fn companies_by_name(&self, name: &str) -> Result<Vec<Company>, ProviderError> {
        self.probe.check(name)?;
        self.inner.companies_by_name(name).await
    }

    async fn people_at_company_handle(
        &self,
        handle: &str,
        query: &PeopleQuery,
    ) -> Result<Vec<Person>, ProviderError> {
        self.probe.check(handle)?;
        self.inner.people_at_company_handle(handle, query).await
    }

    async fn people_by_company_text(
        &self,
        company_name: &str,
        query: &PeopleQuery,
    ) -> Result<Vec<Person>, ProviderError> {
        self.probe.check(company_name)?;
        self.inner.people_by_company_text(company_name, query).await
    }

    async fn person_by_email(&self, email: &str) -> Result<Vec<Person>, ProviderError> {
        let calls = {
            let mut calls = self.probe.email_calls.lock().unwrap();
            *calls.entry(email.to_owned()).or_default() += 1;
            calls.values().sum::<usize>()
        };
        self.probe.hold(calls).await;
        self.probe.check(email)?;
        self.inner.person_by_email(email).await
    }

    async fn person_by_linkedin(&self, profile: &str) -> Result<Vec<Person>, ProviderError> {
        self.probe.check(profile)?;
        self.inner.person_by_linkedin(profile).await
    }

    async fn people_by_name(
        &self,
        full_name: &str,
        company_hint: Option<&str>,
    ) -> Result<Vec<Person>, ProviderError> {
        self.probe.check(company_hint.unwrap_or(full_name))?;
        self.inner.people_by_name(full_name, company_hint).await
    }
}

/// The worker's configuration for `app`'s broker: small progress interval
/// and quick retries, so tests see progress and retries without waiting.
pub fn config(app: &TestApp) -> Config {
    let mut config = Config::from_env().unwrap();
    config.service.broker = app.broker_config();
    config.service.worker.progress_interval = Duration::from_millis(10);
    config.service.worker.retry_backoff_base = Duration::from_millis(50);
    config.service.worker.retry_backoff_max = Duration::from_millis(100);
    config
}

/// Starts a worker whose provider is the demo directory behind `probe`.
pub async fn start_worker(config: Config, probe: Arc<Probe>) -> Running {
    let worker = App::build_with_providers(config, TestProvider::set(probe))
        .await
        .unwrap();
    Running::spawn(|token| worker.run(token))
}

/// The distinct emails of people in the demo directory, in file order.
pub fn known_emails() -> Vec<String> {
    let mut emails: Vec<String> = Vec::new();
    for person in embedded_demo().unwrap().people() {
        if let Some(email) = &person.email {
            let email = email.to_lowercase();
            if !emails.contains(&email) {
                emails.push(email);
            }
        }
    }
    emails
}

/// A batch of `n` records with distinct emails: every hundredth one a person
/// of the demo directory, the rest unknown. Each record's `externalId` is
/// `ext-<index>`.
pub fn email_batch(n: usize) -> (Value, Vec<String>) {
    let known = known_emails();
    let emails: Vec<String> = (0..n)
        .map(|i| {
            if i % 100 == 0 && i / 100 < known.len() {
                known[i / 100].clone()
            } else {
                format!("person{i}@example.com")
            }
        })
        .collect();
    let records: Vec<Value> = emails
        .iter()
        .enumerate()
        .map(|(i, email)| json!({ "email": email, "externalId": format!("ext-{i}") }))
        .collect();
    (json!({ "records": records }), emails)
}

/// Checks that `items` are the batch's records, each once, in order.
pub fn assert_each_record_once(items: &[Value], emails: &[String]) {
    assert_eq!(items.len(), emails.len());
    for (i, (item, email)) in items.iter().zip(emails).enumerate() {
        assert_eq!(item["index"], i, "{item}");
        assert_eq!(item["externalId"], format!("ext-{i}"), "{item}");
        let want = if email.ends_with("@example.com") {
            "not_found"
        } else {
            "matched"
        };
        assert_eq!(item["status"], want, "{email}: {item}");
    }
}
