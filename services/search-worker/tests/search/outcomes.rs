//! Every combination of target-account outcome and search mode that can
//! occur, on the committed fixture (see crates/dossier-directory/fixtures/README.md).

use std::sync::Arc;

use dossier_contracts::api::{CompanyRef, SearchFilters, SearchPeopleRequest, Seniority};
use dossier_directory::{ProviderSet, embedded_demo};
use dossier_targeting::resolve::{SearchMode, TargetAccountOutcome};
use search_worker::search::{CompanyMatchEvidence, ProviderOutcomeKind, SearchResult, search};

fn fixture() -> ProviderSet {
    ProviderSet::new(vec![Arc::new(embedded_demo().unwrap())])
}

fn company(name: Option<&str>, domain: Option<&str>, handle: Option<&str>) -> CompanyRef {
    CompanyRef {
        name: name.map(Into::into),
        domain: domain.map(Into::into),
        linkedin_handle: handle.map(Into::into),
    }
}

async fn run(target: CompanyRef, filters: SearchFilters, limit: u32) -> SearchResult {
    search(
        &fixture(),
        &SearchPeopleRequest {
            target_account: target,
            filters,
            limit,
        },
    )
    .await
}

fn ids(result: &SearchResult) -> Vec<&str> {
    result.data.iter().map(|p| p.id.as_str()).collect()
}

struct Case {
    name: &'static str,
    target: CompanyRef,
    outcome: TargetAccountOutcome,
    mode: SearchMode,
    provider: ProviderOutcomeKind,
    must_include: &'static [&'static str],
    must_exclude: &'static [&'static str],
}

