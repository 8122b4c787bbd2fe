//! Generated directories: the indexes agree with a brute-force scan.

use dossier_contracts::api::{Department, Seniority};
use dossier_directory::{
    DirectoryProvider, LocalDirectory, PeopleQuery, Person, normalize_company_name, search_tokens,
};

fn contains_all(have: &[String], want: &[String]) -> bool {
    want.iter().all(|w| have.contains(w))
}

/// The filter semantics written the slow, obvious way.
fn brute_matches(p: &Person, q: &PeopleQuery) -> bool {
    let phrase_match = |text: &[String], phrases: &[String]| {
        let phrases: Vec<Vec<String>> = phrases
            .iter()
            .map(|p| search_tokens(p))
            .filter(|t| !t.is_empty())
            .collect();
        phrases.is_empty() || phrases.iter().any(|p| contains_all(text, p))
    };
    let title = search_tokens(&p.title);
    let location = search_tokens(&format!(
        "{} {} {}",
        p.location.city, p.location.region, p.location.country
    ));
    let mut profile = search_tokens(&p.title);
    profile.extend(search_tokens(&p.headline));
    for s in &p.skills {
        profile.extend(search_tokens(s));
    }
    for pos in &p.past_positions {
        profile.extend(search_tokens(&pos.title));
        profile.extend(search_tokens(&pos.company_text));
    }
    (q.seniorities.is_empty() || q.seniorities.contains(&p.seniority))
        && (q.departments.is_empty() || q.departments.contains(&p.department))
        && phrase_match(&title, &q.titles)
        && phrase_match(&location, &q.locations)
        && q.keywords
            .iter()
            .all(|k| contains_all(&profile, &search_tokens(k)))
}

fn queries() -> Vec<PeopleQuery> {
    let mut out = vec![PeopleQuery::with_limit(1_000)];
    let mut q = PeopleQuery::with_limit(1_000);
    q.titles = vec!["engineer".into(), "vp sales".into()];
    out.push(q);
    let mut q = PeopleQuery::with_limit(1_000);
    q.seniorities = vec![Seniority::Director, Seniority::Vp, Seniority::CSuite];
    q.departments = vec![Department::Sales, Department::Marketing];
    out.push(q);
    let mut q = PeopleQuery::with_limit(1_000);
    q.locations = vec!["united states".into(), "München".into()];
    q.keywords = vec!["python".into()];
    out.push(q);
    let mut q = PeopleQuery::with_limit(3);
    q.titles = vec!["manager".into()];
    q.locations = vec!["California".into()];
    out.push(q);
    out
}

#[tokio::test]
async fn indexed_search_agrees_with_a_scan() {
    let dir = LocalDirectory::from_records("gen", dossier_directory_gen::generate(5, 10_000, 800));
    let mut checked_people = 0;
    // The biggest companies by handle, and some by text.
    let mut handles: Vec<String> = dir
        .companies()
        .iter()
        .filter_map(|c| c.linkedin_handle.clone())
        .collect();
    handles.truncate(60);
    for handle in &handles {
        for q in queries() {
            let got = dir.people_at_company_handle(handle, &q).await.unwrap();
            let want: Vec<&Person> = dir
                .people()
                .iter()
                .filter(|p| p.current_company_linkedin_handle.as_deref() == Some(handle))
                .filter(|p| brute_matches(p, &q))
                .take(q.limit)
                .collect();
            assert_eq!(
                got.iter().map(|p| &p.id).collect::<Vec<_>>(),
                want.iter().map(|p| &p.id).collect::<Vec<_>>(),
                "{handle} {q:?}"
            );
            checked_people += got.len();
        }
    }
    for company in dir.companies().iter().take(60) {
        let key = normalize_company_name(&company.name);
        for q in queries() {
            let got = dir.people_by_company_text(&company.name, &q).await.unwrap();
            let want: Vec<&Person> = dir
                .people()
                .iter()
                .filter(|p| normalize_company_name(&p.current_company_text) == key)
                .filter(|p| brute_matches(p, &q))
                .take(q.limit)
                .collect();
            assert_eq!(
                got.iter().map(|p| &p.id).collect::<Vec<_>>(),
                want.iter().map(|p| &p.id).collect::<Vec<_>>(),
                "{key} {q:?}"
            );
            checked_people += got.len();
        }
    }
    assert!(checked_people > 500, "{checked_people}");
}

#[tokio::test]
async fn every_generated_person_is_reachable() {
    let dir = LocalDirectory::from_records("gen", dossier_directory_gen::generate(9, 3_000, 300));
    for p in dir.people().iter().step_by(7) {
        if let Some(email) = &p.email {
            let found = dir.person_by_email(email).await.unwrap();
            assert!(found.iter().any(|f| f.id == p.id), "{email}");
        }
        if let Some(url) = &p.linkedin_url {
            let found = dir.person_by_linkedin(url).await.unwrap();
            assert_eq!(found.len(), 1, "{url}");
            assert_eq!(found[0].id, p.id);
        }
        let by_name = dir.people_by_name(&p.full_name, None).await.unwrap();
        assert!(by_name.iter().any(|f| f.id == p.id));
    }
}
