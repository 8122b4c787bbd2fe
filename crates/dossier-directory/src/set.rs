//! Asking several providers at once.
//!
//! A [`ProviderSet`] sends one question to every provider concurrently, waits
//! for all of them (each bounded by an optional deadline), merges the answers
//! and says how each provider fared. The per-provider outcomes are what lets a
//! search say `empty_clean` (every provider answered, nobody found) rather
//! than `empty_partial_failure` (nothing found, but someone did not answer).
//!
//! # Merging
//!
//! Answers are taken in provider order, so an earlier provider's record wins
//! and later ones only fill its gaps. A later record is merged into an earlier
//! one when they share a strong key and do not contradict each other:
//! companies by LinkedIn handle or domain (not when both have domains and they
//! differ, so two look-alikes claiming one handle stay apart), people by
//! profile handle or email (not when both have profile handles and they
//! differ). A record that fits more than one earlier record is ambiguous and
//! kept apart. Records from the same provider are never merged with each
//! other: the provider already said they are different.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dossier_contracts::api::linkedin::company_handle;
use dossier_contracts::api::normalize_domain;
use futures::future::{BoxFuture, join_all};

use crate::model::{Company, Person};
use crate::normalize::{normalize_company_name, normalize_email};
use crate::provider::{DirectoryProvider, PeopleQuery, ProviderError};

/// Several providers asked together.
#[derive(Clone, Default)]
pub struct ProviderSet {
    providers: Vec<Arc<dyn DirectoryProvider>>,
    deadline: Option<Duration>,
}

impl std::fmt::Debug for ProviderSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSet")
            .field(
                "providers",
                &self.providers.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// How one provider fared with one question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutcomeStatus {
    /// It answered (possibly with nothing).
    Ok {
        /// Records it returned, before merging.
        rows: usize,
    },
    /// It failed.
    Failed(ProviderError),
    /// It did not answer in time: the set's deadline passed, or the provider
    /// reported its own timeout.
    TimedOut,
}

/// One provider's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOutcome {
    /// The provider's [`DirectoryProvider::name`].
    pub provider: String,
    /// What happened.
    pub status: OutcomeStatus,
    /// How long the provider took (up to the deadline).
    pub elapsed: Duration,
}

impl ProviderOutcome {
    /// True when the provider answered.
    pub fn is_ok(&self) -> bool {
        matches!(self.status, OutcomeStatus::Ok { .. })
    }
}

/// A merged record and the providers that contributed to it, in provider
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The merged record.
    pub value: T,
    /// Names of the providers it came from.
    pub providers: Vec<String>,
}

/// The merged answer of a [`ProviderSet`] and each provider's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FanOut<T> {
    /// Merged records, earlier providers' first.
    pub items: Vec<Sourced<T>>,
    /// One outcome per provider, in the set's order.
    pub outcomes: Vec<ProviderOutcome>,
}

impl<T> FanOut<T> {
    /// True when every provider answered (an empty set answers vacuously).
    pub fn all_answered(&self) -> bool {
        self.outcomes.iter().all(ProviderOutcome::is_ok)
    }

    /// True when at least one provider failed or timed out.
    pub fn any_failed(&self) -> bool {
        !self.all_answered()
    }

    /// The outcomes of providers that failed or timed out.
    pub fn failures(&self) -> impl Iterator<Item = &ProviderOutcome> {
        self.outcomes.iter().filter(|o| !o.is_ok())
    }

    /// The merged records without their sources.
    pub fn into_values(self) -> Vec<T> {
        self.items.into_iter().map(|s| s.value).collect()
    }
}

/// Records a [`ProviderSet`] can merge across providers.
pub trait Merge: Sized {
    /// Strong identity keys (prefixed by kind, so a domain never equals a
    /// handle).
    fn merge_keys(&self) -> Vec<String>;
    /// True when `other` shares a key but is evidently a different entity.
    fn contradicts(&self, other: &Self) -> bool;
    /// Fills this record's gaps from `other`, a later provider's view of the
    /// same entity.
    fn absorb(&mut self, other: Self);
}

fn differ(a: Option<String>, b: Option<String>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a != b)
}

fn fill<T>(mine: &mut Option<T>, theirs: Option<T>) {
    if mine.is_none() {
        *mine = theirs;
    }
}

fn fill_text(mine: &mut String, theirs: String) {
    if mine.trim().is_empty() {
        *mine = theirs;
    }
}

impl Merge for Company {
    fn merge_keys(&self) -> Vec<String> {
        let handle = self.linkedin_handle.as_deref().and_then(company_handle);
        let domain = self.domain.as_deref().and_then(normalize_domain);
        handle
            .map(|h| format!("handle:{h}"))
            .into_iter()
            .chain(domain.map(|d| format!("domain:{d}")))
            .collect()
    }

