//! People search inside a resolved target account: the people lookup, the
//! guards that keep people of other companies out, ranking, and the result
//! with its meta fields.

use std::collections::BTreeSet;

use dossier_contracts::api::{Department, SearchPeopleRequest, Seniority};
use dossier_directory::{
    OutcomeStatus, PeopleQuery, Person, ProviderOutcome, ProviderSet, Sourced, search_tokens,
};
use serde::Serialize;

use dossier_targeting::resolve::{
    Candidate, Resolution, SearchMode, TargetAccountOutcome, resolve,
};

/// Most people asked of the providers per lookup: every one found is
/// ranked (so the best `limit` are returned) and counted in `meta.total`.
/// An account with more people matching the filters than this is counted
/// as this many, with `meta.totalIsExact: false`.
pub const MAX_COUNTED: usize = 1_000;

/// How a person was matched to the target account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanyMatchEvidence {
    /// Through the LinkedIn company page constraint.
    CompanyPage,
    /// Through the profile's current company text.
    ProfileCurrentJob,
}

/// Whether the providers produced rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderOutcomeKind {
    /// Usable rows.
    Hit,
    /// No rows, and every provider answered.
    EmptyClean,
    /// No rows, and at least one provider failed.
    EmptyPartialFailure,
}

/// One person in a search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonHit {
    /// The directory's id of the person.
    pub id: String,
    /// Full name.
    pub full_name: String,
    /// Current title.
    pub title: String,
    /// Seniority.
    pub seniority: Seniority,
    /// Department.
    pub department: Department,
    /// `City, Region, Country`.
    pub location: String,
    /// Email, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// LinkedIn profile URL, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linkedin_url: Option<String>,
    /// Current company as the profile states it.
    pub current_company: String,
    /// How the person was matched to the target account.
    pub company_match_evidence: CompanyMatchEvidence,
    /// Providers the record came from.
    pub sources: Vec<String>,
}

/// How a provider fared, worst of its lookups first: `ok`, `failed`, `timed_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    /// Answered every lookup.
    Ok,
    /// Failed a lookup.
    Failed,
    /// Did not answer a lookup in time.
    TimedOut,
}

/// How one provider fared over the whole search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderReport {
    /// Provider name.
    pub name: String,
    /// The worst of its lookups.
    pub status: ProviderStatus,
    /// The error of a failed lookup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `result.meta` of a search.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchMeta {
    /// How people were constrained to the account.
    pub target_account_search_mode: SearchMode,
    /// How the company handle was resolved.
    pub target_account_outcome: TargetAccountOutcome,
    /// Whether the providers produced rows.
    pub provider_outcome: ProviderOutcomeKind,
    /// A short explanation on every empty or unavailable path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The company page searched, in `linkedin_company_page` mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linkedin_handle: Option<String>,
    /// The names compared with profiles, in `profile_current_company` mode.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched_company_names: Vec<String>,
    /// The companies the resolution considered.
    pub candidates: Vec<Candidate>,
    /// Rows returned.
    pub returned: usize,
    /// People found in the account matching the filters, ranked to pick
    /// the rows returned; counted up to [`MAX_COUNTED`] per lookup.
    pub total: usize,
    /// Whether `total` is the exact count (false: at least that many, the
    /// providers were asked for no more).
    pub total_is_exact: bool,
    /// Whether `data` holds everyone in the account matching the filters:
    /// `returned == total`, the count exact and every provider answered;
    /// false when the limit cut the list (or a provider failed).
    pub complete: bool,
    /// Each provider's outcome.
    pub providers: Vec<ProviderReport>,
}

/// `result` of a `search.people` operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResult {
    /// The people, best match first.
    pub data: Vec<PersonHit>,
    /// Outcome fields.
    pub meta: SearchMeta,
}

impl SearchResult {
    /// Whether any provider failed or timed out in any lookup.
    pub fn any_provider_failed(&self) -> bool {
        self.meta
            .providers
            .iter()
            .any(|p| p.status != ProviderStatus::Ok)
    }

