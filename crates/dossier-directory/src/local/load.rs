//! Loading the local directory from files.
//!
//! # Formats
//!
//! * **JSONL** (`*.jsonl`, `*.ndjson`): one [`Record`] per line, tagged by
//!   `type`: `{"type":"company","id":"c1","name":"Acme",…}` or
//!   `{"type":"person","id":"p1","fullName":"Jane Doe",…}`; fields as in
//!   [`Company`] and [`Person`] (camelCase). Companies and people may be mixed
//!   in one file or split over several. Blank lines are skipped.
//! * **CSV** (`*.csv`) with a header row. A file whose header has `fullName`
//!   holds people, else one with `name` holds companies.
//!   - companies: `id,name,aliases,domain,linkedinHandle,industry,sizeBand,city,region,country`
//!     (`aliases` separated by `|`).
//!   - people: `id,fullName,title,seniority,department,city,region,country,email,linkedinUrl,currentCompanyText,currentCompanyLinkedinHandle,headline,skills,pastPositions`
//!     (`skills` separated by `|`; `pastPositions` as `company;title` pairs
//!     separated by `|`). Only `id`, `fullName`, `seniority` and
//!     `department` are required; empty cells are absent values.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dossier_contracts::api::{Department, Seniority};
use serde::{Deserialize, Serialize};

use super::LocalDirectory;
use super::build::{Builder, MIN_PARALLEL, in_parallel};
use crate::model::{Company, Location, Person, Position, Record, SizeBand};

/// Which files make up a local directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalDirectoryConfig {
    /// The provider name reported in outcomes and logs.
    #[serde(default = "default_name")]
    pub name: String,
    /// JSONL and CSV files, loaded in order (record order decides result
    /// order).
    pub files: Vec<PathBuf>,
}

fn default_name() -> String {
    "local".to_owned()
}

/// Why a directory could not be loaded. Loading fails on the first bad line
/// rather than skipping it: a directory that silently lost records would give
/// wrong search answers with no trace.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or folder could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A JSONL line is not a valid record.
    #[error("{path}:{line}: invalid record")]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A CSV file is malformed or a row has an invalid value.
    #[error("{path}: invalid CSV")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The cause (it carries the row).
        #[source]
        source: csv::Error,
    },
    /// A CSV row has a value the record cannot hold.
    #[error("{path}:{line}: invalid value {value:?} for column {column}")]
    CsvValue {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// The column.
        column: &'static str,
        /// The value.
        value: String,
    },
    /// A CSV header names neither `fullName` (people) nor `name` (companies).
    #[error("{path}: CSV header has neither a fullName nor a name column")]
    CsvKind {
        /// The file.
        path: PathBuf,
    },
    /// A file's extension is not `.jsonl`, `.ndjson` or `.csv`.
    #[error("{path}: unknown directory file format (expected .jsonl, .ndjson or .csv)")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
}

/// What a load read and how long it took, for benchmarks and start-up logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Files read.
    pub files: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Companies loaded.
    pub companies: usize,
    /// People loaded.
    pub people: usize,
    /// Time spent reading and parsing.
    pub parse: Duration,
    /// Time spent building indexes.
    pub index: Duration,
}

impl LoadStats {
    /// Parse and index time together.
    pub fn total(&self) -> Duration {
        self.parse + self.index
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jsonl,
    Csv,
}

fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "jsonl" | "ndjson" => Some(Format::Jsonl),
        "csv" => Some(Format::Csv),
        _ => None,
    }
}

impl LocalDirectory {
    /// Loads the files named in `config`.
    pub fn load(config: &LocalDirectoryConfig) -> Result<LocalDirectory, LoadError> {
        Self::load_with_stats(config).map(|(dir, _)| dir)
    }

