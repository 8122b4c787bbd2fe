//! The local directory: records loaded from JSONL and CSV files into memory
//! and indexed for the lookups of [`DirectoryProvider`].
//!
//! Everything a query compares is computed once at load time: normalised
//! company names (and aliases), normalised profile company text, lower-cased
//! emails, profile handles, and per-person token sets for the title, location
//! and keyword filters, interned as `u32` ids. A query then costs one hash
//! lookup for the company plus a linear scan of that company's people doing
//! integer comparisons, which keeps searches well under a millisecond on a
//! 200,000-person directory.

mod build;
mod hash;
mod load;

use async_trait::async_trait;
use dossier_contracts::api::linkedin::company_handle;
use dossier_contracts::api::{Department, Seniority, normalize_domain};

use crate::model::{Company, Person, Record};
use crate::normalize::{
    for_each_search_token, normalize_company_name, normalize_email, normalize_person_name,
    profile_key,
};
use crate::provider::{DirectoryProvider, PeopleQuery, ProviderError};
use build::Builder;
use hash::FastMap;

pub use load::{LoadError, LoadStats, LocalDirectoryConfig, load_directory};

/// Record positions by key. Positions are `u32` because a directory of more
/// than four billion records is not a local directory.
type Index = FastMap<Box<str>, Vec<u32>>;

/// An in-memory, indexed directory of companies and people; a
/// [`DirectoryProvider`] that never fails.
#[derive(Debug)]
pub struct LocalDirectory {
    name: String,
    companies: Vec<Company>,
    people: Vec<Person>,
    /// Precomputed filter facts, parallel to `people`.
    facts: Vec<PersonFacts>,
    /// Search token → id. Only tokens that occur in some record are here, so
    /// a query token missing from it matches nobody.
    tokens: FastMap<Box<str>, u32>,
    company_by_handle: Index,
    company_by_domain: Index,
    company_by_name: Index,
    people_by_company_handle: Index,
    people_by_company_text: Index,
    people_by_email: Index,
    people_by_profile: Index,
    people_by_name: Index,
}

/// What the filters look at, per person, in the cheapest form to compare.
#[derive(Debug)]
struct PersonFacts {
    seniority: u16,
    department: u16,
    /// Sorted, deduplicated token ids.
    title: Box<[u32]>,
    location: Box<[u32]>,
    /// Title, headline, skills and past positions.
    profile: Box<[u32]>,
}

/// A [`PeopleQuery`] translated to token ids and bit masks.
#[derive(Debug)]
struct CompiledQuery {
    seniorities: u16,
    departments: u16,
    /// Any phrase must match; `None` when the query has no title filter.
    titles: Option<Vec<Vec<u32>>>,
    locations: Option<Vec<Vec<u32>>>,
    /// Every keyword must match.
    keywords: Vec<Vec<u32>>,
}

fn seniority_bit(s: Seniority) -> u16 {
    1 << (s as u16)
}

fn department_bit(d: Department) -> u16 {
    1 << (d as u16)
}

fn contains_all(haystack: &[u32], needles: &[u32]) -> bool {
    needles.iter().all(|n| haystack.binary_search(n).is_ok())
}

impl CompiledQuery {
    fn matches(&self, f: &PersonFacts) -> bool {
        (self.seniorities == 0 || self.seniorities & f.seniority != 0)
            && (self.departments == 0 || self.departments & f.department != 0)
            && self
                .titles
                .as_ref()
                .is_none_or(|any| any.iter().any(|p| contains_all(&f.title, p)))
            && self
                .locations
                .as_ref()
                .is_none_or(|any| any.iter().any(|p| contains_all(&f.location, p)))
            && self.keywords.iter().all(|k| contains_all(&f.profile, k))
    }
}

impl LocalDirectory {
    /// Builds a directory from records in memory (the loaders and tests use
    /// this; record order is kept and decides result order).
    pub fn from_records(
        name: impl Into<String>,
        records: impl IntoIterator<Item = Record>,
    ) -> Self {
        let mut builder = Builder::default();
        for r in records {
            builder.push(r);
        }
        builder.build(name.into())
    }

    /// All companies, in load order.
    pub fn companies(&self) -> &[Company] {
        &self.companies
    }

    /// All people, in load order.
    pub fn people(&self) -> &[Person] {
        &self.people
    }

    /// Token ids of each phrase; `None` for a phrase with a word no record
    /// has (it cannot match), and phrases without words are dropped.
    fn compile_phrases(&self, phrases: &[String]) -> Vec<Option<Vec<u32>>> {
        let mut buf = String::new();
        phrases
            .iter()
            .filter_map(|phrase| {
                let mut ids = Some(Vec::new());
                let mut any = false;
                for_each_search_token(phrase, &mut buf, |t| {
                    any = true;
                    match (self.tokens.get(t), ids.as_mut()) {
                        (Some(&id), Some(v)) => v.push(id),
                        _ => ids = None,
                    }
                });
                any.then_some(ids)
            })
            .collect()
    }

