//! Step 2, profile: the company's firmographics. No lookup of its own: the
//! resolution found the record, which becomes a source.

use super::{Gathered, company_or_skip};
use crate::answer::Evidence;
use crate::plan::{Cancelled, Runner, StepName};
use crate::report::Profile;

/// Runs the step (skipped without a company).
pub(crate) async fn run(runner: &mut Runner, gathered: &mut Gathered<'_>) -> Result<(), Cancelled> {
    let reason = "the person's current company is not known";
    let resolved = &gathered.resolved;
    let Some(company) = company_or_skip(runner, resolved, StepName::Profile, reason).await else {
        return Ok(());
    };
    let confidence = resolved.confidence;
    let sources = &mut gathered.sources;
    let profile = runner
        .step(StepName::Profile, runner.budget(StepName::Profile), async {
            let id = sources.directory(
                format!("directory:companies/{}", company.id),
                format!("Directory record of {}", company.name),
            );
            Ok(Profile::new(company, confidence, id))
        })
        .await?;
    if let Some(profile) = profile {
        gathered.evidence.push(Evidence {
            source: profile.source,
            text: profile.sentence(),
        });
        gathered.sections.profile = Some(profile);
    }
    Ok(())
}
