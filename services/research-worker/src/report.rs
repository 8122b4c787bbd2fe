//! The research result: a Markdown report with numbered citations, the same
//! content as structured sections, the sources list and every sub-task.
//! Serialised camelCase, like the rest of the API's results.
//!
//! Nothing is written without a source: every fact in a section carries the
//! id of the source it came from (a directory lookup, or a page that was
//! read), and the Markdown cites exactly those ids. Text taken from pages and
//! records has its square brackets replaced by parentheses, and URLs and
//! URIs have theirs percent-encoded (`%5B`, `%5D`), so no page can smuggle a
//! `[n]` that looks like a citation into the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use dossier_contracts::api::Depth;
use dossier_directory::Company;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::answer::Answer;
use crate::plan::{StepReport, StepStatus};
use crate::web::PageReport;

/// Where a source came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A directory lookup.
    Directory,
    /// A web page that was read.
    Web,
}

/// One source the report cites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// Its number in the citations (`[1]`), from 1.
    pub id: usize,
    /// Where it came from.
    pub kind: SourceKind,
    /// The page URL, or a `directory:` URI naming the lookup.
    pub url: String,
    /// A title for people.
    pub title: String,
    /// When it was read (RFC 3339).
    pub fetched_at: String,
}

/// The sources of one report, numbered as they are added.
#[derive(Debug, Default)]
pub struct Sources {
    list: Vec<Source>,
}

impl Sources {
    /// Adds a source read at `at` and returns its id.
    pub fn add(
        &mut self,
        kind: SourceKind,
        url: impl Into<String>,
        title: impl Into<String>,
        at: OffsetDateTime,
    ) -> usize {
        let id = self.list.len() + 1;
        self.list.push(Source {
            id,
            kind,
            url: url.into(),
            title: clean(&title.into()),
            fetched_at: at.format(&Rfc3339).unwrap_or_default(),
        });
        id
    }

    /// Adds a directory lookup read now. Square brackets in `uri` (a
    /// company name in a query) are percent-encoded.
    pub fn directory(&mut self, uri: String, title: String) -> usize {
        self.add(
            SourceKind::Directory,
            escape_url(&uri),
            title,
            OffsetDateTime::now_utc(),
        )
    }

    /// The sources so far.
    pub fn list(&self) -> &[Source] {
        &self.list
    }

    /// The sources, for the result.
    pub fn into_list(self) -> Vec<Source> {
        self.list
    }
}

/// The whole result of a research.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResearchResult {
    /// What was researched.
    pub subject: Subject,
    /// `standard` or `deep`.
    pub depth: Depth,
    /// The report, Markdown with `[n]` citations into `sources`.
    pub markdown: String,
    /// The report's content, structured.
    pub sections: Sections,
    /// Every source cited.
    pub sources: Vec<Source>,
    /// Every step, in order, with its status, duration and error.
    pub steps: Vec<StepReport>,
}

/// Who or what was researched.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// `company` or `person`.
    #[serde(rename = "type")]
    pub kind: SubjectKind,
    /// The company's or the person's name.
    pub name: String,
    /// How the subject was resolved (`verified_linkedin_handle`, `matched_by_email`, …).
    pub resolution: String,
    /// 0–1, how sure the resolution is.
    pub confidence: f64,
    /// The person, for a person subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonBrief>,
}

/// `company` or `person`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A company.
    Company,
    /// A person.
    Person,
}

/// The structured sections; a section is absent when its step did not
/// produce it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sections {
    /// The company profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Leadership, buying committee and org shape.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leadership: Option<Leadership>,
    /// Similar companies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub look_alikes: Option<Vec<LookAlike>>,
    /// What the company's site says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web: Option<Web>,
    /// Answers to the questions, in the order asked.
    pub answers: Vec<Answer>,
}

/// The company profile.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Name.
    pub name: String,
    /// Other names.
    pub aliases: Vec<String>,
    /// Web domain.
    pub domain: Option<String>,
    /// LinkedIn company handle.
    pub linkedin_handle: Option<String>,
    /// Industry.
    pub industry: String,
    /// Head-count band (`51-200`).
    pub size_band: String,
    /// Headquarters (`City, Region, Country`).
    pub headquarters: String,
    /// 0–1, how sure we are that this is the company meant.
    pub confidence: f64,
    /// The source of the profile.
    pub source: usize,
}