    /// `None` when nobody can match.
    fn compile(&self, q: &PeopleQuery) -> Option<CompiledQuery> {
        // A list of alternatives matches nobody only when every alternative
        // is impossible; an empty list (after dropping blank phrases) does
        // not filter.
        let any_of = |phrases: &[String]| -> Option<Option<Vec<Vec<u32>>>> {
            let compiled = self.compile_phrases(phrases);
            if compiled.is_empty() {
                return Some(None);
            }
            let possible: Vec<Vec<u32>> = compiled.into_iter().flatten().collect();
            (!possible.is_empty()).then_some(Some(possible))
        };
        let titles = any_of(&q.titles)?;
        let locations = any_of(&q.locations)?;
        let keywords = self
            .compile_phrases(&q.keywords)
            .into_iter()
            .collect::<Option<Vec<_>>>()?;
        Some(CompiledQuery {
            seniorities: q.seniorities.iter().fold(0, |m, s| m | seniority_bit(*s)),
            departments: q.departments.iter().fold(0, |m, d| m | department_bit(*d)),
            titles,
            locations,
            keywords,
        })
    }

    /// The people at `candidates` that match `q`, in load order, at most
    /// `q.limit`.
    fn filter_people(&self, candidates: &[u32], q: &PeopleQuery) -> Vec<Person> {
        if q.limit == 0 {
            return Vec::new();
        }
        let Some(compiled) = self.compile(q) else {
            return Vec::new();
        };
        candidates
            .iter()
            .filter(|&&i| compiled.matches(&self.facts[i as usize]))
            .take(q.limit)
            .map(|&i| self.people[i as usize].clone())
            .collect()
    }

    fn companies_at(&self, index: &Index, key: Option<&str>) -> Vec<Company> {
        lookup(index, key)
            .iter()
            .map(|&i| self.companies[i as usize].clone())
            .collect()
    }

    fn people_at(&self, index: &Index, key: Option<&str>) -> Vec<Person> {
        lookup(index, key)
            .iter()
            .map(|&i| self.people[i as usize].clone())
            .collect()
    }

    /// Companies matching `company_hint` by name, domain or handle, as the
    /// keys a person can be linked by.
    fn hint_keys(&self, hint: &str) -> HintKeys {
        let mut keys = HintKeys::default();
        let name = normalize_company_name(hint);
        let domain = hint.contains('.').then(|| normalize_domain(hint)).flatten();
        let handle = company_handle(hint);
        let mut companies: Vec<u32> = Vec::new();
        companies.extend(lookup(&self.company_by_name, Some(&name)));
        companies.extend(lookup(&self.company_by_domain, domain.as_deref()));
        companies.extend(lookup(&self.company_by_handle, handle.as_deref()));
        companies.sort_unstable();
        companies.dedup();
        for &i in &companies {
            let c = &self.companies[i as usize];
            keys.names.extend(
                std::iter::once(&c.name)
                    .chain(&c.aliases)
                    .map(|n| normalize_company_name(n)),
            );
            keys.domains
                .extend(c.domain.as_deref().and_then(normalize_domain));
            keys.handles
                .extend(c.linkedin_handle.as_deref().and_then(company_handle));
        }
        if !name.is_empty() {
            keys.names.push(name);
        }
        keys.domains.extend(domain);
        keys.handles.extend(handle);
        keys
    }
}

/// The ways a person can be linked to a hinted company.
#[derive(Debug, Default)]
struct HintKeys {
    names: Vec<String>,
    domains: Vec<String>,
    handles: Vec<String>,
}

impl HintKeys {
    /// Linked to the hinted company now: by company page or email domain, or
    /// by profile text when nothing on the profile points elsewhere. The
    /// exception matters for look-alikes: the plumber whose text says `Acme
    /// Corp` but whose page is `acme-corp-plumbing` is not at acme.com.
    fn current(&self, p: &Person, dir: &LocalDirectory) -> bool {
        let handle = p
            .current_company_linkedin_handle
            .as_deref()
            .and_then(company_handle);
        let domain = p.email_domain();
        if handle.as_ref().is_some_and(|h| self.handles.contains(h))
            || domain.as_ref().is_some_and(|d| self.domains.contains(d))
        {
            return true;
        }
        let elsewhere = handle.is_some() && !self.handles.is_empty()
            || domain.is_some_and(|d| dir.company_by_domain.contains_key(d.as_str()));
        !elsewhere
            && self
                .names
                .contains(&normalize_company_name(&p.current_company_text))
    }

    fn past(&self, p: &Person) -> bool {
        p.past_positions.iter().any(|pos| {
            self.names
                .contains(&normalize_company_name(&pos.company_text))
                || pos
                    .company_linkedin_handle
                    .as_deref()
                    .and_then(company_handle)
                    .is_some_and(|h| self.handles.contains(&h))
        })
    }
}

