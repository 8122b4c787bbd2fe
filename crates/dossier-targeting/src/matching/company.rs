//! The matched person's current company, and the companies a record's
//! hint names; company lookups are cached per batch.

use std::collections::HashMap;
use std::sync::Mutex;

use dossier_contracts::api::linkedin::company_handle;
use dossier_contracts::api::normalize_domain;
use dossier_directory::{Company, Person, normalize_company_name};

use super::Matcher;
use super::candidates::Links;
use super::failures::{AllFailed, Failures, all_failed};
use super::record::CompanyEvidence;

/// Company lookups shared by the records of one batch (many records name the
/// same companies). Only complete answers (every provider answered) are kept.
#[derive(Debug, Default)]
pub struct CompanyCache {
    entries: Mutex<HashMap<(CompanyKey, String), Vec<Company>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CompanyKey {
    Domain,
    Handle,
    Name,
}

impl Matcher {
    /// The person's current company (see the [`matching`](super) rules); `Err`
    /// when a lookup that could decide it failed on every provider.
    pub(super) async fn current_company(
        &self,
        person: &Person,
        cache: &CompanyCache,
        failures: &mut Failures,
    ) -> Result<Option<(Company, CompanyEvidence)>, AllFailed> {
        let handle = person
            .current_company_linkedin_handle
            .as_deref()
            .and_then(company_handle);
        let text = normalize_company_name(&person.current_company_text);
        let domain = person.email_domain();

        if let Some(domain) = &domain {
            let companies = self
                .companies(CompanyKey::Domain, domain, cache, failures)
                .await?;
            if let Some(company) = narrow(companies, handle.as_deref(), &text, None) {
                return Ok(Some((company, CompanyEvidence::EmailDomain)));
            }
        }
        if let Some(handle) = &handle {
            let companies = self
                .companies(CompanyKey::Handle, handle, cache, failures)
                .await?;
            if let Some(company) = narrow(companies, None, &text, domain.as_deref()) {
                return Ok(Some((company, CompanyEvidence::CompanyPage)));
            }
        }
        if !text.is_empty() {
            let companies = self
                .companies(
                    CompanyKey::Name,
                    &person.current_company_text,
                    cache,
                    failures,
                )
                .await?;
            if let Some(company) = narrow(companies, handle.as_deref(), "", domain.as_deref()) {
                return Ok(Some((company, CompanyEvidence::ProfileText)));
            }
        }
        Ok(None)
    }

    /// Companies by one key, from the cache when an earlier record asked.
    async fn companies(
        &self,
        key: CompanyKey,
        value: &str,
        cache: &CompanyCache,
        failures: &mut Failures,
    ) -> Result<Vec<Company>, AllFailed> {
        let cache_key = (key, value.to_owned());
        if let Some(hit) = cache
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&cache_key)
        {
            return Ok(hit.clone());
        }
        let fan = match key {
            CompanyKey::Domain => self.providers.companies_by_domain(value).await,
            CompanyKey::Handle => self.providers.companies_by_handle(value).await,
            CompanyKey::Name => self.providers.companies_by_name(value).await,
        };
        failures.note(&fan);
        if all_failed(&fan) {
            return Err(AllFailed);
        }
        let complete = fan.all_answered();
        let companies = fan.into_values();
        if complete {
            cache
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(cache_key, companies.clone());
        }
        Ok(companies)
    }

    /// How people can be linked to the company a record names (`hint`: a
    /// domain or a company name): the hint itself plus the names, aliases,
    /// domains and handles of the companies it names. Lookup failures only
    /// weaken the scores (the provider already linked the candidates).
    pub(super) async fn hint_links(
        &self,
        hint: &str,
        cache: &CompanyCache,
        failures: &mut Failures,
    ) -> Links {
        let mut links = Links::default();
        let domain = hint.contains('.').then(|| normalize_domain(hint)).flatten();
        let key = if domain.is_some() {
            CompanyKey::Domain
        } else {
            CompanyKey::Name
        };
        let companies = self
            .companies(key, hint, cache, failures)
            .await
            .unwrap_or_default();
        match domain {
            Some(domain) => links.domains.push(domain),
            None => links.names.push(normalize_company_name(hint)),
        }
        for c in companies {
            links.names.extend(
                std::iter::once(&c.name)
                    .chain(&c.aliases)
                    .map(|n| normalize_company_name(n)),
            );
            links
                .domains
                .extend(c.domain.as_deref().and_then(normalize_domain));
            links
                .handles
                .extend(c.linkedin_handle.as_deref().and_then(company_handle));
        }
        links.names.retain(|n| !n.is_empty());
        links
    }
}

/// The one company of `companies`, or the one the person's other links
/// (company page handle, company text, email domain) single out.
fn narrow(
    mut companies: Vec<Company>,
    handle: Option<&str>,
    text: &str,
    domain: Option<&str>,
) -> Option<Company> {
    if companies.len() <= 1 {
        return companies.pop();
    }
    let mut fitting: Vec<Company> = companies
        .into_iter()
        .filter(|c| {
            handle.is_some_and(|h| {
                c.linkedin_handle
                    .as_deref()
                    .and_then(company_handle)
                    .as_deref()
                    == Some(h)
            }) || domain.is_some_and(|d| {
                c.domain.as_deref().and_then(normalize_domain).as_deref() == Some(d)
            }) || (!text.is_empty()
                && std::iter::once(&c.name)
                    .chain(&c.aliases)
                    .any(|n| normalize_company_name(n) == text))
        })
        .collect();
    (fitting.len() == 1).then(|| fitting.remove(0))
}
