//! Whole researches through the gateway: POST /api/research → 202 → the
//! research worker runs the plan → poll → the report. Covers success on the
//! fixture company with its site on loopback, the citation check, a person
//! subject, a failed step ending `partial_success`, an unresolvable subject
//! ending `failed`, every provider failing while resolving ending
//! `providers_unavailable`, a bracketed link that must not fake a citation,
//! and a cancel in the middle of a page fetch.

use std::sync::Arc;
use std::time::Duration;

use dossier_contracts::Status;
use dossier_directory::{HttpProvider, HttpProviderConfig, ProviderSet};
use dossier_stack::{DEADLINE, KEY_A, Running, TestApp, spawn_app};
use dossier_testkit::wait_until;
use research_worker::App;
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

async fn research(app: &TestApp, body: Value) -> Value {
    let accepted = app.post_research(&body).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    app.wait_for_terminal(&accepted.id(), KEY_A).await
}

fn step<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {}", result["steps"]))
}

/// The citation check: every `[n]` in the Markdown and every source of an
/// answer or a section item is a source of the result; every web source is
/// a page the site really served.
fn assert_citations_are_gathered(result: &Value, site: &Site) {
    let ids = source_ids(result);
    assert_eq!(ids, (1..=ids.len()).collect::<Vec<_>>(), "ids are 1..n");
    let markdown = result["markdown"].as_str().unwrap();
    let cited = citations(markdown);
    assert!(!cited.is_empty(), "the report cites its sources");
    for n in &cited {
        assert!(
            ids.contains(n),
            "[{n}] cites no gathered source:\n{markdown}"
        );
    }
    for answer in result["sections"]["answers"].as_array().unwrap() {
        for n in answer["sources"].as_array().unwrap() {
            assert!(ids.contains(&(n.as_u64().unwrap() as usize)), "{answer}");
        }
        for n in citations(answer["answer"].as_str().unwrap()) {
            assert!(ids.contains(&n), "{answer}");
        }
    }
    for fact in result["sections"]["web"]["facts"].as_array().unwrap() {
        assert!(ids.contains(&(fact["source"].as_u64().unwrap() as usize)));
    }
    for source in result["sources"].as_array().unwrap() {
        assert!(source["fetchedAt"].as_str().is_some_and(|t| !t.is_empty()));
        match source["kind"].as_str().unwrap() {
            "web" => {
                let url = source["url"].as_str().unwrap();
                let path = url.strip_prefix(&site.url()).map(|p| format!("/{p}"));
                assert!(
                    path.is_some_and(|p| site.was_requested(&p)),
                    "{url} was never fetched"
                );
            }
            "directory" => {
                assert!(source["url"].as_str().unwrap().starts_with("directory:"));
            }
            other => panic!("unknown source kind {other}"),
        }
    }
}

