//! The plan of a research: its steps, their weights, and the runner that
//! gives each step its time budget, races it against cancellation, records
//! its status and duration, and advances the operation's progress.
//!
//! A step's weight is its expected share of the research's cost (the web
//! step dominates); the same share of the depth's total budget is the step's
//! time budget (Resolve gets at least [`RESOLVE_FLOOR`]), and progress moves
//! as time is expected to pass. The total budget is a hard bound: the runner
//! cuts every step off at its own budget or at the end of the total budget,
//! whichever comes first, so the steps together never take longer than the
//! total (a step that is short of its share because an earlier one ran long
//! gets what is left).

use std::future::Future;
use std::time::Duration;

use dossier_worker::JobContext;
use serde::Serialize;
use tokio::time::Instant;

/// One step of the plan, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepName {
    /// Which company or person the request means.
    Resolve,
    /// Firmographics, aliases, handle and confidence.
    Profile,
    /// The people by seniority and department, and the buying committee.
    Leadership,
    /// Similar companies.
    LookAlikes,
    /// The company's own web site.
    WebEvidence,
    /// Answers to the caller's questions.
    Answers,
    /// The Markdown and structured report.
    Report,
}

impl StepName {
    /// Every step, in order.
    pub const ALL: [StepName; 7] = [
        StepName::Resolve,
        StepName::Profile,
        StepName::Leadership,
        StepName::LookAlikes,
        StepName::WebEvidence,
        StepName::Answers,
        StepName::Report,
    ];

    /// Percent of the expected cost (the weights sum to 100).
    pub fn weight(self) -> u32 {
        match self {
            StepName::Resolve => 10,
            StepName::Profile => 5,
            StepName::Leadership => 15,
            StepName::LookAlikes => 10,
            StepName::WebEvidence => 45,
            StepName::Answers => 10,
            StepName::Report => 5,
        }
    }

