//! Step 6, answers: the caller's questions answered from what was gathered
//! so far. What a question asks ([`crate::intent`]) decides where the answer
//! comes from: the structured sections first ([`crate::facts`]: people by
//! function and rank, counts, the profile, look-alikes, a person's record),
//! then the web pages' sentences; a question of no known intent is answered
//! by retrieval over all the evidence. The synthesis provider, when
//! configured, may reword a deterministic answer but add nothing to it.

use std::collections::BTreeSet;

use tokio::time::Instant;

use super::Gathered;
use crate::answer::{Answer, AnswerMethod, Evidence, Index, from_evidence};
use crate::facts::{self, Known};
use crate::intent;
use crate::plan::{Cancelled, Runner, StepName};
use crate::report::SourceKind;
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
    let g = &*gathered;
    let known = Known {
        company: g.resolved.company.as_ref().map(|c| c.name.as_str()),
        profile: g.sections.profile.as_ref(),
        leadership: g.sections.leadership.as_ref(),
        people: &g.people,
        counted: &g.counted,
        look_alikes: g.sections.look_alikes.as_deref(),
        person: g
            .resolved
            .person
            .as_ref()
            .zip(g.subject.person.as_ref().map(|p| p.source)),
    };
    let web: BTreeSet<usize> = g
        .sources
        .list()
        .iter()
        .filter(|s| s.kind == SourceKind::Web)
        .map(|s| s.id)
        .collect();
    let context = Context {
        known,
        names: subject_names(g),
        evidence: &g.evidence,
        web,
    };
    let answers = runner
        .step(StepName::Answers, budget, async {
            let deadline = Runner::soft_deadline(budget);
            Ok(answer_all(synthesizer, &request.questions, &context, deadline).await)
        })
        .await?;
    if let Some(answers) = answers {
        gathered.sections.answers = answers;
    }
    Ok(())
}

/// What the answers draw on.
struct Context<'a> {
    known: Known<'a>,
    /// The subject's names: (company names and aliases, person names).
    names: (Vec<String>, Vec<String>),
    evidence: &'a [Evidence],
    /// The ids of the web sources.
    web: BTreeSet<usize>,
}

/// The names a question may call the subject by: the company's name and
/// aliases, and the person's full, first and last names.
fn subject_names(g: &Gathered<'_>) -> (Vec<String>, Vec<String>) {
    let mut company = Vec::new();
    if let Some(c) = &g.resolved.company {
        company.push(c.name.clone());
        company.extend(c.aliases.iter().cloned());
    }
    company.push(g.resolved.name.clone());
    let mut person = Vec::new();
    if let Some(p) = &g.resolved.person {
        person.push(p.full_name.clone());
        person.extend(p.full_name.split_whitespace().map(str::to_owned));
    }
    (company, person)
}

/// The deterministic answer to `question` and the sentences it is made of.
fn deterministic(
    question: &str,
    context: &Context<'_>,
    all: &Index<'_>,
    web: &Index<'_>,
) -> (Answer, Vec<Evidence>) {
    let company: Vec<&str> = context.names.0.iter().map(String::as_str).collect();
    let person: Vec<&str> = context.names.1.iter().map(String::as_str).collect();
    let parsed = intent::parse(question, &company, &person);
    let names: Vec<&str> = company.iter().chain(&person).copied().collect();
    let asked = intent::without_names(question, &names);
    let retrieve = |index: &Index<'_>| -> Vec<Evidence> {
        index
            .retrieve(&asked, 3)
            .into_iter()
            .map(|s| s.evidence.clone())
            .collect()
    };
    let (sentences, method) = match facts::answer(&parsed, question, &context.known) {
        Some(found) if !found.is_empty() => (found, AnswerMethod::Structured),
        // The structure lacks it: only what a page says may answer, never a
        // directory sentence that merely shares words with the question.
        Some(_) => (retrieve(web), AnswerMethod::Retrieval),
        None => (retrieve(all), AnswerMethod::Retrieval),
    };
    (from_evidence(question, &sentences, method), sentences)
}

/// Answers every question, through the synthesis provider when configured
/// (falling back to the deterministic answer when its rewording fails the
/// citation or the added-fact check).
/// Each synthesis call is bounded by its own timeout and by `deadline`;
/// past the deadline, answers are deterministic only.
async fn answer_all(
    synthesizer: Option<&Synthesizer>,
    questions: &[String],
    context: &Context<'_>,
    deadline: Instant,
) -> Vec<Answer> {
    let all = Index::new(context.evidence);
    let web_evidence: Vec<Evidence> = context
        .evidence
        .iter()
        .filter(|e| context.web.contains(&e.source))
        .cloned()
        .collect();
    let web = Index::new(&web_evidence);
    let mut answers = Vec::with_capacity(questions.len());
    for question in questions {
        let (deterministic, passages) = deterministic(question, context, &all, &web);
        let answer = match synthesizer {
            Some(synth) if deterministic.found => {
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
                            message = "Synthesis not used; the deterministic answer stands.",
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
