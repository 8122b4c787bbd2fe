//! One trace per request: the request id is the trace id unless the caller
//! sent a `traceparent`, and the trace context travels with the job (in its
//! headers).

use dossier_contracts::Kind;

use crate::helpers::{KEY_A, search_body, spawn_app};

/// The trace id (32 hex digits) of a `traceparent`.
fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap()
}

#[tokio::test]
async fn without_traceparent_the_request_id_is_the_trace_id() {
    let app = spawn_app().await;
    let accepted = app.accept_search(KEY_A).await;
    let request_id = accepted.request_id();

    let (job, headers) = app.last_job(Kind::SearchPeople).await;
    assert_eq!(job.operation_id, accepted.id());
    let header = |name: &str| headers.get(name).unwrap().as_str().to_owned();
    assert_eq!(header("Dossier-Request-Id"), request_id.to_string());
    assert_eq!(
        trace_id(&header("traceparent")),
        request_id.simple().to_string()
    );
}

#[tokio::test]
async fn with_traceparent_the_callers_trace_continues_with_a_fresh_request_id() {
    let app = spawn_app().await;
    let incoming = "0af7651916cd43dd8448eb211c80319c";
    let accepted = app
        .post_with(
            "/api/search/people",
            &search_body(),
            KEY_A,
            &[("traceparent", &format!("00-{incoming}-b7ad6b7169203331-01"))],
        )
        .await;
    assert_eq!(accepted.status, 202);
    let request_id = accepted.request_id();
    assert_ne!(request_id.simple().to_string(), incoming);

    let (_, headers) = app.last_job(Kind::SearchPeople).await;
    let header = |name: &str| headers.get(name).unwrap().as_str().to_owned();
    assert_eq!(trace_id(&header("traceparent")), incoming);
    assert_eq!(header("Dossier-Request-Id"), request_id.to_string());
}
