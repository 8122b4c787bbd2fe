//! `GET /api/operations/{id}/events`: the operation's states as server-sent
//! events, driven here by publishing worker events by hand, so every state
//! the stream must show is known.

use std::time::Duration;

use dossier_contracts::Kind;
use dossier_contracts::v1::{self, operation_event};
use dossier_stack::sse::{EventStream, SseEvent, SseItem};
use serde_json::{Value, json};

use crate::helpers::{KEY_A, KEY_G, TestApp, spawn_app, spawn_app_with, wait_for_progress};

async fn started(app: &TestApp, id: &str) {
    app.publish_event(
        id,
        Kind::SearchPeople,
        operation_event::Event::Started(v1::Started {}),
    )
    .await;
}

async fn progressed(app: &TestApp, id: &str, progress: u32) {
    app.publish_event(
        id,
        Kind::SearchPeople,
        operation_event::Event::Progressed(v1::Progressed { progress }),
    )
    .await;
}

fn search_result() -> Value {
    json!({ "data": [{ "fullName": "Ada", "companyMatchEvidence": "company_page" }],
            "meta": { "providerOutcome": "hit" } })
}

async fn succeeded(app: &TestApp, id: &str) {
    app.succeed_operation(id, &search_result()).await;
}

fn ids(events: &[SseEvent]) -> Vec<u64> {
    events.iter().map(SseEvent::number).collect()
}

async fn next(stream: &mut EventStream) -> SseEvent {
    stream.next_event().await.expect("an event, not the end")
}

#[tokio::test]
async fn the_stream_sends_the_current_state_every_change_and_the_terminal_result_then_closes() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();
    let mut stream = app.open_events(&id, KEY_A, None).await.stream();
    assert!(stream.headers.get("x-request-id").is_some());
    assert_eq!(
        stream.headers.get("cache-control").unwrap(),
        "no-cache",
        "{:?}",
        stream.headers
    );

    let queued = next(&mut stream).await;
    assert_eq!(queued.event.as_deref(), Some("operation"));
    assert_eq!(queued.id.as_deref(), Some("10000"));
    let body = queued.json();
    assert_eq!(body["id"], id);
    assert_eq!(body["status"], "queued");
    assert_eq!(body["pollUrl"], app.url(&format!("/api/operations/{id}")));
    let request_id = stream
        .headers
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        body["meta"]["requestId"], request_id,
        "the shape GET answers"
    );

    started(&app, &id).await;
    let processing = next(&mut stream).await;
    assert_eq!(processing.id.as_deref(), Some("20000"));
    assert_eq!(processing.json()["status"], "processing");

    progressed(&app, &id, 40).await;
    let forty = next(&mut stream).await;
    assert_eq!(
        (forty.number(), forty.json()["progress"].clone()),
        (20400, json!(40))
    );

    succeeded(&app, &id).await;
    let terminal = next(&mut stream).await;
    assert_eq!(terminal.event.as_deref(), Some("terminal"));
    assert_eq!(terminal.number(), 31000);
    let body = terminal.json();
    assert_eq!(body["status"], "succeeded");
    assert_eq!(body["progress"], 100);
    assert_eq!(
        body["result"],
        search_result(),
        "the result, as GET shows it"
    );
    assert!(
        stream.next_event().await.is_none(),
        "the stream ends after the terminal event"
    );
}

/// Events are the states a client can observe: one per distinct (status,
/// progress, cancelRequested). A client that comes back with the id of the
/// last event it saw gets each later state the operation is in or reaches,
/// none twice; states it went through while nobody watched are coalesced
/// into the current one, and the terminal event always comes.
#[tokio::test]
async fn reconnecting_with_the_last_event_id_delivers_exactly_the_rest() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();
    started(&app, &id).await;
    progressed(&app, &id, 30).await;
    wait_for_progress(&app, &id, 30).await;

    let mut first = app.open_events(&id, KEY_A, None).await.stream();
    let seen = next(&mut first).await;
    assert_eq!(seen.number(), 20300, "the current state first");
    drop(first);

    progressed(&app, &id, 60).await;
    wait_for_progress(&app, &id, 60).await;
    // Resumed from 20300 by header, from 20600 by header, and from 20300
    // by query (what a client without header control sends).
    let mut from_30 = app.open_events(&id, KEY_A, Some("20300")).await.stream();
    let mut from_60 = app.open_events(&id, KEY_A, Some("20600")).await.stream();
    let mut by_query = app
        .open_events_at(
            &format!("/api/operations/{id}/events?lastEventId=20300"),
            KEY_A,
            &[],
        )
        .await
        .stream();
    assert_eq!(next(&mut from_30).await.number(), 20600);
    assert_eq!(next(&mut by_query).await.number(), 20600);

    progressed(&app, &id, 80).await;
    assert_eq!(
        next(&mut from_60).await.number(),
        20800,
        "nothing before the change"
    );
    assert_eq!(next(&mut from_30).await.number(), 20800);
    let cancel = app.cancel_operation(&id, KEY_A).await;
    assert_eq!(cancel.status, 202, "{}", cancel.body);
    let requested = next(&mut from_30).await;
    assert_eq!(
        requested.number(),
        20801,
        "a cancellation request is a state too"
    );
    assert_eq!(requested.json()["cancelRequested"], true);
    succeeded(&app, &id).await;

    let rest_30 = from_30.rest().await;
    assert_eq!(ids(&rest_30), [31001]);
    assert_eq!(rest_30[0].json()["result"], search_result());
    assert_eq!(ids(&from_60.rest().await), [20801, 31001]);
    assert_eq!(ids(&by_query.rest().await), [20800, 20801, 31001]);

    // Past the end: the header wins over the query, and a client that has
    // the terminal event is told to stop reconnecting (204).
    let done = app
        .open_events_at(
            &format!("/api/operations/{id}/events?lastEventId=20300"),
            KEY_A,
            &[("last-event-id", "31001")],
        )
        .await
        .answer();
    assert_eq!(done.status, 204, "{}", done.body);
    // Without an id, a finished operation streams its terminal event alone.
    let mut again = app.open_events(&id, KEY_A, None).await.stream();
    assert_eq!(ids(&again.rest().await), [31001]);
}

