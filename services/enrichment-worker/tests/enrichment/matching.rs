//! The matching rules, table-tested on the committed fixture
//! (`crates/dossier-directory/fixtures/directory.jsonl`, see its README).

use std::sync::Arc;

use dossier_contracts::api::PersonRecord;
use dossier_directory::{ProviderSet, embedded_demo};
use dossier_targeting::matching::{
    CompanyCache, CompanyEvidence, EnrichedRecord, MatchedBy, Matcher, NotFoundReason,
    RecordStatus, name_variants,
};

use crate::helpers::{Probe, TestProvider};

fn matcher() -> Matcher {
    Matcher::new(ProviderSet::new(vec![Arc::new(embedded_demo().unwrap())]))
}

fn email(e: &str) -> PersonRecord {
    PersonRecord {
        email: Some(e.to_owned()),
        ..Default::default()
    }
}

fn linkedin(url: &str) -> PersonRecord {
    PersonRecord {
        linkedin_url: Some(url.to_owned()),
        ..Default::default()
    }
}

fn at_domain(name: &str, domain: &str) -> PersonRecord {
    PersonRecord {
        full_name: Some(name.to_owned()),
        company_domain: Some(domain.to_owned()),
        ..Default::default()
    }
}

fn at_company(name: &str, company: &str) -> PersonRecord {
    PersonRecord {
        full_name: Some(name.to_owned()),
        company_name: Some(company.to_owned()),
        ..Default::default()
    }
}

