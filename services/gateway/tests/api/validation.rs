//! Bad input: 400 with pointers, 413, 415 — and nothing stored.

use serde_json::{Value, json};

use crate::helpers::{Answer, KEY_A, batch_body, search_body, spawn_app, spawn_app_with};

async fn post_raw(app: &crate::helpers::TestApp, path: &str, body: &str) -> Answer {
    Answer::read(
        app.client
            .post(app.url(path))
            .bearer_auth(KEY_A)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn invalid_bodies_are_400_naming_every_bad_field() {
    let app = spawn_app().await;

    post_raw(&app, "/api/search/people", r#"{"targetAccount": "#)
        .await
        .assert_problem(400, "malformed_json");

    let cases: Vec<(&str, Value, Vec<&str>)> = vec![
        // Unknown field (a typo).
        (
            "/api/search/people",
            json!({"targetAccount": {"domain": "acme.com"}, "limt": 5}),
            vec!["/limt"],
        ),
        // Wrong type.
        (
            "/api/search/people",
            json!({"targetAccount": {"domain": "acme.com"}, "limit": "5"}),
            vec!["/limit"],
        ),
        // Out of range.
        (
            "/api/search/people",
            json!({"targetAccount": {"domain": "acme.com"}, "limit": 101}),
            vec!["/limit"],
        ),
        // A company with no identifier.
        (
            "/api/search/people",
            json!({"targetAccount": {}}),
            vec!["/targetAccount"],
        ),
        // A person with no identifier.
        (
            "/api/enrichment/batch",
            json!({"records": [{"externalId": "7"}]}),
            vec!["/records/0"],
        ),
        // Several bad records, each named.
        (
            "/api/enrichment/batch",
            json!({"records": [
                {"email": "ok@acme.com"},
                {"email": "not-an-email"},
                {"email": "ok2@acme.com"},
                {"fullName": "Ada Lovelace"},
                {"linkedinUrl": "https://example.com/ada"}
            ]}),
            vec!["/records/1/email", "/records/3", "/records/4/linkedinUrl"],
        ),
        // No records.
        (
            "/api/enrichment/batch",
            json!({"records": []}),
            vec!["/records"],
        ),
        // Research needs exactly one subject.
        (
            "/api/research",
            json!({"subject": {}, "depth": "standard"}),
            vec!["/subject"],
        ),
        // Not an object.
        ("/api/research", json!([1, 2]), vec![""]),
    ];
    for (path, body, pointers) in cases {
        let answer = app.post(path, &body).await;
        answer.assert_problem(400, "validation");
        assert_eq!(answer.locations("pointer"), pointers, "{path} {body}");
    }

    // 10,001 records: one error on /records, not 10,001.
    let answer = app.post_batch(&batch_body(10_001)).await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("pointer"), ["/records"]);
    // 10,000 is fine.
    assert_eq!(app.post_batch(&batch_body(10_000)).await.status, 202);

    assert_eq!(app.job_count().await, 1, "only the valid batch was stored");
}

#[tokio::test]
async fn non_json_is_415_and_oversized_is_413() {
    let app = spawn_app_with(|c| c.max_body_bytes = 2048).await;
    for content_type in ["text/plain", "application/xml"] {
        let answer = Answer::read(
            app.client
                .post(app.url("/api/search/people"))
                .bearer_auth(KEY_A)
                .header("content-type", content_type)
                .body(search_body().to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        answer.assert_problem(415, "unsupported_media_type");
    }
    let no_type = Answer::read(
        app.client
            .post(app.url("/api/search/people"))
            .bearer_auth(KEY_A)
            .body(search_body().to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    no_type.assert_problem(415, "unsupported_media_type");

    let big = app.post_batch(&batch_body(200)).await;
    big.assert_problem(413, "payload_too_large");

    // application/*+json and a charset are JSON.
    let answer = Answer::read(
        app.client
            .post(app.url("/api/search/people"))
            .bearer_auth(KEY_A)
            .header(
                "content-type",
                "application/vnd.dossier+json; charset=utf-8",
            )
            .body(search_body().to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(app.job_count().await, 1);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let app = spawn_app().await;
    app.get("/api/nothing", Some(KEY_A))
        .await
        .assert_problem(404, "not_found");
    let answer = app.get("/api/research", Some(KEY_A)).await;
    answer.assert_problem(405, "method_not_allowed");
    assert_eq!(answer.header("allow"), Some("POST"));
    let answer = Answer::read(
        app.client
            .delete(app.url(&format!("/api/operations/{}", uuid::Uuid::now_v7())))
            .bearer_auth(KEY_A)
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_problem(405, "method_not_allowed");
    assert!(answer.header("allow").unwrap().contains("GET"));
}

#[tokio::test]
async fn sync_enrichment_validates_and_is_503_without_a_worker() {
    let app = spawn_app().await;
    let answer = app
        .post("/api/enrichment/person", &json!({"email": "ada@acme.com"}))
        .await;
    answer.assert_problem(503, "enrichment_unavailable");
    assert!(answer.header("retry-after").is_some());
    let answer = app
        .post("/api/enrichment/person", &json!({"fullName": "Ada"}))
        .await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("pointer"), [""]);
}

/// Most bytes any problem answer may take, whatever the input.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// `POST path` with raw bytes as tenant `acme`; asserts the answer is a
/// bounded problem document and returns it decoded.
async fn post_bytes_bounded(app: &crate::helpers::TestApp, path: &str, body: Vec<u8>) -> Answer {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(KEY_A)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    assert!(
        bytes.len() < MAX_PROBLEM_BYTES,
        "a problem answer of {} bytes: {}",
        bytes.len(),
        String::from_utf8_lossy(&bytes[..bytes.len().min(2000)])
    );
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap(),
    }
}

/// Peak resident memory of this test process (the gateway runs in it), in
/// KiB, from `/proc/self/status` `VmHWM`.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// `{"records":[1,1,…,1]}` of exactly `bytes` bytes (odd `bytes`).
fn scalar_records(bytes: usize) -> Vec<u8> {
    let (head, tail) = (&b"{\"records\":["[..], &b"1]}"[..]);
    let items = (bytes - head.len() - tail.len()) / 2;
    let mut body = Vec::with_capacity(bytes);
    body.extend_from_slice(head);
    for _ in 0..items {
        body.extend_from_slice(b"1,");
    }
    body.extend_from_slice(tail);
    body
}

#[tokio::test]
async fn eight_mib_of_scalars_is_one_count_error_in_bounded_memory() {
    let app = spawn_app().await;
    let limit = app.state.max_body_bytes();
    // The largest body the gateway reads: about 4 million scalars.
    let body = scalar_records(limit - 1);
    assert!(body.len() <= limit);
    let items = (body.len() - 15) / 2 + 1;

    let before = peak_rss_kib();
    let answer = post_bytes_bounded(&app, "/api/enrichment/batch", body).await;
    let after = peak_rss_kib();

    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("pointer"), ["/records"], "{}", answer.body);
    assert_eq!(answer.body["errorCount"], 1, "{}", answer.body);
    let detail = answer.body["errors"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("10000"), "names the limit: {detail}");
    assert!(
        detail.contains(&items.to_string()),
        "names the count: {detail}"
    );
    let growth_mib = (after.saturating_sub(before)) / 1024;
    eprintln!("peak RSS before {before} KiB, after {after} KiB: +{growth_mib} MiB");
    assert!(
        growth_mib < 64,
        "reading an 8 MiB body grew the peak RSS by {growth_mib} MiB ({before} → {after} KiB)"
    );
    assert_eq!(app.job_count().await, 0);
}

#[tokio::test]
async fn one_record_too_many_is_one_count_error() {
    let app = spawn_app().await;
    let answer = app.post_batch(&batch_body(10_001)).await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("pointer"), ["/records"]);
    assert_eq!(answer.body["errorCount"], 1, "{}", answer.body);
    let detail = answer.body["errors"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("10000") && detail.contains("10001"),
        "{detail}"
    );
}

#[tokio::test]
async fn many_invalid_records_list_the_first_hundred_and_count_all() {
    let app = spawn_app().await;
    let records: Vec<Value> = (0..5_000)
        .map(|i| json!({ "email": format!("not-an-email-{i}") }))
        .collect();
    let body = serde_json::to_vec(&json!({ "records": records })).unwrap();
    let answer = post_bytes_bounded(&app, "/api/enrichment/batch", body).await;
    answer.assert_problem(400, "validation");
    let pointers = answer.locations("pointer");
    assert_eq!(pointers.len(), 100);
    assert_eq!(pointers[0], "/records/0/email");
    assert_eq!(pointers[99], "/records/99/email");
    assert_eq!(answer.body["errorCount"], 5_000, "{}", answer.body);
    let detail = answer.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("5000") && detail.contains("100"),
        "{detail}"
    );

    // Shape errors too: 5,000 records of the wrong type.
    let body = serde_json::to_vec(&json!({ "records": vec![7; 5_000] })).unwrap();
    let answer = post_bytes_bounded(&app, "/api/enrichment/batch", body).await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("pointer").len(), 100);
    assert_eq!(answer.body["errorCount"], 5_000, "{}", answer.body);
    assert_eq!(app.job_count().await, 0);
}

#[tokio::test]
async fn every_list_is_counted_before_its_items() {
    let app = spawn_app().await;
    let many = |n: usize| vec![Value::from(1); n];
    let cases = [
        (
            "/api/search/people",
            json!({"targetAccount": {"domain": "acme.com"}, "filters": {"titles": many(100_000)}}),
            "/filters/titles",
        ),
        (
            "/api/search/people",
            json!({"targetAccount": {"domain": "acme.com"}, "filters": {"seniorities": many(100_000)}}),
            "/filters/seniorities",
        ),
        (
            "/api/search/people",
            json!({"targetAccount": {"domain": "acme.com"}, "filters": {"keywords": many(100_000)}}),
            "/filters/keywords",
        ),
        (
            "/api/research",
            json!({"subject": {"company": {"name": "Acme"}}, "questions": many(100_000)}),
            "/questions",
        ),
    ];
    for (path, body, pointer) in cases {
        let answer = post_bytes_bounded(&app, path, serde_json::to_vec(&body).unwrap()).await;
        answer.assert_problem(400, "validation");
        assert_eq!(answer.locations("pointer"), [pointer], "{}", answer.body);
        assert_eq!(answer.body["errorCount"], 1, "{}", answer.body);
    }
    assert_eq!(app.job_count().await, 0);
}

#[tokio::test]
async fn echoed_names_and_values_are_cut_short() {
    let app = spawn_app().await;
    let huge = "a".repeat(8_000_000);

    // An unknown field with an 8 MB name.
    let body = format!(r#"{{"records":[{{"email":"a@acme.com"}}],"{huge}":1}}"#);
    let answer = post_bytes_bounded(&app, "/api/enrichment/batch", body.into_bytes()).await;
    answer.assert_problem(400, "validation");
    let pointer = &answer.locations("pointer")[0];
    assert!(
        pointer.starts_with("/aaaa") && pointer.len() < 1_000,
        "{pointer}"
    );

    // An unknown field name inside every one of 1,000 records.
    let long = "b".repeat(8_000);
    let records: Vec<Value> = (0..1_000).map(|_| json!({ long.clone(): 1 })).collect();
    let body = serde_json::to_vec(&json!({ "records": records })).unwrap();
    let answer = post_bytes_bounded(&app, "/api/enrichment/batch", body).await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.body["errorCount"], 1_000, "{}", answer.body);

    // An 8 MB value where an enum is expected (serde echoes the value).
    let body = format!(r#"{{"subject":{{"company":{{"name":"A"}}}},"depth":"{huge}"}}"#);
    let answer = post_bytes_bounded(&app, "/api/research", body.into_bytes()).await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("pointer"), ["/depth"]);

    // An over-long free-text field is refused by its length, not echoed.
    let body = format!(r#"{{"records":[{{"fullName":"{huge}","companyName":"Acme"}}]}}"#);
    let answer = post_bytes_bounded(&app, "/api/enrichment/batch", body.into_bytes()).await;
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("pointer"), ["/records/0/fullName"]);
    assert!(
        answer.body["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    assert_eq!(app.job_count().await, 0);
}

#[tokio::test]
async fn query_parameters_are_listed_boundedly() {
    let app = spawn_app().await;
    // Thousands of unknown (and repeated) parameters with long names.
    let name = "p".repeat(200);
    let query: Vec<String> = (0..250).map(|i| format!("{name}{i}=1")).collect();
    let url = app.url(&format!("/api/operations?{}", query.join("&")));
    let response = app.client.get(url).bearer_auth(KEY_A).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.len() < MAX_PROBLEM_BYTES, "{} bytes", bytes.len());
    let answer = Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap(),
    };
    answer.assert_problem(400, "validation");
    let parameters = answer.locations("parameter");
    assert_eq!(parameters.len(), 100);
    assert!(parameters.iter().all(|p| p.len() < 200), "{parameters:?}");
    assert_eq!(answer.body["errorCount"], 250, "{}", answer.body);
}

#[tokio::test]
async fn deep_nesting_is_a_client_error() {
    let app = spawn_app().await;
    for depth in [200, 100_000] {
        let body = format!(
            r#"{{"records":[{}{}]}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let answer = post_bytes_bounded(&app, "/api/enrichment/batch", body.into_bytes()).await;
        answer.assert_problem(400, "malformed_json");
    }
    // Nesting within the limit, where a record belongs, is a shape error.
    let body = format!(r#"{{"records":[{}{}]}}"#, "[".repeat(100), "]".repeat(100));
    let answer = post_bytes_bounded(&app, "/api/enrichment/batch", body.into_bytes()).await;
    answer.assert_problem(400, "validation");
    assert_eq!(app.job_count().await, 0);
}
