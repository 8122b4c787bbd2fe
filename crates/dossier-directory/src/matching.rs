//! Matching one person record to one person of the directory, and finding
//! that person's current company.
//!
//! # Rules
//!
//! A record is matched by the strongest identifier it has; a weaker one is
//! tried only when the stronger ones found nobody:
//!
//! | step | lookup | confidence |
//! |---|---|---|
//! | `email` | exact, case-insensitive ([`normalize_email`]) | 0.99 |
//! | `linkedin_url` | the profile handle, from any common URL form | 0.97 |
//! | `name_and_company` | full name (and its variants) with `companyDomain`, then `companyName` | scored, see below |
//!
//! Directory records that are the same person (sharing an email or a profile
//! handle, like a vendor's duplicate rows) count as one candidate. When an
//! email or handle names several different people, the record's own name
//! (or handle) must single one out (confidence 0.9), else the step is
//! ambiguous. A found person whose name contradicts the record's `fullName`
//! keeps the match at 0.8 of the confidence.
//!
//! A name match scores each candidate by how it is linked to the company the
//! record names: current company page or work email domain 0.95, current
//! profile company text (any alias) 0.9, only a past position 0.75, linked in
//! a way the provider does not show 0.7; a name variant (see
//! [`name_variants`]) costs 5%. The confidence is the best score times its
//! share of all scores, so one candidate keeps its score and two equally good
//! ones get half. Below [`MATCH_THRESHOLD`] the record is `not_found` with
//! reason `ambiguous` and the candidates counted: never a coin toss.
//!
//! A record is `error` (code `providers_unavailable`) when nothing matched
//! and some lookup had a provider fail, since "not found" would then be a
//! guess; a match found despite a failed provider stands.
//!
//! # Current company
//!
//! The matched person's company is, in order: the company of their work
//! email's domain (vendor profiles go stale; a work email is what the
//! company gives out now), the company their profile's current position
//! links to, the company their profile's company text names. Several
//! companies for one key (look-alikes claiming one handle) are narrowed by
//! the person's other links, else none is chosen.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{
    Company, FanOut, OutcomeStatus, Person, ProviderError, ProviderSet, normalize_company_name,
    normalize_email, normalize_person_name,
};
use dossier_contracts::api::PersonRecord;
use dossier_contracts::api::linkedin::{company_handle, profile_handle};
use dossier_contracts::api::normalize_domain;
use serde::{Deserialize, Serialize};

/// Confidence below which a match is refused as ambiguous.
pub const MATCH_THRESHOLD: f64 = 0.7;
/// Confidence of a unique email match.
pub const EMAIL_CONFIDENCE: f64 = 0.99;
/// Confidence of a unique LinkedIn profile match.
pub const LINKEDIN_CONFIDENCE: f64 = 0.97;
/// Confidence of an email or profile match that named several people, one
/// of whom the record's name singled out.
const NARROWED_CONFIDENCE: f64 = 0.9;
/// Factor applied when the record's `fullName` contradicts the match.
const NAME_CONFLICT_FACTOR: f64 = 0.8;
/// Factor applied to a match through a name variant.
const NAME_VARIANT_FACTOR: f64 = 0.95;

/// How a record was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// Exact email.
    Email,
    /// LinkedIn profile handle.
    LinkedinUrl,
    /// Full name with company name or domain.
    NameAndCompany,
}

/// The answer for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// One person was identified.
    Matched,
    /// Nobody, or nobody with enough confidence: a clean answer.
    NotFound,
    /// A provider failed, so the record has no clean answer.
    Error,
}

/// Why a record is `not_found`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotFoundReason {
    /// No person matches any identifier.
    NoMatch,
    /// Several people match and none clearly best.
    Ambiguous,
}

/// How the matched person's current company was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanyEvidence {
    /// The company of the person's work email domain.
    EmailDomain,
    /// The company page the profile's current position links to.
    CompanyPage,
    /// The company the profile's current company text names.
    ProfileText,
}

/// What went wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    /// snake_case code: `providers_unavailable`.
    pub code: String,
    /// A message a user can read.
    pub message: String,
}

