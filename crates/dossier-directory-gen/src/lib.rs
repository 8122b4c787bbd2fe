//! A deterministic generator of realistic directories, for benchmarks and
//! load tests.
//!
//! The same `(seed, people, companies)` always gives byte-identical output:
//! the RNG is xoshiro256++ (a documented, portable algorithm), records are
//! produced in a fixed order, and hash sets are only ever asked "is this
//! taken?", never iterated.
//!
//! What makes it realistic, i.e. what the workers must cope with:
//! * company names with legal-form and case variants (`Velora`, `VELORA
//!   Corp.`, `Velora Corporation, Inc.`) as aliases and in profile text, and
//!   initialisms of multi-word names (`Northwind Health Systems` → `NHS`);
//! * about 15% of companies without a known LinkedIn handle, about 5%
//!   without a domain;
//! * look-alikes (about 4%): a second company sharing an earlier company's
//!   name in another industry and on another domain, which either has its own
//!   handle (`velora-plumbing`), no handle, or claims the same handle;
//! * people whose profile company text is a variant (≈15%), an abbreviation
//!   (≈5%) or stale (≈10%, the previous employer: text and company page are
//!   the old company's, only the email domain tells the truth);
//! * titles consistent with seniority and department, emails on the company
//!   domain in several patterns, LinkedIn profile URLs in mixed forms,
//!   common names shared by several people.
//!
//! Development only: `cargo xtask gen-directory`, benchmarks and tests use
//! it; no service depends on it.
//!
//! * [`generate`]: the records, lazily;
//! * [`write_records`], [`write_jsonl`]: the JSONL file the local directory
//!   loads ([`dossier_directory::load_directory`]).
//!
//! The parts: `companies` plans the companies (names, look-alikes, domains,
//! handles, head counts), `people` makes one person at a time, `names` holds
//! the vocabularies and spelling helpers, `random` the RNG helpers, `output`
//! the JSONL writer.

#![forbid(unsafe_code)]

mod companies;
mod names;
mod output;
mod people;
mod random;

use std::collections::HashSet;

use dossier_directory::Record;
use rand::rngs::Xoshiro256PlusPlus;

use companies::Plan;

pub use output::{JSONL_FILE_NAME, write_jsonl, write_records};

/// People in a default generated directory.
pub const DEFAULT_PEOPLE: usize = 200_000;
/// Companies in a default generated directory.
pub const DEFAULT_COMPANIES: usize = 20_000;

/// Generates a directory: `companies` company records first, then `people`
/// person records, lazily (companies are planned up front; people are made
/// one at a time as the iterator is advanced).
///
/// People need somewhere to work: when `people > 0`, at least one company is
/// generated.
pub fn generate(seed: u64, people: usize, companies: usize) -> impl Iterator<Item = Record> {
    let companies = if people > 0 {
        companies.max(1)
    } else {
        companies
    };
    let mut generator = Generator::new(seed, companies, people);
    let company_records: Vec<Record> = generator
        .plans
        .iter()
        .map(|p| Record::Company(p.company.clone()))
        .collect();
    company_records
        .into_iter()
        .chain((0..people).map(move |i| Record::Person(generator.person(i))))
}

/// One generation: the RNG every draw comes from, the planned companies
/// (`companies`), and the emails and profile handles already given out
/// (`people`).
struct Generator {
    rng: Xoshiro256PlusPlus,
    plans: Vec<Plan>,
    /// Running sum of weights, for picking an employer in O(log n).
    cumulative: Vec<f64>,
    emails: HashSet<String>,
    profiles: HashSet<String>,
    people_hint: f64,
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use dossier_directory::{Company, Person, normalize_company_name};

    use super::*;
    use crate::people::titles;

    #[test]
    fn counts_and_order() {
        let records: Vec<Record> = generate(1, 500, 50).collect();
        assert_eq!(records.len(), 550);
        assert!(
            records[..50]
                .iter()
                .all(|r| matches!(r, Record::Company(_)))
        );
        assert!(records[50..].iter().all(|r| matches!(r, Record::Person(_))));
    }

