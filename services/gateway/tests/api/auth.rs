//! Authentication over real HTTP.

use crate::helpers::{Answer, KEY_A, KEY_G, search_body, spawn_app};

#[tokio::test]
async fn keys_are_required_and_either_header_works() {
    let app = spawn_app().await;

    let me = app.get("/api/me", Some(KEY_A)).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["data"]["tenantId"], "acme");
    assert_eq!(me.body["data"]["keyId"], "key_a");
    me.request_id();

    let by_header = Answer::read(
        app.client
            .get(app.url("/api/me"))
            .header("x-api-key", KEY_G)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_header.status, 200);
    assert_eq!(by_header.body["data"]["tenantId"], "globex");

    for (name, value) in [
        ("authorization", "Bearer not-a-key"),
        ("authorization", "Basic ZGs6eA=="),
        ("authorization", "Bearer"),
        ("authorization", KEY_A),
        ("x-api-key", "not-a-key"),
    ] {
        let answer = Answer::read(
            app.client
                .get(app.url("/api/me"))
                .header(name, value)
                .send()
                .await
                .unwrap(),
        )
        .await;
        answer.assert_problem(401, "unauthorized");
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Bearer"),
            "{name}: {value}"
        );
    }
    let none = app.get("/api/me", None).await;
    none.assert_problem(401, "unauthorized");

    // Writes need a key too, and nothing is accepted without one.
    let answer = Answer::read(
        app.client
            .post(app.url("/api/search/people"))
            .json(&search_body())
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_problem(401, "unauthorized");
    assert_eq!(app.job_count().await, 0);
}