impl Profile {
    /// The profile of `company`, from `source`.
    pub fn new(company: &Company, confidence: f64, source: usize) -> Profile {
        Profile {
            name: company.name.clone(),
            aliases: company.aliases.clone(),
            domain: company.domain.clone(),
            linkedin_handle: company.linkedin_handle.clone(),
            industry: company.industry.clone(),
            size_band: company.size_band.to_string(),
            headquarters: company.headquarters.to_string(),
            confidence,
            source,
        }
    }

    /// The profile as one sentence of evidence.
    pub fn sentence(&self) -> String {
        let mut s = format!("{} is a {} company", self.name, self.industry);
        let _ = write!(s, " with {} employees", self.size_band);
        if !self.headquarters.is_empty() {
            let _ = write!(s, ", headquartered in {}", self.headquarters);
        }
        s.push('.');
        clean(&s)
    }
}

/// A person, briefly.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersonBrief {
    /// Full name.
    pub name: String,
    /// Current title.
    pub title: String,
    /// Seniority (`vp`).
    pub seniority: String,
    /// Department (`engineering`).
    pub department: String,
    /// Where they are.
    pub location: String,
    /// LinkedIn profile URL, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linkedin_url: Option<String>,
    /// The source.
    pub source: usize,
}

/// Leadership and buying committee.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Leadership {
    /// People found at the company (up to the depth's limit).
    pub people_found: usize,
    /// Owners, C-suite, VPs and directors, most senior first.
    pub buying_committee: Vec<PersonBrief>,
    /// Counts of the people found.
    pub org_shape: OrgShape,
    /// The source (the people lookup).
    pub source: usize,
}

/// Counts of people by department and by seniority.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgShape {
    /// Department → people.
    pub by_department: BTreeMap<String, usize>,
    /// Seniority → people.
    pub by_seniority: BTreeMap<String, usize>,
}

/// A similar company.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LookAlike {
    /// Name.
    pub name: String,
    /// Domain.
    pub domain: Option<String>,
    /// Industry.
    pub industry: String,
    /// Head-count band.
    pub size_band: String,
    /// Headquarters.
    pub headquarters: String,
    /// The source (the look-alike lookup).
    pub source: usize,
}

/// What the company's site says.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Web {
    /// The site's base URL.
    pub site: Option<String>,
    /// Why robots.txt could not be read (then nothing was fetched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub robots_error: Option<String>,
    /// Every page wanted, with what happened to it.
    pub pages: Vec<PageReport>,
    /// Sentences taken from the pages read, each with its page.
    pub facts: Vec<Fact>,
}

/// A sentence taken from a source.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Fact {
    /// The sentence.
    pub text: String,
    /// Its source.
    pub source: usize,
}

/// Replaces square brackets so text from outside cannot fake a citation.
pub fn clean(text: &str) -> String {
    text.replace('[', "(").replace(']', ")")
}

/// Percent-encodes square brackets in a URL or URI (`/about[99]` →
/// `/about%5B99%5D`): the same resource, and no fake citation.
pub fn escape_url(url: &str) -> String {
    url.replace('[', "%5B").replace(']', "%5D")
}