    /// The name as serialised (`web_evidence`).
    pub fn as_str(self) -> &'static str {
        match self {
            StepName::Resolve => "resolve",
            StepName::Profile => "profile",
            StepName::Leadership => "leadership",
            StepName::LookAlikes => "look_alikes",
            StepName::WebEvidence => "web_evidence",
            StepName::Answers => "answers",
            StepName::Report => "report",
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Done.
    Succeeded,
    /// Failed or cut off by its budget; `error` says why.
    Failed,
    /// Not run: nothing to do (`error` says why).
    Skipped,
}

/// One sub-task of the research, as in the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// Which step.
    pub name: StepName,
    /// How it ended.
    pub status: StepStatus,
    /// How long it ran.
    pub duration_ms: u64,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The research was cancelled; stop and report `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

/// Runs the steps of one research.
#[derive(Debug)]
pub struct Runner {
    ctx: JobContext,
    budget: Duration,
    /// When the total budget ends.
    deadline: Instant,
    done: u32,
    steps: Vec<StepReport>,
}

/// Time a step that watches its own deadline ([`Runner::soft_deadline`])
/// keeps in hand before its budget ends, to finish by itself and keep what it
/// gathered; the runner's cut at the budget is only the backstop. Taken out
/// of the step's budget, never added to it.
const BACKSTOP: Duration = Duration::from_millis(500);

/// Least budget of the Resolve step. Resolving waits for every directory
/// provider, each up to the provider deadline (`DOSSIER_PROVIDER_DEADLINE`,
/// 10 s by default), and makes up to two such lookups one after the other
/// (the domain and the name together, then the handle check). Cut shorter,
/// one slow vendor would end every research as a retry while the others
/// answered; a share of the total alone (3 s of a standard research) is
/// below even one provider deadline. Still capped by what is left of the
/// total budget.
pub const RESOLVE_FLOOR: Duration = Duration::from_secs(20);

impl Runner {
    /// A runner for a research with `budget` in all.
    pub fn new(ctx: JobContext, budget: Duration) -> Runner {
        Runner {
            ctx,
            budget,
            deadline: Instant::now() + budget,
            done: 0,
            steps: Vec::new(),
        }
    }

    /// The time budget of `name`: its weight's share of the total (at least
    /// [`RESOLVE_FLOOR`] for Resolve), never more than what is left of the
    /// total.
    pub fn budget(&self, name: StepName) -> Duration {
        step_budget(self.budget, name, self.remaining())
    }

    /// What is left of the total budget.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The deadline a step with `budget` starting now should finish by on
    /// its own: a little before the runner cuts it off.
    pub fn soft_deadline(budget: Duration) -> Instant {
        Instant::now() + budget.saturating_sub(BACKSTOP.min(budget / 4))
    }

    /// Runs `body` as step `name` within `budget` (and within what is left of
    /// the total budget). Returns its value when it
    /// succeeded, `None` when it failed or timed out (recorded), and
    /// [`Cancelled`] when the research was cancelled before or during it:
    /// the body is then dropped at once, aborting whatever it was waiting
    /// on (a page fetch, a provider call).
    pub async fn step<T>(
        &mut self,
        name: StepName,
        budget: Duration,
        body: impl Future<Output = Result<T, String>>,
    ) -> Result<Option<T>, Cancelled> {
        if self.ctx.is_cancelled() {
            return Err(Cancelled);
        }
        let started = Instant::now();
        let budget = budget.min(self.remaining());
        let outcome = tokio::select! {
            // Cancellation first: a step that is done and a cancel that
            // arrived at the same time end as cancelled.
            biased;
            () = self.ctx.cancelled() => return Err(Cancelled),
            outcome = tokio::time::timeout(budget, body) => outcome,
        };
        let (status, error, value) = match outcome {
            Ok(Ok(value)) => (StepStatus::Succeeded, None, Some(value)),
            Ok(Err(error)) => (StepStatus::Failed, Some(error), None),
            Err(_) => (
                StepStatus::Failed,
                Some(format!(
                    "cut off by its time budget of {}",
                    humantime::format_duration(budget)
                )),
                None,
            ),
        };
        if let Some(error) = &error {
            tracing::warn!(
                message = "Research step failed.",
                operation_id = %self.ctx.operation_id(),
                step = name.as_str(),
                %error
            );
        }
        self.record(name, status, started, error).await;
        Ok(value)
    }

    /// Records `name` as skipped for `reason`.
    pub async fn skip(&mut self, name: StepName, reason: impl Into<String>) {
        self.record(
            name,
            StepStatus::Skipped,
            Instant::now(),
            Some(reason.into()),
        )
        .await;
    }

    /// Marks the last run step `name` as failed for `error`, keeping its
    /// duration (a step that ran to the end but gathered nothing).
    pub fn fail(&mut self, name: StepName, error: impl Into<String>) {
        if let Some(step) = self.steps.iter_mut().rev().find(|s| s.name == name) {
            step.status = StepStatus::Failed;
            step.error = Some(error.into());
        }
    }

    /// The steps recorded so far.
    pub fn steps(&self) -> &[StepReport] {
        &self.steps
    }

    /// Whether the research was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.ctx.is_cancelled()
    }

    async fn record(
        &mut self,
        name: StepName,
        status: StepStatus,
        started: Instant,
        error: Option<String>,
    ) {
        self.steps.push(StepReport {
            name,
            status,
            duration_ms: started.elapsed().as_millis() as u64,
            error,
        });
        self.done = (self.done + name.weight()).min(100);
        // The last step's 100% comes with the terminal event.
        if self.done < 100 {
            self.ctx.progress(self.done).await;
        }
    }
}

/// The budget of `name` in a research of `total` with `remaining` left.
fn step_budget(total: Duration, name: StepName, remaining: Duration) -> Duration {
    let share = total * name.weight() / 100;
    let share = match name {
        StepName::Resolve => share.max(RESOLVE_FLOOR),
        _ => share,
    };
    share.min(remaining)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_shares_capped_by_what_is_left_and_resolve_has_a_floor() {
        let total = Duration::from_secs(30);
        assert_eq!(
            step_budget(total, StepName::WebEvidence, total),
            Duration::from_millis(13_500)
        );
        // Resolve: at least the floor, above one provider deadline.
        assert_eq!(step_budget(total, StepName::Resolve, total), RESOLVE_FLOOR);
        assert_eq!(
            step_budget(
                Duration::from_secs(300),
                StepName::Resolve,
                Duration::from_secs(300)
            ),
            Duration::from_secs(30)
        );
        // Never more than what is left of the total.
        let left = Duration::from_secs(2);
        for step in StepName::ALL {
            assert!(step_budget(total, step, left) <= left);
        }
        assert_eq!(
            step_budget(total, StepName::Resolve, Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert!(step_budget(total, StepName::Report, Duration::ZERO).is_zero());
    }

    #[tokio::test]
    async fn a_soft_deadline_comes_before_the_budget_ends() {
        let now = Instant::now();
        let budget = Duration::from_secs(10);
        let soft = Runner::soft_deadline(budget);
        assert!(soft <= now + budget + Duration::from_millis(100));
        assert!(soft >= now + budget - BACKSTOP);
        assert!(soft < Instant::now() + budget);
        // A short budget keeps most of itself.
        let short = Duration::from_millis(400);
        assert!(Runner::soft_deadline(short) >= now + short * 3 / 4);
    }

    #[test]
    fn weights_cover_the_whole_plan() {
        assert_eq!(StepName::ALL.iter().map(|s| s.weight()).sum::<u32>(), 100);
        for step in StepName::ALL {
            let json = serde_json::to_value(step).unwrap();
            assert_eq!(json, step.as_str());
        }
    }
}
