//! The OpenAPI document is generated from the code and stays true: it is
//! served at `/openapi.json`, `docs/openapi.yaml` is the same document
//! (`DOSSIER_UPDATE_OPENAPI=1 cargo nextest run -p gateway openapi_doc_is_current`
//! rewrites it), every path and method it documents is served, and the
//! requests it calls valid are the ones the gateway accepts.

use serde_json::{Value, json};

use crate::helpers::{Answer, KEY_A, spawn_app};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");

#[test]
fn openapi_doc_is_current() {
    let generated = gateway::openapi::yaml().unwrap();
    if std::env::var_os("DOSSIER_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap();
    assert!(
        committed == generated,
        "docs/openapi.yaml is not the document the code generates: run \
         `DOSSIER_UPDATE_OPENAPI=1 cargo nextest run -p gateway openapi_doc_is_current` \
         and commit the result"
    );
}

#[test]
fn every_reference_resolves() {
    fn walk(value: &Value, spec: &Value, missing: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let pointer = reference.trim_start_matches('#');
                    if spec.pointer(pointer).is_none() {
                        missing.push(reference.clone());
                    }
                }
                map.values().for_each(|v| walk(v, spec, missing));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, spec, missing)),
            _ => {}
        }
    }
    let spec = gateway::openapi::document();
    let mut missing = Vec::new();
    walk(&spec, &spec, &mut missing);
    assert!(missing.is_empty(), "references to nothing: {missing:?}");
}

#[tokio::test]
async fn the_document_is_served_without_a_key() {
    let app = spawn_app().await;
    let served = app.get("/openapi.json", None).await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(served.header("content-type"), Some("application/json"));
    assert_eq!(served.body, gateway::openapi::document());
    assert_eq!(served.body["openapi"], "3.1.0");
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let spec = gateway::openapi::document();
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.len() >= 14, "{} paths", paths.len());

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
            // Every answer is one the document lists for the route.
            assert!(
                operation["responses"]
                    .get(answer.status.to_string())
                    .is_some(),
                "{method} {route} answered {} which the document does not list: {}",
                answer.status,
                answer.body
            );
        }
    }
}

/// Whether `body` is valid against the schema at `pointer` in the document.
fn valid(spec: &Value, pointer: &str, body: &Value) -> bool {
    // The document itself as the root schema, pointing at the one wanted:
    // its other members are not JSON Schema keywords and are ignored, and
    // every `#/components/...` reference resolves in it.
    let mut schema = spec.clone();
    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
    schema["$ref"] = Value::from(format!("#{fragment}"));
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    validator.is_valid(body)
}

/// Where a route's request body schema is.
fn request_schema(path: &str) -> String {
    format!(
        "/paths/{}/post/requestBody/content/application~1json/schema",
        path.replace('/', "~1")
    )
}

#[tokio::test]
async fn requests_the_document_calls_valid_are_accepted_and_the_rest_refused() {
    let spec = gateway::openapi::document();
    let app = spawn_app().await;
    let person = "/api/enrichment/person";
    let batch = "/api/enrichment/batch";
    let search = "/api/search/people";
    let research = "/api/research";
    let cases = [
        // Empty and blank strings: not valid, and refused.
        (batch, json!({"records": [{"email": ""}]})),
        (
            batch,
            json!({"records": [{"email": "a@b.co", "fullName": ""}]}),
        ),
        (
            batch,
            json!({"records": [{"email": "a@b.co", "externalId": "  "}]}),
        ),
        (search, json!({"targetAccount": {"name": ""}})),
        (
            search,
            json!({"targetAccount": {"domain": "acme.com"}, "filters": {"titles": [" "]}}),
        ),
        (
            research,
            json!({"subject": {"company": {"name": "Acme"}}, "questions": [""]}),
        ),
        // Nothing that identifies: not valid, and refused.
        (batch, json!({"records": [{}]})),
        (batch, json!({"records": [{"fullName": "Jane Doe"}]})),
        (batch, json!({"records": [{"email": null}]})),
        (search, json!({"targetAccount": {}})),
        // Both subjects, or none: not valid, and refused.
        (
            research,
            json!({"subject": {"company": {"name": "Acme"}, "person": {"email": "a@b.co"}}}),
        ),
        (research, json!({"subject": {}})),
        (research, json!({"subject": {"company": null}})),
        // Malformed identifiers.
        (batch, json!({"records": [{"email": "a@b"}]})),
        (
            batch,
            json!({"records": [{"linkedinUrl": "https://example.com/in/jane"}]}),
        ),
        (search, json!({"targetAccount": {"domain": "localhost"}})),
        // Valid, and accepted.
        (
            batch,
            json!({"records": [{"email": "a@b.co"}], "onInvalidRecord": "reject"}),
        ),
        (
            batch,
            json!({"records": [{"fullName": "Jane Doe", "companyDomain": "https://www.acme.com/about"}]}),
        ),
        (
            batch,
            json!({"records": [{"linkedinUrl": "linkedin.com/in/jane-doe"}]}),
        ),
        (
            search,
            json!({"targetAccount": {"domain": "www.ab"}, "limit": 90.0}),
        ),
        (
            search,
            json!({"targetAccount": {"linkedinHandle": "acme-corp"}, "filters": {"seniorities": ["vp"]}}),
        ),
        (
            research,
            json!({"subject": {"person": {"email": "a@b.co"}}, "depth": "deep"}),
        ),
        (
            research,
            json!({"subject": {"company": {"linkedinHandle": "https://de.linkedin.com/company/acme/"}}}),
        ),
        (person, json!({"email": "a@b.co"})),
    ];
    for (path, body) in cases {
        let schema_valid = valid(&spec, &request_schema(path), &body);
        let answer = app.post(path, &body).await;
        // A person enrichment without workers is 503 after validation.
        let accepted = [200, 202, 503].contains(&answer.status);
        assert_eq!(
            schema_valid,
            accepted,
            "{path} {body}: the document calls it {}, the gateway answered {} {}",
            if schema_valid { "valid" } else { "invalid" },
            answer.status,
            answer.body
        );
    }
}

