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
//!
//! This module only runs the steps in the plan's order; each step is a
//! module of `src/steps/`, all of one shape (see `steps/mod.rs`).

use std::time::Duration;

use dossier_contracts::Kind;
use dossier_contracts::api::{Depth, ResearchRequest};
use dossier_contracts::v1::Job;
use dossier_directory::ProviderSet;
use dossier_worker::{ErrorInfo, Handler, JobContext, JobError, Outcome, decode_payload};
use serde_json::json;

use crate::config::ResearchConfig;
use crate::plan::{Cancelled, Runner, StepReport, StepStatus};
use crate::steps;
use crate::synthesis::Synthesizer;
use crate::web::Fetcher;

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
            Err(Cancelled) => Ok(Outcome::Cancelled {
                partial: None,
                progress: None,
            }),
        }
    }
}

impl ResearchHandler {
    /// Runs the plan's steps, in order, on what the earlier ones gathered.
    async fn research(
        &self,
        runner: &mut Runner,
        request: &ResearchRequest,
    ) -> Result<Result<Outcome, JobError>, Cancelled> {
        let mut gathered = match steps::resolve::run(runner, &self.providers, request).await? {
            Ok(gathered) => gathered,
            Err(error) => return Ok(Err(error)),
        };
        steps::profile::run(runner, &mut gathered).await?;
        steps::leadership::run(runner, &self.providers, &mut gathered).await?;
        steps::look_alikes::run(runner, &self.providers, &mut gathered).await?;
        steps::web_evidence::run(runner, &self.fetcher, &mut gathered).await?;
        steps::answers::run(runner, self.synthesizer.as_ref(), &mut gathered).await?;
        let value = match steps::report::run(runner, gathered).await? {
            Ok(value) => value,
            Err(error) => return Ok(Err(error)),
        };
        if runner.is_cancelled() {
            return Err(Cancelled);
        }
        Ok(Ok(outcome(runner.steps(), value)))
    }
}

/// `succeeded` when no step failed, else `partial_success` naming the
/// failed steps and their errors.
fn outcome(steps: &[StepReport], value: serde_json::Value) -> Outcome {
    let failed: Vec<&StepReport> = steps
        .iter()
        .filter(|s| s.status == StepStatus::Failed)
        .collect();
    if failed.is_empty() {
        return Outcome::Succeeded(value);
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
    Outcome::PartialSuccess {
        result: value,
        error: Some(error),
    }
}
