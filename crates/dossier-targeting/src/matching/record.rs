//! The answer for one record, as clients see it.

use dossier_contracts::api::{InvalidRecord, PersonRecord, RecordFieldError};
use dossier_directory::{Company, Person};
use serde::{Deserialize, Serialize};

use super::failures::Failures;

/// How a record was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// Exact email.
    Email,
    /// LinkedIn profile handle.
    LinkedinUrl,
    /// Full name with company name or domain.
    NameAndCompany,
}

/// The answer for one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// One person was identified.
    Matched,
    /// Nobody, or nobody with enough confidence: a clean answer.
    NotFound,
    /// A provider failed, so the record has no clean answer.
    Error,
    /// The record is not valid and was not looked up (a batch sent with
    /// `onInvalidRecord: skip`); `errors` says why.
    Invalid,
}

/// Why a record is `not_found`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotFoundReason {
    /// No person matches any identifier.
    NoMatch,
    /// Several people match and none clearly best.
    Ambiguous,
}

/// How the matched person's current company was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanyEvidence {
    /// The company of the person's work email domain.
    EmailDomain,
    /// The company page the profile's current position links to.
    CompanyPage,
    /// The company the profile's current company text names.
    ProfileText,
}

/// What went wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    /// snake_case code: `providers_unavailable`.
    pub code: String,
    /// A message a user can read.
    pub message: String,
}

/// One enriched record, as clients see it (camelCase JSON; absent fields are
/// omitted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrichedRecord {
    /// Position in the batch (batch results only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The caller's id of the record, echoed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `matched`, `not_found`, `error` or `invalid`.
    pub status: RecordStatus,
    /// How the person was identified (matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_by: Option<MatchedBy>,
    /// 0–1, how sure the match is (matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The person (matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<Person>,
    /// The person's current company, when the directory knows it (matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<Company>,
    /// How the company was found (with `company`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_evidence: Option<CompanyEvidence>,
    /// Why nobody was matched (not_found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<NotFoundReason>,
    /// How many different people matched some identifier (not_found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<usize>,
    /// The provider failure (error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RecordError>,
    /// What is wrong with the record (invalid).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RecordFieldError>,
}

impl EnrichedRecord {
    pub(super) fn matched(
        record: &PersonRecord,
        by: MatchedBy,
        confidence: f64,
        person: Person,
        company: Option<(Company, CompanyEvidence)>,
    ) -> Self {
        let (company, company_evidence) = company.unzip();
        EnrichedRecord {
            index: None,
            external_id: record.external_id.clone(),
            status: RecordStatus::Matched,
            matched_by: Some(by),
            confidence: Some(round(confidence)),
            person: Some(person),
            company,
            company_evidence,
            reason: None,
            candidates: None,
            error: None,
            errors: Vec::new(),
        }
    }

    /// The answer for a record set aside as invalid: at its index, with
    /// its errors, never looked up.
    pub fn invalid(record: &InvalidRecord) -> Self {
        EnrichedRecord {
            index: Some(record.index),
            external_id: record.external_id.clone(),
            status: RecordStatus::Invalid,
            matched_by: None,
            confidence: None,
            person: None,
            company: None,
            company_evidence: None,
            reason: None,
            candidates: None,
            error: None,
            errors: record.errors.clone(),
        }
    }

    pub(super) fn not_found(record: &PersonRecord, candidates: usize) -> Self {
        EnrichedRecord {
            index: None,
            external_id: record.external_id.clone(),
            status: RecordStatus::NotFound,
            matched_by: None,
            confidence: None,
            person: None,
            company: None,
            company_evidence: None,
            reason: Some(if candidates > 0 {
                NotFoundReason::Ambiguous
            } else {
                NotFoundReason::NoMatch
            }),
            candidates: Some(candidates),
            error: None,
            errors: Vec::new(),
        }
    }

    pub(super) fn failed(record: &PersonRecord, failures: &Failures) -> Self {
        EnrichedRecord {
            index: None,
            external_id: record.external_id.clone(),
            status: RecordStatus::Error,
            matched_by: None,
            confidence: None,
            person: None,
            company: None,
            company_evidence: None,
            reason: None,
            candidates: None,
            error: Some(failures.to_error()),
            errors: Vec::new(),
        }
    }

    /// Whether the record failed with an error that another try might not
    /// have (a provider that is down, slow or rate limiting).
    pub fn is_transient_error(&self) -> bool {
        self.status == RecordStatus::Error
            && self
                .error
                .as_ref()
                .is_some_and(|e| e.code == PROVIDERS_UNAVAILABLE)
    }
}

/// Code of a record whose providers failed.
pub const PROVIDERS_UNAVAILABLE: &str = "providers_unavailable";

fn round(confidence: f64) -> f64 {
    (confidence.clamp(0.0, 1.0) * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidences_are_rounded_and_clamped() {
        assert_eq!(round(0.456_78), 0.46);
        assert_eq!(round(1.2), 1.0);
    }
}