fn lookup<'a>(index: &'a Index, key: Option<&str>) -> &'a [u32] {
    key.and_then(|k| index.get(k)).map_or(&[], Vec::as_slice)
}

#[async_trait]
impl DirectoryProvider for LocalDirectory {
    fn name(&self) -> &str {
        &self.name
    }

    async fn companies_by_handle(&self, handle: &str) -> Result<Vec<Company>, ProviderError> {
        Ok(self.companies_at(&self.company_by_handle, company_handle(handle).as_deref()))
    }

    async fn companies_by_domain(&self, domain: &str) -> Result<Vec<Company>, ProviderError> {
        Ok(self.companies_at(&self.company_by_domain, normalize_domain(domain).as_deref()))
    }

    async fn companies_by_name(&self, name: &str) -> Result<Vec<Company>, ProviderError> {
        Ok(self.companies_at(&self.company_by_name, Some(&normalize_company_name(name))))
    }

    async fn people_at_company_handle(
        &self,
        handle: &str,
        query: &PeopleQuery,
    ) -> Result<Vec<Person>, ProviderError> {
        let handle = company_handle(handle);
        Ok(self.filter_people(
            lookup(&self.people_by_company_handle, handle.as_deref()),
            query,
        ))
    }

    async fn people_by_company_text(
        &self,
        company_name: &str,
        query: &PeopleQuery,
    ) -> Result<Vec<Person>, ProviderError> {
        // Normalising again is idempotent and guards callers that pass the
        // raw name.
        let key = normalize_company_name(company_name);
        Ok(self.filter_people(lookup(&self.people_by_company_text, Some(&key)), query))
    }

    async fn person_by_email(&self, email: &str) -> Result<Vec<Person>, ProviderError> {
        Ok(self.people_at(&self.people_by_email, Some(&normalize_email(email))))
    }

    async fn person_by_linkedin(&self, profile: &str) -> Result<Vec<Person>, ProviderError> {
        let handle = profile_key(profile);
        Ok(self.people_at(&self.people_by_profile, handle.as_deref()))
    }

    async fn people_by_name(
        &self,
        full_name: &str,
        company_hint: Option<&str>,
    ) -> Result<Vec<Person>, ProviderError> {
        let candidates = lookup(
            &self.people_by_name,
            Some(&normalize_person_name(full_name)),
        );
        let Some(hint) = company_hint.filter(|h| !h.trim().is_empty()) else {
            return Ok(candidates
                .iter()
                .map(|&i| self.people[i as usize].clone())
                .collect());
        };
        let keys = self.hint_keys(hint);
        let mut current = Vec::new();
        let mut past = Vec::new();
        for &i in candidates {
            let p = &self.people[i as usize];
            if keys.current(p, self) {
                current.push(p.clone());
            } else if keys.past(p) {
                past.push(p.clone());
            }
        }
        current.extend(past);
        Ok(current)
    }

    async fn similar_companies(
        &self,
        company: &Company,
        limit: usize,
    ) -> Result<Vec<Company>, ProviderError> {
        let industry = company.industry.trim().to_lowercase();
        if industry.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let own_domain = company.domain.as_deref().and_then(normalize_domain);
        let band = company.size_band as i32;
        // A linear scan: look-alikes are asked once per research, and even
        // the generated 20,000-company directory scans in well under a
        // millisecond, so an industry index would not pay for its memory.
        let mut found: Vec<(i32, u8, usize)> = self
            .companies
            .iter()
            .enumerate()
            .filter(|(_, c)| c.id != company.id && c.industry.trim().to_lowercase() == industry)
            .filter(|(_, c)| {
                own_domain.is_none() || c.domain.as_deref().and_then(normalize_domain) != own_domain
            })
            .filter_map(|(i, c)| {
                let distance = (c.size_band as i32 - band).abs();
                (distance <= 1).then(|| {
                    (
                        distance,
                        remoteness(&company.headquarters, &c.headquarters),
                        i,
                    )
                })
            })
            .collect();
        found.sort_unstable();
        Ok(found
            .into_iter()
            .take(limit)
            .map(|(_, _, i)| self.companies[i].clone())
            .collect())
    }
}

/// How far apart two places are, coarsely: 0 same city, 1 same region,
/// 2 same country, 3 elsewhere.
fn remoteness(a: &crate::model::Location, b: &crate::model::Location) -> u8 {
    let same = |x: &str, y: &str| !x.is_empty() && x.eq_ignore_ascii_case(y);
    if same(&a.country, &b.country) && same(&a.city, &b.city) {
        0
    } else if same(&a.country, &b.country) && same(&a.region, &b.region) {
        1
    } else if same(&a.country, &b.country) {
        2
    } else {
        3
    }
}
