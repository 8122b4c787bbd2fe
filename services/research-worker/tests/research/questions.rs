//! The questions of issue 16, on the default demo directory (`cargo xtask
//! up`'s: seed 42, 200,000 people in 20,000 companies), through the gateway
//! and the real worker with no network: who leads sales at Harborlight
//! Consulting, who runs it, its most senior engineering leader, and a
//! person's background. What counts as right is read from the directory's
//! records here, not typed in. One test, so the big directory is built once.

use std::sync::Arc;

use dossier_contracts::api::{Department, Seniority};
use dossier_directory::{DirectoryProvider, LocalDirectory, Person, ProviderSet};
use dossier_directory_gen::{DEFAULT_COMPANIES, DEFAULT_PEOPLE};
use dossier_stack::{Running, TestApp, spawn_app};
use research_worker::App;
use serde_json::{Value, json};

use crate::helpers::*;

const HARBORLIGHT: &str = "harborlightconsulting.com";

/// The default demo directory and a worker on it whose web step reaches
/// nothing (every site a closed port).
async fn stack() -> (
    TestApp,
    Arc<LocalDirectory>,
    Running,
    dossier_testkit::ClosedPort,
) {
    let records = dossier_directory_gen::generate(42, DEFAULT_PEOPLE, DEFAULT_COMPANIES);
    let dir = Arc::new(LocalDirectory::from_records("demo", records));
    let app = spawn_app().await;
    let closed = dossier_testkit::ClosedPort::new();
    let mut config = config(&app, None);
    config.research.site_overrides = vec![
        format!("{HARBORLIGHT}=http://127.0.0.1:{}", closed.port())
            .parse()
            .unwrap(),
    ];
    let providers = ProviderSet::new(vec![dir.clone() as Arc<dyn DirectoryProvider>]);
    let worker = App::build_with_providers(config, providers).await.unwrap();
    let running = Running::spawn(|token| worker.run(token));
    (app, dir, running, closed)
}

/// The people of `people` the answer names with their titles.
fn named<'a>(people: &'a [&'a Person], answer: &str) -> Vec<&'a Person> {
    people
        .iter()
        .copied()
        .filter(|p| answer.contains(&format!("{} ({})", p.full_name, p.title)))
        .chain(
            people
                .iter()
                .copied()
                .filter(|p| answer.contains(&format!("{}, {},", p.full_name, p.title))),
        )
        .collect()
}

/// The answer's text, checked to be found and to cite the people lookup.
fn cited_answer(result: &Value, i: usize) -> &str {
    let answer = &result["sections"]["answers"][i];
    assert_eq!(answer["found"], true, "{answer}");
    assert_eq!(answer["method"], "structured", "{answer}");
    let people_source = &result["sections"]["leadership"]["source"];
    assert!(
        answer["sources"]
            .as_array()
            .unwrap()
            .contains(people_source),
        "{answer}"
    );
    answer["answer"].as_str().unwrap()
}

#[tokio::test]
async fn the_issue_examples_are_answered_on_the_demo_directory() {
    let (app, dir, _worker, _closed) = stack().await;
    let staff: Vec<&Person> = dir
        .people()
        .iter()
        .filter(|p| p.current_company_linkedin_handle.as_deref() == Some("harborlight-consulting"))
        .collect();
    assert!(staff.len() > 200, "a big company: {}", staff.len());

    let result = research_result(
        &app,
        &json!({
            "subject": { "company": { "domain": HARBORLIGHT } },
            "depth": "deep",
            "questions": [
                "Who leads sales?",
                "Who runs the company?",
                "Who is the most senior engineering leader?"
            ]
        }),
    )
    .await;
    assert_eq!(result["subject"]["name"], "Harborlight Consulting");

    // A VP of Sales (or above) by name, never a count sentence.
    let sales = cited_answer(&result, 0);
    let who = named(&staff, sales);
    assert!(!who.is_empty(), "{sales}");
    for p in &who {
        assert_eq!(p.department, Department::Sales, "{sales}");
        assert!(
            matches!(p.seniority, Seniority::Vp | Seniority::CSuite),
            "{sales}"
        );
    }
    assert!(!sales.starts_with("Of "), "{sales}");

    // The owners or chief executive, not a sentence about the industry.
    let top = cited_answer(&result, 1);
    let who = named(&staff, top);
    assert!(!who.is_empty(), "{top}");
    assert!(who.iter().all(|p| p.seniority == Seniority::Owner), "{top}");
    assert!(!top.contains("Consulting industry"), "{top}");

    // The most senior engineering people found.
    let engineering = cited_answer(&result, 2);
    let who = named(&staff, engineering);
    assert!(!who.is_empty(), "{engineering}");
    for p in &who {
        assert_eq!(p.department, Department::Engineering, "{engineering}");
        assert!(
            matches!(
                p.seniority,
                Seniority::CSuite | Seniority::Vp | Seniority::Director
            ),
            "{engineering}"
        );
    }

    // Person research: "What is their background?" is their past positions.
    let person = dir
        .people()
        .iter()
        .find(|p| {
            p.current_company_linkedin_handle.as_deref() == Some("harborlight-consulting")
                && p.email
                    .as_deref()
                    .is_some_and(|e| e.ends_with(&format!("@{HARBORLIGHT}")))
                && p.past_positions.len() >= 2
        })
        .expect("someone at Harborlight Consulting with a past");
    let result = research_result(
        &app,
        &json!({
            "subject": { "person": { "email": person.email } },
            "questions": ["What is their background?", "Where did they work before?"]
        }),
    )
    .await;
    assert_eq!(result["subject"]["name"], person.full_name.as_str());
    let record = result["subject"]["person"]["source"].clone();
    for i in 0..2 {
        let answer = &result["sections"]["answers"][i];
        assert_eq!(answer["found"], true, "{answer}");
        assert_eq!(answer["sources"], json!([record]), "{answer}");
        let text = answer["answer"].as_str().unwrap();
        for past in &person.past_positions {
            assert!(text.contains(&past.company_text), "{text}");
            assert!(text.contains(&past.title), "{text}");
        }
    }
}