#[tokio::test]
async fn outcome_and_mode_table() {
    use ProviderOutcomeKind::*;
    use SearchMode::*;
    use TargetAccountOutcome::*;
    let cases = [
        Case {
            name: "provided handle",
            target: company(None, None, Some("acme-corp")),
            outcome: ProvidedLinkedinHandle,
            mode: LinkedinCompanyPage,
            provider: Hit,
            must_include: &["p-acme-01", "p-acme-16", "p-stale-03"],
            must_exclude: &["p-acme-03", "p-plumb-01"],
        },
        Case {
            name: "provided handle as a company-page URL",
            target: company(
                Some("whatever"),
                None,
                Some("https://www.linkedin.com/company/acme-corp/about/"),
            ),
            outcome: ProvidedLinkedinHandle,
            mode: LinkedinCompanyPage,
            provider: Hit,
            must_include: &["p-acme-01"],
            must_exclude: &["p-plumb-01"],
        },
        Case {
            name: "verified by domain among look-alikes",
            target: company(Some("Acme Corp"), Some("acme.com"), None),
            outcome: VerifiedLinkedinHandle,
            mode: LinkedinCompanyPage,
            provider: Hit,
            must_include: &["p-acme-01"],
            must_exclude: &["p-plumb-01"],
        },
        Case {
            name: "verified, single candidate",
            target: company(Some("Initech"), Some("https://www.initech.io/"), None),
            outcome: VerifiedLinkedinHandle,
            mode: LinkedinCompanyPage,
            provider: Hit,
            must_include: &["p-stale-01"],
            must_exclude: &[],
        },
        Case {
            name: "name only: conflicting look-alikes, text match",
            target: company(Some("Acme Corp"), None, None),
            outcome: UnverifiedOrConflictingLinkedinCandidates,
            mode: ProfileCurrentCompany,
            provider: Hit,
            must_include: &["p-acme-03"],
            must_exclude: &["p-acme-16"],
        },
        Case {
            name: "handle contested by a look-alike with another domain",
            target: company(Some("Globex"), Some("globex.com"), None),
            outcome: UnverifiedOrConflictingLinkedinCandidates,
            mode: ProfileCurrentCompany,
            provider: Hit,
            must_include: &[],
            must_exclude: &["p-globexde-01"],
        },
        Case {
            name: "no handle anywhere: text match",
            target: company(Some("Hooli Health"), None, None),
            outcome: Unresolved,
            mode: ProfileCurrentCompany,
            provider: Hit,
            must_include: &["p-hh-01", "p-hh-07", "p-stale-02"],
            must_exclude: &["p-hh-08"],
        },
        Case {
            name: "domain of a company without a handle: its names are matched",
            target: company(None, Some("hoolihealth.com"), None),
            outcome: Unresolved,
            mode: ProfileCurrentCompany,
            provider: Hit,
            must_include: &["p-hh-01"],
            must_exclude: &["p-hh-08"],
        },
        Case {
            name: "no handle and nobody there",
            target: company(Some("Vandelay Industries"), None, None),
            outcome: Unresolved,
            mode: ProfileCurrentCompany,
            provider: EmptyClean,
            must_include: &[],
            must_exclude: &["p-vandelay-01"],
        },
        Case {
            name: "unknown name",
            target: company(Some("Nonexistent Widgets"), None, None),
            outcome: Unresolved,
            mode: ProfileCurrentCompany,
            provider: EmptyClean,
            must_include: &[],
            must_exclude: &[],
        },
        Case {
            name: "unknown domain and no name: unavailable",
            target: company(None, Some("unknown-company.example"), None),
            outcome: Unresolved,
            mode: Unavailable,
            provider: EmptyClean,
            must_include: &[],
            must_exclude: &[],
        },
    ];
    for case in cases {
        let result = run(case.target.clone(), SearchFilters::default(), 100).await;
        let meta = &result.meta;
        assert_eq!(meta.target_account_outcome, case.outcome, "{}", case.name);
        assert_eq!(meta.target_account_search_mode, case.mode, "{}", case.name);
        assert_eq!(meta.provider_outcome, case.provider, "{}", case.name);
        let got = ids(&result);
        for id in case.must_include {
            assert!(got.contains(id), "{}: {id} missing from {got:?}", case.name);
        }
        for id in case.must_exclude {
            assert!(
                !got.contains(id),
                "{}: {id} must not be in {got:?}",
                case.name
            );
        }
        let evidence = match case.mode {
            LinkedinCompanyPage => CompanyMatchEvidence::CompanyPage,
            _ => CompanyMatchEvidence::ProfileCurrentJob,
        };
        assert!(
            result
                .data
                .iter()
                .all(|p| p.company_match_evidence == evidence),
            "{}",
            case.name
        );
        // A message on every empty or unavailable path, and only there.
        assert_eq!(
            meta.message.is_some(),
            result.data.is_empty() || case.mode == Unavailable,
            "{}",
            case.name
        );
        assert_eq!(meta.returned, result.data.len());
        assert!(!result.any_provider_failed(), "{}", case.name);
    }
}

#[tokio::test]
async fn page_search_never_leaves_the_account() {
    // Everyone returned through the Acme page links to that page now.
    let result = run(
        company(None, None, Some("acme-corp")),
        SearchFilters::default(),
        100,
    )
    .await;
    let dir = embedded_demo().unwrap();
    for hit in &result.data {
        let person = dir.people().iter().find(|p| p.id == hit.id).unwrap();
        assert_eq!(
            person.current_company_linkedin_handle.as_deref(),
            Some("acme-corp"),
            "{}",
            hit.id
        );
    }
}