    /// Whether every provider failed in every lookup (nothing was learnt).
    pub fn all_providers_failed(&self) -> bool {
        !self.meta.providers.is_empty()
            && self
                .meta
                .providers
                .iter()
                .all(|p| p.status != ProviderStatus::Ok)
    }
}

/// Runs a people search.
pub async fn search(providers: &ProviderSet, request: &SearchPeopleRequest) -> SearchResult {
    let resolution = resolve(providers, &request.target_account).await;
    let limit = request.limit as usize;
    let mut query = PeopleQuery::from_filters(&request.filters, request.limit);
    // Ask for everyone (up to the cap), not just `limit`: ranking needs the
    // whole pool and `meta.total` counts it.
    query.limit = MAX_COUNTED.max(limit);
    // Whether a lookup came back full, so there may be more than counted.
    let mut saturated = false;

    let mut outcomes = resolution.outcomes.clone();
    let (people, evidence) = match resolution.mode {
        SearchMode::LinkedinCompanyPage => {
            let handle = resolution.handle.as_deref().unwrap_or_default();
            let found = providers.people_at_company_handle(handle, &query).await;
            outcomes.extend(found.outcomes);
            saturated |= found.items.len() >= query.limit;
            (found.items, CompanyMatchEvidence::CompanyPage)
        }
        SearchMode::ProfileCurrentCompany => {
            let lookups = resolution
                .company_names
                .iter()
                .map(|n| providers.people_by_company_text(n, &query));
            let mut seen = BTreeSet::new();
            let mut people = Vec::new();
            for found in futures::future::join_all(lookups).await {
                outcomes.extend(found.outcomes);
                saturated |= found.items.len() >= query.limit;
                people.extend(
                    found
                        .items
                        .into_iter()
                        .filter(|p| seen.insert(p.value.id.clone())),
                );
            }
            people.retain(|p| belongs(&p.value, &resolution));
            (people, CompanyMatchEvidence::ProfileCurrentJob)
        }
        SearchMode::Unavailable => (Vec::new(), CompanyMatchEvidence::ProfileCurrentJob),
    };

    let total = people.len();
    let mut ranked: Vec<(Score, Sourced<Person>)> = people
        .into_iter()
        .map(|p| (score(&p.value, &query), p))
        .collect();
    ranked.sort_by(|(a, pa), (b, pb)| {
        b.cmp(a)
            .then_with(|| pa.value.full_name.cmp(&pb.value.full_name))
            .then_with(|| pa.value.id.cmp(&pb.value.id))
    });
    let data: Vec<PersonHit> = ranked
        .into_iter()
        .take(limit)
        .map(|(_, p)| hit(p, evidence))
        .collect();

    let providers = report(&outcomes);
    let any_failed = providers.iter().any(|p| p.status != ProviderStatus::Ok);
    let provider_outcome = match (data.is_empty(), any_failed) {
        (false, _) => ProviderOutcomeKind::Hit,
        (true, false) => ProviderOutcomeKind::EmptyClean,
        (true, true) => ProviderOutcomeKind::EmptyPartialFailure,
    };
    let message = message(&resolution, provider_outcome, request);
    SearchResult {
        meta: SearchMeta {
            target_account_search_mode: resolution.mode,
            target_account_outcome: resolution.outcome,
            provider_outcome,
            message,
            linkedin_handle: resolution.handle.clone(),
            matched_company_names: resolution.company_names.clone(),
            candidates: resolution.candidates.clone(),
            returned: data.len(),
            total,
            total_is_exact: !saturated,
            // A provider that failed may have held more people.
            complete: !saturated && !any_failed && data.len() == total,
            providers,
        },
        data,
    }
}

/// Whether a person matched by profile text belongs to the target account:
/// not when their current company page is known to be another company's, nor
/// when their email is on a look-alike's domain.
fn belongs(person: &Person, resolution: &Resolution) -> bool {
    let other_page = person
        .current_company_linkedin_handle
        .as_ref()
        .is_some_and(|h| !resolution.candidate_handles.contains(h));
    let look_alike_email = person
        .email_domain()
        .is_some_and(|d| resolution.look_alike_domains.contains(&d));
    !other_page && !look_alike_email
}

