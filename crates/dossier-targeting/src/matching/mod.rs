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

mod candidates;
mod company;
mod failures;
mod names;
mod record;

pub use candidates::same_people;
pub use company::CompanyCache;
pub use names::name_variants;
pub use record::{
    CompanyEvidence, EnrichedRecord, MatchedBy, NotFoundReason, PROVIDERS_UNAVAILABLE, RecordError,
    RecordStatus,
};

use dossier_contracts::api::PersonRecord;
use dossier_contracts::api::linkedin::profile_handle;
use dossier_contracts::api::normalize_domain;
use dossier_directory::{Person, ProviderSet, normalize_email, normalize_person_name};

use failures::{AllFailed, Failures};
use names::name_factor;

/// Confidence below which a match is refused as ambiguous.
pub const MATCH_THRESHOLD: f64 = 0.7;
/// Confidence of a unique email match.
pub const EMAIL_CONFIDENCE: f64 = 0.99;
/// Confidence of a unique LinkedIn profile match.
pub const LINKEDIN_CONFIDENCE: f64 = 0.97;
/// Confidence of an email or profile match that named several people, one
/// of whom the record's name singled out.
const NARROWED_CONFIDENCE: f64 = 0.9;

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
}

enum Pick {
    /// One person; `true` when the record's name had to single them out.
    One(Box<Person>, bool),
    /// This many different people, none singled out.
    Ambiguous(usize),
    None,
}
