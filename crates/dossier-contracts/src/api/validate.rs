//! Semantic validation of request bodies, reporting every bad field as a JSON
//! pointer so clients can fix all of them at once.

use serde::Serialize;

use super::linkedin;
use super::{
    CompanyRef, EnrichmentBatchRequest, MAX_BATCH_RECORDS, MAX_FILTER_VALUES, MAX_LISTED_ERRORS,
    MAX_RESEARCH_QUESTIONS, MAX_SEARCH_LIMIT, PersonRecord, ResearchRequest, SearchPeopleRequest,
};

/// Longest accepted free-text value (names, titles, questions, ...).
const MAX_TEXT_LEN: usize = 500;
/// Most characters of a pointer (or other location) in an error: field names
/// come from the client, and an 8 MiB unknown field must not come back whole.
pub const MAX_LOCATION_CHARS: usize = 128;
/// Most characters of an error's detail: decoding messages quote the
/// client's value (`unknown variant `…``).
pub const MAX_DETAIL_CHARS: usize = 256;

/// `text` cut to at most `max_chars` characters, `…` marking a cut.
pub fn clip(text: impl Into<String>, max_chars: usize) -> String {
    let mut text = text.into();
    if let Some((at, _)) = text.char_indices().nth(max_chars) {
        text.truncate(at);
        text.push('…');
    }
    text
}

/// One invalid field: an RFC 6901 JSON pointer into the request body and what
/// is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// E.g. `/records/3/email`.
    pub pointer: String,
    /// E.g. `not an email address`.
    pub detail: String,
}

impl FieldError {
    /// A new field error; a pointer or detail longer than
    /// [`MAX_LOCATION_CHARS`] or [`MAX_DETAIL_CHARS`] is cut short.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            pointer: clip(pointer, MAX_LOCATION_CHARS),
            detail: clip(detail, MAX_DETAIL_CHARS),
        }
    }
}

/// The errors of one body: the first [`MAX_LISTED_ERRORS`] in full and how
/// many there were in all, so that a body with thousands of bad items costs
/// no more to answer than one with a hundred.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    listed: Vec<FieldError>,
    total: usize,
}

impl FieldErrors {
    /// No errors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts `error`, and keeps it if fewer than [`MAX_LISTED_ERRORS`] are.
    pub fn push(&mut self, error: FieldError) {
        self.total += 1;
        if self.listed.len() < MAX_LISTED_ERRORS {
            self.listed.push(error);
        }
    }

    /// How many errors there were, listed or not.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Whether there were none.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The first errors, in the order found.
    pub fn listed(&self) -> &[FieldError] {
        &self.listed
    }
}

impl Extend<FieldError> for FieldErrors {
    fn extend<I: IntoIterator<Item = FieldError>>(&mut self, errors: I) {
        for error in errors {
            self.push(error);
        }
    }
}

impl IntoIterator for FieldErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;

    /// The listed errors.
    fn into_iter(self) -> Self::IntoIter {
        self.listed.into_iter()
    }
}

/// The error of a list holding `len` items, more than its `max`; `items`
/// names them (`records`).
pub(crate) fn too_many(at: impl Into<String>, max: usize, items: &str, len: usize) -> FieldError {
    FieldError::new(at, format!("must hold at most {max} {items}, got {len}"))
}

/// Checks the length of a list before its items: over `max` is one error,
/// and false so that the (possibly millions of) items are not looked at.
fn counted<T>(list: &[T], max: usize, items: &str, at: &str, errors: &mut FieldErrors) -> bool {
    if list.len() > max {
        errors.push(too_many(at, max, items, list.len()));
        return false;
    }
    true
}

/// Validation of a parsed body beyond its JSON shape.
pub trait Validate {
    /// Pushes one error per bad field, with pointers under `at` (`""` for the
    /// body root).
    fn validate_at(&self, at: &str, errors: &mut FieldErrors);

    /// All errors, pointers from the body root; empty when valid.
    fn validate(&self) -> FieldErrors {
        let mut errors = FieldErrors::new();
        self.validate_at("", &mut errors);
        errors
    }
}

fn text(value: &Option<String>, at: String, errors: &mut FieldErrors) -> bool {
    match value {
        None => false,
        Some(v) if v.trim().is_empty() => {
            errors.push(FieldError::new(at, "must not be empty"));
            false
        }
        Some(v) if v.chars().count() > MAX_TEXT_LEN => {
            errors.push(FieldError::new(
                at,
                format!("must be at most {MAX_TEXT_LEN} characters"),
            ));
            false
        }
        Some(_) => true,
    }
}

/// Whether `s` looks like an email address: one `@`, a non-empty local part,
/// a dotted domain, no whitespace. Deliverability is not our concern here.
pub(crate) fn is_email(s: &str) -> bool {
    if s.len() > 254 || s.chars().any(char::is_whitespace) {
        return false;
    }
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty() && !domain.contains('@') && is_domain(domain)
}