    fn contradicts(&self, other: &Self) -> bool {
        let domain = |c: &Company| c.domain.as_deref().and_then(normalize_domain);
        let handle = |c: &Company| c.linkedin_handle.as_deref().and_then(company_handle);
        differ(domain(self), domain(other)) || differ(handle(self), handle(other))
    }

    fn absorb(&mut self, other: Self) {
        let mut known: Vec<String> = std::iter::once(&self.name)
            .chain(&self.aliases)
            .map(|n| normalize_company_name(n))
            .collect();
        // Another provider's spelling is worth keeping only when it is a
        // different name after normalisation (an abbreviation, a former name).
        for alias in std::iter::once(other.name).chain(other.aliases) {
            let key = normalize_company_name(&alias);
            if !key.is_empty() && !known.contains(&key) {
                self.aliases.push(alias);
                known.push(key);
            }
        }
        fill(&mut self.domain, other.domain);
        fill(&mut self.linkedin_handle, other.linkedin_handle);
        fill_text(&mut self.industry, other.industry);
        if self.headquarters == Default::default() {
            self.headquarters = other.headquarters;
        }
    }
}

impl Merge for Person {
    fn merge_keys(&self) -> Vec<String> {
        let email = self
            .email
            .as_deref()
            .map(normalize_email)
            .filter(|e| !e.is_empty());
        self.profile_handle()
            .map(|h| format!("profile:{h}"))
            .into_iter()
            .chain(email.map(|e| format!("email:{e}")))
            .collect()
    }

    fn contradicts(&self, other: &Self) -> bool {
        differ(self.profile_handle(), other.profile_handle())
    }

    fn absorb(&mut self, other: Self) {
        fill(&mut self.email, other.email);
        fill(&mut self.linkedin_url, other.linkedin_url);
        fill(
            &mut self.current_company_linkedin_handle,
            other.current_company_linkedin_handle,
        );
        fill_text(&mut self.title, other.title);
        fill_text(&mut self.current_company_text, other.current_company_text);
        fill_text(&mut self.headline, other.headline);
        if self.location == Default::default() {
            self.location = other.location;
        }
        for skill in other.skills {
            if !self.skills.contains(&skill) {
                self.skills.push(skill);
            }
        }
        if self.past_positions.is_empty() {
            self.past_positions = other.past_positions;
        }
    }
}

/// Merges per-provider answers (in provider order); see the module docs.
fn merge<T: Merge>(answers: Vec<(String, Vec<T>)>) -> Vec<Sourced<T>> {
    let mut merged: Vec<Sourced<T>> = Vec::new();
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (provider, records) in answers {
        // Only records from earlier providers are merge targets.
        let earlier = merged.len();
        for record in records {
            let keys = record.merge_keys();
            let mut targets: Vec<usize> = keys
                .iter()
                .filter_map(|k| by_key.get(k))
                .flatten()
                .copied()
                .filter(|&i| i < earlier && !merged[i].value.contradicts(&record))
                .collect();
            targets.sort_unstable();
            targets.dedup();
            // A record that fits two earlier ones (a bare handle that two
            // look-alikes claim) is ambiguous: keep it apart. So is one whose
            // only fit already took a record from this provider.
            let target = match targets.as_slice() {
                [only] if !merged[*only].providers.contains(&provider) => Some(*only),
                _ => None,
            };
            let index = match target {
                Some(i) => {
                    merged[i].value.absorb(record);
                    merged[i].providers.push(provider.clone());
                    i
                }
                None => {
                    merged.push(Sourced {
                        value: record,
                        providers: vec![provider.clone()],
                    });
                    merged.len() - 1
                }
            };
            // Keys learnt by absorbing (a domain the first provider lacked)
            // also lead to this record.
            for key in merged[index].value.merge_keys().into_iter().chain(keys) {
                let slot = by_key.entry(key).or_default();
                if !slot.contains(&index) {
                    slot.push(index);
                }
            }
        }
    }
    merged
}

impl ProviderSet {
    /// A set asking `providers`, earlier ones taking precedence when merging.
    pub fn new(providers: Vec<Arc<dyn DirectoryProvider>>) -> Self {
        ProviderSet {
            providers,
            deadline: None,
        }
    }

    /// Bounds each provider's time per question; a provider still working
    /// at the deadline is abandoned and reported [`OutcomeStatus::TimedOut`].
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The providers, in order.
    pub fn providers(&self) -> &[Arc<dyn DirectoryProvider>] {
        &self.providers
    }

    /// Number of providers.
    pub fn len(&self) -> usize {
        self.providers.len()
    }

