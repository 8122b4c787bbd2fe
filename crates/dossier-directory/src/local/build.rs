//! Building the indexes, in parallel where the work allows.
//!
//! Deriving keys is the expensive part of a load (folding, normalising and
//! tokenising every profile), and it is independent per person, so people are
//! split into one chunk per core. Each chunk interns its search tokens in its
//! own table; the chunks are then merged in order into the directory's table
//! and their token ids remapped, which is cheap integer work. Inserting keys
//! into the indexes stays sequential so positions keep load order.

use std::thread;

use dossier_contracts::api::linkedin::company_handle;
use dossier_contracts::api::normalize_domain;

use super::hash::FastMap;
use super::{Index, LocalDirectory, PersonFacts, department_bit, seniority_bit};
use crate::model::{Company, Person, Record};
use crate::normalize::{
    for_each_search_token, normalize_company_name, normalize_email, normalize_person_name,
};

/// Below this many items a single thread is faster than spawning.
pub(super) const MIN_PARALLEL: usize = 20_000;

/// Records collected for a directory.
#[derive(Debug, Default)]
pub(crate) struct Builder {
    pub(super) companies: Vec<Company>,
    pub(super) people: Vec<Person>,
}

/// Runs `job` on each chunk of `items` on its own thread (one chunk per
/// core), returning the results in chunk order; with fewer than `min` items
/// it runs once on this thread. A panic in a job is passed on to the caller.
pub(super) fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    min: usize,
    job: impl Fn(&[T]) -> R + Sync,
) -> Vec<R> {
    if items.len() < min.max(2) {
        return vec![job(items)];
    }
    // At least two chunks, so that tests on a one-core machine still take
    // the merging path.
    let threads = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(2, 8);
    let chunk = items.len().div_ceil(threads);
    thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| job(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Keys of one person, with search tokens as ids into its chunk's table.
struct Derived {
    company_handle: Option<String>,
    company_text: String,
    email: Option<String>,
    profile: Option<String>,
    name: String,
    facts: PersonFacts,
}

/// A chunk's people and its token table (`tokens[id]`).
struct Chunk {
    derived: Vec<Derived>,
    tokens: Vec<Box<str>>,
}

#[derive(Default)]
struct LocalTokens {
    ids: FastMap<Box<str>, u32>,
    tokens: Vec<Box<str>>,
    fold: String,
    scratch: Vec<u32>,
}

impl LocalTokens {
    fn intern(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.ids.get(token) {
            return id;
        }
        let id = self.tokens.len() as u32;
        self.ids.insert(token.into(), id);
        self.tokens.push(token.into());
        id
    }

    /// Sorted, deduplicated token ids of `texts`.
    fn ids_of<'a>(&mut self, texts: impl IntoIterator<Item = &'a str>) -> Box<[u32]> {
        let mut ids = std::mem::take(&mut self.scratch);
        let mut fold = std::mem::take(&mut self.fold);
        ids.clear();
        for text in texts {
            for_each_search_token(text, &mut fold, |t| ids.push(self.intern(t)));
        }
        ids.sort_unstable();
        ids.dedup();
        let out = ids.as_slice().into();
        self.scratch = ids;
        self.fold = fold;
        out
    }
}

fn derive(people: &[Person]) -> Chunk {
    let mut tokens = LocalTokens::default();
    let derived = people
        .iter()
        .map(|p| {
            let title = tokens.ids_of([p.title.as_str()]);
            let location = tokens.ids_of([
                p.location.city.as_str(),
                p.location.region.as_str(),
                p.location.country.as_str(),
            ]);
            let profile = tokens.ids_of(
                [p.title.as_str(), p.headline.as_str()]
                    .into_iter()
                    .chain(p.skills.iter().map(String::as_str))
                    .chain(
                        p.past_positions
                            .iter()
                            .flat_map(|pos| [pos.title.as_str(), pos.company_text.as_str()]),
                    ),
            );
            Derived {
                company_handle: p
                    .current_company_linkedin_handle
                    .as_deref()
                    .and_then(company_handle),
                company_text: normalize_company_name(&p.current_company_text),
                email: p
                    .email
                    .as_deref()
                    .map(normalize_email)
                    .filter(|e| !e.is_empty()),
                profile: p.profile_handle(),
                name: normalize_person_name(&p.full_name),
                facts: PersonFacts {
                    seniority: seniority_bit(p.seniority),
                    department: department_bit(p.department),
                    title,
                    location,
                    profile,
                },
            }
        })
        .collect();
    Chunk {
        derived,
        tokens: tokens.tokens,
    }
}

fn add(index: &mut Index, key: String, i: u32) {
    index.entry(key.into_boxed_str()).or_default().push(i);
}

impl Builder {
    pub(crate) fn push(&mut self, record: Record) {
        match record {
            Record::Company(c) => self.companies.push(c),
            Record::Person(p) => self.people.push(p),
        }
    }

    pub(crate) fn build(self, name: String) -> LocalDirectory {
        self.build_with(name, MIN_PARALLEL)
    }

    /// [`Builder::build`], going parallel from `min_parallel` people.
    pub(crate) fn build_with(self, name: String, min_parallel: usize) -> LocalDirectory {
        let mut dir = LocalDirectory {
            name,
            companies: Vec::new(),
            people: Vec::new(),
            facts: Vec::with_capacity(self.people.len()),
            tokens: FastMap::default(),
            company_by_handle: Index::default(),
            company_by_domain: Index::default(),
            company_by_name: Index::default(),
            people_by_company_handle: Index::default(),
            people_by_company_text: Index::default(),
            people_by_email: Index::default(),
            people_by_profile: Index::default(),
            people_by_name: Index::default(),
        };
        for (i, c) in self.companies.iter().enumerate() {
            let i = i as u32;
            if let Some(h) = c.linkedin_handle.as_deref().and_then(company_handle) {
                add(&mut dir.company_by_handle, h, i);
            }
            if let Some(d) = c.domain.as_deref().and_then(normalize_domain) {
                add(&mut dir.company_by_domain, d, i);
            }
            let mut names: Vec<String> = std::iter::once(&c.name)
                .chain(&c.aliases)
                .map(|n| normalize_company_name(n))
                .filter(|n| !n.is_empty())
                .collect();
            // An alias that normalises like the name must not list the
            // company twice under one key.
            names.sort_unstable();
            names.dedup();
            for n in names {
                add(&mut dir.company_by_name, n, i);
            }
        }

        let mut i = 0u32;
        for chunk in in_parallel(&self.people, min_parallel, derive) {
            let remap: Vec<u32> = chunk
                .tokens
                .into_iter()
                .map(|token| {
                    let next = dir.tokens.len() as u32;
                    *dir.tokens.entry(token).or_insert(next)
                })
                .collect();
            for mut d in chunk.derived {
                for list in [
                    &mut d.facts.title,
                    &mut d.facts.location,
                    &mut d.facts.profile,
                ] {
                    list.iter_mut().for_each(|id| *id = remap[*id as usize]);
                    list.sort_unstable();
                }
                if let Some(h) = d.company_handle {
                    add(&mut dir.people_by_company_handle, h, i);
                }
                if !d.company_text.is_empty() {
                    add(&mut dir.people_by_company_text, d.company_text, i);
                }
                if let Some(e) = d.email {
                    add(&mut dir.people_by_email, e, i);
                }
                if let Some(h) = d.profile {
                    add(&mut dir.people_by_profile, h, i);
                }
                if !d.name.is_empty() {
                    add(&mut dir.people_by_name, d.name, i);
                }
                dir.facts.push(d.facts);
                i += 1;
            }
        }
        dir.companies = self.companies;
        dir.people = self.people;
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{DirectoryProvider, PeopleQuery};
    use dossier_contracts::api::Seniority;

    /// A generated directory. Read back from the generator's JSONL: the
    /// generator builds on this crate, so in this crate's own unit tests its
    /// records are another copy's types.
    fn build(min_parallel: usize) -> LocalDirectory {
        let mut jsonl = Vec::new();
        dossier_directory_gen::write_records(&mut jsonl, 3, 3_000, 300).unwrap();
        let mut builder = Builder::default();
        for line in jsonl.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            builder.push(serde_json::from_slice(line).unwrap());
        }
        builder.build_with("t".into(), min_parallel)
    }

    #[tokio::test]
    async fn parallel_build_answers_like_a_sequential_one() {
        let sequential = build(usize::MAX);
        let parallel = build(1);
        assert_eq!(sequential.tokens.len(), parallel.tokens.len());
        let mut q = PeopleQuery::with_limit(50);
        q.titles = vec!["engineer".into(), "sales".into()];
        q.seniorities = vec![Seniority::Senior, Seniority::Entry, Seniority::Manager];
        for c in sequential.companies().iter().take(100) {
            let Some(h) = c.linkedin_handle.as_deref() else {
                continue;
            };
            let a = sequential.people_at_company_handle(h, &q).await.unwrap();
            let b = parallel.people_at_company_handle(h, &q).await.unwrap();
            assert_eq!(a, b);
            let a = sequential
                .people_by_company_text(&c.name, &q)
                .await
                .unwrap();
            let b = parallel.people_by_company_text(&c.name, &q).await.unwrap();
            assert_eq!(a, b);
        }
        for p in sequential.people().iter().step_by(10) {
            let a = sequential.people_by_name(&p.full_name, None).await.unwrap();
            let b = parallel.people_by_name(&p.full_name, None).await.unwrap();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn in_parallel_keeps_order() {
        let items: Vec<u32> = (0..1_000).collect();
        let sums = in_parallel(&items, 1, |part| part.to_vec());
        assert!(sums.len() >= 2);
        assert_eq!(sums.concat(), items);
        assert_eq!(in_parallel(&items, 5_000, <[u32]>::len), [1_000]);
    }
}