/// Whether `s` is a DNS name with at least two labels.
pub(crate) fn is_domain(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    s.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// Reduces `https://www.Acme.com/about` or `acme.com` to `acme.com`; `None`
/// when what is left is not a domain.
pub fn normalize_domain(input: &str) -> Option<String> {
    let s = input.trim().to_lowercase();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(&s);
    let host = s.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    let host = host.trim_end_matches('.');
    // `www.` is dropped only when a domain is left: `www.ab` is a domain.
    let host = host
        .strip_prefix("www.")
        .filter(|rest| is_domain(rest))
        .unwrap_or(host);
    is_domain(host).then(|| host.to_owned())
}

impl Validate for PersonRecord {
    fn validate_at(&self, at: &str, errors: &mut FieldErrors) {
        let before = errors.total();
        let email = text(&self.email, format!("{at}/email"), errors);
        if email && !self.email.as_deref().is_some_and(is_email) {
            errors.push(FieldError::new(
                format!("{at}/email"),
                "not an email address",
            ));
        }
        let linkedin = text(&self.linkedin_url, format!("{at}/linkedinUrl"), errors);
        if linkedin
            && self
                .linkedin_url
                .as_deref()
                .and_then(linkedin::profile_handle)
                .is_none()
        {
            errors.push(FieldError::new(
                format!("{at}/linkedinUrl"),
                "not a LinkedIn profile URL",
            ));
        }
        let name = text(&self.full_name, format!("{at}/fullName"), errors);
        let company = text(&self.company_name, format!("{at}/companyName"), errors);
        let domain = text(&self.company_domain, format!("{at}/companyDomain"), errors);
        if domain
            && self
                .company_domain
                .as_deref()
                .and_then(normalize_domain)
                .is_none()
        {
            errors.push(FieldError::new(
                format!("{at}/companyDomain"),
                "not a domain name",
            ));
        }
        text(&self.external_id, format!("{at}/externalId"), errors);
        let identified = self.email.is_some()
            || self.linkedin_url.is_some()
            || (self.full_name.is_some()
                && (self.company_name.is_some() || self.company_domain.is_some()));
        if !identified && errors.total() == before {
            let detail = if name && !(company || domain) {
                "fullName needs companyName or companyDomain to identify a person"
            } else {
                "identify the person by email, linkedinUrl, or fullName with companyName or companyDomain"
            };
            errors.push(FieldError::new(at.to_owned(), detail));
        }
    }
}

impl Validate for CompanyRef {
    fn validate_at(&self, at: &str, errors: &mut FieldErrors) {
        let before = errors.total();
        text(&self.name, format!("{at}/name"), errors);
        if text(&self.domain, format!("{at}/domain"), errors)
            && self.domain.as_deref().and_then(normalize_domain).is_none()
        {
            errors.push(FieldError::new(format!("{at}/domain"), "not a domain name"));
        }
        if text(
            &self.linkedin_handle,
            format!("{at}/linkedinHandle"),
            errors,
        ) && self
            .linkedin_handle
            .as_deref()
            .and_then(linkedin::company_handle)
            .is_none()
        {
            errors.push(FieldError::new(
                format!("{at}/linkedinHandle"),
                "not a LinkedIn company handle or company page URL",
            ));
        }
        let identified =
            self.name.is_some() || self.domain.is_some() || self.linkedin_handle.is_some();
        if !identified && errors.total() == before {
            errors.push(FieldError::new(
                at.to_owned(),
                "identify the company by name, domain or linkedinHandle",
            ));
        }
    }
}

impl Validate for EnrichmentBatchRequest {
    fn validate_at(&self, at: &str, errors: &mut FieldErrors) {
        let at_records = format!("{at}/records");
        if self.records.is_empty() {
            errors.push(FieldError::new(at_records, "must hold at least one record"));
            return;
        }
        if !counted(
            &self.records,
            MAX_BATCH_RECORDS,
            "records",
            &at_records,
            errors,
        ) {
            return;
        }
        for (i, record) in self.records.iter().enumerate() {
            record.validate_at(&format!("{at_records}/{i}"), errors);
        }
    }
}

fn text_list(values: &[String], at: String, errors: &mut FieldErrors) {
    if counted(values, MAX_FILTER_VALUES, "values", &at, errors) {
        for (i, v) in values.iter().enumerate() {
            text(&Some(v.clone()), format!("{at}/{i}"), errors);
        }
    }
}

impl Validate for SearchPeopleRequest {
    fn validate_at(&self, at: &str, errors: &mut FieldErrors) {
        self.target_account
            .validate_at(&format!("{at}/targetAccount"), errors);
        let f = &self.filters;
        text_list(&f.titles, format!("{at}/filters/titles"), errors);
        text_list(&f.locations, format!("{at}/filters/locations"), errors);
        text_list(&f.keywords, format!("{at}/filters/keywords"), errors);
        let seniorities = format!("{at}/filters/seniorities");
        counted(
            &f.seniorities,
            MAX_FILTER_VALUES,
            "values",
            &seniorities,
            errors,
        );
        let departments = format!("{at}/filters/departments");
        counted(
            &f.departments,
            MAX_FILTER_VALUES,
            "values",
            &departments,
            errors,
        );
        if !(1..=MAX_SEARCH_LIMIT).contains(&self.limit) {
            errors.push(FieldError::new(
                format!("{at}/limit"),
                format!("must be between 1 and {MAX_SEARCH_LIMIT}"),
            ));
        }
    }
}

impl Validate for ResearchRequest {
    fn validate_at(&self, at: &str, errors: &mut FieldErrors) {
        match (&self.subject.company, &self.subject.person) {
            (Some(company), None) => company.validate_at(&format!("{at}/subject/company"), errors),
            (None, Some(person)) => person.validate_at(&format!("{at}/subject/person"), errors),
            _ => errors.push(FieldError::new(
                format!("{at}/subject"),
                "must hold exactly one of `company` or `person`",
            )),
        }
        let at_questions = format!("{at}/questions");
        if counted(
            &self.questions,
            MAX_RESEARCH_QUESTIONS,
            "questions",
            &at_questions,
            errors,
        ) {
            for (i, q) in self.questions.iter().enumerate() {
                text(&Some(q.clone()), format!("{at_questions}/{i}"), errors);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_domains() {
        for ok in ["a@b.co", "first.last+tag@sub.example.com"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.co", "a@b", "a b@c.co", "a@@b.co", "a@b..co",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
        assert_eq!(
            normalize_domain("https://www.Acme.com/about?x=1").as_deref(),
            Some("acme.com")
        );
        assert_eq!(
            normalize_domain("acme.co.uk").as_deref(),
            Some("acme.co.uk")
        );
        assert_eq!(normalize_domain("localhost"), None);
        assert_eq!(normalize_domain("www.ab").as_deref(), Some("www.ab"));
        assert_eq!(normalize_domain("not a domain"), None);
    }

    #[test]
    fn person_needs_an_identifier() {
        let cases: &[(PersonRecord, &[&str])] = &[
            (
                PersonRecord {
                    email: Some("a@b.co".into()),
                    ..Default::default()
                },
                &[],
            ),
            (
                PersonRecord {
                    linkedin_url: Some("linkedin.com/in/jane".into()),
                    ..Default::default()
                },
                &[],
            ),
            (
                PersonRecord {
                    full_name: Some("Jane Doe".into()),
                    company_domain: Some("acme.com".into()),
                    ..Default::default()
                },
                &[],
            ),
            (
                PersonRecord {
                    full_name: Some("Jane Doe".into()),
                    ..Default::default()
                },
                &[""],
            ),
            (PersonRecord::default(), &[""]),
            (
                PersonRecord {
                    email: Some("nope".into()),
                    ..Default::default()
                },
                &["/email"],
            ),
            (
                PersonRecord {
                    email: Some(" ".into()),
                    linkedin_url: Some("https://example.com/in/x".into()),
                    ..Default::default()
                },
                &["/email", "/linkedinUrl"],
            ),
        ];
        for (record, pointers) in cases {
            let got: Vec<String> = record.validate().into_iter().map(|e| e.pointer).collect();
            assert_eq!(got, *pointers, "{record:?}");
        }
    }

    #[test]
    fn batch_points_at_each_bad_record() {
        let mut records = vec![
            PersonRecord {
                email: Some("a@b.co".into()),
                ..Default::default()
            };
            5
        ];
        records[1].email = Some("bad".into());
        records[3] = PersonRecord::default();
        let got: Vec<String> = EnrichmentBatchRequest::new(records)
            .validate()
            .into_iter()
            .map(|e| e.pointer)
            .collect();
        assert_eq!(got, ["/records/1/email", "/records/3"]);

        let empty = EnrichmentBatchRequest::new(vec![]).validate();
        assert_eq!(empty.listed()[0].pointer, "/records");
        let too_many = EnrichmentBatchRequest::new(vec![
            PersonRecord {
                email: Some("a@b.co".into()),
                ..Default::default()
            };
            MAX_BATCH_RECORDS + 1
        ])
        .validate();
        assert_eq!(too_many.total(), 1);
        assert_eq!(too_many.listed()[0].pointer, "/records");
    }

    #[test]
    fn search_and_research_rules() {
        let search = SearchPeopleRequest {
            target_account: CompanyRef::default(),
            filters: SearchFilters {
                titles: vec!["".into()],
                ..Default::default()
            },
            limit: 0,
        };
        let got: Vec<String> = search.validate().into_iter().map(|e| e.pointer).collect();
        assert_eq!(got, ["/targetAccount", "/filters/titles/0", "/limit"]);

        let research = ResearchRequest {
            subject: ResearchSubject {
                company: None,
                person: None,
            },
            questions: vec!["q".into(); 11],
            depth: Default::default(),
        };
        let got: Vec<String> = research.validate().into_iter().map(|e| e.pointer).collect();
        assert_eq!(got, ["/subject", "/questions"]);
    }

    use super::super::{ResearchSubject, SearchFilters};
}