#[tokio::test]
async fn the_fixture_company_is_researched_end_to_end_with_cited_sources() {
    let app = spawn_app().await;
    let site = Site::start().await;
    let _worker = start_worker(config(&app, Some(&site))).await;

    let op = research(
        &app,
        json!({
            "subject": { "company": { "name": "Acme Corp", "domain": "acme.com" } },
            "questions": [
                "Is Acme hiring Rust engineers?",
                "Who is on the buying committee?",
                "What is the annual revenue of the Berlin subsidiary?"
            ]
        }),
    )
    .await;
    assert_eq!(op["status"], Status::Succeeded.as_str(), "{op}");
    assert_eq!(op["kind"], "research.deep");
    assert_eq!(op["progress"], 100);
    let result = &op["result"];

    assert_eq!(result["subject"]["type"], "company");
    assert_eq!(result["subject"]["name"], "Acme Corp");
    assert_eq!(result["subject"]["resolution"], "verified_linkedin_handle");
    assert_eq!(result["depth"], "standard");

    // Every step ran and succeeded, in order, with a duration.
    let names: Vec<&str> = result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "resolve",
            "profile",
            "leadership",
            "look_alikes",
            "web_evidence",
            "answers",
            "report"
        ]
    );
    for s in result["steps"].as_array().unwrap() {
        assert_eq!(s["status"], "succeeded", "{s}");
        assert!(s["durationMs"].is_u64());
    }

    let sections = &result["sections"];
    let profile = &sections["profile"];
    assert_eq!(profile["domain"], "acme.com");
    assert_eq!(profile["linkedinHandle"], "acme-corp");
    assert_eq!(profile["industry"], "Software");
    assert_eq!(profile["sizeBand"], "1001-5000");

    let leadership = &sections["leadership"];
    assert!(leadership["peopleFound"].as_u64().unwrap() >= 10);
    let committee = leadership["buyingCommittee"].as_array().unwrap();
    assert_eq!(committee[0]["seniority"], "owner", "most senior first");
    assert!(
        committee
            .iter()
            .any(|p| p["name"] == "Jane Doe" && p["title"] == "CTO")
    );
    for p in committee {
        assert!(["owner", "c_suite", "vp", "director"].contains(&p["seniority"].as_str().unwrap()));
    }
    assert!(
        leadership["orgShape"]["byDepartment"]["engineering"]
            .as_u64()
            .unwrap()
            > 0
    );

    let look_alikes = sections["lookAlikes"].as_array().unwrap();
    assert!(!look_alikes.is_empty());
    for c in look_alikes {
        assert_eq!(c["industry"], "Software");
        assert_ne!(c["domain"], "acme.com");
    }

    // Standard depth reads the home, about, careers and news pages only.
    let pages = sections["web"]["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 4, "{pages:?}");
    assert!(pages.iter().all(|p| p["status"] == "fetched"));
    assert!(!site.was_requested(PRIVATE));

    let answers = sections["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0]["found"], true);
    assert!(
        answers[0]["answer"]
            .as_str()
            .unwrap()
            .contains("hiring Rust engineers")
    );
    let careers_source = result["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["url"].as_str().unwrap().ends_with(CAREERS))
        .unwrap()["id"]
        .clone();
    assert!(
        answers[0]["answer"]
            .as_str()
            .unwrap()
            .starts_with("Acme is hiring Rust engineers"),
        "the best sentence first: {}",
        answers[0]
    );
    assert!(
        answers[0]["sources"]
            .as_array()
            .unwrap()
            .contains(&careers_source)
    );
    assert_eq!(answers[1]["found"], true);
    assert!(answers[1]["answer"].as_str().unwrap().contains("Jane Doe"));
    assert_eq!(answers[2]["found"], false);
    assert_eq!(answers[2]["answer"], "Not found in the sources.");
    assert_eq!(answers[2]["sources"], json!([]));

    let markdown = result["markdown"].as_str().unwrap();
    assert!(markdown.starts_with("# Research: Acme Corp"));
    for heading in [
        "## Company profile",
        "## Leadership",
        "## Look-alike",
        "## Answers",
        "## Sources",
        "## Steps",
    ] {
        assert!(markdown.contains(heading), "{heading} missing:\n{markdown}");
    }
    assert_citations_are_gathered(result, &site);
}

#[tokio::test]
async fn a_person_is_researched_through_enrichment_matching() {
    let app = spawn_app().await;
    let site = Site::start().await;
    let _worker = start_worker(config(&app, Some(&site))).await;

    let op = research(
        &app,
        json!({ "subject": { "person": { "email": "JANE.DOE@acme.com" } }, "depth": "deep" }),
    )
    .await;
    assert_eq!(op["status"], "succeeded", "{op}");
    let result = &op["result"];
    assert_eq!(result["subject"]["type"], "person");
    assert_eq!(result["subject"]["name"], "Jane Doe");
    assert_eq!(result["subject"]["resolution"], "matched_by_email");
    assert_eq!(result["subject"]["person"]["title"], "CTO");
    assert_eq!(result["depth"], "deep");
    assert_eq!(result["sections"]["profile"]["name"], "Acme Corp");
    assert_eq!(step(result, "answers")["status"], "skipped");
    // Deep reads more of the site, still never the forbidden page.
    assert!(result["sections"]["web"]["pages"].as_array().unwrap().len() > 4);
    assert!(!site.was_requested(PRIVATE));
    assert_citations_are_gathered(result, &site);
}

#[tokio::test]
async fn with_no_network_the_web_step_fails_and_the_research_is_partial_success() {
    let app = spawn_app().await;
    // acme.com is served from a port nobody listens on (no network): the
    // web step gathers nothing and fails; the directory steps still make a
    // report, their answers intact.
    let mut config = config(&app, None);
    let closed = dossier_testkit::ClosedPort::new();
    let port = closed.port();
    config.research.site_overrides =
        vec![format!("acme.com=http://127.0.0.1:{port}").parse().unwrap()];
    let _worker = start_worker(config).await;

    let op = research(
        &app,
        json!({ "subject": { "company": { "domain": "acme.com" } }, "questions": ["Who is the CTO?"] }),
    )
    .await;
    assert_eq!(op["status"], "partial_success", "{op}");
    assert_eq!(op["progress"], 100);
    // The API carries `error` only on failed operations: the failed steps
    // are in the result, with their errors.
    let result = &op["result"];
    let failed: Vec<&Value> = result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["name"], "web_evidence");
    assert_eq!(
        failed[0]["error"],
        "nothing was read from the site: robots.txt could not be read: connection failed"
    );
    // Every page `failed` for that reason: none is `disallowed` by a
    // robots.txt that was never read. No reason names an address or a port.
    let web = &result["sections"]["web"];
    let unread = "robots.txt could not be read: connection failed";
    assert_eq!(web["robotsError"], unread, "{web}");
    let pages = web["pages"].as_array().unwrap();
    assert!(!pages.is_empty());
    for page in pages {
        assert_eq!(page["status"], "failed", "{page}");
        assert_eq!(page["error"], unread, "{page}");
    }
    for s in result["steps"].as_array().unwrap() {
        if s["name"] != "web_evidence" {
            assert_eq!(s["status"], "succeeded", "{s}");
        }
        let error = s["error"].as_str().unwrap_or_default();
        assert!(
            !error.contains("127.0.0.1") && !error.contains(&port.to_string()),
            "{error}"
        );
    }
    assert!(
        result["markdown"]
            .as_str()
            .unwrap()
            .contains("| web_evidence | failed |")
    );
    assert_eq!(step(result, "leadership")["status"], "succeeded");
    assert_eq!(result["sections"]["profile"]["name"], "Acme Corp");
    assert_eq!(result["sections"]["answers"][0]["found"], true);
    let ids = source_ids(result);
    for n in citations(result["markdown"].as_str().unwrap()) {
        assert!(ids.contains(&n));
    }
    assert!(
        result["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["kind"] == "directory")
    );
}

#[tokio::test]
async fn an_unresolvable_subject_fails() {
    let app = spawn_app().await;
    let _worker = start_worker(config(&app, None)).await;

    let op = research(
        &app,
        json!({ "subject": { "company": { "domain": "unknown-company.example" } } }),
    )
    .await;
    assert_eq!(op["status"], "failed", "{op}");
    assert_eq!(op["error"]["code"], "subject_unresolved");
    assert!(op.get("result").is_none_or(Value::is_null), "{op}");

    // Two companies share the name and nothing confirms either: no guess.
    let op = research(
        &app,
        json!({ "subject": { "company": { "name": "Acme Corp" } } }),
    )
    .await;
    assert_eq!(op["status"], "failed", "{op}");
    assert!(
        op["error"]["message"]
            .as_str()
            .unwrap()
            .contains("acmeplumbing.com")
    );

    let op = research(
        &app,
        json!({ "subject": { "person": { "email": "nobody@nowhere.example" } } }),
    )
    .await;
    assert_eq!(op["status"], "failed", "{op}");
    assert_eq!(op["error"]["code"], "subject_unresolved");
}

#[tokio::test]
async fn providers_failing_on_the_company_lookup_are_retried_not_unresolved() {
    let app = spawn_app().await;
    // The only provider fails every call. A given LinkedIn handle needs no
    // lookup to resolve the target account; the company record is then
    // looked up by handle, and that lookup failing everywhere is the
    // providers' fault (retried), not an unknown subject.
    let vendor = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .mount(&vendor)
        .await;
    let mut config = config(&app, None);
    config.service.worker.retry_backoff_base = Duration::from_millis(50);
    config.service.worker.retry_backoff_max = Duration::from_millis(100);
    let mut vendor_config = HttpProviderConfig::new("vendor", vendor.uri());
    vendor_config.max_attempts = 1;
    let only_vendor = ProviderSet::new(vec![Arc::new(HttpProvider::new(vendor_config).unwrap())]);
    let worker = App::build_with_providers(config, only_vendor)
        .await
        .unwrap();
    let _worker = Running::spawn(|token| worker.run(token));

    let op = research(
        &app,
        json!({ "subject": { "company": { "linkedinHandle": "acme-corp" } } }),
    )
    .await;
    assert_eq!(op["status"], "failed", "{op}");
    assert_eq!(op["error"]["code"], "providers_unavailable", "{op}");
    assert!(
        vendor.received_requests().await.unwrap().len() > 1,
        "the research was retried"
    );
}

#[tokio::test]
async fn a_bracketed_link_does_not_fake_a_citation() {
    let app = spawn_app().await;
    let site = Site::start_with(Options {
        bracket_link: true,
        ..Options::default()
    })
    .await;
    let _worker = start_worker(config(&app, Some(&site))).await;

    let op = research(
        &app,
        json!({ "subject": { "company": { "name": "Acme Corp", "domain": "acme.com" } } }),
    )
    .await;
    assert_eq!(op["status"], "succeeded", "{op}");
    let result = &op["result"];
    assert!(site.was_requested(BRACKETED), "{:?}", site.requested());
    let source = result["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["url"].as_str().unwrap().ends_with(BRACKETED))
        .unwrap_or_else(|| panic!("the bracketed page is a source: {}", result["sources"]));
    assert_eq!(source["title"], "About Acme (99)");
    let markdown = result["markdown"].as_str().unwrap();
    assert!(markdown.contains("about%5B99%5D>"), "{markdown}");
    assert!(!citations(markdown).contains(&99), "{markdown}");
    assert_citations_are_gathered(result, &site);
}

#[tokio::test]
async fn cancel_during_a_page_fetch_stops_the_research() {
    let app = spawn_app().await;
    let site = Site::start().await;
    let mut config = config(&app, Some(&site));
    // Nothing but the cancel can end this research in time: the slow page
    // would hold the web step for an hour, budgets are long, and the runtime
    // would not drop the handler for a minute.
    config.research.page_timeout = Duration::from_secs(3600);
    config.research.deep_budget = Duration::from_secs(3600);
    config.service.worker.cancel_grace = Duration::from_secs(60);
    let _worker = start_worker(config).await;

    let accepted = app
        .post_research(&json!({
            "subject": { "company": { "name": "Acme Corp", "domain": "acme.com" } },
            "depth": "deep"
        }))
        .await;
    assert_eq!(accepted.status, 202);
    let id = accepted.id();
    wait_until("the slow page to be requested", DEADLINE, || async {
        site.was_requested(SLOW)
    })
    .await;
    let op = app.get_operation(&id, KEY_A).await;
    assert_eq!(op.body["status"], "processing", "{}", op.body);
    assert!(op.body["progress"].as_u64().unwrap() < 100);

    let cancel = app.cancel_operation(&id, KEY_A).await;
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    // Within the test deadline, far below the slow page, the budgets and the
    // runtime's grace: only the handler stopping itself gets here.
    let op = app.wait_for_status(&id, KEY_A, Status::Cancelled).await;
    assert!(op.get("result").is_none_or(Value::is_null), "{op}");
}