/// One enriched record, as clients see it (camelCase JSON; absent fields are
/// omitted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichedRecord {
    /// Position in the batch (batch results only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The caller's id of the record, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `matched`, `not_found` or `error`.
    pub status: RecordStatus,
    /// How the person was identified (matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_by: Option<MatchedBy>,
    /// 0–1, how sure the match is (matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The person (matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Person>,
    /// The person's current company, when the directory knows it (matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<Company>,
    /// How the company was found (with `company`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_evidence: Option<CompanyEvidence>,
    /// Why nobody was matched (not_found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<NotFoundReason>,
    /// How many different people matched some identifier (not_found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<usize>,
    /// The provider failure (error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordError>,
}

impl EnrichedRecord {
    fn matched(
        record: &PersonRecord,
        by: MatchedBy,
        confidence: f64,
        person: Person,
        company: Option<(Company, CompanyEvidence)>,
    ) -> Self {
        let (company, company_evidence) = company.unzip();
        EnrichedRecord {
            index: None,
            external_id: record.external_id.clone(),
            status: RecordStatus::Matched,
            matched_by: Some(by),
            confidence: Some(round(confidence)),
            person: Some(person),
            company,
            company_evidence,
            reason: None,
            candidates: None,
            error: None,
        }
    }

    fn not_found(record: &PersonRecord, candidates: usize) -> Self {
        EnrichedRecord {
            index: None,
            external_id: record.external_id.clone(),
            status: RecordStatus::NotFound,
            matched_by: None,
            confidence: None,
            person: None,
            company: None,
            company_evidence: None,
            reason: Some(if candidates > 0 {
                NotFoundReason::Ambiguous
            } else {
                NotFoundReason::NoMatch
            }),
            candidates: Some(candidates),
            error: None,
        }
    }

    fn failed(record: &PersonRecord, failures: &Failures) -> Self {
        EnrichedRecord {
            index: None,
            external_id: record.external_id.clone(),
            status: RecordStatus::Error,
            matched_by: None,
            confidence: None,
            person: None,
            company: None,
            company_evidence: None,
            reason: None,
            candidates: None,
            error: Some(failures.to_error()),
        }
    }

    /// Whether the record failed with an error that another try might not
    /// have (a provider that is down, slow or rate limiting).
    pub fn is_transient_error(&self) -> bool {
        self.status == RecordStatus::Error
            && self
                .error
                .as_ref()
                .is_some_and(|e| e.code == PROVIDERS_UNAVAILABLE)
    }
}

/// Code of a record whose providers failed.
pub const PROVIDERS_UNAVAILABLE: &str = "providers_unavailable";

fn round(confidence: f64) -> f64 {
    (confidence.clamp(0.0, 1.0) * 100.0).round() / 100.0
}

/// Provider failures seen while matching one record.
#[derive(Debug, Default)]
struct Failures {
    providers: Vec<String>,
}

impl Failures {
    /// Notes the providers that did not answer `fan`.
    fn note<T>(&mut self, fan: &FanOut<T>) {
        for outcome in fan.failures() {
            let what = match &outcome.status {
                OutcomeStatus::TimedOut => format!("{} (timed out)", outcome.provider),
                OutcomeStatus::Failed(error) => format!("{} ({})", outcome.provider, brief(error)),
                OutcomeStatus::Ok { .. } => continue,
            };
            if !self.providers.contains(&what) {
                self.providers.push(what);
            }
        }
    }

    fn any(&self) -> bool {
        !self.providers.is_empty()
    }

    fn to_error(&self) -> RecordError {
        RecordError {
            code: PROVIDERS_UNAVAILABLE.to_owned(),
            message: format!(
                "The directory providers did not answer: {}.",
                self.providers.join(", ")
            ),
        }
    }
}

fn brief(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Unavailable { .. } => "unavailable",
        ProviderError::Timeout(_) => "timed out",
        ProviderError::Rejected(_) => "rejected the request",
        ProviderError::RateLimited { .. } => "rate limited",
        ProviderError::InvalidResponse(_) => "invalid response",
        _ => "failed",
    }
}

/// A lookup failed on every provider (which ones is in [`Failures`]).
#[derive(Debug, Clone, Copy)]
struct AllFailed;

