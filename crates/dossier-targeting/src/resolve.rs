//! Target-account resolution: which company a search means, and how people
//! can be constrained to it.
//!
//! The outcomes mean exactly what the product's API conventions say:
//!
//! | outcome | when |
//! |---|---|
//! | `provided_linkedin_handle` | the caller gave the company-page handle |
//! | `verified_linkedin_handle` | exactly one company page is confirmed by independent evidence: the caller's domain belongs to a company with that handle, and no company with another domain claims the handle |
//! | `unverified_or_conflicting_linkedin_candidates` | companies with handles were found, but none is confirmed (name-only match) or they disagree (the domain's companies have several handles, or a look-alike with another domain claims the handle) |
//! | `unresolved` | no candidate company page at all |
//!
//! The search mode follows: a provided or verified handle constrains people
//! through the company page (`linkedin_company_page`); otherwise, if we have
//! a company name to compare with profiles (the caller's, or the names and
//! aliases of the company the domain belongs to), people are matched on their
//! profile's current company text (`profile_current_company`); with neither,
//! the search is `unavailable`.

use std::collections::BTreeSet;

use dossier_contracts::api::linkedin::company_handle;
use dossier_contracts::api::{CompanyRef, normalize_domain};
use dossier_directory::{Company, FanOut, ProviderOutcome, ProviderSet, normalize_company_name};
use serde::Serialize;

/// How the target account's LinkedIn company handle was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetAccountOutcome {
    /// The caller gave the handle.
    ProvidedLinkedinHandle,
    /// Exactly one handle, confirmed by the domain.
    VerifiedLinkedinHandle,
    /// Candidates exist, but none is confirmed or they disagree.
    UnverifiedOrConflictingLinkedinCandidates,
    /// No candidate.
    Unresolved,
}

/// How people were constrained to the target account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Through the company page.
    LinkedinCompanyPage,
    /// Through the profile's current company text.
    ProfileCurrentCompany,
    /// Neither path exists.
    Unavailable,
}

/// A company the resolution considered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The company's name.
    pub name: String,
    /// Its domain, when known.
    pub domain: Option<String>,
    /// Its LinkedIn company handle, when known.
    pub linkedin_handle: Option<String>,
}

impl From<&Company> for Candidate {
    fn from(c: &Company) -> Self {
        Candidate {
            name: c.name.clone(),
            domain: c.domain.clone(),
            linkedin_handle: c.linkedin_handle.clone(),
        }
    }
}

/// The result of resolving a target account.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The outcome of the handle resolution.
    pub outcome: TargetAccountOutcome,
    /// How to find people.
    pub mode: SearchMode,
    /// The company page to search (mode `linkedin_company_page`).
    pub handle: Option<String>,
    /// Names to compare with profile company text (mode
    /// `profile_current_company`), distinct after normalisation.
    pub company_names: Vec<String>,
    /// Handles of every candidate company: a person whose current company
    /// page is known and is none of these is at another company.
    pub candidate_handles: BTreeSet<String>,
    /// Domains of candidate companies that are not the caller's domain: a
    /// person whose email is on one of them works at a look-alike. Empty when
    /// the caller gave no domain (then we cannot tell which look-alike is
    /// meant).
    pub look_alike_domains: BTreeSet<String>,
    /// The companies considered, for the result's meta.
    pub candidates: Vec<Candidate>,
    /// Per-provider outcomes of every lookup made.
    pub outcomes: Vec<ProviderOutcome>,
}

