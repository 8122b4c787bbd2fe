//! The `search.people` job handler.
//!
//! Status of the operation, by what the providers did:
//!
//! | providers | rows | status | `providerOutcome` |
//! |---|---|---|---|
//! | all answered | some | `succeeded` | `hit` |
//! | all answered | none | `succeeded` | `empty_clean` (with a `message`) |
//! | some failed | some | `partial_success` | `hit` (failed providers in `meta.providers`) |
//! | some failed | none | `partial_success` | `empty_partial_failure` |
//! | every provider failed every lookup | — | retried with backoff, then `failed` with code `providers_unavailable` | — |
//!
//! An `unavailable` search (nothing to constrain people by) is a clean
//! answer: `succeeded`, no rows, and a `message` saying what to add.

use dossier_contracts::Kind;
use dossier_contracts::api::SearchPeopleRequest;
use dossier_contracts::v1::Job;
use dossier_directory::ProviderSet;
use dossier_worker::{ErrorInfo, Handler, JobContext, JobError, Outcome, decode_payload};

use crate::search::search;
use tracing::Instrument as _;

/// Runs people searches against a set of providers.
#[derive(Debug, Clone)]
pub struct SearchHandler {
    providers: ProviderSet,
}

impl SearchHandler {
    /// A handler asking `providers`.
    pub fn new(providers: ProviderSet) -> Self {
        Self { providers }
    }
}

impl Handler for SearchHandler {
    fn kind(&self) -> Kind {
        Kind::SearchPeople
    }

    async fn handle(&self, ctx: JobContext, job: Job) -> Result<Outcome, JobError> {
        let request: SearchPeopleRequest = decode_payload(&job)?;
        let result = search(&self.providers, &request)
            .instrument(ctx.step("search"))
            .await;
        if result.all_providers_failed() {
            let failed: Vec<String> = result
                .meta
                .providers
                .iter()
                .map(|p| p.name.clone())
                .collect();
            return Err(JobError::retryable(
                "providers_unavailable",
                format!("every directory provider failed: {}", failed.join(", ")),
            ));
        }
        if ctx.is_cancelled() {
            return Ok(Outcome::Cancelled {
                partial: None,
                progress: None,
            });
        }
        let partial = result.any_provider_failed();
        let value = serde_json::to_value(&result).map_err(|e| {
            JobError::permanent("result_encoding", format!("cannot encode the result: {e}"))
        })?;
        if partial {
            let error = ErrorInfo::new(
                "provider_partial_failure",
                "at least one directory provider did not answer",
            );
            Ok(Outcome::PartialSuccess {
                result: value,
                error: Some(error),
            })
        } else {
            Ok(Outcome::Succeeded(value))
        }
    }
}
