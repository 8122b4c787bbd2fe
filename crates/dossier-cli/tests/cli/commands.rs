//! `dossier search`, `research`, `ops`, and the exit codes of failures.

use dossier_stack::{KEY_A, batch_body};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Workers, dossier, dossier_at, json, stack};

#[tokio::test]
async fn search_prints_an_aligned_table_or_the_json_result() {
    let stack = stack(Workers::SEARCH).await;
    let dir = tempfile::tempdir().unwrap();
    let run = dossier(
        &stack,
        dir.path(),
        &["search", "--domain", "acme.com", "--title", "VP Sales"],
    )
    .await
    .expect(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME "), "{run:#?}");
    let title_at = lines[0].find("TITLE").unwrap();
    let vp = lines
        .iter()
        .find(|l| l.contains("VP Sales"))
        .expect("a VP of Sales");
    // Columns line up under their headers.
    assert_eq!(
        vp.char_indices().nth(title_at).map(|(i, _)| &vp[i..i + 8]),
        Some("VP Sales"),
        "{run:#?}"
    );
    assert!(
        lines.last().unwrap().contains("people"),
        "a summary line: {run:#?}"
    );

    let run = dossier(
        &stack,
        dir.path(),
        &[
            "search",
            "--domain",
            "acme.com",
            "--seniority",
            "vp",
            "--json",
        ],
    )
    .await
    .expect(0);
    let result = json(&run);
    let people = result["data"].as_array().unwrap();
    assert!(!people.is_empty(), "{result}");
    assert!(people.iter().all(|p| p["seniority"] == "vp"), "{result}");
    assert!(result["meta"]["targetAccountOutcome"].is_string());
}

#[tokio::test]
async fn research_writes_the_markdown_report_to_a_file() {
    let site = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/robots.txt"))
        .respond_with(ResponseTemplate::new(200).set_body_string("User-agent: *\nAllow: /\n"))
        .mount(&site)
        .await;
    Mock::given(method("GET"))
        .and(path("/"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<html><head><title>Acme</title></head><body><p>Acme Corp builds rocket engines in San Francisco.</p></body></html>",
            "text/html",
        ))
        .mount(&site)
        .await;
    let uri: &'static str = Box::leak(site.uri().into_boxed_str());
    let stack = stack(Workers {
        research_site: Some(uri),
        ..Workers::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ask = [
        "research",
        "--company",
        "acme.com",
        "--question",
        "Who leads sales?",
    ];
    let run = dossier(
        &stack,
        dir.path(),
        &[&ask[..], &["-o", "report.md"]].concat(),
    )
    .await;
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(report.starts_with("# Research: Acme"), "{report}");
    assert!(report.contains("Who leads sales?"), "{report}");
    assert!(
        run.stderr.contains("report written to report.md"),
        "{run:#?}"
    );
    run.expect(0);
    // Piped (not a terminal), the report is the raw Markdown on stdout.
    let run = dossier(&stack, dir.path(), &ask).await.expect(0);
    // (A second research: the same report but for its sources' times.)
    let before_sources = |text: &str| text.split("## Sources").next().unwrap().to_owned();
    assert_eq!(before_sources(&run.stdout), before_sources(&report));
}

#[tokio::test]
async fn ops_list_get_watch_and_cancel() {
    // A search worker but no enrichment worker: batches stay queued.
    let stack = stack(Workers::SEARCH).await;
    let dir = tempfile::tempdir().unwrap();
    let queued = stack.app.post_batch(&batch_body(2)).await.id();
    let search = stack.app.accept_search(KEY_A).await.id();

    // watch follows the search to its end and exits with its outcome.
    let run = dossier(&stack, dir.path(), &["ops", "watch", &search])
        .await
        .expect(0);
    assert_eq!(run.stdout.lines().last(), Some("succeeded"), "{run:#?}");

    let run = dossier(&stack, dir.path(), &["ops", "list"])
        .await
        .expect(0);
    assert!(run.stdout.starts_with("ID "), "{run:#?}");
    let line = |id: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .map(str::to_owned)
    };
    assert!(line(&search).unwrap().contains("search.people"), "{run:#?}");
    assert!(line(&queued).unwrap().contains("queued"), "{run:#?}");
    let listed = json(
        &dossier(
            &stack,
            dir.path(),
            &["ops", "list", "--kind", "search.people", "--json"],
        )
        .await
        .expect(0),
    );
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], search.as_str());

    let run = dossier(&stack, dir.path(), &["ops", "get", &search])
        .await
        .expect(0);
    assert!(run.stdout.contains("status    succeeded"), "{run:#?}");
    let op = json(
        &dossier(&stack, dir.path(), &["ops", "get", &search, "--json"])
            .await
            .expect(0),
    );
    assert!(op["result"]["data"].is_array(), "{op}");

    // A queued operation is cancelled at once; a finished one cannot be.
    let run = dossier(&stack, dir.path(), &["ops", "cancel", &queued])
        .await
        .expect(0);
    assert!(run.stdout.contains("cancelled"), "{run:#?}");
    let run = dossier(&stack, dir.path(), &["ops", "watch", &queued])
        .await
        .expect(1);
    assert!(run.stdout.contains("cancelled"), "{run:#?}");
    let run = dossier(&stack, dir.path(), &["ops", "cancel", &search])
        .await
        .expect(3);
    assert!(
        run.stderr.contains("HTTP 409") && run.stderr.contains("request id: "),
        "{run:#?}"
    );
}

#[tokio::test]
async fn failures_exit_with_their_codes_and_show_the_problem_and_request_id() {
    let stack = stack(Workers::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let api = stack.app.address.as_str();

    // A key the API does not know: 5.
    let run = dossier_at(api, "dk_wrong", dir.path(), &["ops", "list"])
        .await
        .expect(5);
    assert!(
        run.stderr.contains("HTTP 401") && run.stderr.contains("request id: "),
        "{run:#?}"
    );
    assert!(!run.stderr.contains("dk_wrong"), "the key is never printed");

    // Input the API refuses: 3, naming the field.
    let run = dossier(
        &stack,
        dir.path(),
        &["search", "--domain", "acme.com", "--seniority", "wizard"],
    )
    .await
    .expect(3);
    assert!(run.stderr.contains("/filters/seniorities/0"), "{run:#?}");
    assert!(run.stderr.contains("request id: "), "{run:#?}");

    // No API there: 4.
    dossier_at("http://127.0.0.1:1", KEY_A, dir.path(), &["ops", "list"])
        .await
        .expect(4);

    // No key at all: 5 too, saying where to put one.
    let run = dossier_at(api, "", dir.path(), &["ops", "list"])
        .await
        .expect(5);
    assert!(run.stderr.contains("DOSSIER_API_KEY"), "{run:#?}");

    // Usage: a wrong flag, a file that is not there: 2.
    dossier(&stack, dir.path(), &["search", "--nope"])
        .await
        .expect(2);
    let run = dossier(&stack, dir.path(), &["enrich", "missing.csv"])
        .await
        .expect(2);
    assert!(run.stderr.contains("missing.csv"), "{run:#?}");

    // The exit codes are in --help, and the key's value never is.
    let run = dossier_at(api, "dk_secret_value", dir.path(), &["--help"])
        .await
        .expect(0);
    assert!(
        run.stdout.contains("Exit codes:") && run.stdout.contains("130"),
        "{run:#?}"
    );
    assert!(!run.stdout.contains("dk_secret_value"));
}
