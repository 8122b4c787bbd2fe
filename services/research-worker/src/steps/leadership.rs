//! Step 3, leadership: the people at the company (through its confirmed
//! page, else by profile company text), the buying committee and the org
//! shape.
//!
//! Two lookups of the same listing: everyone (up to the depth's limit; the
//! org shape counts these), and the owners, executives, VPs and directors
//! (up to the same limit). At a company of hundreds, the first lookup alone
//! holds a random few leaders; the second is what the committee and the
//! answers to "who leads sales" rest on.

use std::collections::BTreeSet;

use dossier_contracts::api::Seniority;
use dossier_directory::{Company, PeopleQuery, Person, ProviderSet};

use super::{Gathered, all_failed, brief, company_or_skip, label};
use crate::answer::Evidence;
use crate::plan::{Cancelled, Runner, StepName};
use crate::report::{Leadership, OrgShape, clean};

/// Runs the step (skipped without a company).
pub(crate) async fn run(
    runner: &mut Runner,
    providers: &ProviderSet,
    gathered: &mut Gathered<'_>,
) -> Result<(), Cancelled> {
    let reason = "no company to look people up in";
    let resolved = &gathered.resolved;
    let Some(company) = company_or_skip(runner, resolved, StepName::Leadership, reason).await
    else {
        return Ok(());
    };
    let limits = gathered.limits;
    let people = runner
        .step(
            StepName::Leadership,
            runner.budget(StepName::Leadership),
            async {
                let handle = resolved.handle.as_deref();
                let everyone = PeopleQuery::with_limit(limits.people);
                let mut senior = everyone.clone();
                senior.seniorities = LEADERS.to_vec();
                let (leaders, _) = people(providers, company, handle, &senior).await?;
                let (all, how) = people(providers, company, handle, &everyone).await?;
                Ok((all, leaders, how))
            },
        )
        .await?;
    if let Some((people, leaders, how)) = people {
        let id = gathered.sources.directory(
            format!("directory:people?{how}"),
            format!("Directory people at {}", company.name),
        );
        // Everyone found once: the leaders lookup first (most senior),
        // then the rest of the general lookup.
        let mut seen = BTreeSet::new();
        let known: Vec<Person> = leaders
            .into_iter()
            .chain(people.iter().cloned())
            .filter(|p| seen.insert(p.id.clone()))
            .collect();
        let leadership = leadership(&people, &known, limits.committee, id);
        gathered
            .evidence
            .extend(leadership_evidence(&company.name, &leadership));
        gathered.sections.leadership = Some(leadership);
        gathered.counted = people;
        gathered.people = known;
    }
    Ok(())
}

/// The ranks of the second lookup: who sits on a buying committee.
const LEADERS: [Seniority; 4] = [
    Seniority::Owner,
    Seniority::CSuite,
    Seniority::Vp,
    Seniority::Director,
];

/// People at `company`: through its confirmed page, else by the profile
/// company text of its name and aliases. Returns the people and how they
/// were looked up (for the source's URI).
async fn people(
    providers: &ProviderSet,
    company: &Company,
    handle: Option<&str>,
    query: &PeopleQuery,
) -> Result<(Vec<Person>, String), String> {
    let limit = query.limit;
    if let Some(handle) = handle {
        let fan = providers.people_at_company_handle(handle, query).await;
        all_failed(&fan)?;
        return Ok((fan.into_values(), format!("companyPage={handle}")));
    }
    let mut seen = BTreeSet::new();
    let mut people = Vec::new();
    let names = std::iter::once(&company.name).chain(&company.aliases);
    for name in names {
        let fan = providers.people_by_company_text(name, query).await;
        all_failed(&fan)?;
        for person in fan.into_values() {
            if people.len() < limit && seen.insert(person.id.clone()) {
                people.push(person);
            }
        }
    }
    Ok((people, format!("companyText={}", company.name)))
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

/// The section: the org shape of `people` (the general lookup), the
/// committee from `known` (everyone found).
fn leadership(people: &[Person], known: &[Person], committee: usize, source: usize) -> Leadership {
    let mut shape = OrgShape::default();
    for p in people {
        *shape.by_department.entry(label(p.department)).or_default() += 1;
        *shape.by_seniority.entry(label(p.seniority)).or_default() += 1;
    }
    let mut senior: Vec<(u8, usize, &Person)> = known
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