#[tokio::test]
async fn filters_rank_and_limit() {
    let acme = company(None, None, Some("acme-corp"));
    let c_suite = SearchFilters {
        seniorities: vec![Seniority::CSuite],
        ..Default::default()
    };
    let mut got = ids(&run(acme.clone(), c_suite, 25).await)
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    got.sort();
    assert_eq!(got, ["p-acme-01", "p-acme-10", "p-acme-14"]);

    // Unfiltered: most senior first, and capped at the limit.
    let result = run(acme.clone(), SearchFilters::default(), 3).await;
    assert_eq!(result.data.len(), 3);
    let all = run(acme.clone(), SearchFilters::default(), 100).await;
    let weights: Vec<u8> = all
        .data
        .iter()
        .map(|p| seniority_rank(p.seniority))
        .collect();
    assert!(weights.windows(2).all(|w| w[0] >= w[1]), "{weights:?}");
    assert_eq!(ids(&result), ids(&all)[..3]);

    // Title match quality ranks before seniority.
    let engineers = SearchFilters {
        titles: vec!["engineer".into()],
        ..Default::default()
    };
    let result = run(acme, engineers, 25).await;
    assert!(!result.data.is_empty());
    assert!(
        result
            .data
            .iter()
            .all(|p| p.title.to_lowercase().contains("engineer")),
        "{:?}",
        ids(&result)
    );
    let first = &result.data[0].title.to_lowercase();
    assert!(
        first.starts_with("engineer"),
        "best title match first, got {first}"
    );
}

fn seniority_rank(s: Seniority) -> u8 {
    [
        Seniority::Entry,
        Seniority::Senior,
        Seniority::Manager,
        Seniority::Director,
        Seniority::Vp,
        Seniority::CSuite,
        Seniority::Owner,
    ]
    .iter()
    .position(|x| *x == s)
    .unwrap() as u8
}

#[tokio::test]
async fn aliases_of_the_domain_company_find_abbreviated_profiles() {
    let result = run(
        company(None, Some("massivedynamic.com"), None),
        SearchFilters::default(),
        100,
    )
    .await;
    // Massive Dynamic has a handle confirmed by its domain: the page is used.
    assert_eq!(
        result.meta.target_account_outcome,
        TargetAccountOutcome::VerifiedLinkedinHandle
    );

    // By name only (no domain), the text path is used and the initialism
    // profiles are not found under the full name alone.
    let by_name = run(
        company(Some("MDS"), None, None),
        SearchFilters::default(),
        100,
    )
    .await;
    assert_eq!(
        by_name.meta.target_account_search_mode,
        SearchMode::ProfileCurrentCompany
    );
    let got = ids(&by_name);
    assert!(
        got.contains(&"p-md-02") && got.contains(&"p-md-03"),
        "{got:?}"
    );
}

#[tokio::test]
async fn filters_with_no_match_explain_themselves() {
    let none = SearchFilters {
        keywords: vec!["zzzz-no-such-skill".into()],
        ..Default::default()
    };
    let result = run(company(None, None, Some("acme-corp")), none, 25).await;
    assert_eq!(
        result.meta.provider_outcome,
        ProviderOutcomeKind::EmptyClean
    );
    assert!(result.meta.message.as_deref().unwrap().contains("filters"));
}

#[tokio::test]
async fn results_say_how_many_were_found_and_whether_all_are_returned() {
    let acme = company(None, None, Some("acme-corp"));
    let all = run(acme.clone(), SearchFilters::default(), 100).await;
    let found = all.data.len();
    assert!(found > 3, "the fixture's Acme has more than 3 people");
    assert_eq!(all.meta.total, found);
    assert!(all.meta.total_is_exact);
    assert!(all.meta.complete, "everyone fits the limit");

    // The limit cuts the list: the total still counts everyone.
    let three = run(acme.clone(), SearchFilters::default(), 3).await;
    assert_eq!(three.meta.returned, 3);
    assert_eq!(three.meta.total, found);
    assert!(!three.meta.complete);

    // The total counts the people matching the filters, not the account.
    let c_suite = SearchFilters {
        seniorities: vec![Seniority::CSuite],
        ..Default::default()
    };
    let filtered = run(acme, c_suite, 1).await;
    assert_eq!(filtered.meta.total, 3, "the three C-suite people above");
    assert_eq!(filtered.meta.returned, 1);
    assert!(!filtered.meta.complete);

    // Nothing found: a complete, empty answer.
    let none = run(
        company(None, Some("unknown-company.example"), None),
        SearchFilters::default(),
        10,
    )
    .await;
    assert_eq!((none.meta.total, none.meta.complete), (0, true));
}
