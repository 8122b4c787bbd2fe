//! Step 5, web evidence: the company's own site (see [`crate::web`]). Every
//! page read becomes a source, its sentences evidence, the first few of
//! each page the section's facts.

use std::collections::BTreeSet;

use dossier_contracts::api::{Depth, normalize_domain};

use super::Gathered;
use crate::answer::Evidence;
use crate::extract::sentences;
use crate::handler::Limits;
use crate::plan::{Cancelled, Runner, StepName};
use crate::report::{Fact, SourceKind, Sources, Web, clean};
use crate::web::{Fetcher, SiteEvidence};

/// Runs the step (skipped without the company's domain); it fails when
/// nothing at all was read from the site.
pub(crate) async fn run(
    runner: &mut Runner,
    fetcher: &Fetcher,
    gathered: &mut Gathered<'_>,
) -> Result<(), Cancelled> {
    let limits = gathered.limits;
    let domain = gathered
        .resolved
        .company
        .as_ref()
        .and_then(|c| c.domain.as_deref())
        .and_then(normalize_domain);
    let Some(domain) = domain else {
        runner
            .skip(StepName::WebEvidence, "the company's domain is not known")
            .await;
        return Ok(());
    };
    let budget = runner.budget(StepName::WebEvidence);
    let deep = gathered.request.depth == Depth::Deep;
    let site = runner
        .step(StepName::WebEvidence, budget, async {
            let deadline = Runner::soft_deadline(budget);
            Ok(fetcher.gather(&domain, limits.pages, deep, deadline).await)
        })
        .await?;
    if let Some(site) = site {
        let web = web_section(site, &mut gathered.sources, &mut gathered.evidence, limits);
        if web.facts.is_empty() && !web.pages.iter().any(|p| p.source.is_some()) {
            // Both are fixed reasons (see `FetchError`): no address leaks
            // into the step's error.
            let why = web
                .robots_error
                .clone()
                .or_else(|| web.pages.first().and_then(|p| p.error.clone()))
                .unwrap_or_else(|| "no page could be read".to_owned());
            runner.fail(
                StepName::WebEvidence,
                format!("nothing was read from the site: {why}"),
            );
        }
        gathered.sections.web = Some(web);
    }
    Ok(())
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
