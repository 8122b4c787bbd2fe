//! `cargo xtask samples`: inputs worth trying against the local directory —
//! companies to search and research, emails that match and one that does
//! not — so a first user need not read a 150 MB file. `cargo xtask up`
//! prints them too (worked out while the workers load their data).

use std::collections::HashMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The directory file (default: the one `cargo xtask up` serves).
    #[arg(long)]
    directory: Option<PathBuf>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let path = match args.directory {
        Some(path) => path,
        None => crate::directory::ensure_default(&crate::root().join(".dossier"))?,
    };
    print!("{}", Samples::from_directory(&path)?.render(None, 8080));
    Ok(())
}

/// One line of the directory file: a company or a person (other fields are
/// ignored).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Line {
    #[serde(rename = "company", rename_all = "camelCase")]
    Company {
        name: String,
        domain: Option<String>,
        linkedin_handle: Option<String>,
    },
    #[serde(rename = "person", rename_all = "camelCase")]
    Person {
        full_name: String,
        title: Option<String>,
        email: Option<String>,
    },
}

/// A company and how many people the directory has at it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Company {
    name: String,
    domain: String,
    handle: Option<String>,
    people: usize,
}

/// What to try.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Samples {
    /// The companies with the most people (search, research).
    companies: Vec<Company>,
    /// People with a work email at one of them, senior first (enrichment
    /// that matches).
    people: Vec<(String, String, String)>,
    /// An email at a known company that matches nobody (enrichment that
    /// finds nothing).
    unknown_email: Option<String>,
}

