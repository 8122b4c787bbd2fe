//! The OpenAPI 3.1 document of the public API, generated from the code:
//! the routes' `#[utoipa::path]` annotations, the request types of
//! `dossier_contracts::api`, the views the gateway answers with, and the
//! result payloads of each kind ([`results`]). Served at `GET /openapi.json`
//! and committed as `docs/openapi.yaml` (a test keeps the file equal to it).

pub(crate) mod components;
pub(crate) mod results;
pub(crate) mod webhooks;

use serde_json::{Value, json};

/// The document as JSON: what utoipa derives, refined with the rules JSON
/// Schema can state but the derive cannot (see [`refine`]).
pub fn document() -> Value {
    let mut document = serde_json::to_value(crate::routes::api_doc()).unwrap_or(Value::Null);
    refine(&mut document);
    document
}

/// The document as YAML, as committed in `docs/openapi.yaml`.
pub fn yaml() -> Result<String, serde_norway::Error> {
    serde_norway::to_string(&document())
}

/// Adds the request rules that span fields, which validation enforces
/// (`dossier_contracts::api::validate`) and the derive cannot express:
/// which fields identify a person or a company, and that a research
/// subject is exactly one of a company or a person. With them a request the
/// document calls valid is one the gateway accepts.
fn refine(document: &mut Value) {
    let schemas = &mut document["components"]["schemas"];
    let any_of_required = |sets: &[&[&str]]| -> Value {
        Value::Array(sets.iter().map(|set| json!({ "required": set })).collect())
    };
    if let Some(person) = schemas
        .get_mut("PersonRecord")
        .and_then(Value::as_object_mut)
    {
        person.insert(
            "anyOf".to_owned(),
            any_of_required(&[
                &["email"],
                &["linkedinUrl"],
                &["fullName", "companyName"],
                &["fullName", "companyDomain"],
            ]),
        );
    }
    if let Some(company) = schemas.get_mut("CompanyRef").and_then(Value::as_object_mut) {
        company.insert(
            "anyOf".to_owned(),
            any_of_required(&[&["name"], &["domain"], &["linkedinHandle"]]),
        );
    }
    if let Some(subject) = schemas
        .get_mut("ResearchSubject")
        .and_then(Value::as_object_mut)
    {
        subject.insert(
            "oneOf".to_owned(),
            any_of_required(&[&["company"], &["person"]]),
        );
    }
}
