//! The steps of a research, one module each, in the order the plan runs
//! them ([`crate::plan::StepName`]); [`crate::handler`] only sequences them.
//!
//! Every step has the same shape: it reads the [`Gathered`] state (the
//! request, its limits, the resolved subject and what earlier steps found),
//! runs its work through the [`crate::plan::Runner`] (its time budget,
//! raced against cancellation, its status recorded, progress advanced) or
//! records why it was skipped, and adds its section, sources and evidence.
//! `Err(Cancelled)` from a step ends the research at once.

pub(crate) mod answers;
pub(crate) mod leadership;
pub(crate) mod look_alikes;
pub(crate) mod profile;
pub(crate) mod report;
pub(crate) mod resolve;
pub(crate) mod web_evidence;

use dossier_contracts::api::ResearchRequest;
use dossier_directory::{Company, FanOut, Person};

use crate::answer::Evidence;
use crate::handler::Limits;
use crate::plan::{Runner, StepName};
use crate::report::{PersonBrief, Sections, Sources, Subject};
use resolve::Resolved;

/// What a research has gathered so far: made by the resolve step, added to
/// by each later step, written out by the report step.
pub(crate) struct Gathered<'a> {
    /// The request.
    pub(crate) request: &'a ResearchRequest,
    /// How much each step runs at the request's depth.
    pub(crate) limits: Limits,
    /// The resolved subject: its company, person and confirmed page.
    pub(crate) resolved: Resolved,
    /// The report's subject.
    pub(crate) subject: Subject,
    /// Every source so far; sections cite them by id.
    pub(crate) sources: Sources,
    /// Sentences the answers may quote, each with its source.
    pub(crate) evidence: Vec<Evidence>,
    /// The report's sections so far.
    pub(crate) sections: Sections,
    /// Everyone the leadership step found, leaders first (cited as its
    /// source): the answers look people up by function and rank here.
    pub(crate) people: Vec<Person>,
    /// The people its general lookup found, which the org shape counts.
    pub(crate) counted: Vec<Person>,
}

/// The subject's company, for the steps that need one; without it, `step`
/// is recorded as skipped for `reason`.
pub(crate) async fn company_or_skip<'r>(
    runner: &mut Runner,
    resolved: &'r Resolved,
    step: StepName,
    reason: &str,
) -> Option<&'r Company> {
    if resolved.company.is_none() {
        runner.skip(step, reason).await;
    }
    resolved.company.as_ref()
}

/// `Err` naming the providers when every provider failed `fan`'s lookup:
/// the step has nothing to show (one provider answering is enough).
pub(crate) fn all_failed<T>(fan: &FanOut<T>) -> Result<(), String> {
    if !fan.outcomes.is_empty() && fan.outcomes.iter().all(|o| !o.is_ok()) {
        let names: Vec<&str> = fan.outcomes.iter().map(|o| o.provider.as_str()).collect();
        return Err(format!(
            "every directory provider failed: {}",
            names.join(", ")
        ));
    }
    Ok(())
}

/// A value's serialised name (`c_suite`), for the report.
pub(crate) fn label<T: serde::Serialize>(value: T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A person as the report lists them, citing `source`.
pub(crate) fn brief(person: &Person, source: usize) -> PersonBrief {
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
