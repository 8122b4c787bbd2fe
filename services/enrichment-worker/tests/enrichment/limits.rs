//! Both edges of the contract's size limits, through the whole stack: the
//! largest valid batch (10,000 records, every field filled, the body at the
//! body limit) is accepted and runs to the end; one byte or one record more
//! is refused with a problem that names what was exceeded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dossier_contracts::api::MAX_BATCH_RECORDS;
use dossier_contracts::limits::MAX_BODY_BYTES;
use dossier_contracts::{Kind, Status};
use dossier_stack::{Answer, KEY_A, TestApp, spawn_app};
use dossier_testkit::wait_for;
use serde_json::{Value, json};

use crate::helpers::{Probe, config, start_worker};

/// Longest a test waits for the largest batch to end: it is 10,000 records
/// of several lookups each on a shared 2-CPU machine in a debug build.
const LARGEST_BATCH_DEADLINE: Duration = Duration::from_secs(300);

/// Longest accepted free-text value (the contract's `maxLength`).
const MAX_TEXT_CHARS: usize = 500;

/// Record `i` with every field filled, its padding spread over the fields
/// whose padding the matcher ignores (the profile URL's query, the domain
/// URL's path, the caller's id), each kept within its maximum length.
fn full_record(i: usize, mut pad: usize) -> Value {
    let mut take = |base: &str| {
        let room = MAX_TEXT_CHARS - base.len();
        let n = pad.min(room);
        pad -= n;
        format!("{base}{}", "x".repeat(n))
    };
    let external_id = take(&format!("ext-{i:05}-"));
    let linkedin_url = take(&format!("https://www.linkedin.com/in/person-{i:05}?ref="));
    let company_domain = take(&format!("https://example-{i:05}.com/"));
    assert_eq!(pad, 0, "the padding fits the fields");
    json!({
        "email": format!("person.{i:05}@example.com"),
        "linkedinUrl": linkedin_url,
        "fullName": format!("Person Number {i:05}"),
        "companyName": format!("Example Holdings {i:05}"),
        "companyDomain": company_domain,
        "externalId": external_id,
    })
}

/// A batch of `n` full records whose compact JSON is exactly `size` bytes
/// (or as small as full records get, with `size` 0); the records too.
fn batch_of_size(n: usize, size: usize) -> (Vec<u8>, Vec<Value>) {
    let encode = |records: &[Value]| serde_json::to_vec(&json!({ "records": records })).unwrap();
    let unpadded: Vec<Value> = (0..n).map(|i| full_record(i, 0)).collect();
    let missing = size.saturating_sub(encode(&unpadded).len());
    let records: Vec<Value> = (0..n)
        .map(|i| full_record(i, missing / n + usize::from(i < missing % n)))
        .collect();
    let body = encode(&records);
    if size > 0 {
        assert_eq!(body.len(), size, "the body is exactly the size asked for");
    }
    (body, records)
}

/// `POST /api/enrichment/batch` of raw bytes as tenant `acme`.
async fn post_raw(app: &TestApp, body: Vec<u8>) -> Answer {
    let request = app
        .client
        .post(app.url("/api/enrichment/batch"))
        .bearer_auth(KEY_A)
        .header("content-type", "application/json")
        .body(body);
    Answer::read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn the_largest_valid_batch_runs_to_the_end() {
    let app = spawn_app().await;
    let _worker = start_worker(config(&app), Arc::new(Probe::default())).await;

    let (body, records) = batch_of_size(MAX_BATCH_RECORDS, MAX_BODY_BYTES);
    let started = Instant::now();
    let accepted = post_raw(&app, body).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.id();

    // The job on the stream is small: it refers to the stored payload.
    let (job, _) = app.last_job(Kind::EnrichmentBatch).await;
    assert!(job.payload_json.is_empty(), "the payload is not inline");
    let reference = job.payload_ref.expect("a payload reference");
    assert!(reference.size > 0);
    assert_eq!(reference.sha256.len(), 64);

    let op = wait_for(
        "the largest batch to end",
        LARGEST_BATCH_DEADLINE,
        || async {
            let answer = app.get_operation(&id, KEY_A).await;
            let status = answer.body["status"]
                .as_str()
                .and_then(|s| s.parse::<Status>().ok());
            (answer.status == 200 && status.is_some_and(Status::is_terminal)).then_some(answer.body)
        },
    )
    .await;
    // A figure for the report, not an assertion.
    eprintln!(
        "largest batch: {MAX_BODY_BYTES} bytes, {MAX_BATCH_RECORDS} records, terminal after {:?}",
        started.elapsed()
    );
    assert!(
        ["succeeded", "partial_success"].contains(&op["status"].as_str().unwrap()),
        "{}",
        op["status"]
    );
    assert_eq!(op["result"]["meta"]["total"], MAX_BATCH_RECORDS);
    assert_eq!(op["result"]["meta"]["processed"], MAX_BATCH_RECORDS);

    // Every record answered once, in order, through the result pages.
    let items = app.all_result_items(&op, KEY_A).await;
    assert_eq!(items.len(), MAX_BATCH_RECORDS);
    for (i, (item, record)) in items.iter().zip(&records).enumerate() {
        assert_eq!(item["index"], i, "{item}");
        assert_eq!(item["externalId"], record["externalId"], "record {i}");
    }
}

#[tokio::test]
async fn one_byte_or_one_record_over_the_limits_is_refused() {
    let app = spawn_app().await;

    // One byte over the body limit: 413, naming the limit.
    let (body, _) = batch_of_size(MAX_BATCH_RECORDS, MAX_BODY_BYTES + 1);
    let answer = post_raw(&app, body).await;
    answer.assert_problem(413, "payload_too_large");
    let detail = answer.body["detail"].as_str().unwrap();
    assert!(
        detail.contains(&MAX_BODY_BYTES.to_string()),
        "the problem names the limit: {detail}"
    );

    // One record over, well inside the body limit: 400 at `/records`.
    let (body, _) = batch_of_size(MAX_BATCH_RECORDS + 1, 0);
    assert!(body.len() < MAX_BODY_BYTES);
    let answer = post_raw(&app, body).await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("pointer"), ["/records"]);

    assert_eq!(app.job_count().await, 0, "nothing was stored");
}
