//! The public API's JSON request bodies (camelCase, unknown fields rejected)
//! and their validation. The gateway validates with these types before it
//! accepts work; workers decode job payloads with the same types, so what was
//! accepted is exactly what runs.

mod bounded;
pub mod linkedin;
mod parse;
mod validate;

use serde::{Deserialize, Serialize};

pub use parse::{Body, BodyError, ListLimit, parse_body};
pub use validate::{
    FieldError, FieldErrors, MAX_DETAIL_CHARS, MAX_LOCATION_CHARS, Validate, clip, normalize_domain,
};

/// Most records in one batch enrichment request.
pub const MAX_BATCH_RECORDS: usize = 10_000;
/// Most questions in one research request.
pub const MAX_RESEARCH_QUESTIONS: usize = 10;
/// Most entries in one search filter list.
pub const MAX_FILTER_VALUES: usize = 50;
/// Most errors listed for one request; the rest are only counted.
pub const MAX_LISTED_ERRORS: usize = 100;
/// Most JSON values (scalars, arrays, objects) read from one body. The
/// largest valid body is a batch of [`MAX_BATCH_RECORDS`] records of an
/// object and six fields each: seven values a record. One record more than
/// that, with room for the envelope, is plenty; past it the body cannot be
/// valid and is not kept in memory (see `bounded`).
pub const MAX_BODY_VALUES: usize = (MAX_BATCH_RECORDS + 1) * 8;
/// Default and maximum `limit` of a people search.
pub const DEFAULT_SEARCH_LIMIT: u32 = 25;
/// Largest `limit` of a people search.
pub const MAX_SEARCH_LIMIT: u32 = 100;

/// One person to enrich or research. Identified by at least one of `email`,
/// `linkedinUrl`, or `fullName` with `companyName` or `companyDomain`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonRecord {
    /// Work or personal email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A LinkedIn profile URL in any common form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkedin_url: Option<String>,
    /// The person's full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    /// The person's company name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// The person's company domain (`acme.com`; a URL is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_domain: Option<String>,
    /// The caller's own id, echoed back in results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// A company, identified by at least one of `name`, `domain`, `linkedinHandle`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompanyRef {
    /// The company's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The company's web domain (`acme.com`; a URL is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The slug of the LinkedIn company page, or the page's full URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkedin_handle: Option<String>,
}

/// `POST /api/enrichment/batch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrichmentBatchRequest {
    /// 1 to 10,000 person records.
    pub records: Vec<PersonRecord>,
}

/// Seniority levels for people search filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Seniority {
    Owner,
    CSuite,
    Vp,
    Director,
    Manager,
    Senior,
    Entry,
}

/// Departments for people search filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Department {
    Engineering,
    Sales,
    Marketing,
    Finance,
    Operations,
    Hr,
    Legal,
    Product,
    Support,
    Executive,
}

/// Optional filters of a people search; every list may be empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchFilters {
    /// Title words or phrases (any matches).
    #[serde(default)]
    pub titles: Vec<String>,
    /// Seniority levels (any matches).
    #[serde(default)]
    pub seniorities: Vec<Seniority>,
    /// Departments (any matches).
    #[serde(default)]
    pub departments: Vec<Department>,
    /// Locations (any matches).
    #[serde(default)]
    pub locations: Vec<String>,
    /// Keywords matched against the profile.
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// `POST /api/search/people`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchPeopleRequest {
    /// The company to search inside.
    pub target_account: CompanyRef,
    /// Optional filters.
    #[serde(default)]
    pub filters: SearchFilters,
    /// 1 to 100 results (default 25).
    #[serde(default = "default_search_limit")]
    pub limit: u32,
}

fn default_search_limit() -> u32 {
    DEFAULT_SEARCH_LIMIT
}

/// How much work a research operation does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Depth {
    /// The default.
    #[default]
    Standard,
    /// More of each step, within a larger time budget.
    Deep,
}

/// The subject of a research operation: exactly one of `company` or `person`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResearchSubject {
    /// A company to research.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<CompanyRef>,
    /// A person to research.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonRecord>,
}

/// `POST /api/research`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResearchRequest {
    /// What to research.
    pub subject: ResearchSubject,
    /// 0 to 10 questions to answer from the evidence.
    #[serde(default)]
    pub questions: Vec<String>,
    /// `standard` (default) or `deep`.
    #[serde(default)]
    pub depth: Depth,
}
