//! The `research.deep` job handler: runs the plan ([`crate::plan`]) and
//! decides the operation's status.
//!
//! | what happened | status |
//! |---|---|
//! | every step succeeded (or had nothing to do) | `succeeded` |
//! | some steps failed, a report was produced | `partial_success`; the failed steps, with their errors, are in `result.steps` |
//! | the subject cannot be resolved (unknown, ambiguous) | `failed`, code `subject_unresolved` |
//! | every directory provider failed while resolving (any of its lookups) | retried with backoff, then `failed`, code `providers_unavailable` |
//! | cancelled | `cancelled`; work done so far is discarded (no partial result) |
//!
//! A resolved subject always yields a report: its directory record is a
//! source, so there is no "nothing gathered" outcome.
//!
//! Cancellation is checked between steps, and every step races against it,
//! so an in-flight page fetch or provider call is dropped at once.

use std::collections::BTreeSet;
use std::time::Duration;

use dossier_contracts::Kind;
use dossier_contracts::api::{
    CompanyRef, Depth, PersonRecord, ResearchRequest, Seniority, normalize_domain,
};
use dossier_contracts::v1::Job;
use dossier_directory::{Company, FanOut, PeopleQuery, Person, ProviderSet};
use dossier_targeting::matching::{CompanyCache, Matcher, RecordStatus};
use dossier_targeting::resolve::{Resolution, TargetAccountOutcome, resolve};
use dossier_worker::{ErrorInfo, Handler, JobContext, JobError, Outcome, decode_payload};
use serde_json::json;
use tokio::time::Instant;

use crate::answer::{Answer, Evidence, Index};
use crate::config::ResearchConfig;
use crate::extract::sentences;
use crate::plan::{Cancelled, Runner, StepName, StepReport, StepStatus};
use crate::report::{
    Fact, Leadership, LookAlike, OrgShape, PersonBrief, Profile, ResearchResult, Sections,
    SourceKind, Sources, Subject, SubjectKind, Web, clean, markdown,
};
use crate::synthesis::Synthesizer;
use crate::web::{Fetcher, SiteEvidence};

/// How much of each step a depth runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// People looked up at the company.
    pub people: usize,
    /// People in the buying committee.
    pub committee: usize,
    /// Look-alike companies.
    pub look_alikes: usize,
    /// Pages of the company's site, the home page included.
    pub pages: usize,
    /// Facts quoted per page.
    pub facts_per_page: usize,
}

impl Limits {
    /// The limits of `depth`.
    pub fn of(depth: Depth) -> Limits {
        match depth {
            Depth::Standard => Limits {
                people: 50,
                committee: 10,
                look_alikes: 5,
                pages: 4,
                facts_per_page: 3,
            },
            Depth::Deep => Limits {
                people: 200,
                committee: 25,
                look_alikes: 15,
                pages: 10,
                facts_per_page: 6,
            },
        }
    }
}

/// Runs research operations.
#[derive(Debug, Clone)]
pub struct ResearchHandler {
    providers: ProviderSet,
    fetcher: Fetcher,
    synthesizer: Option<Synthesizer>,
    standard_budget: Duration,
    deep_budget: Duration,
}

impl ResearchHandler {
    /// A handler asking `providers`, with `config`'s budgets, web fetcher
    /// and synthesis provider.
    pub fn new(providers: ProviderSet, config: &ResearchConfig) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        Ok(ResearchHandler {
            providers,
            fetcher: Fetcher::new(config)?,
            synthesizer: Synthesizer::from_config(config)?,
            standard_budget: config.standard_budget,
            deep_budget: config.deep_budget,
        })
    }
}

/// The resolved subject.
struct Resolved {
    kind: SubjectKind,
    name: String,
    resolution: String,
    confidence: f64,
    company: Option<Company>,
    /// The company page to find people through, when confirmed.
    handle: Option<String>,
    person: Option<Person>,
}

/// Why the subject could not be resolved.
enum Unresolved {
    /// Nobody or nothing matches, or too many do.
    NotFound(String),
    /// Every provider failed.
    Providers(String),
}

impl Handler for ResearchHandler {
    fn kind(&self) -> Kind {
        Kind::ResearchDeep
    }

