//! Step 4, look-alikes: companies similar to the subject's (same industry,
//! size band within one step, nearest first), as the directory ranks them.

use dossier_directory::ProviderSet;

use super::{Gathered, all_failed, company_or_skip};
use crate::answer::Evidence;
use crate::plan::{Cancelled, Runner, StepName};
use crate::report::{LookAlike, clean};

/// Runs the step (skipped without a company).
pub(crate) async fn run(
    runner: &mut Runner,
    providers: &ProviderSet,
    gathered: &mut Gathered<'_>,
) -> Result<(), Cancelled> {
    let reason = "no company to compare with";
    let resolved = &gathered.resolved;
    let Some(company) = company_or_skip(runner, resolved, StepName::LookAlikes, reason).await
    else {
        return Ok(());
    };
    let limit = gathered.limits.look_alikes;
    let found = runner
        .step(
            StepName::LookAlikes,
            runner.budget(StepName::LookAlikes),
            async {
                let fan = providers.similar_companies(company, limit).await;
                all_failed(&fan)?;
                Ok(fan.into_values())
            },
        )
        .await?;
    if let Some(found) = found {
        let id = gathered.sources.directory(
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
            gathered.evidence.push(Evidence {
                source: id,
                text: clean(&format!(
                    "Companies similar to {} include {}.",
                    company.name,
                    names.join(", ")
                )),
            });
        }
        gathered.sections.look_alikes = Some(list);
    }
    Ok(())
}