    /// Loads the files named in `config` and reports what it read.
    pub fn load_with_stats(
        config: &LocalDirectoryConfig,
    ) -> Result<(LocalDirectory, LoadStats), LoadError> {
        let started = Instant::now();
        let mut builder = Builder::default();
        let mut stats = LoadStats::default();
        for path in &config.files {
            let format =
                format_of(path).ok_or_else(|| LoadError::UnknownFormat { path: path.clone() })?;
            let bytes = fs::read(path).map_err(|source| LoadError::Io {
                path: path.clone(),
                source,
            })?;
            stats.files += 1;
            stats.bytes += bytes.len() as u64;
            match format {
                Format::Jsonl => read_jsonl(path, &bytes, &mut builder)?,
                Format::Csv => read_csv(path, &bytes, &mut builder)?,
            }
        }
        stats.companies = builder.companies.len();
        stats.people = builder.people.len();
        stats.parse = started.elapsed();
        let indexing = Instant::now();
        let dir = builder.build(config.name.clone());
        stats.index = indexing.elapsed();
        tracing::info!(
            message = "Directory loaded.",
            provider = %config.name,
            files = stats.files,
            companies = stats.companies,
            people = stats.people,
            elapsed_ms = stats.total().as_millis() as u64,
        );
        Ok((dir, stats))
    }
}

/// Loads every `.jsonl`, `.ndjson` and `.csv` file in `dir` (not
/// recursively, in file-name order) as a directory named `local`, and reports
/// load statistics. This is the entry point for load and query benchmarks.
pub fn load_directory(dir: &Path) -> Result<(LocalDirectory, LoadStats), LoadError> {
    let io = |source| LoadError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_file() && format_of(&path).is_some() {
            files.push(path);
        }
    }
    files.sort();
    LocalDirectory::load_with_stats(&LocalDirectoryConfig {
        name: default_name(),
        files,
    })
}

/// Parses JSONL, one chunk of lines per core (JSON parsing is most of a
/// load's parse time), keeping line order.
fn read_jsonl(path: &Path, bytes: &[u8], builder: &mut Builder) -> Result<(), LoadError> {
    let lines: Vec<(usize, &[u8])> = bytes
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    let chunks = in_parallel(&lines, MIN_PARALLEL, |lines| {
        lines
            .iter()
            .map(|&(n, line)| parse_record(line).map_err(|e| (n, e)))
            .collect::<Result<Vec<Record>, _>>()
    });
    for chunk in chunks {
        let records = chunk.map_err(|(n, source)| LoadError::Json {
            path: path.to_path_buf(),
            line: n + 1,
            source,
        })?;
        records.into_iter().for_each(|r| builder.push(r));
    }
    Ok(())
}

/// Parses one JSONL line. Serde writes the `type` tag first, and a line that
/// starts with it is read straight into its record type (which ignores the
/// tag field): an internally tagged enum must buffer the whole object first,
/// which roughly doubles parse time. Anything else takes the general path.
fn parse_record(line: &[u8]) -> Result<Record, serde_json::Error> {
    let start = line.trim_ascii_start();
    if start.starts_with(br#"{"type":"person","#) {
        return serde_json::from_slice::<Person>(line).map(Record::Person);
    }
    if start.starts_with(br#"{"type":"company","#) {
        return serde_json::from_slice::<Company>(line).map(Record::Company);
    }
    serde_json::from_slice(line)
}

/// One row of a companies CSV.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CsvCompany {
    id: String,
    name: String,
    #[serde(default)]
    aliases: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    linkedin_handle: Option<String>,
    #[serde(default)]
    industry: Option<String>,
    #[serde(default)]
    size_band: Option<String>,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    country: Option<String>,
}

/// One row of a people CSV.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CsvPerson {
    id: String,
    full_name: String,
    #[serde(default)]
    title: Option<String>,
    seniority: Seniority,
    department: Department,
    #[serde(default)]
    city: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    country: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    linkedin_url: Option<String>,
    #[serde(default)]
    current_company_text: Option<String>,
    #[serde(default)]
    current_company_linkedin_handle: Option<String>,
    #[serde(default)]
    headline: Option<String>,
    #[serde(default)]
    skills: Option<String>,
    #[serde(default)]
    past_positions: Option<String>,
}