#[tokio::test]
async fn answers_match_the_documented_response_schemas() {
    let spec = gateway::openapi::document();
    let app = spawn_app().await;
    let accepted = app.accept_search(KEY_A).await;
    let id = accepted.id();
    let response = |path: &str, method: &str, status: u16, content: &str| {
        format!(
            "/paths/{}/{method}/responses/{status}",
            path.replace('/', "~1")
        ) + &format!("/content/{}/schema", content.replace('/', "~1"))
    };
    let resolved = |pointer: String| -> String {
        // A shared response is a $ref: follow it to its content.
        let (route_part, content_part) = pointer.split_once("/content/").unwrap();
        match spec.pointer(route_part).and_then(|r| r["$ref"].as_str()) {
            Some(reference) => format!(
                "{}/content/{content_part}",
                reference.trim_start_matches('#')
            ),
            None => pointer,
        }
    };
    let checks = [
        (
            response("/api/search/people", "post", 202, "application/json"),
            accepted.body.clone(),
        ),
        (
            response("/api/operations", "get", 200, "application/json"),
            app.list_operations("", KEY_A).await.body,
        ),
        (
            response("/api/operations/{id}", "get", 200, "application/json"),
            app.get_operation(&id, KEY_A).await.body,
        ),
        (
            response("/api/me", "get", 200, "application/json"),
            app.get("/api/me", Some(KEY_A)).await.body,
        ),
        (
            response(
                "/api/search/people",
                "post",
                400,
                "application/problem+json",
            ),
            app.post_search(&json!({"targetAccount": {}})).await.body,
        ),
        (
            response(
                "/api/operations/{id}/cancel",
                "post",
                200,
                "application/json",
            ),
            app.cancel_operation(&id, KEY_A).await.body,
        ),
    ];
    for (pointer, body) in checks {
        let pointer = resolved(pointer);
        assert!(
            spec.pointer(&pointer).is_some(),
            "the document has no schema at {pointer}"
        );
        assert!(valid(&spec, &pointer, &body), "{pointer}: {body}");
    }
}

/// Found by contract fuzzing: the document described the event stream as a
/// string, where a client (and schemathesis) reads it event by event.
#[tokio::test]
async fn every_event_of_a_stream_is_a_documented_event() {
    let spec = gateway::openapi::document();
    let app = spawn_app().await;
    let id = app.accept_search(KEY_A).await.id();
    let mut stream = app.open_events(&id, KEY_A, None).await.stream();
    let first = stream.next_event().await.expect("the current state");
    app.cancel_operation(&id, KEY_A).await;
    let mut events = vec![first];
    events.extend(stream.rest().await);
    assert_eq!(events.last().unwrap().event.as_deref(), Some("terminal"));
    let pointer = "/paths/~1api~1operations~1{id}~1events/get/responses/200/content/text~1event-stream/schema";
    for event in events {
        let as_sent = json!({ "event": event.event, "id": event.id, "data": event.data });
        assert!(valid(&spec, pointer, &as_sent), "{as_sent}");
        assert!(
            valid(
                &spec,
                "/components/schemas/OperationResponse",
                &event.json()
            ),
            "{}",
            event.data
        );
    }
}
