//! Step 7, report: the Markdown and the result's JSON, with every step's
//! row.

use dossier_worker::JobError;

use super::Gathered;
use crate::plan::{Cancelled, Runner, StepName};
use crate::report::{ResearchResult, markdown};

/// Runs the step: the result's JSON, or the job's error when it cannot be
/// encoded.
pub(crate) async fn run(
    runner: &mut Runner,
    gathered: Gathered<'_>,
) -> Result<Result<serde_json::Value, JobError>, Cancelled> {
    let Gathered {
        request,
        resolved,
        subject,
        sources,
        sections,
        ..
    } = gathered;
    // The steps are added after this one is recorded, so the report's own
    // row is in `result.steps` but not in the Markdown's table (it is still
    // running while the table is written).
    let title = resolved.name;
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
    match serde_json::to_value(runner.steps()) {
        Ok(encoded) => value["steps"] = encoded,
        Err(e) => {
            return Ok(Err(JobError::permanent(
                "result_encoding",
                format!("cannot encode the steps: {e}"),
            )));
        }
    }
    Ok(Ok(value))
}