/// Composes the Markdown report from the result's parts.
pub fn markdown(
    title: &str,
    subject: &Subject,
    depth: Depth,
    sections: &Sections,
    sources: &[Source],
    steps: &[StepReport],
) -> String {
    let mut md = String::new();
    let depth = match depth {
        Depth::Standard => "standard",
        Depth::Deep => "deep",
    };
    let _ = writeln!(md, "# Research: {}\n", clean(title));
    let _ = writeln!(
        md,
        "_Depth: {depth}. Subject resolved as `{}` (confidence {:.2})._\n",
        subject.resolution, subject.confidence
    );

    if let Some(person) = &subject.person {
        let _ = writeln!(md, "## Person\n");
        let _ = writeln!(
            md,
            "{} is {} ({}, {}), based in {}. [{}]\n",
            clean(&person.name),
            clean(&person.title),
            person.seniority,
            person.department,
            clean(&person.location),
            person.source
        );
    }

    if let Some(p) = &sections.profile {
        let _ = writeln!(md, "## Company profile\n");
        let _ = writeln!(md, "{} [{}]\n", p.sentence(), p.source);
        if !p.aliases.is_empty() {
            let _ = writeln!(
                md,
                "- Also known as: {} [{}]",
                clean(&p.aliases.join(", ")),
                p.source
            );
        }
        if let Some(domain) = &p.domain {
            let _ = writeln!(md, "- Domain: {} [{}]", clean(domain), p.source);
        }
        if let Some(handle) = &p.linkedin_handle {
            let _ = writeln!(md, "- LinkedIn: `{}` [{}]", clean(handle), p.source);
        }
        let _ = writeln!(md, "- Match confidence: {:.2}\n", p.confidence);
    }

    if let Some(l) = &sections.leadership {
        let _ = writeln!(md, "## Leadership and buying committee\n");
        let _ = writeln!(
            md,
            "{} people found at the company. [{}]\n",
            l.people_found, l.source
        );
        if l.buying_committee.is_empty() {
            let _ = writeln!(md, "No owners, executives, VPs or directors were found.\n");
        }
        for p in &l.buying_committee {
            let _ = writeln!(
                md,
                "- **{}**, {} ({}, {}) [{}]",
                clean(&p.name),
                clean(&p.title),
                p.seniority,
                p.department,
                p.source
            );
        }
        let counts = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            md,
            "\nOrg shape by department: {}. By seniority: {}. [{}]\n",
            counts(&l.org_shape.by_department),
            counts(&l.org_shape.by_seniority),
            l.source
        );
    }

    if let Some(list) = &sections.look_alikes {
        let _ = writeln!(md, "## Look-alike companies\n");
        if list.is_empty() {
            let _ = writeln!(md, "None found in the directory.\n");
        }
        for c in list {
            let _ = writeln!(
                md,
                "- **{}** ({}), {}, {} employees, {} [{}]",
                clean(&c.name),
                clean(c.domain.as_deref().unwrap_or("no domain")),
                clean(&c.industry),
                c.size_band,
                clean(&c.headquarters),
                c.source
            );
        }
        md.push('\n');
    }

    if let Some(w) = &sections.web {
        let _ = writeln!(md, "## From the company's site\n");
        if w.facts.is_empty() {
            let _ = writeln!(md, "Nothing readable was gathered from the site.\n");
        }
        for f in &w.facts {
            let _ = writeln!(md, "- {} [{}]", clean(&f.text), f.source);
        }
        let read = w.pages.iter().filter(|p| p.source.is_some()).count();
        let _ = writeln!(md, "\n{read} of {} pages read.\n", w.pages.len());
    }

    if !sections.answers.is_empty() {
        let _ = writeln!(md, "## Answers\n");
        for a in &sections.answers {
            let _ = writeln!(md, "**{}**\n\n{}\n", clean(&a.question), a.answer);
        }
    }

    let _ = writeln!(md, "## Sources\n");
    for s in sources {
        let _ = writeln!(
            md,
            "{}. {} — <{}> ({})",
            s.id,
            clean(&s.title),
            escape_url(&s.url),
            s.fetched_at
        );
    }

    let _ = writeln!(md, "\n## Steps\n");
    let _ = writeln!(md, "| step | status | duration | note |\n|---|---|---|---|");
    for s in steps {
        let status = match s.status {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
        };
        let _ = writeln!(
            md,
            "| {} | {status} | {} ms | {} |",
            s.name.as_str(),
            s.duration_ms,
            clean(s.error.as_deref().unwrap_or("")).replace('|', "/")
        );
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_brackets_cite_nothing() {
        assert_eq!(
            escape_url("https://acme.com/about[99]?q=[1]"),
            "https://acme.com/about%5B99%5D?q=%5B1%5D"
        );
        let mut sources = Sources::default();
        let web = sources.add(
            SourceKind::Web,
            "https://acme.com/about[99]",
            "About [7]",
            OffsetDateTime::now_utc(),
        );
        let dir = sources.directory(
            "directory:people?companyText=Acme [3] Corp".to_owned(),
            "Directory people at Acme [3] Corp".to_owned(),
        );
        assert_eq!(
            sources.list()[1].url,
            "directory:people?companyText=Acme %5B3%5D Corp"
        );
        let subject = Subject {
            kind: SubjectKind::Company,
            name: "Acme [5]".to_owned(),
            resolution: "unresolved".to_owned(),
            confidence: 1.0,
            person: None,
        };
        let md = markdown(
            "Acme [5]",
            &subject,
            Depth::Standard,
            &Sections::default(),
            sources.list(),
            &[],
        );
        let cited = crate::answer::citations(&md);
        assert!(
            cited.iter().all(|n| [web, dir].contains(n)),
            "{cited:?}\n{md}"
        );
        assert!(md.contains("about%5B99%5D"), "{md}");
    }
}