/// A lookup whose every provider failed: nothing can be said.
fn all_failed<T>(fan: &FanOut<T>) -> bool {
    !fan.outcomes.is_empty() && fan.outcomes.iter().all(|o| !o.is_ok())
}

/// Company lookups shared by the records of one batch (many records name the
/// same companies). Only complete answers (every provider answered) are kept.
#[derive(Debug, Default)]
pub struct CompanyCache {
    entries: Mutex<HashMap<(CompanyKey, String), Vec<Company>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CompanyKey {
    Domain,
    Handle,
    Name,
}

/// Matches records against a set of providers.
#[derive(Debug, Clone)]
pub struct Matcher {
    providers: ProviderSet,
}

/// A candidate person with its score.
struct Scored {
    person: Person,
    score: f64,
}

impl Matcher {
    /// A matcher asking `providers`.
    pub fn new(providers: ProviderSet) -> Self {
        Matcher { providers }
    }

    /// The providers asked.
    pub fn providers(&self) -> &ProviderSet {
        &self.providers
    }

    /// Enriches one record (see the module documentation for the rules).
    /// Never fails: a provider failure is the record's `error` status.
    pub async fn enrich(&self, record: &PersonRecord, cache: &CompanyCache) -> EnrichedRecord {
        let mut failures = Failures::default();
        // The most people any one identifier named without a winner.
        let mut ambiguous = 0;
        let record_name = record.full_name.as_deref().map(normalize_person_name);
        let record_handle = record.linkedin_url.as_deref().and_then(profile_handle);

        if let Some(email) = record.email.as_deref() {
            let key = normalize_email(email);
            let fan = self.providers.person_by_email(email).await;
            failures.note(&fan);
            let people = same_people(
                fan.into_values()
                    .into_iter()
                    .filter(|p| p.email.as_deref().map(normalize_email).as_deref() == Some(&key))
                    .collect(),
            );
            match self.single_out(people, record_name.as_deref(), record_handle.as_deref()) {
                Pick::One(person, narrowed) => {
                    let base = if narrowed {
                        NARROWED_CONFIDENCE
                    } else {
                        EMAIL_CONFIDENCE
                    };
                    let confidence = base * name_factor(record_name.as_deref(), &person);
                    return self
                        .finish(record, MatchedBy::Email, confidence, *person, cache)
                        .await;
                }
                Pick::Ambiguous(n) => ambiguous = ambiguous.max(n),
                Pick::None => {}
            }
        }

        if let (Some(url), Some(handle)) = (record.linkedin_url.as_deref(), &record_handle) {
            let fan = self.providers.person_by_linkedin(url).await;
            failures.note(&fan);
            let people = same_people(
                fan.into_values()
                    .into_iter()
                    .filter(|p| p.profile_handle().as_ref() == Some(handle))
                    .collect(),
            );
            match self.single_out(people, record_name.as_deref(), None) {
                Pick::One(person, narrowed) => {
                    let base = if narrowed {
                        NARROWED_CONFIDENCE
                    } else {
                        LINKEDIN_CONFIDENCE
                    };
                    let confidence = base * name_factor(record_name.as_deref(), &person);
                    return self
                        .finish(record, MatchedBy::LinkedinUrl, confidence, *person, cache)
                        .await;
                }
                Pick::Ambiguous(n) => ambiguous = ambiguous.max(n),
                Pick::None => {}
            }
        }

        if let Some(name) = record.full_name.as_deref() {
            let hints = [
                record.company_domain.as_deref().and_then(normalize_domain),
                record.company_name.clone().filter(|n| !n.trim().is_empty()),
            ];
            'hints: for hint in hints.into_iter().flatten() {
                for (variant, factor) in name_variants(name) {
                    let fan = self.providers.people_by_name(&variant, Some(&hint)).await;
                    failures.note(&fan);
                    let people = same_people(fan.into_values());
                    if people.is_empty() {
                        continue;
                    }
                    let links = self.hint_links(&hint, cache, &mut failures).await;
                    let mut scored: Vec<Scored> = people
                        .into_iter()
                        .map(|person| Scored {
                            score: links.score(&person) * factor,
                            person,
                        })
                        .collect();
                    scored.sort_by(|a, b| b.score.total_cmp(&a.score));
                    let sum: f64 = scored.iter().map(|s| s.score).sum();
                    let n = scored.len();
                    let best = scored.swap_remove(0);
                    let confidence = if sum > 0.0 {
                        best.score * best.score / sum
                    } else {
                        0.0
                    };
                    if confidence >= MATCH_THRESHOLD {
                        return self
                            .finish(
                                record,
                                MatchedBy::NameAndCompany,
                                confidence,
                                best.person,
                                cache,
                            )
                            .await;
                    }
                    ambiguous = ambiguous.max(n);
                    // A variant or a weaker hint would only find these
                    // people again, or fewer of them.
                    break 'hints;
                }
            }
        }