    #[test]
    fn realistic_enough() {
        let records: Vec<Record> = generate(42, 20_000, 2_000).collect();
        let companies: Vec<&Company> = records
            .iter()
            .filter_map(|r| match r {
                Record::Company(c) => Some(c),
                Record::Person(_) => None,
            })
            .collect();
        let people: Vec<&Person> = records
            .iter()
            .filter_map(|r| match r {
                Record::Person(p) => Some(p),
                Record::Company(_) => None,
            })
            .collect();

        // Every legal/case variant normalises like the name (initialisms
        // excepted: they are meant to be other keys).
        for c in &companies {
            let key = normalize_company_name(&c.name);
            assert!(!key.is_empty(), "{c:?}");
            for alias in &c.aliases {
                let initialism =
                    alias.chars().count() >= 2 && alias.chars().all(char::is_uppercase);
                if !initialism {
                    assert_eq!(
                        normalize_company_name(alias),
                        key,
                        "{alias:?} of {:?}",
                        c.name
                    );
                }
            }
        }
        let without_handle = companies
            .iter()
            .filter(|c| c.linkedin_handle.is_none())
            .count();
        let without_domain = companies.iter().filter(|c| c.domain.is_none()).count();
        assert!(
            without_handle > 100 && without_handle < 600,
            "{without_handle}"
        );
        assert!(
            without_domain > 30 && without_domain < 250,
            "{without_domain}"
        );

        // Look-alikes: some names are shared, and some handles are claimed
        // twice.
        let mut by_name = std::collections::HashMap::<String, usize>::new();
        let mut by_handle = std::collections::HashMap::<&str, usize>::new();
        for c in &companies {
            *by_name.entry(normalize_company_name(&c.name)).or_default() += 1;
            if let Some(h) = c.linkedin_handle.as_deref() {
                *by_handle.entry(h).or_default() += 1;
            }
        }
        assert!(by_name.values().filter(|&&n| n > 1).count() > 20);
        assert!(by_handle.values().any(|&n| n > 1));
        // Domains are unique.
        let domains: HashSet<&str> = companies
            .iter()
            .filter_map(|c| c.domain.as_deref())
            .collect();
        assert_eq!(
            domains.len(),
            companies.iter().filter(|c| c.domain.is_some()).count()
        );

        // Every profile URL parses, handles and emails are unique.
        let mut handles = HashSet::new();
        let mut emails = HashSet::new();
        for p in &people {
            if p.linkedin_url.is_some() {
                let h = p.profile_handle();
                assert!(h.is_some(), "{:?}", p.linkedin_url);
                assert!(handles.insert(h), "duplicate profile {:?}", p.linkedin_url);
            }
            if let Some(e) = &p.email {
                assert!(emails.insert(e.clone()), "duplicate email {e}");
                let domain = p.email_domain().unwrap();
                assert!(
                    companies
                        .iter()
                        .any(|c| c.domain.as_deref() == Some(domain.as_str()))
                );
            }
            assert!(titles(p.department, p.seniority).contains(&p.title.as_str()));
        }
        // Mixed URL forms.
        let forms: HashSet<&str> = people
            .iter()
            .filter_map(|p| p.linkedin_url.as_deref())
            .map(|u| u.split("/in/").next().unwrap_or(""))
            .collect();
        assert!(forms.len() >= 5, "{forms:?}");
        // Shared names exist.
        let mut names = std::collections::HashMap::<&str, usize>::new();
        for p in &people {
            *names.entry(p.full_name.as_str()).or_default() += 1;
        }
        assert!(names.values().any(|&n| n >= 3));
        // Profile text is not always the company's name.
        let canonical: HashSet<&str> = companies.iter().map(|c| c.name.as_str()).collect();
        let off = people
            .iter()
            .filter(|p| !canonical.contains(p.current_company_text.as_str()))
            .count();
        assert!(off > 1_000, "{off}");
    }
}
