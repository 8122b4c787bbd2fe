//! More table tests for the LinkedIn and domain parsing this crate relies on
//! (they live in `dossier-contracts`; these pin the forms the generator and
//! the fixture use).

use dossier_contracts::api::linkedin::{company_handle, profile_handle};
use dossier_contracts::api::normalize_domain;

#[test]
fn profile_url_forms() {
    let cases = [
        (
            "https://www.linkedin.com/in/jane-doe-4a2b1c/",
            Some("jane-doe-4a2b1c"),
        ),
        ("https://www.linkedin.com/in/jane-doe", Some("jane-doe")),
        ("linkedin.com/in/jane-doe", Some("jane-doe")),
        ("http://linkedin.com/in/jane-doe", Some("jane-doe")),
        (
            "www.linkedin.com/in/jane-doe/?originalSubdomain=us",
            Some("jane-doe"),
        ),
        (
            "http://www.linkedin.com/in/jane-doe?trk=people-guest",
            Some("jane-doe"),
        ),
        ("https://uk.linkedin.com/in/jane-doe", Some("jane-doe")),
        (
            "https://de.linkedin.com/in/zo%C3%AB-m%C3%BCller",
            Some("zoë-müller"),
        ),
        (
            "  https://WWW.LINKEDIN.COM/in/Jane-Doe/  ",
            Some("jane-doe"),
        ),
        (
            "https://www.linkedin.com/in/jane-doe/recent-activity/",
            Some("jane-doe"),
        ),
        ("https://www.linkedin.com/company/acme-corp", None),
        ("https://linkedin.example.com/in/jane", None),
        ("jane-doe", None),
        ("", None),
    ];
    for (input, want) in cases {
        assert_eq!(profile_handle(input).as_deref(), want, "{input:?}");
    }
}

#[test]
fn company_handle_forms() {
    let cases = [
        ("acme-corp", Some("acme-corp")),
        (
            "https://www.linkedin.com/company/acme-corp/",
            Some("acme-corp"),
        ),
        (
            "https://www.linkedin.com/company/acme-corp/people/?keywords=cto",
            Some("acme-corp"),
        ),
        ("linkedin.com/company/ACME-CORP", Some("acme-corp")),
        (
            "https://fr.linkedin.com/company/societe-lumiere",
            Some("societe-lumiere"),
        ),
        ("https://www.linkedin.com/company/1035/", Some("1035")),
        ("acme-corp-plumbing/", Some("acme-corp-plumbing")),
        ("https://acme.com/company/acme", None),
        ("Acme Corp", None),
        ("acme.com", None),
    ];
    for (input, want) in cases {
        assert_eq!(company_handle(input).as_deref(), want, "{input:?}");
    }
}

#[test]
fn domain_forms() {
    let cases = [
        ("acme.com", Some("acme.com")),
        ("ACME.COM", Some("acme.com")),
        ("https://www.acme.com/about?x=1", Some("acme.com")),
        ("http://acme.co.uk:8080/", Some("acme.co.uk")),
        ("mueller-logistik.de", Some("mueller-logistik.de")),
        ("acme", None),
        ("not a domain", None),
        ("", None),
    ];
    for (input, want) in cases {
        assert_eq!(normalize_domain(input).as_deref(), want, "{input:?}");
    }
}