        if failures.any() {
            EnrichedRecord::failed(record, &failures)
        } else {
            EnrichedRecord::not_found(record, ambiguous)
        }
    }

    /// One person out of the people an email or handle named: the only one,
    /// else the only one with the record's name (or handle).
    fn single_out(
        &self,
        mut people: Vec<Person>,
        name: Option<&str>,
        handle: Option<&str>,
    ) -> Pick {
        match people.len() {
            0 => Pick::None,
            1 => Pick::One(Box::new(people.remove(0)), false),
            n => {
                let mut fitting: Vec<Person> = people
                    .into_iter()
                    .filter(|p| {
                        name.is_some_and(|name| normalize_person_name(&p.full_name) == name)
                            || handle.is_some_and(|h| p.profile_handle().as_deref() == Some(h))
                    })
                    .collect();
                if fitting.len() == 1 {
                    Pick::One(Box::new(fitting.remove(0)), true)
                } else {
                    Pick::Ambiguous(n)
                }
            }
        }
    }

    /// The matched record, with the person's current company.
    async fn finish(
        &self,
        record: &PersonRecord,
        by: MatchedBy,
        confidence: f64,
        person: Person,
        cache: &CompanyCache,
    ) -> EnrichedRecord {
        let mut failures = Failures::default();
        let company = self.current_company(&person, cache, &mut failures).await;
        match company {
            Ok(company) => EnrichedRecord::matched(record, by, confidence, person, company),
            Err(AllFailed) => EnrichedRecord::failed(record, &failures),
        }
    }

    /// The person's current company (see the module documentation); `Err`
    /// when a lookup that could decide it failed on every provider.
    async fn current_company(
        &self,
        person: &Person,
        cache: &CompanyCache,
        failures: &mut Failures,
    ) -> Result<Option<(Company, CompanyEvidence)>, AllFailed> {
        let handle = person
            .current_company_linkedin_handle
            .as_deref()
            .and_then(company_handle);
        let text = normalize_company_name(&person.current_company_text);
        let domain = person.email_domain();

        if let Some(domain) = &domain {
            let companies = self
                .companies(CompanyKey::Domain, domain, cache, failures)
                .await?;
            if let Some(company) = narrow(companies, handle.as_deref(), &text, None) {
                return Ok(Some((company, CompanyEvidence::EmailDomain)));
            }
        }
        if let Some(handle) = &handle {
            let companies = self
                .companies(CompanyKey::Handle, handle, cache, failures)
                .await?;
            if let Some(company) = narrow(companies, None, &text, domain.as_deref()) {
                return Ok(Some((company, CompanyEvidence::CompanyPage)));
            }
        }
        if !text.is_empty() {
            let companies = self
                .companies(
                    CompanyKey::Name,
                    &person.current_company_text,
                    cache,
                    failures,
                )
                .await?;
            if let Some(company) = narrow(companies, handle.as_deref(), "", domain.as_deref()) {
                return Ok(Some((company, CompanyEvidence::ProfileText)));
            }
        }
        Ok(None)
    }

