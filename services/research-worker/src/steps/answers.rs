//! Step 6, answers: the caller's questions answered from the evidence
//! gathered so far, by retrieval, or written by the synthesis provider when
//! one is configured and its citations hold.

use tokio::time::Instant;

use super::Gathered;
use crate::answer::{Answer, Evidence, Index};
use crate::plan::{Cancelled, Runner, StepName};
use crate::synthesis::Synthesizer;

/// Runs the step (skipped without questions).
pub(crate) async fn run(
    runner: &mut Runner,
    synthesizer: Option<&Synthesizer>,
    gathered: &mut Gathered<'_>,
) -> Result<(), Cancelled> {
    let request = gathered.request;
    if request.questions.is_empty() {
        runner.skip(StepName::Answers, "no questions asked").await;
        return Ok(());
    }
    // Answers is the last step that waits on anything. With synthesis
    // it may use whatever the earlier steps left, but the report's
    // share: its calls come out of the total budget, never on top.
    let budget = match synthesizer {
        Some(_) => runner
            .remaining()
            .saturating_sub(runner.budget(StepName::Report))
            .max(runner.budget(StepName::Answers)),
        None => runner.budget(StepName::Answers),
    };
    let answers = runner
        .step(StepName::Answers, budget, async {
            let deadline = Runner::soft_deadline(budget);
            Ok(answer_all(
                synthesizer,
                &request.questions,
                &gathered.evidence,
                deadline,
            )
            .await)
        })
        .await?;
    if let Some(answers) = answers {
        gathered.sections.answers = answers;
    }
    Ok(())
}

/// Answers every question from `evidence`, through the synthesis
/// provider when configured (falling back to retrieval when its answer
/// fails the citation check).
/// Each synthesis call is bounded by its own timeout and by `deadline`;
/// past the deadline, answers are by retrieval only.
async fn answer_all(
    synthesizer: Option<&Synthesizer>,
    questions: &[String],
    evidence: &[Evidence],
    deadline: Instant,
) -> Vec<Answer> {
    let index = Index::new(evidence);
    let mut answers = Vec::with_capacity(questions.len());
    for question in questions {
        let deterministic = index.answer(question);
        let answer = match synthesizer {
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