#[tokio::test]
async fn another_tenants_or_a_missing_operation_is_404_before_any_stream() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();
    app.open_events(&id, KEY_G, None)
        .await
        .answer()
        .assert_problem(404, "operation_not_found");
    let missing = uuid::Uuid::now_v7().to_string();
    app.open_events(&missing, KEY_A, None)
        .await
        .answer()
        .assert_problem(404, "operation_not_found");
    app.open_events("not-a-uuid", KEY_A, None)
        .await
        .answer()
        .assert_problem(404, "operation_not_found");
    app.open_events(&id, "dk_wrong", None)
        .await
        .answer()
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn bad_last_event_ids_and_unknown_parameters_are_400_naming_them() {
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();
    for bad in ["abc", "-1", "99999", "10002", "21010", "1e4"] {
        let answer = app.open_events(&id, KEY_A, Some(bad)).await.answer();
        answer.assert_problem(400, "validation");
        assert_eq!(answer.locations("header"), ["Last-Event-ID"], "{bad}");
    }
    let path = format!("/api/operations/{id}/events?lastEventId=x&color=red");
    let answer = app.open_events_at(&path, KEY_A, &[]).await.answer();
    answer.assert_problem(400, "validation");
    assert_eq!(answer.locations("parameter"), ["lastEventId", "color"]);
}

#[tokio::test]
async fn a_quiet_stream_sends_heartbeat_comments() {
    let app = spawn_app_with(|c| c.sse_heartbeat = Duration::from_millis(100)).await;
    let id = app.accept_search(KEY_A).await.id();
    let mut stream = app.open_events(&id, KEY_A, None).await.stream();
    assert_eq!(next(&mut stream).await.number(), 10000);
    let mut heartbeats = 0;
    while heartbeats < 2 {
        match stream.next_item().await.expect("open") {
            SseItem::Comment(_) => heartbeats += 1,
            SseItem::Event(event) => panic!("nothing changed: {event:?}"),
        }
    }
    // The stream still carries changes after them.
    started(&app, &id).await;
    assert_eq!(next(&mut stream).await.number(), 20000);
}

/// Streams are long-lived: they have their own limit, and an open stream
/// holds none of the in-flight limit of ordinary requests.
#[tokio::test]
async fn streams_have_their_own_limit_and_leave_requests_room() {
    let app = spawn_app_with(|c| {
        c.max_in_flight = 2;
        c.max_streams = 2;
    })
    .await;
    let id = app.accept_search(KEY_A).await.id();
    let mut one = app.open_events(&id, KEY_A, None).await.stream();
    let mut two = app.open_events(&id, KEY_A, None).await.stream();
    next(&mut one).await;
    next(&mut two).await;

    let full = app.open_events(&id, KEY_A, None).await.answer();
    full.assert_problem(503, "too_many_streams");
    assert!(full.header("retry-after").is_some());
    for _ in 0..5 {
        let polled = app.get_operation(&id, KEY_A).await;
        assert_eq!(polled.status, 200, "{}", polled.body);
    }

    drop(one);
    let mut three = dossier_testkit::wait_for(
        "a stream slot to free up",
        crate::helpers::DEADLINE,
        || async {
            match app.open_events(&id, KEY_A, None).await {
                dossier_stack::sse::Opened::Stream(stream) => Some(stream),
                dossier_stack::sse::Opened::Answer(answer) => {
                    answer.assert_problem(503, "too_many_streams");
                    None
                }
            }
        },
    )
    .await;
    assert_eq!(next(&mut three).await.number(), 10000);
    app.fail_operation(&id).await;
    assert_eq!(ids(&two.rest().await), [30000]);
}

/// A gateway that shuts down ends its streams (the client reconnects
/// elsewhere with its last event id) instead of holding its shutdown for
/// the whole grace period.
#[tokio::test]
async fn streams_end_when_the_gateway_shuts_down() {
    let mut app = spawn_app_with(|c| c.shutdown_grace = Duration::from_secs(600)).await;
    let id = app.accept_search(KEY_A).await.id();
    let mut stream = app.open_events(&id, KEY_A, None).await.stream();
    assert_eq!(next(&mut stream).await.number(), 10000);
    tokio::time::timeout(crate::helpers::DEADLINE, app.stop_gateway())
        .await
        .expect("the gateway stops without waiting out its grace for open streams");
    assert!(stream.next_event().await.is_none());
}
