//! The CSV loader, and load errors.

use dossier_contracts::api::Seniority;
use dossier_directory::{
    DirectoryProvider, LoadError, LocalDirectory, LocalDirectoryConfig, PeopleQuery, SizeBand,
    load_directory,
};

use crate::helpers::{fixtures_dir, ids};

#[tokio::test]
async fn csv_fixture_loads_and_indexes() {
    let (dir, stats) = load_directory(&fixtures_dir().join("csv")).unwrap();
    assert_eq!((stats.files, stats.companies, stats.people), (2, 3, 3));

    let acme = &dir.companies_by_domain("acme.com").await.unwrap()[0];
    assert_eq!(acme.aliases, ["ACME", "Acme Corporation, Inc."]);
    assert_eq!(acme.size_band, SizeBand::Enterprise);
    // Handles and domains given as URLs are indexed by their bare form.
    let nordwind = dir.companies_by_handle("nordwind").await.unwrap();
    assert_eq!(nordwind[0].id, "csv-c3");
    assert_eq!(
        dir.companies_by_domain("nordwind.se").await.unwrap()[0].id,
        "csv-c3"
    );
    assert_eq!(
        nordwind[0].size_band,
        SizeBand::Micro,
        "empty cell: default"
    );
    assert_eq!(nordwind[0].headquarters.region, "");
    let hooli = &dir.companies_by_name("Hooli Health").await.unwrap()[0];
    assert_eq!(hooli.linkedin_handle, None);

    let jane = &dir.person_by_email("jane.doe@acme.com").await.unwrap()[0];
    assert_eq!(jane.seniority, Seniority::CSuite);
    assert_eq!(jane.skills, ["Rust", "Kubernetes"]);
    assert_eq!(jane.past_positions.len(), 2);
    assert_eq!(jane.past_positions[1].company_text, "Hooli");
    assert_eq!(jane.past_positions[1].title, "Engineer");
    let gavin = &dir
        .people_by_company_text("Hooli Health", &PeopleQuery::default())
        .await
        .unwrap()[0];
    assert_eq!(gavin.linkedin_url, None);
    assert_eq!(gavin.email.as_deref(), Some("gavin@hoolihealth.com"));
    assert_eq!(
        ids(&dir.person_by_linkedin("astrid-karlsson").await.unwrap()),
        ["csv-p3"]
    );
    assert_eq!(
        ids(&dir
            .people_at_company_handle("nordwind", &PeopleQuery::default())
            .await
            .unwrap()),
        ["csv-p3"]
    );
}

fn load(files: Vec<std::path::PathBuf>) -> Result<LocalDirectory, LoadError> {
    LocalDirectory::load(&LocalDirectoryConfig {
        name: "t".into(),
        files,
    })
}

#[test]
fn load_errors_name_the_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"type\":\"company\",\"id\":\"c1\",\"name\":\"A\"}\n\n{\"type\":\"person\",\"id\":\"p1\"}\n",
    )
    .unwrap();
    match load(vec![bad.clone()]) {
        Err(LoadError::Json { path, line, .. }) => {
            assert_eq!(path, bad);
            assert_eq!(line, 3);
        }
        other => panic!("{other:?}"),
    }

    let unknown = tmp.path().join("people.txt");
    std::fs::write(&unknown, "").unwrap();
    assert!(matches!(
        load(vec![unknown]),
        Err(LoadError::UnknownFormat { .. })
    ));

    assert!(matches!(
        load(vec![tmp.path().join("missing.jsonl")]),
        Err(LoadError::Io { .. })
    ));

    let headerless = tmp.path().join("x.csv");
    std::fs::write(&headerless, "a,b\n1,2\n").unwrap();
    assert!(matches!(
        load(vec![headerless]),
        Err(LoadError::CsvKind { .. })
    ));

    let band = tmp.path().join("companies.csv");
    std::fs::write(&band, "id,name,sizeBand\nc1,Acme,huge\n").unwrap();
    match load(vec![band]) {
        Err(LoadError::CsvValue {
            line,
            column,
            value,
            ..
        }) => {
            assert_eq!((line, column, value.as_str()), (2, "sizeBand", "huge"));
        }
        other => panic!("{other:?}"),
    }

    let seniority = tmp.path().join("people.csv");
    std::fs::write(
        &seniority,
        "id,fullName,seniority,department\np1,Jane,boss,sales\n",
    )
    .unwrap();
    assert!(matches!(load(vec![seniority]), Err(LoadError::Csv { .. })));

    // An empty folder is an empty directory, not an error.
    let empty = tempfile::tempdir().unwrap();
    let (dir, stats) = load_directory(empty.path()).unwrap();
    assert_eq!((stats.files, dir.people().len()), (0, 0));
}