/// Resolves `target` against `providers`.
pub async fn resolve(providers: &ProviderSet, target: &CompanyRef) -> Resolution {
    if let Some(handle) = target.linkedin_handle.as_deref().and_then(company_handle) {
        return Resolution {
            outcome: TargetAccountOutcome::ProvidedLinkedinHandle,
            mode: SearchMode::LinkedinCompanyPage,
            candidate_handles: BTreeSet::from([handle.clone()]),
            handle: Some(handle),
            company_names: Vec::new(),
            look_alike_domains: BTreeSet::new(),
            candidates: Vec::new(),
            outcomes: Vec::new(),
        };
    }

    let domain = target.domain.as_deref().and_then(normalize_domain);
    let name = target
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let mut outcomes = Vec::new();

    // The domain and the name are looked up concurrently; they are
    // independent questions.
    let (by_domain, by_name) = tokio::join!(
        async {
            match &domain {
                Some(d) => Some(providers.companies_by_domain(d).await),
                None => None,
            }
        },
        async {
            match name {
                Some(n) => Some(providers.companies_by_name(n).await),
                None => None,
            }
        }
    );
    let domain_companies: Vec<Company> = take(by_domain, &mut outcomes)
        .into_iter()
        .filter(|c| c.domain.as_deref().and_then(normalize_domain) == domain)
        .collect();
    let name_companies = take(by_name, &mut outcomes);

    let confirmed: BTreeSet<String> = domain_companies
        .iter()
        .filter_map(|c| c.linkedin_handle.clone())
        .collect();
    let mut seen = BTreeSet::new();
    let candidates: Vec<&Company> = domain_companies
        .iter()
        .chain(&name_companies)
        .filter(|c| seen.insert(c.id.as_str()))
        .collect();
    let candidate_handles: BTreeSet<String> = candidates
        .iter()
        .filter_map(|c| c.linkedin_handle.clone())
        .collect();

    let (outcome, handle) = if confirmed.len() == 1 {
        let handle = confirmed.iter().next().cloned().unwrap_or_default();
        // The domain confirms the handle only if no company with another
        // domain claims the same page.
        let claimants = providers.companies_by_handle(&handle).await;
        outcomes.extend(claimants.outcomes.iter().cloned());
        let contested = claimants.items.iter().any(|c| {
            let other = c.value.domain.as_deref().and_then(normalize_domain);
            other.is_some() && other != domain
        });
        if contested {
            (
                TargetAccountOutcome::UnverifiedOrConflictingLinkedinCandidates,
                None,
            )
        } else {
            (TargetAccountOutcome::VerifiedLinkedinHandle, Some(handle))
        }
    } else if !candidate_handles.is_empty() {
        (
            TargetAccountOutcome::UnverifiedOrConflictingLinkedinCandidates,
            None,
        )
    } else {
        (TargetAccountOutcome::Unresolved, None)
    };

    let look_alike_domains = match &domain {
        Some(d) => candidates
            .iter()
            .filter_map(|c| c.domain.as_deref().and_then(normalize_domain))
            .filter(|other| other != d)
            .collect(),
        None => BTreeSet::new(),
    };

    let mode = if handle.is_some() {
        SearchMode::LinkedinCompanyPage
    } else {
        SearchMode::ProfileCurrentCompany
    };
    let company_names = match mode {
        SearchMode::LinkedinCompanyPage => Vec::new(),
        _ => text_names(name, &domain_companies),
    };
    let mode = if mode == SearchMode::ProfileCurrentCompany && company_names.is_empty() {
        SearchMode::Unavailable
    } else {
        mode
    };

    Resolution {
        outcome,
        mode,
        handle,
        company_names,
        candidate_handles,
        look_alike_domains,
        candidates: candidates.into_iter().map(Candidate::from).collect(),
        outcomes,
    }
}

/// The names profiles may use for the target: the caller's name, and the
/// names and aliases of the company its domain belongs to (so an initialism
/// like `MDS` is found too). Distinct by normalised form, caller's first.
fn text_names(name: Option<&str>, domain_companies: &[Company]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    name.into_iter()
        .map(str::to_owned)
        .chain(
            domain_companies
                .iter()
                .flat_map(|c| std::iter::once(c.name.clone()).chain(c.aliases.clone())),
        )
        .filter(|n| {
            let key = normalize_company_name(n);
            !key.is_empty() && seen.insert(key)
        })
        .collect()
}

fn take(fan_out: Option<FanOut<Company>>, outcomes: &mut Vec<ProviderOutcome>) -> Vec<Company> {
    match fan_out {
        Some(f) => {
            outcomes.extend(f.outcomes.iter().cloned());
            f.into_values()
        }
        None => Vec::new(),
    }
}
