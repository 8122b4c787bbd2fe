//! `docs/openapi.yaml` stays true: every path and method it documents is
//! served by the gateway (not the unknown-route 404 or a 405), and every
//! documented operation has responses.

use serde_json::Value;

use crate::helpers::{Answer, KEY_A, spawn_app};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn every_documented_route_is_served() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");
    let spec: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.len() >= 10, "{} paths", paths.len());

    let app = spawn_app().await;
    let id = uuid::Uuid::now_v7().to_string();
    for (route, item) in paths {
        let url = app.url(&route.replace("{id}", &id));
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let operation = &item[*method];
            assert!(
                operation["responses"]
                    .as_object()
                    .is_some_and(|r| !r.is_empty()),
                "{method} {route}"
            );
            let request = match *method {
                "get" => app.client.get(&url),
                "post" => app
                    .client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body("{}"),
                "delete" => app.client.delete(&url),
                other => panic!("{other} {route}: add it to this test"),
            };
            let answer = Answer::read(request.bearer_auth(KEY_A).send().await.unwrap()).await;
            let unrouted = answer.status == 405
                || (answer.status == 404
                    && answer.body["type"] == "https://dossier.dev/problems/not_found");
            assert!(
                !unrouted,
                "{method} {route} is documented but not served: {} {}",
                answer.status, answer.body
            );
        }
    }
}
