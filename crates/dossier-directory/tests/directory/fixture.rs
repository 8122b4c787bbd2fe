//! The cases documented in `fixtures/README.md`, asserted.

use dossier_contracts::api::{Department, Seniority};
use dossier_directory::{DirectoryProvider, PeopleQuery, load_directory};

use crate::helpers::{fixture, fixtures_dir, ids};

fn company_ids(companies: &[dossier_directory::Company]) -> Vec<&str> {
    companies.iter().map(|c| c.id.as_str()).collect()
}

#[test]
fn fixture_size_and_unique_ids() {
    let dir = fixture();
    assert_eq!(dir.companies().len(), 30);
    assert!(dir.people().len() >= 150, "{}", dir.people().len());
    let mut seen = std::collections::HashSet::new();
    for id in dir
        .companies()
        .iter()
        .map(|c| &c.id)
        .chain(dir.people().iter().map(|p| &p.id))
    {
        assert!(seen.insert(id.clone()), "duplicate id {id}");
    }
}

#[test]
fn load_directory_reads_the_fixture_folder_only_at_top_level() {
    let (dir, stats) = load_directory(&fixtures_dir()).unwrap();
    assert_eq!(stats.files, 1, "csv/ is a subfolder and is not loaded");
    assert_eq!(stats.companies, 30);
    assert_eq!(stats.people, dir.people().len());
    assert!(stats.bytes > 0);
}

#[tokio::test]
async fn company_lookups() {
    let dir = fixture();
    // Handle in any form.
    for handle in [
        "acme-corp",
        "ACME-CORP",
        "https://www.linkedin.com/company/acme-corp/about/",
    ] {
        assert_eq!(
            company_ids(&dir.companies_by_handle(handle).await.unwrap()),
            ["c-acme"],
            "{handle}"
        );
    }
    // Two look-alikes claim one handle.
    assert_eq!(
        company_ids(&dir.companies_by_handle("globex").await.unwrap()),
        ["c-globex", "c-globex-de"]
    );
    // Domain in any form.
    for domain in ["acme.com", "https://www.acme.com/about", "ACME.COM"] {
        assert_eq!(
            company_ids(&dir.companies_by_domain(domain).await.unwrap()),
            ["c-acme"]
        );
    }
    // Names and aliases, normalised.
    for name in ["Acme Corp", "ACME", "Acme Corporation, Inc.", "acme inc"] {
        assert_eq!(
            company_ids(&dir.companies_by_name(name).await.unwrap()),
            ["c-acme", "c-acme-plumbing"],
            "{name}"
        );
    }
    assert_eq!(
        company_ids(&dir.companies_by_name("Globex").await.unwrap()),
        ["c-globex", "c-globex-de"]
    );
    assert_eq!(
        company_ids(&dir.companies_by_name("Initech").await.unwrap()),
        ["c-initech"]
    );
    assert_eq!(
        company_ids(&dir.companies_by_name("MDS").await.unwrap()),
        ["c-massive-dynamic"]
    );
    assert_eq!(
        company_ids(&dir.companies_by_name("Mueller Logistik").await.unwrap()),
        ["c-mueller"]
    );
    assert_eq!(
        company_ids(&dir.companies_by_name("MÜLLER LOGISTIK").await.unwrap()),
        ["c-mueller"]
    );
    // Unknown or unusable input finds nothing rather than failing.
    assert!(
        dir.companies_by_name("Nonexistent Widgets")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        dir.companies_by_domain("unknown-company.example")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        dir.companies_by_domain("not a domain")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        dir.companies_by_handle("acme corp")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn verified_handle_by_domain() {
    // Name gives two candidates; the domain confirms exactly one.
    let dir = fixture();
    let by_name = dir.companies_by_name("Acme Corp").await.unwrap();
    let confirmed: Vec<_> = by_name
        .iter()
        .filter(|c| c.domain.as_deref() == Some("acme.com"))
        .collect();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0].linkedin_handle.as_deref(), Some("acme-corp"));
    let distinct_handles: std::collections::HashSet<_> = by_name
        .iter()
        .filter_map(|c| c.linkedin_handle.as_deref())
        .collect();
    assert_eq!(distinct_handles.len(), 2, "unverified without the domain");
}

#[tokio::test]
async fn company_page_search() {
    let dir = fixture();
    let all = dir
        .people_at_company_handle("acme-corp", &PeopleQuery::with_limit(100))
        .await
        .unwrap();
    assert_eq!(all.len(), 18);
    assert!(
        all.iter().any(|p| p.id == "p-stale-03"),
        "stale profile is on the page"
    );
    assert!(
        all.iter().any(|p| p.id == "p-acme-16"),
        "abbreviated text, linked page"
    );
    assert!(!all.iter().any(|p| p.id == "p-acme-03"), "no page link");
    assert!(
        !all.iter().any(|p| p.id == "p-stale-01"),
        "stale: page says initech"
    );

    let limited = dir
        .people_at_company_handle("acme-corp", &PeopleQuery::with_limit(5))
        .await
        .unwrap();
    assert_eq!(ids(&limited), ids(&all[..5]));
    let none = dir
        .people_at_company_handle("acme-corp", &PeopleQuery::with_limit(0))
        .await
        .unwrap();
    assert!(none.is_empty());

    let initech = dir
        .people_at_company_handle(
            "https://www.linkedin.com/company/initech",
            &PeopleQuery::with_limit(100),
        )
        .await
        .unwrap();
    assert!(initech.iter().any(|p| p.id == "p-stale-01"));
}

