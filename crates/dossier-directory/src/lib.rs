//! The people and company directory shared by the search, enrichment and
//! research workers.
//!
//! * [`model`]: [`Company`], [`Person`] and the JSONL [`Record`].
//! * [`normalize_company_name`] and friends: the keys names are compared by.
//! * [`DirectoryProvider`]: one interface over every data source, with a
//!   typed [`ProviderError`] that tells failures from timeouts.
//! * [`LocalDirectory`]: JSONL/CSV files indexed in memory.
//! * [`HttpProvider`]: an outside vendor over HTTP, with timeouts, retries
//!   and a concurrency limit.
//! * [`ProviderSet`]: fan a question out to several providers and merge.
//! * [`ProvidersConfig`]: the providers a worker asks, from flags or
//!   `DOSSIER_*` variables, and the [`embedded_demo`] directory.
//!
//! What a request means in terms of the directory (target-account
//! resolution, person matching) is `dossier-targeting`'s; the deterministic
//! demo-data generator is `dossier-directory-gen`'s (development only).
//!
//! # Directory files
//!
//! [`LocalDirectory`] loads the files named in a [`LocalDirectoryConfig`], or
//! every top-level file of a folder with [`load_directory`]:
//!
//! * **JSONL** (`*.jsonl`, `*.ndjson`): one [`Record`] per line, tagged by
//!   `type`, fields camelCase as in [`Company`] and [`Person`]:
//!   `{"type":"company","id":"c1","name":"Acme Corp","aliases":["ACME"],"domain":"acme.com","linkedinHandle":"acme-corp","industry":"Software","sizeBand":"51-200","headquarters":{"city":"San Francisco","region":"California","country":"United States"}}`
//!   and
//!   `{"type":"person","id":"p1","fullName":"Jane Doe","title":"CTO","seniority":"c_suite","department":"engineering","location":{"city":"Berlin","region":"","country":"Germany"},"email":"jane@acme.com","linkedinUrl":"https://www.linkedin.com/in/jane-doe/","currentCompanyText":"ACME Corp.","currentCompanyLinkedinHandle":"acme-corp","headline":"…","skills":["Rust"],"pastPositions":[{"companyText":"Globex","companyLinkedinHandle":null,"title":"Engineer","startYear":2018,"endYear":2021}]}`.
//!   Companies and people may share a file or not; blank lines are skipped;
//!   record order decides result order. Only `id`, `name` (companies) and
//!   `id`, `fullName`, `seniority`, `department` (people) are required.
//! * **CSV** (`*.csv`, header row): a header with `fullName` means people
//!   (`id,fullName,title,seniority,department,city,region,country,email,linkedinUrl,currentCompanyText,currentCompanyLinkedinHandle,headline,skills,pastPositions`),
//!   else one with `name` means companies
//!   (`id,name,aliases,domain,linkedinHandle,industry,sizeBand,city,region,country`).
//!   Lists are `|`-separated; a past position is `company;title`; empty
//!   cells are absent values.
//!
//! A load fails on the first bad line, naming file and line ([`LoadError`]).

#![forbid(unsafe_code)]

mod config;
pub mod http;
mod local;
pub mod model;
mod normalize;
mod provider;
mod set;

pub use config::{
    ENV_DIRECTORY_FILES, ENV_PROVIDER_DEADLINE, ENV_VENDOR_API_KEY, ENV_VENDOR_TIMEOUT,
    ENV_VENDOR_URL, ProvidersConfig, ProvidersError, embedded_demo,
};
pub use http::{HttpConfigError, HttpProvider, HttpProviderConfig};
pub use local::{LoadError, LoadStats, LocalDirectory, LocalDirectoryConfig, load_directory};
pub use model::{Company, Location, Person, Position, Record, SizeBand};
pub use normalize::{
    fold, normalize_company_name, normalize_email, normalize_person_name, search_tokens,
};
pub use provider::{DirectoryProvider, PeopleQuery, ProviderError};
pub use set::{FanOut, Merge, OutcomeStatus, ProviderOutcome, ProviderSet, Sourced};
