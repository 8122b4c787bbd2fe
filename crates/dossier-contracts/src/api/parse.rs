//! Turning request bytes into a validated body, with every problem named by a
//! JSON pointer: malformed JSON, wrong types, unknown or missing fields, and
//! the semantic rules of [`Validate`].

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::EnrichmentBatchRequest;
use super::validate::{FieldError, Validate};

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON at all (the detail says where it broke).
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// JSON, but one or more fields are invalid.
    #[error("invalid request body")]
    Invalid(Vec<FieldError>),
}

/// A request body type: decodes from JSON and validates.
pub trait Body: DeserializeOwned + Validate {
    /// Shape errors (wrong type, unknown or missing field) in `value`. The
    /// default reports the first one; batch bodies report one per record.
    fn shape_errors(value: &Value) -> Vec<FieldError> {
        shape_error::<Self>(value, "").into_iter().collect()
    }
}

impl Body for super::SearchPeopleRequest {}
impl Body for super::ResearchRequest {}
impl Body for super::PersonRecord {}

impl Body for EnrichmentBatchRequest {
    fn shape_errors(value: &Value) -> Vec<FieldError> {
        // Decode each record on its own so a bad record anywhere in a batch of
        // 10,000 is reported with its index, and all of them at once.
        if let Some(Value::Array(records)) = value.get("records") {
            let mut errors: Vec<FieldError> = records
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    shape_error::<super::PersonRecord>(r, &format!("/records/{i}"))
                })
                .collect();
            if errors.is_empty() {
                // Records are fine: check the envelope (unknown top-level fields).
                errors.extend(shape_error::<Self>(value, ""));
            }
            return errors;
        }
        shape_error::<Self>(value, "").into_iter().collect()
    }
}

/// Parses and validates a request body.
pub fn parse_body<T: Body>(bytes: &[u8]) -> Result<T, BodyError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| BodyError::Malformed(e.to_string()))?;
    if !value.is_object() {
        return Err(BodyError::Invalid(vec![FieldError::new(
            "",
            "must be a JSON object",
        )]));
    }
    let errors = T::shape_errors(&value);
    if !errors.is_empty() {
        return Err(BodyError::Invalid(errors));
    }
    let body: T = serde_json::from_value(value)
        .map_err(|e| BodyError::Invalid(vec![FieldError::new("", e.to_string())]))?;
    let errors = body.validate();
    if errors.is_empty() {
        Ok(body)
    } else {
        Err(BodyError::Invalid(errors))
    }
}

fn shape_error<T: DeserializeOwned>(value: &Value, prefix: &str) -> Option<FieldError> {
    let err = serde_path_to_error::deserialize::<_, T>(value).err()?;
    let mut pointer = prefix.to_owned();
    for segment in err.path().iter() {
        use serde_path_to_error::Segment;
        match segment {
            Segment::Seq { index } => push_token(&mut pointer, &index.to_string()),
            Segment::Map { key } => push_token(&mut pointer, key),
            Segment::Enum { variant } => push_token(&mut pointer, variant),
            Segment::Unknown => {}
        }
    }
    let message = err.inner().to_string();
    // The path of an unknown field already ends at the field; a missing one
    // is reported at the enclosing object, so name the field itself.
    if message.starts_with("unknown field `") {
        return Some(FieldError::new(pointer, "unknown field"));
    }
    if let Some(field) = backticked(&message, "missing field `") {
        push_token(&mut pointer, field);
        return Some(FieldError::new(pointer, "is required"));
    }
    Some(FieldError::new(pointer, message))
}

fn backticked<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// Appends one RFC 6901 reference token.
fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    pointer.push_str(&token.replace('~', "~0").replace('/', "~1"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EnrichmentBatchRequest, ResearchRequest, SearchPeopleRequest};

    fn pointers<T: Body + std::fmt::Debug>(body: &str) -> Vec<String> {
        match parse_body::<T>(body.as_bytes()) {
            Err(BodyError::Invalid(errors)) => errors.into_iter().map(|e| e.pointer).collect(),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_reported_as_such() {
        assert!(matches!(
            parse_body::<SearchPeopleRequest>(b"{"),
            Err(BodyError::Malformed(_))
        ));
        assert_eq!(pointers::<SearchPeopleRequest>("[]"), [""]);
    }

    #[test]
    fn shape_errors_name_the_field() {
        assert_eq!(
            pointers::<SearchPeopleRequest>(r#"{"targetAccount":{"name":"A"},"limt":3}"#),
            ["/limt"]
        );
        assert_eq!(
            pointers::<SearchPeopleRequest>(r#"{"targetAccount":{"nam":"A"}}"#),
            ["/targetAccount/nam"]
        );
        assert_eq!(
            pointers::<SearchPeopleRequest>(r#"{"targetAccount":{"name":"A"},"limit":"3"}"#),
            ["/limit"]
        );
        assert_eq!(pointers::<SearchPeopleRequest>(r#"{}"#), ["/targetAccount"]);
        assert_eq!(
            pointers::<SearchPeopleRequest>(
                r#"{"targetAccount":{"name":"A"},"filters":{"seniorities":["boss"]}}"#
            ),
            ["/filters/seniorities/0"]
        );
        assert_eq!(
            pointers::<ResearchRequest>(r#"{"subject":{"company":{"name":"A"}},"depth":"max"}"#),
            ["/depth"]
        );
    }

    #[test]
    fn batch_reports_every_bad_record() {
        let body = r#"{"records":[{"email":"a@b.co"},{"email":5},{"emial":"x"},{"email":"bad"}]}"#;
        assert_eq!(
            pointers::<EnrichmentBatchRequest>(body),
            ["/records/1/email", "/records/2/emial"]
        );
        let body = r#"{"records":[{"email":"a@b.co"},{"email":"bad"}]}"#;
        assert_eq!(
            pointers::<EnrichmentBatchRequest>(body),
            ["/records/1/email"]
        );
        let body = r#"{"records":[{"email":"a@b.co"}],"extra":1}"#;
        assert_eq!(pointers::<EnrichmentBatchRequest>(body), ["/extra"]);
        let ok = parse_body::<EnrichmentBatchRequest>(
            br#"{"records":[{"email":"a@b.co","externalId":"7"}]}"#,
        );
        assert_eq!(ok.unwrap().records[0].external_id.as_deref(), Some("7"));
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(
            pointers::<SearchPeopleRequest>(r#"{"targetAccount":{"name":"A"},"a/b~":1}"#),
            ["/a~1b~0"]
        );
    }
}