    #[tracing::instrument(skip_all, fields(operation_id = %ctx.operation_id()))]
    async fn handle(&self, ctx: JobContext, job: Job) -> Result<Outcome, JobError> {
        let request: ResearchRequest = decode_payload(&job)?;
        let budget = match request.depth {
            Depth::Standard => self.standard_budget,
            Depth::Deep => self.deep_budget,
        };
        let mut runner = Runner::new(ctx, budget);
        match self.research(&mut runner, &request).await {
            Ok(outcome) => outcome,
            Err(Cancelled) => Ok(Outcome::Cancelled { partial: None }),
        }
    }
}

impl ResearchHandler {
    async fn research(
        &self,
        runner: &mut Runner,
        request: &ResearchRequest,
    ) -> Result<Result<Outcome, JobError>, Cancelled> {
        let limits = Limits::of(request.depth);
        let mut sources = Sources::default();
        let mut evidence: Vec<Evidence> = Vec::new();
        let mut sections = Sections::default();

        // 1. Resolve.
        let resolved = runner
            .step(StepName::Resolve, runner.budget(StepName::Resolve), async {
                Ok(self.resolve(request).await)
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

        // 2. Profile: no lookup of its own, the resolution found the record.
        match &resolved.company {
            Some(company) => {
                let profile = runner
                    .step(StepName::Profile, runner.budget(StepName::Profile), async {
                        let id = sources.directory(
                            format!("directory:companies/{}", company.id),
                            format!("Directory record of {}", company.name),
                        );
                        Ok(Profile::new(company, resolved.confidence, id))
                    })
                    .await?;
                if let Some(profile) = profile {
                    evidence.push(Evidence {
                        source: profile.source,
                        text: profile.sentence(),
                    });
                    sections.profile = Some(profile);
                }
            }
            None => {
                runner
                    .skip(
                        StepName::Profile,
                        "the person's current company is not known",
                    )
                    .await;
            }
        }

        // 3. Leadership.
        match &resolved.company {
            Some(company) => {
                let people = runner
                    .step(
                        StepName::Leadership,
                        runner.budget(StepName::Leadership),
                        self.people(company, resolved.handle.as_deref(), limits.people),
                    )
                    .await?;
                if let Some((people, how)) = people {
                    let id = sources.directory(
                        format!("directory:people?{how}"),
                        format!("Directory people at {}", company.name),
                    );
                    let leadership = leadership(&people, limits.committee, id);
                    evidence.extend(leadership_evidence(&company.name, &leadership));
                    sections.leadership = Some(leadership);
                }
            }
            None => {
                runner
                    .skip(StepName::Leadership, "no company to look people up in")
                    .await
            }
        }

        // 4. Look-alikes.
        match &resolved.company {
            Some(company) => {
                let found = runner
                    .step(
                        StepName::LookAlikes,
                        runner.budget(StepName::LookAlikes),
                        async {
                            let fan = self
                                .providers
                                .similar_companies(company, limits.look_alikes)
                                .await;
                            all_failed(&fan)?;
                            Ok(fan.into_values())
                        },
                    )
                    .await?;
                if let Some(found) = found {
                    let id = sources.directory(
                        format!("directory:companies?similarTo={}", company.id),
                        format!("Directory companies like {}", company.name),
                    );
                    let list: Vec<LookAlike> = found
                        .iter()
                        .map(|c| LookAlike {
                            name: c.name.clone(),
                            domain: c.domain.clone(),
                            industry: c.industry.clone(),
                            size_band: c.size_band.to_string(),
                            headquarters: c.headquarters.to_string(),
                            source: id,
                        })
                        .collect();
                    if !list.is_empty() {
                        let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
                        evidence.push(Evidence {
                            source: id,
                            text: clean(&format!(
                                "Companies similar to {} include {}.",
                                company.name,
                                names.join(", ")
                            )),
                        });
                    }
                    sections.look_alikes = Some(list);
                }
            }
            None => {
                runner
                    .skip(StepName::LookAlikes, "no company to compare with")
                    .await
            }
        }

        // 5. Web evidence.
        let domain = resolved
            .company
            .as_ref()
            .and_then(|c| c.domain.as_deref())
            .and_then(normalize_domain);
        match domain {
            Some(domain) => {
                let budget = runner.budget(StepName::WebEvidence);
                let deep = request.depth == Depth::Deep;
                let site = runner
                    .step(StepName::WebEvidence, budget, async {
                        let deadline = Runner::soft_deadline(budget);
                        Ok(self
                            .fetcher
                            .gather(&domain, limits.pages, deep, deadline)
                            .await)
                    })
                    .await?;
                if let Some(site) = site {
                    let web = web_section(site, &mut sources, &mut evidence, limits);
                    if web.facts.is_empty() && !web.pages.iter().any(|p| p.source.is_some()) {
                        let why = web
                            .robots_error
                            .clone()
                            .map(|e| format!("robots.txt could not be read ({e})"))
                            .or_else(|| web.pages.first().and_then(|p| p.error.clone()))
                            .unwrap_or_else(|| "no page could be read".to_owned());
                        runner.fail(
                            StepName::WebEvidence,
                            format!("nothing was read from the site: {why}"),
                        );
                    }
                    sections.web = Some(web);
                }
            }
            None => {
                runner
                    .skip(StepName::WebEvidence, "the company's domain is not known")
                    .await
            }
        }

        // 6. Answers.
        if request.questions.is_empty() {
            runner.skip(StepName::Answers, "no questions asked").await;
        } else {
            // Answers is the last step that waits on anything. With synthesis
            // it may use whatever the earlier steps left, but the report's
            // share: its calls come out of the total budget, never on top.
            let budget = match &self.synthesizer {
                Some(_) => runner
                    .remaining()
                    .saturating_sub(runner.budget(StepName::Report))
                    .max(runner.budget(StepName::Answers)),
                None => runner.budget(StepName::Answers),
            };
            let answers = runner
                .step(StepName::Answers, budget, async {
                    let deadline = Runner::soft_deadline(budget);
                    Ok(self.answers(&request.questions, &evidence, deadline).await)
                })
                .await?;
            if let Some(answers) = answers {
                sections.answers = answers;
            }
        }

        // 7. Report: the Markdown and the result's JSON. The steps are added
        // after this one is recorded, so the report's own row is in
        // `result.steps` but not in the Markdown's table (it is still running
        // while the table is written).
        let title = resolved.name.clone();
        let sources = sources.into_list();
        let steps_so_far = runner.steps().to_vec();
        let encoded = runner
            .step(StepName::Report, runner.budget(StepName::Report), async {
                let markdown = markdown(
                    &title,
                    &subject,
                    request.depth,
                    &sections,
                    &sources,
                    &steps_so_far,
                );
                let result = ResearchResult {
                    subject,
                    depth: request.depth,
                    markdown,
                    sections,
                    sources,
                    steps: Vec::new(),
                };
                serde_json::to_value(&result).map_err(|e| format!("cannot encode the result: {e}"))
            })
            .await?;
        let Some(mut value) = encoded else {
            let error = runner.steps().last().and_then(|s| s.error.clone());
            return Ok(Err(JobError::permanent(
                "result_encoding",
                error.unwrap_or_else(|| "the report could not be written".to_owned()),
            )));
        };
        let steps = runner.steps();
        match serde_json::to_value(steps) {
            Ok(encoded) => value["steps"] = encoded,
            Err(e) => {
                return Ok(Err(JobError::permanent(
                    "result_encoding",
                    format!("cannot encode the steps: {e}"),
                )));
            }
        }
        if runner.is_cancelled() {
            return Err(Cancelled);
        }
        let failed: Vec<&StepReport> = steps
            .iter()
            .filter(|s| s.status == StepStatus::Failed)
            .collect();
        if failed.is_empty() {
            return Ok(Ok(Outcome::Succeeded(value)));
        }
        let names: Vec<&str> = failed.iter().map(|s| s.name.as_str()).collect();
        let mut error = ErrorInfo::new(
            "research_steps_failed",
            format!("some research steps failed: {}", names.join(", ")),
        );
        error.details = Some(json!({
            "steps": failed
                .iter()
                .map(|s| json!({ "name": s.name, "error": s.error }))
                .collect::<Vec<_>>()
        }));
        Ok(Ok(Outcome::PartialSuccess {
            result: value,
            error: Some(error),
        }))
    }

    /// Resolves the request's subject.
    async fn resolve(&self, request: &ResearchRequest) -> Result<Resolved, Unresolved> {
        if let Some(company) = &request.subject.company {
            return self.resolve_company(company).await;
        }
        match &request.subject.person {
            Some(person) => self.resolve_person(person).await,
            None => Err(Unresolved::NotFound(
                "the request names neither a company nor a person".to_owned(),
            )),
        }
    }

    /// The company a reference means, by the same target-account resolution
    /// as search, then the company record itself: the one with the confirmed
    /// handle, else the one owning the domain, else the only candidate.
    async fn resolve_company(&self, target: &CompanyRef) -> Result<Resolved, Unresolved> {
        let resolution = resolve(&self.providers, target).await;
        if !resolution.outcomes.is_empty() && resolution.outcomes.iter().all(|o| !o.is_ok()) {
            return Err(Unresolved::Providers(
                "every directory provider failed while resolving the company".to_owned(),
            ));
        }
        let domain = target.domain.as_deref().and_then(normalize_domain);
        let owns_domain = |c: &Company| {
            domain.is_some() && c.domain.as_deref().and_then(normalize_domain) == domain
        };

        let mut picked: Option<(Company, f64)> = None;
        if let Some(handle) = &resolution.handle {
            let fan = self.providers.companies_by_handle(handle).await;
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
            let fan = self.providers.companies_by_domain(d).await;
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
            let fan = self.providers.companies_by_name(&only.name).await;
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
    async fn resolve_person(&self, record: &PersonRecord) -> Result<Resolved, Unresolved> {
        let matcher = Matcher::new(self.providers.clone());
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

    /// People at `company`: through its confirmed page, else by the profile
    /// company text of its name and aliases. Returns the people and how they
    /// were looked up (for the source's URI).
    async fn people(
        &self,
        company: &Company,
        handle: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Person>, String), String> {
        let query = PeopleQuery::with_limit(limit);
        if let Some(handle) = handle {
            let fan = self
                .providers
                .people_at_company_handle(handle, &query)
                .await;
            all_failed(&fan)?;
            return Ok((fan.into_values(), format!("companyPage={handle}")));
        }
        let mut seen = BTreeSet::new();
        let mut people = Vec::new();
        let names = std::iter::once(&company.name).chain(&company.aliases);
        for name in names {
            let fan = self.providers.people_by_company_text(name, &query).await;
            all_failed(&fan)?;
            for person in fan.into_values() {
                if people.len() < limit && seen.insert(person.id.clone()) {
                    people.push(person);
                }
            }
        }
        Ok((people, format!("companyText={}", company.name)))
    }

    /// Answers every question from `evidence`, through the synthesis
    /// provider when configured (falling back to retrieval when its answer
    /// fails the citation check).
    /// Each synthesis call is bounded by its own timeout and by `deadline`;
    /// past the deadline, answers are by retrieval only.
    async fn answers(
        &self,
        questions: &[String],
        evidence: &[Evidence],
        deadline: Instant,
    ) -> Vec<Answer> {
        let index = Index::new(evidence);
        let mut answers = Vec::with_capacity(questions.len());
        for question in questions {
            let deterministic = index.answer(question);
            let answer = match &self.synthesizer {
                Some(synth) if deterministic.found => {
                    let passages = index.retrieve(question, 8);
                    let left = deadline.saturating_duration_since(Instant::now());
                    let limit = synth.timeout().min(left);
                    let answer = if limit.is_zero() {
                        Err("the step's time budget ran out".to_owned())
                    } else {
                        match tokio::time::timeout(limit, synth.answer(question, &passages)).await {
                            Ok(answer) => answer.map_err(|e| e.to_string()),
                            Err(_) => Err(format!(
                                "timed out after {}",
                                humantime::format_duration(limit)
                            )),
                        }
                    };
                    match answer {
                        Ok(answer) => answer,
                        Err(error) => {
                            tracing::warn!(
                                message = "Synthesis not used; answering by retrieval.",
                                model = synth.model(),
                                %error
                            );
                            deterministic
                        }
                    }
                }
                _ => deterministic,
            };
            answers.push(answer);
        }
        answers
    }
}

/// [`all_failed`] for a lookup made while resolving: every provider failing
/// there is [`Unresolved::Providers`] (retried), not an unknown subject.
fn answered<T>(fan: &FanOut<T>) -> Result<(), Unresolved> {
    all_failed(fan).map_err(|e| Unresolved::Providers(format!("while resolving the company, {e}")))
}

fn all_failed<T>(fan: &FanOut<T>) -> Result<(), String> {
    if !fan.outcomes.is_empty() && fan.outcomes.iter().all(|o| !o.is_ok()) {
        let names: Vec<&str> = fan.outcomes.iter().map(|o| o.provider.as_str()).collect();
        return Err(format!(
            "every directory provider failed: {}",
            names.join(", ")
        ));
    }
    Ok(())
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

fn label<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn brief(person: &Person, source: usize) -> PersonBrief {
    PersonBrief {
        name: person.full_name.clone(),
        title: person.title.clone(),
        seniority: label(person.seniority),
        department: label(person.department),
        location: person.location.to_string(),
        linkedin_url: person.linkedin_url.clone(),
        source,
    }
}

/// Seniority rank, most senior first; below director is not on the committee.
fn committee_rank(s: Seniority) -> Option<u8> {
    match s {
        Seniority::Owner => Some(0),
        Seniority::CSuite => Some(1),
        Seniority::Vp => Some(2),
        Seniority::Director => Some(3),
        _ => None,
    }
}

fn leadership(people: &[Person], committee: usize, source: usize) -> Leadership {
    let mut shape = OrgShape::default();
    for p in people {
        *shape.by_department.entry(label(p.department)).or_default() += 1;
        *shape.by_seniority.entry(label(p.seniority)).or_default() += 1;
    }
    let mut senior: Vec<(u8, usize, &Person)> = people
        .iter()
        .enumerate()
        .filter_map(|(i, p)| committee_rank(p.seniority).map(|r| (r, i, p)))
        .collect();
    senior.sort_by_key(|(rank, i, _)| (*rank, *i));
    Leadership {
        people_found: people.len(),
        buying_committee: senior
            .into_iter()
            .take(committee)
            .map(|(_, _, p)| brief(p, source))
            .collect(),
        org_shape: shape,
        source,
    }
}

fn leadership_evidence(company: &str, l: &Leadership) -> Vec<Evidence> {
    let mut out = Vec::new();
    if !l.buying_committee.is_empty() {
        let who: Vec<String> = l
            .buying_committee
            .iter()
            .map(|p| format!("{} ({})", p.name, p.title))
            .collect();
        out.push(Evidence {
            source: l.source,
            text: clean(&format!(
                "The buying committee at {company} includes {}.",
                who.join(", ")
            )),
        });
    }
    for p in &l.buying_committee {
        out.push(Evidence {
            source: l.source,
            text: clean(&format!(
                "{} is {} at {company}, in {} leadership ({}).",
                p.name, p.title, p.department, p.seniority
            )),
        });
    }
    let shape: Vec<String> = l
        .org_shape
        .by_department
        .iter()
        .map(|(d, n)| format!("{n} in {d}"))
        .collect();
    if !shape.is_empty() {
        out.push(Evidence {
            source: l.source,
            text: clean(&format!(
                "Of {} people found at {company}, {}.",
                l.people_found,
                shape.join(", ")
            )),
        });
    }
    out
}

/// The web section: every page read becomes a source; its sentences become
/// evidence, the first few of each page its facts.
fn web_section(
    site: SiteEvidence,
    sources: &mut Sources,
    evidence: &mut Vec<Evidence>,
    limits: Limits,
) -> Web {
    let mut reports = site.reports;
    let mut pages = site.pages.into_iter();
    let mut facts = Vec::new();
    let mut seen = BTreeSet::new();
    for report in reports
        .iter_mut()
        .filter(|r| r.status == crate::web::PageStatus::Fetched)
    {
        let Some(page) = pages.next() else { break };
        let title = if page.content.title.is_empty() {
            page.url.to_string()
        } else {
            page.content.title.clone()
        };
        let id = sources.add(
            SourceKind::Web,
            page.url.to_string(),
            title,
            page.fetched_at,
        );
        report.source = Some(id);
        let mut quoted = 0;
        for paragraph in &page.content.paragraphs {
            for sentence in sentences(paragraph) {
                let text = clean(&sentence);
                // Boilerplate repeated on every page (footers) is evidence once.
                if !seen.insert(text.to_lowercase()) {
                    continue;
                }
                if quoted < limits.facts_per_page && text.split_whitespace().count() >= 5 {
                    facts.push(Fact {
                        text: text.clone(),
                        source: id,
                    });
                    quoted += 1;
                }
                evidence.push(Evidence { source: id, text });
            }
        }
    }
    Web {
        site: site.base.map(|b| b.to_string()),
        robots_error: site.robots_error,
        pages: reports,
        facts,
    }
}