/// Ranking key, compared descending: how well the title matches the
/// requested titles, then seniority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Score {
    title: u8,
    seniority: u8,
}

fn score(person: &Person, query: &PeopleQuery) -> Score {
    let title_tokens = search_tokens(&person.title);
    let title = query
        .titles
        .iter()
        .map(|wanted| {
            let wanted = search_tokens(wanted);
            if wanted.is_empty() {
                0
            } else if wanted == title_tokens {
                3
            } else if title_tokens.starts_with(&wanted) {
                2
            } else if wanted.iter().all(|w| title_tokens.contains(w)) {
                1
            } else {
                0
            }
        })
        .max()
        .unwrap_or(0);
    Score {
        title,
        seniority: seniority_weight(person.seniority),
    }
}

fn seniority_weight(s: Seniority) -> u8 {
    match s {
        Seniority::Owner => 7,
        Seniority::CSuite => 6,
        Seniority::Vp => 5,
        Seniority::Director => 4,
        Seniority::Manager => 3,
        Seniority::Senior => 2,
        Seniority::Entry => 1,
    }
}

fn hit(p: Sourced<Person>, evidence: CompanyMatchEvidence) -> PersonHit {
    let person = p.value;
    let l = &person.location;
    let location = [l.city.as_str(), l.region.as_str(), l.country.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    PersonHit {
        id: person.id,
        full_name: person.full_name,
        title: person.title,
        seniority: person.seniority,
        department: person.department,
        location,
        email: person.email,
        linkedin_url: person.linkedin_url,
        current_company: person.current_company_text,
        company_match_evidence: evidence,
        sources: p.providers,
    }
}

/// One report per provider: the worst of its lookups.
fn report(outcomes: &[ProviderOutcome]) -> Vec<ProviderReport> {
    let mut reports: Vec<ProviderReport> = Vec::new();
    for o in outcomes {
        let (status, error) = match &o.status {
            OutcomeStatus::Ok { .. } => (ProviderStatus::Ok, None),
            OutcomeStatus::TimedOut => (
                ProviderStatus::TimedOut,
                Some("did not answer in time".to_owned()),
            ),
            OutcomeStatus::Failed(e) => (ProviderStatus::Failed, Some(e.to_string())),
        };
        match reports.iter_mut().find(|r| r.name == o.provider) {
            Some(r) if r.status == ProviderStatus::Ok && status != ProviderStatus::Ok => {
                r.status = status;
                r.error = error;
            }
            Some(_) => {}
            None => reports.push(ProviderReport {
                name: o.provider.clone(),
                status,
                error,
            }),
        }
    }
    reports
}

fn message(
    resolution: &Resolution,
    outcome: ProviderOutcomeKind,
    request: &SearchPeopleRequest,
) -> Option<String> {
    let filtered = request.filters != Default::default();
    let text = match (resolution.mode, outcome) {
        (SearchMode::Unavailable, _) => {
            "We could not identify this company: no LinkedIn company page was found and there is no company name \
             to match against people's profiles. Add the company's name or its LinkedIn handle."
        }
        (_, ProviderOutcomeKind::Hit) => return None,
        (_, ProviderOutcomeKind::EmptyPartialFailure) => {
            "No people found, but at least one data provider did not answer; the search may be incomplete. Try again later."
        }
        (SearchMode::LinkedinCompanyPage, ProviderOutcomeKind::EmptyClean) if filtered => {
            "No people at this company's LinkedIn page match your filters."
        }
        (SearchMode::LinkedinCompanyPage, ProviderOutcomeKind::EmptyClean) => {
            "No people were found at this company's LinkedIn page."
        }
        (SearchMode::ProfileCurrentCompany, ProviderOutcomeKind::EmptyClean) if filtered => {
            "No people whose profile names this company as their current employer match your filters."
        }
        (SearchMode::ProfileCurrentCompany, ProviderOutcomeKind::EmptyClean) => {
            "No people were found whose profile names this company as their current employer."
        }
    };
    Some(text.to_owned())
}