    /// Companies by one key, from the cache when an earlier record asked.
    async fn companies(
        &self,
        key: CompanyKey,
        value: &str,
        cache: &CompanyCache,
        failures: &mut Failures,
    ) -> Result<Vec<Company>, AllFailed> {
        let cache_key = (key, value.to_owned());
        if let Some(hit) = cache
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&cache_key)
        {
            return Ok(hit.clone());
        }
        let fan = match key {
            CompanyKey::Domain => self.providers.companies_by_domain(value).await,
            CompanyKey::Handle => self.providers.companies_by_handle(value).await,
            CompanyKey::Name => self.providers.companies_by_name(value).await,
        };
        failures.note(&fan);
        if all_failed(&fan) {
            return Err(AllFailed);
        }
        let complete = fan.all_answered();
        let companies = fan.into_values();
        if complete {
            cache
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(cache_key, companies.clone());
        }
        Ok(companies)
    }

    /// How people can be linked to the company a record names (`hint`: a
    /// domain or a company name): the hint itself plus the names, aliases,
    /// domains and handles of the companies it names. Lookup failures only
    /// weaken the scores (the provider already linked the candidates).
    async fn hint_links(&self, hint: &str, cache: &CompanyCache, failures: &mut Failures) -> Links {
        let mut links = Links::default();
        let domain = hint.contains('.').then(|| normalize_domain(hint)).flatten();
        let key = if domain.is_some() {
            CompanyKey::Domain
        } else {
            CompanyKey::Name
        };
        let companies = self
            .companies(key, hint, cache, failures)
            .await
            .unwrap_or_default();
        match domain {
            Some(domain) => links.domains.push(domain),
            None => links.names.push(normalize_company_name(hint)),
        }
        for c in companies {
            links.names.extend(
                std::iter::once(&c.name)
                    .chain(&c.aliases)
                    .map(|n| normalize_company_name(n)),
            );
            links
                .domains
                .extend(c.domain.as_deref().and_then(normalize_domain));
            links
                .handles
                .extend(c.linkedin_handle.as_deref().and_then(company_handle));
        }
        links.names.retain(|n| !n.is_empty());
        links
    }
}

enum Pick {
    /// One person; `true` when the record's name had to single them out.
    One(Box<Person>, bool),
    /// This many different people, none singled out.
    Ambiguous(usize),
    None,
}

/// The ways a person can be linked to the company a record names.
#[derive(Debug, Default)]
struct Links {
    names: Vec<String>,
    domains: Vec<String>,
    handles: Vec<String>,
}

impl Links {
    /// How strongly `p` is at the company now (see the module docs).
    fn score(&self, p: &Person) -> f64 {
        let handle = p
            .current_company_linkedin_handle
            .as_deref()
            .and_then(company_handle);
        if handle.is_some_and(|h| self.handles.contains(&h))
            || p.email_domain().is_some_and(|d| self.domains.contains(&d))
        {
            return 0.95;
        }
        if self
            .names
            .contains(&normalize_company_name(&p.current_company_text))
        {
            return 0.9;
        }
        let past = p.past_positions.iter().any(|pos| {
            self.names
                .contains(&normalize_company_name(&pos.company_text))
                || pos
                    .company_linkedin_handle
                    .as_deref()
                    .and_then(company_handle)
                    .is_some_and(|h| self.handles.contains(&h))
        });
        if past { 0.75 } else { 0.7 }
    }
}

/// 1, or [`NAME_CONFLICT_FACTOR`] when the record names someone else.
fn name_factor(record_name: Option<&str>, person: &Person) -> f64 {
    match record_name {
        Some(name)
            if !name_variants_normalized(name)
                .contains(&normalize_person_name(&person.full_name)) =>
        {
            NAME_CONFLICT_FACTOR
        }
        _ => 1.0,
    }
}

/// The one company of `companies`, or the one the person's other links
/// (company page handle, company text, email domain) single out.
fn narrow(
    mut companies: Vec<Company>,
    handle: Option<&str>,
    text: &str,
    domain: Option<&str>,
) -> Option<Company> {
    if companies.len() <= 1 {
        return companies.pop();
    }
    let mut fitting: Vec<Company> = companies
        .into_iter()
        .filter(|c| {
            handle.is_some_and(|h| {
                c.linkedin_handle
                    .as_deref()
                    .and_then(company_handle)
                    .as_deref()
                    == Some(h)
            }) || domain.is_some_and(|d| {
                c.domain.as_deref().and_then(normalize_domain).as_deref() == Some(d)
            }) || (!text.is_empty()
                && std::iter::once(&c.name)
                    .chain(&c.aliases)
                    .any(|n| normalize_company_name(n) == text))
        })
        .collect();
    (fitting.len() == 1).then(|| fitting.remove(0))
}