/// What a case expects.
enum Want {
    /// Matched this person by this rule with this confidence; the company id
    /// and how it was found, if any.
    Matched(
        &'static str,
        MatchedBy,
        f64,
        Option<(&'static str, CompanyEvidence)>,
    ),
    /// Not found for this reason, with this many candidates.
    NotFound(NotFoundReason, usize),
}

fn check(case: &str, got: &EnrichedRecord, want: &Want) {
    match want {
        Want::Matched(id, by, confidence, company) => {
            assert_eq!(got.status, RecordStatus::Matched, "{case}: {got:#?}");
            assert_eq!(got.person.as_ref().unwrap().id, *id, "{case}");
            assert_eq!(got.matched_by, Some(*by), "{case}");
            assert_eq!(got.confidence, Some(*confidence), "{case}");
            let company_got = got
                .company
                .as_ref()
                .map(|c| (c.id.as_str(), got.company_evidence.unwrap()));
            assert_eq!(company_got, *company, "{case}");
            assert!(got.reason.is_none() && got.candidates.is_none() && got.error.is_none());
        }
        Want::NotFound(reason, candidates) => {
            assert_eq!(got.status, RecordStatus::NotFound, "{case}: {got:#?}");
            assert_eq!(got.reason, Some(*reason), "{case}");
            assert_eq!(got.candidates, Some(*candidates), "{case}");
            assert!(got.person.is_none() && got.matched_by.is_none() && got.confidence.is_none());
        }
    }
}

#[tokio::test]
async fn every_identifier_form_on_the_fixture() {
    use CompanyEvidence::*;
    use MatchedBy::*;
    let acme = Some(("c-acme", EmailDomain));
    let cases: Vec<(&str, PersonRecord, Want)> = vec![
        // Email: exact, case-insensitive, whitespace-tolerant.
        (
            "email",
            email("jane.doe@acme.com"),
            Want::Matched("p-acme-01", Email, 0.99, acme),
        ),
        (
            "email upper case",
            email("JANE.DOE@Acme.COM"),
            Want::Matched("p-acme-01", Email, 0.99, acme),
        ),
        // The vendor's duplicate rows are one person; the fuller row wins.
        (
            "duplicate rows",
            email("priya.patel@initech.io"),
            Want::Matched("p-dup-01", Email, 0.99, Some(("c-initech", EmailDomain))),
        ),
        (
            "unknown email",
            email("nobody@acme.com"),
            Want::NotFound(NotFoundReason::NoMatch, 0),
        ),
        (
            "unknown domain",
            email("jane.doe@example.org"),
            Want::NotFound(NotFoundReason::NoMatch, 0),
        ),
        // LinkedIn: every common URL form of one profile.
        (
            "profile url",
            linkedin("https://www.linkedin.com/in/jane-doe-acme/"),
            Want::Matched("p-acme-01", LinkedinUrl, 0.97, acme),
        ),
        (
            "profile without scheme",
            linkedin("linkedin.com/in/jane-doe-acme"),
            Want::Matched("p-acme-01", LinkedinUrl, 0.97, acme),
        ),
        (
            "country subdomain and query",
            linkedin("http://uk.linkedin.com/in/Jane-Doe-Acme?trk=people-guest"),
            Want::Matched("p-acme-01", LinkedinUrl, 0.97, acme),
        ),
        (
            "stored with a query string",
            linkedin("https://www.linkedin.com/in/ana-souza"),
            Want::Matched("p-acme-08", LinkedinUrl, 0.97, acme),
        ),
        (
            "percent-encoded",
            linkedin("https://www.linkedin.com/in/zo%C3%AB-m%C3%BCller/"),
            Want::Matched("p-acme-20", LinkedinUrl, 0.97, acme),
        ),
        (
            "unicode",
            linkedin("https://de.linkedin.com/in/zoë-müller"),
            Want::Matched("p-acme-20", LinkedinUrl, 0.97, acme),
        ),
        (
            "unknown profile",
            linkedin("https://www.linkedin.com/in/nobody-here"),
            Want::NotFound(NotFoundReason::NoMatch, 0),
        ),
        // Name with company domain or name.
        (
            "name and domain",
            at_domain("John Smith", "acme.com"),
            Want::Matched("p-acme-04", NameAndCompany, 0.95, acme),
        ),
        (
            "name and domain URL",
            at_domain("John Smith", "https://www.acme.com/about"),
            Want::Matched("p-acme-04", NameAndCompany, 0.95, acme),
        ),
        (
            "name and company",
            at_company("Nina Petrov", "Initech"),
            Want::Matched(
                "p-initech-08",
                NameAndCompany,
                0.95,
                Some(("c-initech", EmailDomain)),
            ),
        ),
        (
            "name and company alias",
            at_company("William Bell", "MDS"),
            Want::Matched(
                "p-md-02",
                NameAndCompany,
                0.95,
                Some(("c-massive-dynamic", EmailDomain)),
            ),
        ),
        (
            "name variant: case and apostrophe",
            at_company("KEVIN OBRIEN", "ACME Corp."),
            Want::Matched("p-acme-11", NameAndCompany, 0.95, acme),
        ),
        (
            "name variant: diacritics",
            at_domain("Zoe Muller", "acme.com"),
            Want::Matched("p-acme-20", NameAndCompany, 0.95, acme),
        ),
        (
            "name variant: honorific",
            at_domain("Dr. Jane Doe", "acme.com"),
            Want::Matched("p-acme-01", NameAndCompany, 0.9, acme),
        ),
        (
            "name variant: transliteration",
            at_domain("Joerg Schneider", "globex.de"),
            Want::Matched(
                "p-globexde-01",
                NameAndCompany,
                0.9,
                Some(("c-globex-de", EmailDomain)),
            ),
        ),
        (
            "only a past position",
            at_company("Art Vandelay", "Vandelay Industries"),
            Want::Matched("p-vandelay-01", NameAndCompany, 0.75, None),
        ),
        // Ambiguous names are never a coin toss.
        (
            "two Maria Garcia at Acme",
            at_domain("Maria Garcia", "acme.com"),
            Want::NotFound(NotFoundReason::Ambiguous, 2),
        ),
        (
            "two John Smith at two Acme Corps",
            at_company("John Smith", "Acme Corp"),
            Want::NotFound(NotFoundReason::Ambiguous, 2),
        ),
        (
            "name at the wrong company",
            at_domain("Nina Petrov", "acme.com"),
            Want::NotFound(NotFoundReason::NoMatch, 0),
        ),
        (
            "unknown name",
            at_company("Nobody Atall", "Acme Corp"),
            Want::NotFound(NotFoundReason::NoMatch, 0),
        ),
        // The strongest identifier decides; weaker ones only when it finds nobody.
        (
            "email beats name",
            PersonRecord {
                email: Some("jane.doe@acme.com".into()),
                full_name: Some("Jane Doe".into()),
                company_name: Some("Globex".into()),
                ..Default::default()
            },
            Want::Matched("p-acme-01", Email, 0.99, acme),
        ),
        (
            "unknown email falls back to the name",
            PersonRecord {
                email: Some("js@personal.example".into()),
                full_name: Some("John Smith".into()),
                company_domain: Some("acme.com".into()),
                ..Default::default()
            },
            Want::Matched("p-acme-04", NameAndCompany, 0.95, acme),
        ),
        (
            "unknown email, ambiguous name",
            PersonRecord {
                email: Some("mg@personal.example".into()),
                full_name: Some("Maria Garcia".into()),
                company_domain: Some("acme.com".into()),
                ..Default::default()
            },
            Want::NotFound(NotFoundReason::Ambiguous, 2),
        ),
        (
            "email contradicting the name",
            PersonRecord {
                email: Some("jane.doe@acme.com".into()),
                full_name: Some("Bob Miller".into()),
                ..Default::default()
            },
            Want::Matched("p-acme-01", Email, 0.79, acme),
        ),
        // Current company: the work email's domain wins over a stale profile.
        (
            "stale profile",
            email("rachel.green@acme.com"),
            Want::Matched("p-stale-01", Email, 0.99, acme),
        ),
        (
            "stale profile, company by email",
            email("greg.hall@globex.com"),
            Want::Matched("p-stale-03", Email, 0.99, Some(("c-globex", EmailDomain))),
        ),
        // Look-alikes claiming one handle are told apart by the email domain.
        (
            "look-alike handle",
            email("anna.weber@globex.de"),
            Want::Matched(
                "p-globexde-02",
                Email,
                0.99,
                Some(("c-globex-de", EmailDomain)),
            ),
        ),
        // Without an email, the profile's company page, then its text.
        (
            "company by page",
            linkedin("https://www.linkedin.com/in/olivia-dunham"),
            Want::Matched(
                "p-md-05",
                LinkedinUrl,
                0.97,
                Some(("c-massive-dynamic", CompanyPage)),
            ),
        ),
        (
            "look-alike's own page",
            linkedin("https://www.linkedin.com/in/carlos-perez-oh"),
            Want::Matched(
                "p-plumb-04",
                LinkedinUrl,
                0.97,
                Some(("c-acme-plumbing", CompanyPage)),
            ),
        ),
        (
            "company by text",
            at_company("Jordan Quincy", "Aviato"),
            Want::Matched(
                "p-aviato-04",
                NameAndCompany,
                0.9,
                Some(("c-aviato", ProfileText)),
            ),
        ),
        // Text naming two look-alikes names no company.
        (
            "ambiguous company text",
            at_company("Mark Adams", "Acme Corp"),
            Want::Matched("p-plumb-06", NameAndCompany, 0.9, None),
        ),
    ];
    let matcher = matcher();
    let cache = CompanyCache::default();
    for (case, record, want) in &cases {
        let got = matcher.enrich(record, &cache).await;
        check(case, &got, want);
    }
}

#[tokio::test]
async fn external_ids_are_echoed_and_results_are_camel_case() {
    let record = PersonRecord {
        email: Some("jane.doe@acme.com".into()),
        external_id: Some("crm-42".into()),
        ..Default::default()
    };
    let got = matcher().enrich(&record, &CompanyCache::default()).await;
    let json = serde_json::to_value(&got).unwrap();
    assert_eq!(json["externalId"], "crm-42");
    assert_eq!(json["status"], "matched");
    assert_eq!(json["matchedBy"], "email");
    assert_eq!(json["companyEvidence"], "email_domain");
    assert_eq!(json["person"]["fullName"], "Jane Doe");
    assert_eq!(json["company"]["name"], "Acme Corp");
    assert!(json.get("index").is_none() && json.get("error").is_none());

    let missing = matcher()
        .enrich(&email("nobody@acme.com"), &CompanyCache::default())
        .await;
    let json = serde_json::to_value(&missing).unwrap();
    assert_eq!(
        json,
        serde_json::json!({ "status": "not_found", "reason": "no_match", "candidates": 0 })
    );
}

#[tokio::test]
async fn a_failed_provider_is_an_error_not_a_not_found() {
    let probe = Arc::new(Probe::default());
    let matcher = Matcher::new(TestProvider::set(probe.clone()));
    let got = matcher
        .enrich(&email("jane@flaky.example"), &CompanyCache::default())
        .await;
    assert_eq!(got.status, RecordStatus::Error);
    assert!(got.is_transient_error());
    let error = got.error.unwrap();
    assert_eq!(error.code, "providers_unavailable");
    assert!(error.message.contains("local (unavailable)"), "{error:?}");
}

#[test]
fn name_variants_are_tried_in_order() {
    let names: Vec<String> = name_variants("Mr. Jürgen Becker Jr.")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["Mr. Jürgen Becker Jr.", "jurgen becker"]);
}
