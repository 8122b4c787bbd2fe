//! Semantic validation of request bodies, reporting every bad field as a JSON
//! pointer so clients can fix all of them at once.

use serde::Serialize;

use super::linkedin;
use super::{
    CompanyRef, EnrichmentBatchRequest, MAX_BATCH_RECORDS, MAX_RESEARCH_QUESTIONS,
    MAX_SEARCH_LIMIT, PersonRecord, ResearchRequest, SearchPeopleRequest,
};

/// Longest accepted free-text value (names, titles, questions, ...).
const MAX_TEXT_LEN: usize = 500;
/// Most entries in one search filter list.
const MAX_FILTER_VALUES: usize = 50;

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
    /// A new field error.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

/// Validation of a parsed body beyond its JSON shape.
pub trait Validate {
    /// Pushes one error per bad field, with pointers under `at` (`""` for the
    /// body root).
    fn validate_at(&self, at: &str, errors: &mut Vec<FieldError>);

    /// All errors, pointers from the body root; empty when valid.
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        self.validate_at("", &mut errors);
        errors
    }
}

fn text(value: &Option<String>, at: String, errors: &mut Vec<FieldError>) -> bool {
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
    let host = host
        .strip_prefix("www.")
        .unwrap_or(host)
        .trim_end_matches('.');
    is_domain(host).then(|| host.to_owned())
}

impl Validate for PersonRecord {
    fn validate_at(&self, at: &str, errors: &mut Vec<FieldError>) {
        let before = errors.len();
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
        if !identified && errors.len() == before {
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
    fn validate_at(&self, at: &str, errors: &mut Vec<FieldError>) {
        let before = errors.len();
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
        if !identified && errors.len() == before {
            errors.push(FieldError::new(
                at.to_owned(),
                "identify the company by name, domain or linkedinHandle",
            ));
        }
    }
}

impl Validate for EnrichmentBatchRequest {
    fn validate_at(&self, at: &str, errors: &mut Vec<FieldError>) {
        if self.records.is_empty() {
            errors.push(FieldError::new(
                format!("{at}/records"),
                "must hold at least one record",
            ));
        } else if self.records.len() > MAX_BATCH_RECORDS {
            errors.push(FieldError::new(
                format!("{at}/records"),
                format!(
                    "must hold at most {MAX_BATCH_RECORDS} records, got {}",
                    self.records.len()
                ),
            ));
        }
        for (i, record) in self.records.iter().enumerate() {
            record.validate_at(&format!("{at}/records/{i}"), errors);
        }
    }
}

fn text_list(values: &[String], at: String, errors: &mut Vec<FieldError>) {
    if values.len() > MAX_FILTER_VALUES {
        errors.push(FieldError::new(
            at.clone(),
            format!("must hold at most {MAX_FILTER_VALUES} values"),
        ));
    }
    for (i, v) in values.iter().enumerate() {
        text(&Some(v.clone()), format!("{at}/{i}"), errors);
    }
}

impl Validate for SearchPeopleRequest {
    fn validate_at(&self, at: &str, errors: &mut Vec<FieldError>) {
        self.target_account
            .validate_at(&format!("{at}/targetAccount"), errors);
        let f = &self.filters;
        text_list(&f.titles, format!("{at}/filters/titles"), errors);
        text_list(&f.locations, format!("{at}/filters/locations"), errors);
        text_list(&f.keywords, format!("{at}/filters/keywords"), errors);
        if f.seniorities.len() > MAX_FILTER_VALUES {
            errors.push(FieldError::new(
                format!("{at}/filters/seniorities"),
                "too many values",
            ));
        }
        if f.departments.len() > MAX_FILTER_VALUES {
            errors.push(FieldError::new(
                format!("{at}/filters/departments"),
                "too many values",
            ));
        }
        if !(1..=MAX_SEARCH_LIMIT).contains(&self.limit) {
            errors.push(FieldError::new(
                format!("{at}/limit"),
                format!("must be between 1 and {MAX_SEARCH_LIMIT}"),
            ));
        }
    }
}

impl Validate for ResearchRequest {
    fn validate_at(&self, at: &str, errors: &mut Vec<FieldError>) {
        match (&self.subject.company, &self.subject.person) {
            (Some(company), None) => company.validate_at(&format!("{at}/subject/company"), errors),
            (None, Some(person)) => person.validate_at(&format!("{at}/subject/person"), errors),
            _ => errors.push(FieldError::new(
                format!("{at}/subject"),
                "must hold exactly one of `company` or `person`",
            )),
        }
        if self.questions.len() > MAX_RESEARCH_QUESTIONS {
            errors.push(FieldError::new(
                format!("{at}/questions"),
                format!("must hold at most {MAX_RESEARCH_QUESTIONS} questions"),
            ));
        }
        for (i, q) in self.questions.iter().enumerate() {
            text(&Some(q.clone()), format!("{at}/questions/{i}"), errors);
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
        let got: Vec<String> = EnrichmentBatchRequest { records }
            .validate()
            .into_iter()
            .map(|e| e.pointer)
            .collect();
        assert_eq!(got, ["/records/1/email", "/records/3"]);

        let empty = EnrichmentBatchRequest { records: vec![] }.validate();
        assert_eq!(empty[0].pointer, "/records");
        let too_many = EnrichmentBatchRequest {
            records: vec![
                PersonRecord {
                    email: Some("a@b.co".into()),
                    ..Default::default()
                };
                MAX_BATCH_RECORDS + 1
            ],
        }
        .validate();
        assert_eq!(too_many.len(), 1);
        assert_eq!(too_many[0].pointer, "/records");
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
