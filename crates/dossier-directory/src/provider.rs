//! The provider abstraction: one interface over every source of companies and
//! people (the local directory, an outside vendor over HTTP, test fakes), so
//! the workers can fan a question out to all of them through
//! [`crate::ProviderSet`].

use std::time::Duration;

use async_trait::async_trait;
use dossier_contracts::api::{DEFAULT_SEARCH_LIMIT, Department, SearchFilters, Seniority};
use serde::{Deserialize, Serialize};

use crate::model::{Company, Person};

/// Why a provider could not answer. The variants let a caller tell a provider
/// that is down from one that is slow from one that refused the question.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The provider could not be reached or kept failing (connection refused,
    /// 5xx) after every retry.
    #[error("provider unavailable after {attempts} attempt(s): {reason}")]
    Unavailable {
        /// Attempts made, retries included.
        attempts: u32,
        /// The last failure, safe to log (never a credential).
        reason: String,
    },
    /// The provider did not answer within its time budget.
    #[error("provider timed out after {0:?}")]
    Timeout(Duration),
    /// The provider refused the request with a 4xx status (not retried: the
    /// same request would be refused again).
    #[error("provider rejected the request with status {0}")]
    Rejected(u16),
    /// The provider is rate limiting us (HTTP 429); `retry_after` is its hint.
    #[error("provider rate limited the request")]
    RateLimited {
        /// The provider's `Retry-After`, when it sent one in seconds.
        retry_after: Option<Duration>,
    },
    /// The provider answered with something that is not the documented
    /// response.
    #[error("provider sent an invalid response: {0}")]
    InvalidResponse(String),
    /// The question cannot be asked of this provider (bad input).
    #[error("invalid request to provider: {0}")]
    InvalidRequest(String),
}

impl ProviderError {
    /// True for [`ProviderError::Timeout`]: the provider may have been
    /// working, it just did not finish in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ProviderError::Timeout(_))
    }
}

/// Filters for people inside one company. Every list is "any of"; an empty
/// list does not filter. Different lists combine with "and". `keywords` are
/// the exception: each keyword must match, because keywords narrow a search
/// where the other lists offer alternatives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PeopleQuery {
    /// Title words or phrases; a title matches when it contains every word of
    /// one phrase (after normalisation, see [`crate::search_tokens`]).
    pub titles: Vec<String>,
    /// Seniority levels.
    pub seniorities: Vec<Seniority>,
    /// Departments.
    pub departments: Vec<Department>,
    /// Locations; one matches when every word of it is in the person's city,
    /// region or country (`San Francisco`, `Germany`, `CA`).
    pub locations: Vec<String>,
    /// Keywords; each must appear in the title, headline, skills or past
    /// positions.
    pub keywords: Vec<String>,
    /// Most people to return.
    pub limit: usize,
}

impl Default for PeopleQuery {
    fn default() -> Self {
        PeopleQuery {
            titles: Vec::new(),
            seniorities: Vec::new(),
            departments: Vec::new(),
            locations: Vec::new(),
            keywords: Vec::new(),
            limit: DEFAULT_SEARCH_LIMIT as usize,
        }
    }
}

impl PeopleQuery {
    /// A query with no filters returning at most `limit` people.
    pub fn with_limit(limit: usize) -> Self {
        PeopleQuery {
            limit,
            ..PeopleQuery::default()
        }
    }

    /// The query for the public API's search filters and limit.
    pub fn from_filters(filters: &SearchFilters, limit: u32) -> Self {
        PeopleQuery {
            titles: filters.titles.clone(),
            seniorities: filters.seniorities.clone(),
            departments: filters.departments.clone(),
            locations: filters.locations.clone(),
            keywords: filters.keywords.clone(),
            limit: limit as usize,
        }
    }
}

/// A source of companies and people.
///
/// Every method answers "what this provider has", possibly nothing; an `Err`
/// means the provider could not answer at all. Lookups that normally find one
/// record (email, profile handle) still return a list, because vendor data
/// has duplicates and the caller must see them to judge.
///
/// `async_trait` (rather than native `async fn`) because the workers hold
/// providers as `Arc<dyn DirectoryProvider>` in a [`crate::ProviderSet`].
#[async_trait]
pub trait DirectoryProvider: Send + Sync {
    /// A short, stable name for logs and per-provider outcomes (`local`,
    /// `vendor-x`).
    fn name(&self) -> &str;

    /// Companies whose LinkedIn handle is `handle` (a bare handle or a
    /// company-page URL). Usually one; look-alikes may compete for a handle.
    async fn companies_by_handle(&self, handle: &str) -> Result<Vec<Company>, ProviderError>;

    /// Companies whose domain is `domain` (a bare domain or a URL).
    async fn companies_by_domain(&self, domain: &str) -> Result<Vec<Company>, ProviderError>;

    /// Companies whose name or one of whose aliases normalises (see
    /// [`crate::normalize_company_name`]) like `name`.
    async fn companies_by_name(&self, name: &str) -> Result<Vec<Company>, ProviderError>;

    /// People whose current position links to the company page `handle`,
    /// filtered by `query`.
    async fn people_at_company_handle(
        &self,
        handle: &str,
        query: &PeopleQuery,
    ) -> Result<Vec<Person>, ProviderError>;

    /// People whose profile's current company text normalises like
    /// `company_name`, filtered by `query`.
    async fn people_by_company_text(
        &self,
        company_name: &str,
        query: &PeopleQuery,
    ) -> Result<Vec<Person>, ProviderError>;

    /// People with this email address (case-insensitive).
    async fn person_by_email(&self, email: &str) -> Result<Vec<Person>, ProviderError>;

    /// People with this LinkedIn profile (a handle or a profile URL in any
    /// common form).
    async fn person_by_linkedin(&self, profile: &str) -> Result<Vec<Person>, ProviderError>;

    /// People with this full name. With `company_hint` (a company name,
    /// domain or LinkedIn company handle), only people linked to that company
    /// (current text, company page, email domain, or a past position) are
    /// returned, current links first.
    async fn people_by_name(
        &self,
        full_name: &str,
        company_hint: Option<&str>,
    ) -> Result<Vec<Person>, ProviderError>;

    /// Up to `limit` look-alikes of `company`: other companies in the same
    /// industry and the same or a neighbouring size band, the same band
    /// first, then the nearest (same city, then region, then country). The default answers nothing, for providers
    /// that cannot list companies by industry (a vendor API keyed by name or
    /// domain), so they say "none known" rather than fail.
    async fn similar_companies(
        &self,
        company: &Company,
        limit: usize,
    ) -> Result<Vec<Company>, ProviderError> {
        let _ = (company, limit);
        Ok(Vec::new())
    }
}
