//! Step 1, resolve: which company or person the request means. A company
//! by the target-account resolution search uses, a person by the matching
//! enrichment uses (both `dossier-targeting`). The step starts the
//! [`Gathered`] state: the report's subject, and a person's directory record
//! as the first source.

use dossier_contracts::api::{CompanyRef, PersonRecord, ResearchRequest, normalize_domain};
use dossier_directory::{Company, FanOut, Person, ProviderSet};
use dossier_targeting::matching::{CompanyCache, Matcher, RecordStatus};
use dossier_targeting::resolve::{Resolution, TargetAccountOutcome, resolve};
use dossier_worker::JobError;

use super::{Gathered, all_failed, brief};
use crate::answer::Evidence;
use crate::handler::Limits;
use crate::plan::{Cancelled, Runner, StepName};
use crate::report::{Sections, Sources, Subject, SubjectKind, clean};

/// The resolved subject.
pub(crate) struct Resolved {
    /// A company or a person.
    pub(crate) kind: SubjectKind,
    /// The company's or person's name: the report's title.
    pub(crate) name: String,
    /// How it was resolved (`verified_linkedin_handle`, `matched_by_email`, …).
    pub(crate) resolution: String,
    /// How sure the resolution is, 0–1.
    pub(crate) confidence: f64,
    /// The company (a person's current one, when known).
    pub(crate) company: Option<Company>,
    /// The company page to find people through, when confirmed.
    pub(crate) handle: Option<String>,
    /// The person, for a person subject.
    pub(crate) person: Option<Person>,
}

/// Why the subject could not be resolved.
enum Unresolved {
    /// Nobody or nothing matches, or too many do.
    NotFound(String),
    /// Every provider failed.
    Providers(String),
}

/// Runs the step: the gathered state to build on, or the job's error when
/// the subject cannot be resolved.
pub(crate) async fn run<'a>(
    runner: &mut Runner,
    providers: &ProviderSet,
    request: &'a ResearchRequest,
) -> Result<Result<Gathered<'a>, JobError>, Cancelled> {
    let resolved = runner
        .step(StepName::Resolve, runner.budget(StepName::Resolve), async {
            Ok(resolve_subject(providers, request).await)
        })
        .await?;
    let resolved = match resolved {
        Some(Ok(resolved)) => resolved,
        Some(Err(Unresolved::NotFound(message))) => {
            return Ok(Err(JobError::permanent("subject_unresolved", message)));
        }
        Some(Err(Unresolved::Providers(message))) => {
            return Ok(Err(JobError::retryable("providers_unavailable", message)));
        }
        None => {
            let error = runner.steps().last().and_then(|s| s.error.clone());
            return Ok(Err(JobError::retryable(
                "providers_unavailable",
                format!(
                    "the subject could not be resolved: {}",
                    error.unwrap_or_default()
                ),
            )));
        }
    };

    let mut sources = Sources::default();
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut subject = Subject {
        kind: resolved.kind,
        name: resolved.name.clone(),
        resolution: resolved.resolution.clone(),
        confidence: resolved.confidence,
        person: None,
    };
    if let Some(person) = &resolved.person {
        let id = sources.directory(
            format!("directory:people/{}", person.id),
            format!("Directory record of {}", person.full_name),
        );
        let brief = brief(person, id);
        evidence.push(Evidence {
            source: id,
            text: clean(&format!(
                "{} is {} ({}, {}), based in {}.",
                brief.name, brief.title, brief.seniority, brief.department, brief.location
            )),
        });
        subject.person = Some(brief);
    }
    Ok(Ok(Gathered {
        request,
        limits: Limits::of(request.depth),
        resolved,
        subject,
        sources,
        evidence,
        sections: Sections::default(),
        people: Vec::new(),
        counted: Vec::new(),
    }))
}

/// Resolves the request's subject.
async fn resolve_subject(
    providers: &ProviderSet,
    request: &ResearchRequest,
) -> Result<Resolved, Unresolved> {
    if let Some(company) = &request.subject.company {
        return resolve_company(providers, company).await;
    }
    match &request.subject.person {
        Some(person) => resolve_person(providers, person).await,
        None => Err(Unresolved::NotFound(
            "the request names neither a company nor a person".to_owned(),
        )),
    }
}