#[tokio::test]
async fn filters() {
    let dir = fixture();
    let search = |q: PeopleQuery| async move {
        let people = dir.people_at_company_handle("acme-corp", &q).await.unwrap();
        people.into_iter().map(|p| p.id).collect::<Vec<_>>()
    };
    let q = |f: fn(&mut PeopleQuery)| {
        let mut q = PeopleQuery::with_limit(100);
        f(&mut q);
        q
    };
    assert_eq!(
        search(q(|q| q.titles = vec!["engineer".into()])).await,
        [
            "p-acme-04",
            "p-acme-05",
            "p-acme-09",
            "p-acme-13",
            "p-acme-15"
        ]
    );
    // Abbreviations on either side: `VP` in the query, `VP Engineering` and
    // `VP Sales` in titles; `Vice President` matches them too.
    assert_eq!(
        search(q(|q| q.titles = vec!["Vice President".into()])).await,
        ["p-acme-02", "p-acme-15"]
    );
    assert_eq!(
        search(q(|q| q.titles = vec!["vp sales".into(), "cfo".into()])).await,
        ["p-acme-02", "p-acme-10"]
    );
    assert_eq!(
        search(q(|q| q.titles = vec!["chief financial officer".into()])).await,
        ["p-acme-10"]
    );
    assert_eq!(
        search(q(|q| q.seniorities = vec![Seniority::CSuite])).await,
        ["p-acme-01", "p-acme-10", "p-acme-14"]
    );
    assert_eq!(
        search(q(|q| {
            q.departments = vec![Department::Engineering];
            q.locations = vec!["san francisco".into()];
        }))
        .await,
        ["p-acme-01", "p-acme-04"]
    );
    assert_eq!(
        search(q(|q| q.keywords = vec!["Rust".into()])).await,
        ["p-acme-01", "p-acme-04", "p-acme-09"]
    );
    // Every keyword must match.
    assert_eq!(
        search(q(
            |q| q.keywords = vec!["rust".into(), "machine learning".into()]
        ))
        .await,
        ["p-acme-09"]
    );
    // Locations match country and region words too; diacritics fold.
    assert_eq!(
        search(q(|q| q.locations = vec!["Germany".into()])).await,
        ["p-acme-20"]
    );
    assert_eq!(
        search(q(
            |q| q.locations = vec!["United Kingdom".into(), "ireland".into()]
        ))
        .await,
        ["p-acme-07", "p-acme-11"]
    );
    // A word nobody has matches nobody; a blank phrase does not filter.
    assert!(
        search(q(|q| q.titles = vec!["astronaut".into()]))
            .await
            .is_empty()
    );
    assert!(
        search(q(|q| q.keywords = vec!["rust".into(), "cobol".into()]))
            .await
            .is_empty()
    );
    assert_eq!(search(q(|q| q.titles = vec!["  ".into()])).await.len(), 18);
    assert_eq!(
        search(q(|q| q.titles = vec!["astronaut".into(), "cto".into()])).await,
        ["p-acme-01"]
    );
}

#[tokio::test]
async fn profile_text_search() {
    let dir = fixture();
    let all = PeopleQuery::with_limit(100);
    let hooli_health = dir
        .people_by_company_text("Hooli Health", &all)
        .await
        .unwrap();
    assert_eq!(
        ids(&hooli_health),
        [
            "p-stale-02",
            "p-hh-01",
            "p-hh-02",
            "p-hh-03",
            "p-hh-04",
            "p-hh-05",
            "p-hh-06",
            "p-hh-07"
        ]
    );
    // Normalised input works as well as the raw name.
    assert_eq!(
        ids(&dir
            .people_by_company_text("hooli health", &all)
            .await
            .unwrap()),
        ids(&hooli_health)
    );
    // `Hooli` alone is another company.
    let hooli = dir.people_by_company_text("Hooli", &all).await.unwrap();
    assert!(hooli.iter().any(|p| p.id == "p-hh-08"));
    assert!(
        hooli
            .iter()
            .all(|p| !p.id.starts_with("p-hh-0") || p.id == "p-hh-08")
    );

    // Look-alikes share the text key.
    let acme = dir.people_by_company_text("Acme Corp", &all).await.unwrap();
    assert!(acme.iter().any(|p| p.id == "p-acme-03"));
    assert!(acme.iter().any(|p| p.id == "p-plumb-01"));
    assert!(!acme.iter().any(|p| p.id == "p-acme-16"), "text AC");
    assert!(
        !acme.iter().any(|p| p.id == "p-plumb-04"),
        "text has the trade"
    );

    // Past positions do not count.
    assert!(
        dir.people_by_company_text("Vandelay Industries", &all)
            .await
            .unwrap()
            .is_empty()
    );

    // Aliases are separate keys.
    assert_eq!(
        ids(&dir.people_by_company_text("MDS", &all).await.unwrap()),
        ["p-md-02", "p-md-03"]
    );
    assert_eq!(
        ids(&dir
            .people_by_company_text("Müller Logistik", &all)
            .await
            .unwrap()),
        ["p-mueller-01", "p-mueller-02", "p-mueller-03"]
    );

    // Filters apply to text search too.
    let mut engineers = PeopleQuery::with_limit(100);
    engineers.departments = vec![Department::Engineering];
    assert_eq!(
        ids(&dir
            .people_by_company_text("Hooli Health", &engineers)
            .await
            .unwrap()),
        ["p-stale-02", "p-hh-03"]
    );
}