    /// True when there are no providers.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Awaits one call per provider concurrently (they are polled together
    /// in this task, so a provider that blocks its thread would hold the
    /// others up; ours never do) and merges the answers.
    async fn fan_out<'a, T: Merge>(
        &'a self,
        calls: impl Iterator<Item = BoxFuture<'a, Result<Vec<T>, ProviderError>>>,
    ) -> FanOut<T> {
        let deadline = self.deadline;
        let timed = calls.map(|call| async move {
            let started = Instant::now();
            let result = match deadline {
                Some(deadline) => tokio::time::timeout(deadline, call).await.ok(),
                None => Some(call.await),
            };
            (result, started.elapsed())
        });
        let results = join_all(timed).await;
        let mut answers = Vec::with_capacity(results.len());
        let mut outcomes = Vec::with_capacity(results.len());
        for (provider, (result, elapsed)) in self.providers.iter().zip(results) {
            let name = provider.name().to_owned();
            let status = match result {
                Some(Ok(records)) => {
                    let rows = records.len();
                    answers.push((name.clone(), records));
                    OutcomeStatus::Ok { rows }
                }
                Some(Err(ProviderError::Timeout(_))) | None => OutcomeStatus::TimedOut,
                Some(Err(error)) => OutcomeStatus::Failed(error),
            };
            match &status {
                OutcomeStatus::Ok { .. } => {}
                OutcomeStatus::TimedOut => tracing::warn!(
                    message = "Directory provider timed out.",
                    provider = %name,
                    elapsed_ms = elapsed.as_millis() as u64,
                ),
                OutcomeStatus::Failed(error) => tracing::warn!(
                    message = "Directory provider failed.",
                    provider = %name,
                    %error,
                ),
            }
            outcomes.push(ProviderOutcome {
                provider: name,
                status,
                elapsed,
            });
        }
        FanOut {
            items: merge(answers),
            outcomes,
        }
    }

    /// [`DirectoryProvider::companies_by_handle`] on every provider.
    pub async fn companies_by_handle(&self, handle: &str) -> FanOut<Company> {
        self.fan_out(self.providers.iter().map(|p| p.companies_by_handle(handle)))
            .await
    }

    /// [`DirectoryProvider::companies_by_domain`] on every provider.
    pub async fn companies_by_domain(&self, domain: &str) -> FanOut<Company> {
        self.fan_out(self.providers.iter().map(|p| p.companies_by_domain(domain)))
            .await
    }

    /// [`DirectoryProvider::companies_by_name`] on every provider.
    pub async fn companies_by_name(&self, name: &str) -> FanOut<Company> {
        self.fan_out(self.providers.iter().map(|p| p.companies_by_name(name)))
            .await
    }

    /// [`DirectoryProvider::people_at_company_handle`] on every provider;
    /// the merged list is cut to `query.limit`.
    pub async fn people_at_company_handle(
        &self,
        handle: &str,
        query: &PeopleQuery,
    ) -> FanOut<Person> {
        let mut out = self
            .fan_out(
                self.providers
                    .iter()
                    .map(|p| p.people_at_company_handle(handle, query)),
            )
            .await;
        out.items.truncate(query.limit);
        out
    }

    /// [`DirectoryProvider::people_by_company_text`] on every provider;
    /// the merged list is cut to `query.limit`.
    pub async fn people_by_company_text(
        &self,
        company_name: &str,
        query: &PeopleQuery,
    ) -> FanOut<Person> {
        let mut out = self
            .fan_out(
                self.providers
                    .iter()
                    .map(|p| p.people_by_company_text(company_name, query)),
            )
            .await;
        out.items.truncate(query.limit);
        out
    }

    /// [`DirectoryProvider::person_by_email`] on every provider.
    pub async fn person_by_email(&self, email: &str) -> FanOut<Person> {
        self.fan_out(self.providers.iter().map(|p| p.person_by_email(email)))
            .await
    }

    /// [`DirectoryProvider::person_by_linkedin`] on every provider.
    pub async fn person_by_linkedin(&self, profile: &str) -> FanOut<Person> {
        self.fan_out(self.providers.iter().map(|p| p.person_by_linkedin(profile)))
            .await
    }

    /// [`DirectoryProvider::similar_companies`] on every provider; the
    /// merged list is cut to `limit`.
    pub async fn similar_companies(&self, company: &Company, limit: usize) -> FanOut<Company> {
        let mut out = self
            .fan_out(
                self.providers
                    .iter()
                    .map(|p| p.similar_companies(company, limit)),
            )
            .await;
        out.items.truncate(limit);
        out
    }

    /// [`DirectoryProvider::people_by_name`] on every provider.
    pub async fn people_by_name(
        &self,
        full_name: &str,
        company_hint: Option<&str>,
    ) -> FanOut<Person> {
        self.fan_out(
            self.providers
                .iter()
                .map(|p| p.people_by_name(full_name, company_hint)),
        )
        .await
    }
}
