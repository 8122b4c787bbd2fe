//! The optional synthesis provider, against wiremock: its prose is used when
//! it cites only passages it was given and adds nothing to them, and the
//! deterministic answer is used when it cites anything else or names a
//! person (or a number) the passages do not hold.

use dossier_stack::{KEY_A, spawn_app};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;

/// Answers a question about hiring by citing the first passage it was
/// given; the CTO question with a real citation but an invented colleague;
/// anything else with a citation of a source that does not exist.
struct Model;

impl Respond for Model {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let prompt = body["messages"][1]["content"].as_str().unwrap();
        let content = if prompt.contains("Question: Is Acme hiring") {
            let first = citations(prompt)[0];
            format!("Yes: Acme is hiring Rust engineers for its platform team [{first}].")
        } else if prompt.contains("Question: Who is the CTO") {
            let first = citations(prompt)[0];
            format!("Jane Doe is the CTO, with John Smith as her deputy [{first}].")
        } else {
            "Acme has 10,000 employees [999].".to_owned()
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": content },
                          "finish_reason": "stop" }]
        }))
    }
}

#[tokio::test]
async fn synthesis_is_used_only_when_its_citations_are_gathered_sources() {
    let app = spawn_app().await;
    let site = Site::start().await;
    let model = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test"))
        .respond_with(Model)
        .mount(&model)
        .await;

    let mut config = config(&app, Some(&site));
    config.research.synthesis_url = Some(format!("{}/v1/chat/completions", model.uri()));
    config.research.synthesis_api_key = Some(SecretString::from("sk-test"));
    config.research.synthesis_model = "test-model".to_owned();
    let _worker = start_worker(config).await;

    let accepted = app
        .post_research(&json!({
            "subject": { "company": { "name": "Acme Corp", "domain": "acme.com" } },
            "questions": [
                "Is Acme hiring Rust engineers?",
                "How many people does Acme employ?",
                "Who is the CTO?"
            ]
        }))
        .await;
    assert_eq!(accepted.status, 202);
    let op = app.wait_for_terminal(&accepted.id(), KEY_A).await;
    assert_eq!(op["status"], "succeeded", "{op}");
    let result = &op["result"];
    let ids = source_ids(result);
    let answers = result["sections"]["answers"].as_array().unwrap();

    assert_eq!(answers[0]["method"], "synthesis", "{}", answers[0]);
    assert!(
        answers[0]["answer"]
            .as_str()
            .unwrap()
            .starts_with("Yes: Acme is hiring")
    );
    let cited = citations(answers[0]["answer"].as_str().unwrap());
    assert_eq!(cited.len(), 1);
    assert!(ids.contains(&cited[0]));
    assert_eq!(answers[0]["sources"], json!(cited));

    // The invented [999] is refused; the deterministic answer stands (the
    // size band of the company's profile).
    assert_eq!(answers[1]["method"], "structured", "{}", answers[1]);
    assert!(!answers[1]["answer"].as_str().unwrap().contains("[999]"));
    assert!(answers[1]["answer"].as_str().unwrap().contains("1001-5000"));
    // A real citation does not carry an invented colleague.
    assert_eq!(answers[2]["method"], "structured", "{}", answers[2]);
    let cto = answers[2]["answer"].as_str().unwrap();
    assert!(
        cto.contains("Jane Doe") && !cto.contains("John Smith"),
        "{cto}"
    );
    for n in citations(result["markdown"].as_str().unwrap()) {
        assert!(ids.contains(&n), "[{n}]");
    }

    let requests = model.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["model"], "test-model");
}
