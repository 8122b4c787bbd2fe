//! `dossier enrich`: a CSV round trip of thousands of rows, batches, and
//! resuming without submitting a finished batch again.

use std::collections::HashMap;

use serde_json::Value;

use crate::helpers::{Workers, dossier, known_emails, operations, stack};

const BATCH: &str = "enrichment.batch";

/// What the API says row `i` of the round-trip file is.
fn expected(i: usize) -> &'static str {
    if i % 500 == 7 {
        "invalid"
    } else if i.is_multiple_of(3) {
        "matched"
    } else {
        "not_found"
    }
}

#[tokio::test]
async fn a_csv_of_thousands_of_rows_comes_back_in_order_with_its_columns_and_true_counts() {
    let stack = stack(Workers::ENRICHMENT).await;
    let dir = tempfile::tempdir().unwrap();
    let known = known_emails();
    let rows = 3_000;
    let mut input = csv::Writer::from_path(dir.path().join("people.csv")).unwrap();
    input
        .write_record(["row", "Work Email", "Notes", "Owner"])
        .unwrap();
    for i in 0..rows {
        let email = match expected(i) {
            // Every 500th row (from the 8th) is refused by the API: a
            // malformed email, or no identifier at all.
            "invalid" if i % 1000 == 7 => "not-an-email".to_owned(),
            "invalid" => String::new(),
            "matched" => known[i % known.len()].clone(),
            _ => format!("nobody.{i}@example.com"),
        };
        let notes = format!("call back, \"soon\" #{i}");
        input
            .write_record([i.to_string(), email, notes, "sales".to_owned()])
            .unwrap();
    }
    input.flush().unwrap();
    drop(input);

    let run = dossier(
        &stack,
        dir.path(),
        &["enrich", "people.csv", "-o", "enriched.csv"],
    )
    .await;
    // Some rows were refused: the run is partial.
    let run = run.expect(1);

    let mut output = csv::Reader::from_path(dir.path().join("enriched.csv")).unwrap();
    let headers = output.headers().unwrap().clone();
    assert_eq!(
        &headers.iter().take(4).collect::<Vec<_>>(),
        &["row", "Work Email", "Notes", "Owner"]
    );
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (status, reason, email) = (
        column("dossier_status"),
        column("dossier_reason"),
        column("dossier_email"),
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut seen = 0;
    for (i, record) in output.records().enumerate() {
        let record = record.unwrap();
        seen += 1;
        // In input order, the input's own columns unchanged.
        assert_eq!(&record[0], i.to_string(), "row order");
        assert_eq!(&record[2], format!("call back, \"soon\" #{i}"));
        assert_eq!(&record[3], "sales");
        assert_eq!(&record[status], expected(i), "row {i}: {record:?}");
        match expected(i) {
            "matched" => assert_eq!(record[email].to_lowercase(), record[1].to_lowercase()),
            "invalid" => assert!(!record[reason].is_empty(), "row {i} says why: {record:?}"),
            _ => {}
        }
        *counts.entry(record[status].to_owned()).or_default() += 1;
    }
    assert_eq!(seen, rows, "one output row per input row");
    // The summary agrees with the file.
    let summary = format!(
        "{} matched, {} not found, 0 failed, {} invalid",
        counts["matched"], counts["not_found"], counts["invalid"]
    );
    assert!(run.stdout.contains(&summary), "{summary}: {run:#?}");
    assert_eq!(counts["invalid"], 6);
    // One operation for the whole file, and the resume file is gone.
    assert_eq!(operations(&stack, BATCH).await.len(), 1);
    assert!(!dir.path().join("enriched.csv.dossier-state.json").exists());
}

#[tokio::test]
async fn a_file_past_the_batch_size_is_split_and_a_rerun_resumes_without_submitting_twice() {
    let stack = stack(Workers::ENRICHMENT).await;
    let dir = tempfile::tempdir().unwrap();
    let known = known_emails();
    let lines: Vec<String> = (0..25)
        .map(|i| {
            let email = if i % 2 == 0 {
                known[i].clone()
            } else {
                format!("x{i}@example.com")
            };
            format!(r#"{{"seq":{i},"email":"{email}","extra":{{"keep":[{i},"me"]}}}}"#)
        })
        .collect();
    std::fs::write(dir.path().join("people.jsonl"), lines.join("\n") + "\n").unwrap();
    let args = [
        "enrich",
        "people.jsonl",
        "-o",
        "out.jsonl",
        "--batch-size",
        "10",
    ];
    let state_path = dir.path().join("out.jsonl.dossier-state.json");
    let read_state =
        || -> Value { serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap() };

    // Interrupted after the first batch: its operation is remembered.
    let mut first = args.to_vec();
    first.extend(["--stop-after-batches", "1"]);
    dossier(&stack, dir.path(), &first).await.expect(130);
    let state = read_state();
    assert_eq!(
        state["batches"].as_array().unwrap().len(),
        3,
        "25 rows in batches of 10: {state}"
    );
    assert_eq!(state["batches"][0]["done"], true);
    assert_eq!(state["batches"][1]["done"], false);
    let batch0 = state["batches"][0]["operationId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        operations(&stack, BATCH).await,
        std::slice::from_ref(&batch0)
    );
    assert!(
        !dir.path().join("out.jsonl").exists(),
        "no output until complete"
    );

    // Again, interrupted after one more; then the second batch's operation
    // id is lost, as if the client had crashed right after submitting it.
    dossier(&stack, dir.path(), &first).await.expect(130);
    assert_eq!(
        operations(&stack, BATCH).await.len(),
        2,
        "batch 0 was not submitted again"
    );
    let mut state = read_state();
    let batch1 = state["batches"][1]["operationId"]
        .as_str()
        .unwrap()
        .to_owned();
    state["batches"][1] = serde_json::json!({ "start": 10, "len": 10, "done": false });
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();

    // The rerun finishes: batch 1 submitted again with the same
    // idempotency key is the same operation; only batch 2 is new.
    let run = dossier(&stack, dir.path(), &args).await.expect(0);
    assert!(
        run.stdout
            .contains("25 rows in 3 batches — 13 matched, 12 not found, 0 failed, 0 invalid"),
        "{run:#?}"
    );
    let ops = operations(&stack, BATCH).await;
    assert_eq!(ops.len(), 3, "three batches, three operations: {ops:?}");
    assert!(ops.contains(&batch0) && ops.contains(&batch1));

    // Each line as written, plus its outcome, in order.
    let output = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    let out: Vec<&str> = output.lines().collect();
    assert_eq!(out.len(), 25);
    for (i, (line, input)) in out.iter().zip(&lines).enumerate() {
        assert!(
            line.starts_with(&input[..input.len() - 1]),
            "line {i} keeps the input: {line}"
        );
        let value: Value = serde_json::from_str(line).unwrap();
        let want = if i % 2 == 0 { "matched" } else { "not_found" };
        assert_eq!(value["dossier"]["status"], want, "{line}");
        assert!(value["dossier"].get("index").is_none());
    }
    assert!(!state_path.exists());
}