/// The company a reference means, by the same target-account resolution
/// as search, then the company record itself: the one with the confirmed
/// handle, else the one owning the domain, else the only candidate.
async fn resolve_company(
    providers: &ProviderSet,
    target: &CompanyRef,
) -> Result<Resolved, Unresolved> {
    let resolution = resolve(providers, target).await;
    if !resolution.outcomes.is_empty() && resolution.outcomes.iter().all(|o| !o.is_ok()) {
        return Err(Unresolved::Providers(
            "every directory provider failed while resolving the company".to_owned(),
        ));
    }
    let domain = target.domain.as_deref().and_then(normalize_domain);
    let owns_domain =
        |c: &Company| domain.is_some() && c.domain.as_deref().and_then(normalize_domain) == domain;

    let mut picked: Option<(Company, f64)> = None;
    if let Some(handle) = &resolution.handle {
        let fan = providers.companies_by_handle(handle).await;
        answered(&fan)?;
        let claimants = fan.into_values();
        let best = claimants
            .iter()
            .find(|c| owns_domain(c))
            .or(if claimants.len() == 1 {
                claimants.first()
            } else {
                None
            });
        picked = best.cloned().map(|c| (c, 0.95));
    }
    if picked.is_none()
        && let Some(d) = &domain
    {
        let fan = providers.companies_by_domain(d).await;
        answered(&fan)?;
        let owners: Vec<Company> = fan
            .into_values()
            .into_iter()
            .filter(|c| owns_domain(c))
            .collect();
        if owners.len() == 1 {
            picked = owners.into_iter().next().map(|c| (c, 0.85));
        }
    }
    if picked.is_none() && resolution.candidates.len() == 1 {
        let only = &resolution.candidates[0];
        let fan = providers.companies_by_name(&only.name).await;
        answered(&fan)?;
        let found = fan.into_values();
        picked = found
            .into_iter()
            .find(|c| c.domain == only.domain && c.linkedin_handle == only.linkedin_handle)
            .map(|c| (c, 0.7));
    }
    let Some((company, confidence)) = picked else {
        return Err(Unresolved::NotFound(unresolved_message(
            target,
            &resolution,
        )));
    };
    let handle = match resolution.outcome {
        TargetAccountOutcome::ProvidedLinkedinHandle
        | TargetAccountOutcome::VerifiedLinkedinHandle => resolution.handle.clone(),
        // A company found by its own domain owns its page.
        _ if confidence >= 0.85 => company.linkedin_handle.clone(),
        _ => None,
    };
    Ok(Resolved {
        kind: SubjectKind::Company,
        name: company.name.clone(),
        resolution: outcome_name(resolution.outcome).to_owned(),
        confidence,
        handle,
        company: Some(company),
        person: None,
    })
}

/// The person a record means, by the enrichment worker's matching.
async fn resolve_person(
    providers: &ProviderSet,
    record: &PersonRecord,
) -> Result<Resolved, Unresolved> {
    let matcher = Matcher::new(providers.clone());
    let enriched = matcher.enrich(record, &CompanyCache::default()).await;
    match enriched.status {
        RecordStatus::Matched => {}
        RecordStatus::NotFound => {
            let reason = match enriched.candidates {
                Some(n) if n > 0 => format!("{n} people match and none clearly best"),
                _ => "nobody in the directory matches".to_owned(),
            };
            return Err(Unresolved::NotFound(format!(
                "the person could not be resolved: {reason}"
            )));
        }
        // A validated record is never set aside; were it, nothing was looked up.
        RecordStatus::Invalid => {
            return Err(Unresolved::NotFound(
                "the person record is not valid".to_owned(),
            ));
        }
        RecordStatus::Error => {
            return Err(Unresolved::Providers(
                enriched
                    .error
                    .map(|e| e.message)
                    .unwrap_or_else(|| "the directory providers did not answer".to_owned()),
            ));
        }
    }
    let Some(person) = enriched.person else {
        return Err(Unresolved::NotFound("the match has no person".to_owned()));
    };
    let by = enriched
        .matched_by
        .and_then(|m| serde_json::to_value(m).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let handle = enriched
        .company
        .as_ref()
        .and_then(|c| c.linkedin_handle.clone());
    Ok(Resolved {
        kind: SubjectKind::Person,
        name: person.full_name.clone(),
        resolution: format!("matched_by_{by}"),
        confidence: enriched.confidence.unwrap_or_default(),
        handle,
        company: enriched.company,
        person: Some(person),
    })
}

/// [`all_failed`] for a lookup made while resolving: every provider failing
/// there is [`Unresolved::Providers`] (retried), not an unknown subject.
fn answered<T>(fan: &FanOut<T>) -> Result<(), Unresolved> {
    all_failed(fan).map_err(|e| Unresolved::Providers(format!("while resolving the company, {e}")))
}

fn outcome_name(outcome: TargetAccountOutcome) -> &'static str {
    match outcome {
        TargetAccountOutcome::ProvidedLinkedinHandle => "provided_linkedin_handle",
        TargetAccountOutcome::VerifiedLinkedinHandle => "verified_linkedin_handle",
        TargetAccountOutcome::UnverifiedOrConflictingLinkedinCandidates => {
            "unverified_or_conflicting_linkedin_candidates"
        }
        TargetAccountOutcome::Unresolved => "unresolved",
    }
}

fn unresolved_message(target: &CompanyRef, resolution: &Resolution) -> String {
    let asked = [
        target.name.as_deref(),
        target.domain.as_deref(),
        target.linkedin_handle.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    match resolution.candidates.len() {
        0 => format!("no company in the directory matches {asked}"),
        n => {
            let names: Vec<String> = resolution
                .candidates
                .iter()
                .map(|c| match &c.domain {
                    Some(d) => format!("{} ({d})", c.name),
                    None => c.name.clone(),
                })
                .collect();
            format!(
                "{asked} matches {n} companies and none is confirmed: {}; add the domain or \
                 LinkedIn handle",
                names.join(", ")
            )
        }
    }
}