/// Collapses directory records that are the same person (sharing a
/// normalised email or a profile handle, as vendor duplicates do) into the
/// most complete of them, keeping first-seen order.
pub fn same_people(people: Vec<Person>) -> Vec<Person> {
    let mut groups: Vec<(Vec<String>, Person)> = Vec::new();
    for person in people {
        let keys = identity_keys(&person);
        match groups
            .iter_mut()
            .find(|(known, _)| keys.iter().any(|k| known.contains(k)))
        {
            Some((known, kept)) => {
                for k in keys {
                    if !known.contains(&k) {
                        known.push(k);
                    }
                }
                if completeness(&person) > completeness(kept) {
                    *kept = person;
                }
            }
            None => groups.push((keys, person)),
        }
    }
    groups.into_iter().map(|(_, p)| p).collect()
}

fn identity_keys(p: &Person) -> Vec<String> {
    let email = p
        .email
        .as_deref()
        .map(normalize_email)
        .filter(|e| !e.is_empty())
        .map(|e| format!("email:{e}"));
    let handle = p.profile_handle().map(|h| format!("profile:{h}"));
    email.into_iter().chain(handle).collect()
}

/// How much a record says (a duplicate without a profile says less).
fn completeness(p: &Person) -> usize {
    usize::from(p.linkedin_url.is_some())
        + usize::from(p.email.is_some())
        + usize::from(p.current_company_linkedin_handle.is_some())
        + usize::from(!p.title.is_empty())
        + usize::from(!p.headline.is_empty())
        + p.skills.len().min(1)
        + p.past_positions.len().min(1)
}

/// Honorifics and suffixes dropped from a name variant.
const NAME_NOISE: &[&str] = &[
    "dr", "mr", "mrs", "ms", "miss", "prof", "sir", "jr", "sr", "ii", "iii", "iv", "phd", "md",
    "mba",
];

/// The spellings of a full name worth a lookup, with the factor a match
/// through each costs: the name as given; without honorifics and suffixes
/// (`Dr. Jane Doe, PhD`); and with German transliterations folded back
/// (`Joerg Mueller` → `Jorg Muller`, as the directory folds `Jörg Müller`).
pub fn name_variants(name: &str) -> Vec<(String, f64)> {
    let normalized = normalize_person_name(name);
    let mut out = vec![(name.trim().to_owned(), 1.0)];
    for variant in name_variants_normalized(&normalized).into_iter().skip(1) {
        out.push((variant, NAME_VARIANT_FACTOR));
    }
    out
}

/// The normalised spellings of a normalised name, the name itself first.
fn name_variants_normalized(normalized: &str) -> Vec<String> {
    let mut out = vec![normalized.to_owned()];
    let words: Vec<&str> = normalized
        .split(' ')
        .filter(|w| !NAME_NOISE.contains(w))
        .collect();
    let plain = words.join(" ");
    if words.len() >= 2 && plain != normalized {
        out.push(plain.clone());
    }
    let folded = plain
        .split(' ')
        .map(fold_transliteration)
        .collect::<Vec<_>>()
        .join(" ");
    if folded.split(' ').count() >= 2 && !out.contains(&folded) {
        out.push(folded);
    }
    out
}

/// `ae`, `oe`, `ue` inside a word back to the vowel (`joerg` → `jorg`); at
/// the end of a word they are no transliteration (`doe`, `rae`).
fn fold_transliteration(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let chars: Vec<char> = word.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        out.push(c);
        if matches!(c, 'a' | 'o' | 'u') && chars.get(i + 1) == Some(&'e') && i + 2 < chars.len() {
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_variants_drop_noise_and_fold_transliterations() {
        let names: Vec<String> = name_variants("Dr. Joerg Mueller, PhD")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            ["Dr. Joerg Mueller, PhD", "joerg mueller", "jorg muller"]
        );
        assert_eq!(name_variants("Jane Doe").len(), 1, "no `jane do`");
        assert_eq!(fold_transliteration("mueller"), "muller");
        // A single remaining word is no name to look up.
        assert_eq!(name_variants("Dr. Who").len(), 1);
    }

    #[test]
    fn confidences_are_rounded_and_clamped() {
        assert_eq!(round(0.456_78), 0.46);
        assert_eq!(round(1.2), 1.0);
    }
}