/// An empty cell is an absent value.
fn cell(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn list(value: Option<String>) -> Vec<String> {
    cell(value)
        .map(|v| {
            v.split('|')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn read_csv(path: &Path, bytes: &[u8], builder: &mut Builder) -> Result<(), LoadError> {
    let csv_err = |source| LoadError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader.headers().map_err(csv_err)?.clone();
    let has = |name: &str| headers.iter().any(|h| h == name);
    if has("fullName") {
        for row in reader.deserialize::<CsvPerson>() {
            builder.push(Record::Person(person_from_csv(row.map_err(csv_err)?)));
        }
    } else if has("name") {
        for (n, row) in reader.deserialize::<CsvCompany>().enumerate() {
            let row = row.map_err(csv_err)?;
            let size_band = match cell(row.size_band) {
                None => SizeBand::default(),
                Some(label) => SizeBand::parse(&label).ok_or_else(|| LoadError::CsvValue {
                    path: path.to_path_buf(),
                    // The header is line 1.
                    line: n as u64 + 2,
                    column: "sizeBand",
                    value: label,
                })?,
            };
            builder.push(Record::Company(Company {
                id: row.id,
                name: row.name,
                aliases: list(row.aliases),
                domain: cell(row.domain),
                linkedin_handle: cell(row.linkedin_handle),
                industry: cell(row.industry).unwrap_or_default(),
                size_band,
                headquarters: Location {
                    city: cell(row.city).unwrap_or_default(),
                    region: cell(row.region).unwrap_or_default(),
                    country: cell(row.country).unwrap_or_default(),
                },
            }));
        }
    } else {
        return Err(LoadError::CsvKind {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

fn person_from_csv(row: CsvPerson) -> Person {
    let past_positions = list(row.past_positions)
        .into_iter()
        .map(|entry| {
            let (company, title) = entry.split_once(';').unwrap_or((&entry, ""));
            Position {
                company_text: company.trim().to_owned(),
                company_linkedin_handle: None,
                title: title.trim().to_owned(),
                start_year: None,
                end_year: None,
            }
        })
        .collect();
    Person {
        id: row.id,
        full_name: row.full_name,
        title: cell(row.title).unwrap_or_default(),
        seniority: row.seniority,
        department: row.department,
        location: Location {
            city: cell(row.city).unwrap_or_default(),
            region: cell(row.region).unwrap_or_default(),
            country: cell(row.country).unwrap_or_default(),
        },
        email: cell(row.email),
        linkedin_url: cell(row.linkedin_url),
        current_company_text: cell(row.current_company_text).unwrap_or_default(),
        current_company_linkedin_handle: cell(row.current_company_linkedin_handle),
        headline: cell(row.headline).unwrap_or_default(),
        skills: list(row.skills),
        past_positions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_and_general_paths_agree() {
        let tagged_first = br#"{"type":"person","id":"p1","fullName":"Jane","seniority":"vp","department":"sales"}"#;
        let tagged_last = br#"{"id":"p1","fullName":"Jane","seniority":"vp","department":"sales","type":"person"}"#;
        let spaced = br#"  { "type" : "person", "id":"p1","fullName":"Jane","seniority":"vp","department":"sales"}"#;
        let a = parse_record(tagged_first).unwrap();
        assert_eq!(a, parse_record(tagged_last).unwrap());
        assert_eq!(a, parse_record(spaced).unwrap());
        assert!(matches!(a, Record::Person(_)));
        let company = parse_record(br#"{"type":"company","id":"c1","name":"Acme"}"#).unwrap();
        assert!(matches!(company, Record::Company(_)));
        assert!(parse_record(br#"{"type":"robot","id":"r1"}"#).is_err());
        assert!(parse_record(br#"{"type":"person","id":"p1"}"#).is_err());
    }
}
