//! Provider failures met while matching one record: a record whose lookups
//! failed is an `error`, never a guessed `not_found`.

use dossier_directory::{FanOut, OutcomeStatus, ProviderError};

use super::record::{PROVIDERS_UNAVAILABLE, RecordError};

/// Provider failures seen while matching one record.
#[derive(Debug, Default)]
pub(super) struct Failures {
    providers: Vec<String>,
}

impl Failures {
    /// Notes the providers that did not answer `fan`.
    pub(super) fn note<T>(&mut self, fan: &FanOut<T>) {
        for outcome in fan.failures() {
            let what = match &outcome.status {
                OutcomeStatus::TimedOut => format!("{} (timed out)", outcome.provider),
                OutcomeStatus::Failed(error) => format!("{} ({})", outcome.provider, brief(error)),
                OutcomeStatus::Ok { .. } => continue,
            };
            if !self.providers.contains(&what) {
                self.providers.push(what);
            }
        }
    }

    pub(super) fn any(&self) -> bool {
        !self.providers.is_empty()
    }

    pub(super) fn to_error(&self) -> RecordError {
        RecordError {
            code: PROVIDERS_UNAVAILABLE.to_owned(),
            message: format!(
                "The directory providers did not answer: {}.",
                self.providers.join(", ")
            ),
        }
    }
}

fn brief(error: &ProviderError) -> &'static str {
    match error {
        ProviderError::Unavailable { .. } => "unavailable",
        ProviderError::Timeout(_) => "timed out",
        ProviderError::Rejected(_) => "rejected the request",
        ProviderError::RateLimited { .. } => "rate limited",
        ProviderError::InvalidResponse(_) => "invalid response",
        _ => "failed",
    }
}

/// A lookup failed on every provider (which ones is in [`Failures`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct AllFailed;

/// A lookup whose every provider failed: nothing can be said.
pub(super) fn all_failed<T>(fan: &FanOut<T>) -> bool {
    !fan.outcomes.is_empty() && fan.outcomes.iter().all(|o| !o.is_ok())
}