#[tokio::test]
async fn person_lookups() {
    let dir = fixture();
    assert_eq!(
        ids(&dir.person_by_email("priya.patel@initech.io").await.unwrap()),
        ["p-dup-01", "p-dup-02"]
    );
    assert_eq!(
        ids(&dir.person_by_email(" JANE.DOE@acme.com ").await.unwrap()),
        ["p-acme-01"]
    );
    assert!(
        dir.person_by_email("nobody@acme.com")
            .await
            .unwrap()
            .is_empty()
    );

    for profile in [
        "https://www.linkedin.com/in/jane-doe-acme/",
        "linkedin.com/in/Jane-Doe-Acme",
        "jane-doe-acme",
    ] {
        assert_eq!(
            ids(&dir.person_by_linkedin(profile).await.unwrap()),
            ["p-acme-01"],
            "{profile}"
        );
    }
    assert_eq!(
        ids(&dir
            .person_by_linkedin("https://www.linkedin.com/in/zo%C3%AB-m%C3%BCller")
            .await
            .unwrap()),
        ["p-acme-20"]
    );
    assert_eq!(
        ids(&dir
            .person_by_linkedin("http://www.linkedin.com/in/alex-abbott-01")
            .await
            .unwrap())
        .len(),
        1
    );
    assert!(
        dir.person_by_linkedin("https://www.linkedin.com/company/acme-corp")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn people_by_name_and_hint() {
    let dir = fixture();
    assert_eq!(
        ids(&dir.people_by_name("John Smith", None).await.unwrap()),
        ["p-acme-04", "p-plumb-01", "p-globex-02"]
    );
    assert_eq!(
        ids(&dir
            .people_by_name("john  SMITH", Some("acme.com"))
            .await
            .unwrap()),
        ["p-acme-04"]
    );
    assert_eq!(
        ids(&dir
            .people_by_name("John Smith", Some("Acme Corp"))
            .await
            .unwrap()),
        ["p-acme-04", "p-plumb-01"]
    );
    assert_eq!(
        ids(&dir
            .people_by_name("John Smith", Some("acme-corp-plumbing"))
            .await
            .unwrap()),
        ["p-plumb-01"]
    );
    assert_eq!(
        ids(&dir
            .people_by_name("Maria Garcia", Some("acme.com"))
            .await
            .unwrap()),
        ["p-acme-02", "p-acme-03"]
    );
    // Stale profile: the email domain tells the truth.
    assert_eq!(
        ids(&dir
            .people_by_name("Rachel Green", Some("acme.com"))
            .await
            .unwrap()),
        ["p-stale-01"]
    );
    // A past position counts, after current ones.
    assert_eq!(
        ids(&dir
            .people_by_name("Art Vandelay", Some("Vandelay Industries"))
            .await
            .unwrap()),
        ["p-vandelay-01"]
    );
    assert_eq!(
        ids(&dir.people_by_name("Zoe Muller", None).await.unwrap()),
        ["p-acme-20"]
    );
    assert!(
        dir.people_by_name("John Smith", Some("hooli.xyz"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn similar_companies_share_the_industry_and_a_near_size_band_same_band_first() {
    let dir = fixture();
    let acme = dir
        .companies_by_handle("acme-corp")
        .await
        .unwrap()
        .remove(0);
    let similar = dir.similar_companies(&acme, 10).await.unwrap();
    let ids = company_ids(&similar);
    // Software, 1001-5000 ± one band; never Acme itself, the plumbing
    // look-alike (another industry) or Initech (201-500, two bands off).
    assert!(!ids.is_empty());
    assert!(
        ids.contains(&"c-massive-dynamic") && ids.contains(&"c-hooli"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"c-acme") && !ids.contains(&"c-acme-plumbing"));
    assert!(!ids.contains(&"c-initech"));
    for c in &similar {
        assert_eq!(c.industry, "Software");
    }
    // The same band before a band off, whatever the distance.
    assert_eq!(ids, ["c-massive-dynamic", "c-hooli"]);
    assert_eq!(dir.similar_companies(&acme, 1).await.unwrap().len(), 1);
}