impl Samples {
    /// The samples of the directory at `path`, from the cache beside it
    /// when that was written for this very file (same size and time), else
    /// read from the file (a minute in a debug build) and cached.
    pub(crate) fn from_directory(path: &Path) -> anyhow::Result<Samples> {
        let stamp = {
            let meta = std::fs::metadata(path)
                .with_context(|| format!("cannot open the directory {}", path.display()))?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}-{modified}", meta.len())
        };
        let cache = path.with_extension("samples.json");
        #[derive(Serialize, Deserialize)]
        struct Cached {
            stamp: String,
            samples: Samples,
        }
        if let Some(cached) = std::fs::read(&cache)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Cached>(&bytes).ok())
            .filter(|cached| cached.stamp == stamp)
        {
            return Ok(cached.samples);
        }
        let samples = Samples::read(path)?;
        let cached = Cached { stamp, samples };
        // A cache that cannot be written only costs the next run a minute.
        if let Ok(bytes) = serde_json::to_vec(&cached) {
            let _ = std::fs::write(&cache, bytes);
        }
        Ok(cached.samples)
    }

    /// Reads the directory file once.
    fn read(path: &Path) -> anyhow::Result<Samples> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open the directory {}", path.display()))?;
        let mut companies: HashMap<String, Company> = HashMap::new();
        let mut people: Vec<(String, String, String)> = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            let line = line?;
            // Lines of other types, or from a newer generator, are skipped.
            let Ok(parsed) = serde_json::from_str::<Line>(&line) else {
                continue;
            };
            match parsed {
                Line::Company {
                    name,
                    domain: Some(domain),
                    linkedin_handle,
                } => {
                    companies.insert(
                        domain.clone(),
                        Company {
                            name,
                            domain,
                            handle: linkedin_handle,
                            people: 0,
                        },
                    );
                }
                Line::Company { .. } => {}
                Line::Person {
                    full_name,
                    title,
                    email: Some(email),
                } => {
                    let Some((_, domain)) = email.split_once('@') else {
                        continue;
                    };
                    if let Some(company) = companies.get_mut(domain) {
                        company.people += 1;
                    }
                    let title = title.unwrap_or_default();
                    let senior = ["VP", "Head", "Chief", "Director"]
                        .iter()
                        .any(|word| title.contains(word));
                    if senior && people.len() < 1_000 {
                        people.push((full_name, title, email));
                    }
                }
                Line::Person { .. } => {}
            }
        }
        let mut ranked: Vec<Company> = companies.into_values().collect();
        ranked.sort_by(|a, b| b.people.cmp(&a.people).then(a.domain.cmp(&b.domain)));
        ranked.truncate(3);
        let at_top = |email: &str| {
            ranked
                .iter()
                .any(|c| email.ends_with(&format!("@{}", c.domain)))
        };
        let mut chosen: Vec<_> = people.iter().filter(|p| at_top(&p.2)).cloned().collect();
        if chosen.len() < 3 {
            chosen.extend(people.iter().take(3 - chosen.len()).cloned());
        }
        chosen.truncate(3);
        let unknown_email = ranked
            .first()
            .map(|c| format!("no.such.person@{}", c.domain));
        Ok(Samples {
            companies: ranked,
            people: chosen,
            unknown_email,
        })
    }

    /// The samples as copy-paste commands for the gateway on `http_port`,
    /// with the dev `key` when known.
    pub(crate) fn render(&self, key: Option<&str>, http_port: u16) -> String {
        let key = key.unwrap_or("$KEY");
        let api = format!("http://127.0.0.1:{http_port}/api");
        let auth =
            format!("-H \"Authorization: Bearer {key}\" -H 'Content-Type: application/json'");
        let mut out = String::from(
            "Try these (the directory's largest companies and some of their people):\n",
        );
        for company in &self.companies {
            out.push_str(&format!(
                "  company  {} — domain {}{}, {} people\n",
                company.name,
                company.domain,
                company
                    .handle
                    .as_ref()
                    .map(|h| format!(", LinkedIn handle {h}"))
                    .unwrap_or_default(),
                company.people
            ));
        }
        for (name, title, email) in &self.people {
            out.push_str(&format!("  person   {name}, {title} — {email}\n"));
        }
        if let Some(company) = self.companies.first() {
            out.push_str(&format!(
                "\n  # search (a few seconds):\n  curl -s {auth} {api}/search/people \\\n    -d '{{\"targetAccount\":{{\"domain\":\"{}\"}},\"filters\":{{\"seniorities\":[\"vp\"]}}}}'\n",
                company.domain
            ));
            out.push_str(&format!(
                "  # research (standard depth: up to 30 s; deep: up to 90 s):\n  curl -s {auth} {api}/research \\\n    -d '{{\"subject\":{{\"company\":{{\"domain\":\"{}\"}}}},\"questions\":[\"Who leads sales?\"]}}'\n",
                company.domain
            ));
        }
        if let (Some((_, _, email)), Some(unknown)) = (self.people.first(), &self.unknown_email) {
            out.push_str(&format!(
                "  # enrichment, one matched and one not found (a batch: seconds):\n  curl -s {auth} {api}/enrichment/batch \\\n    -d '{{\"records\":[{{\"email\":\"{email}\"}},{{\"email\":\"{unknown}\"}}]}}'\n"
            ));
        }
        out.push_str("  # then poll the pollUrl of the answer until its status is final.\n");
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn samples_name_the_largest_companies_their_senior_people_and_an_unknown_email() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.jsonl");
        std::fs::write(
            &path,
            [
                r#"{"type":"company","id":"c1","name":"Small","domain":"small.io","linkedinHandle":"small"}"#,
                r#"{"type":"company","id":"c2","name":"Big Co","domain":"big.com","linkedinHandle":"big-co"}"#,
                r#"{"type":"person","id":"p1","fullName":"Ada One","title":"VP Sales","email":"ada@big.com"}"#,
                r#"{"type":"person","id":"p2","fullName":"Bo Two","title":"Engineer","email":"bo@big.com"}"#,
                r#"{"type":"person","id":"p3","fullName":"Cy Three","title":"Engineer","email":"cy@small.io"}"#,
                "not json",
            ]
            .join("\n"),
        )
        .unwrap();
        let samples = Samples::from_directory(&path).unwrap();
        assert_eq!(samples.companies[0].domain, "big.com");
        assert_eq!(samples.companies[0].people, 2);
        assert_eq!(samples.people[0].2, "ada@big.com");
        let text = samples.render(Some("dk_test"), 8080);
        assert!(text.contains("no.such.person@big.com"), "{text}");
        assert!(text.contains("Bearer dk_test"), "{text}");
        // A second call reads the cache, which holds the same.
        let again = Samples::from_directory(&path).unwrap();
        assert!(path.with_extension("samples.json").is_file());
        assert_eq!(again.render(None, 8080), samples.render(None, 8080));
        assert!(text.contains("\"domain\":\"big.com\""), "{text}");
    }
}
