//! Turning request bytes into a validated body, with every problem named by a
//! JSON pointer: malformed JSON, lists over their limit, wrong types, unknown
//! or missing fields, and the semantic rules of [`Validate`].
//!
//! Whatever the input, the work and the answer are bounded: the body is read
//! within a budget of values (see [`super::bounded`]), list lengths are
//! checked before any item is, and at most [`super::MAX_LISTED_ERRORS`]
//! errors are kept (the rest are counted).

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::bounded::Document;
use super::validate::{FieldError, FieldErrors, MAX_DETAIL_CHARS, Validate, clip, too_many};
use super::{
    EnrichmentBatchRequest, InvalidRecord, MAX_BATCH_RECORDS, MAX_BODY_VALUES, MAX_FILTER_VALUES,
    MAX_RESEARCH_QUESTIONS, PersonRecord, RecordFieldError,
};

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON at all (the detail says where it broke), or nested deeper
    /// than 128 levels.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// JSON, but one or more fields are invalid.
    #[error("invalid request body")]
    Invalid(FieldErrors),
}

/// A list in a body and the most items it may hold.
#[derive(Debug, Clone, Copy)]
pub struct ListLimit {
    /// Where the list is: a JSON pointer from the body root.
    pub pointer: &'static str,
    /// The most items it may hold.
    pub max: usize,
    /// What its items are called in the error (`records`).
    pub items: &'static str,
}

/// A request body type: decodes from JSON and validates.
pub trait Body: DeserializeOwned + Validate {
    /// The body's lists with their limits, checked before anything else so
    /// that a list far over its limit is one error and its items are never
    /// decoded. [`Validate`] checks the same limits on a decoded body.
    const LISTS: &'static [ListLimit] = &[];

    /// Shape errors (wrong type, unknown or missing field) in `value`. The
    /// default reports the first one; batch bodies report one per record.
    fn shape_errors(value: &Value, errors: &mut FieldErrors) {
        if let Some(error) = shape_error::<Self>(value, "") {
            errors.push(error);
        }
    }

    /// Decodes and validates a request body whose lists are within their
    /// limits. The default checks the shape, then [`Validate`].
    fn decode(value: Value) -> Result<Self, BodyError> {
        decode_strict(value)
    }

    /// Decodes and validates a job payload (see [`parse_payload`]). The
    /// default: exactly as a request body.
    fn decode_payload(value: Value) -> Result<Self, BodyError> {
        Self::decode(value)
    }
}

/// Shape, then [`Validate`]: every problem is an error.
fn decode_strict<T: Body>(value: Value) -> Result<T, BodyError> {
    let mut errors = FieldErrors::new();
    T::shape_errors(&value, &mut errors);
    if !errors.is_empty() {
        return Err(BodyError::Invalid(errors));
    }
    let body: T = serde_json::from_value(value).map_err(|e| {
        let mut errors = FieldErrors::new();
        errors.push(FieldError::new("", e.to_string()));
        BodyError::Invalid(errors)
    })?;
    body.validate_at("", &mut errors);
    if errors.is_empty() {
        Ok(body)
    } else {
        Err(BodyError::Invalid(errors))
    }
}

fn one_error(pointer: &str, detail: &str) -> BodyError {
    let mut errors = FieldErrors::new();
    errors.push(FieldError::new(pointer, detail));
    BodyError::Invalid(errors)
}

impl Body for super::SearchPeopleRequest {
    const LISTS: &'static [ListLimit] = &[
        filter_list("/filters/titles"),
        filter_list("/filters/seniorities"),
        filter_list("/filters/departments"),
        filter_list("/filters/locations"),
        filter_list("/filters/keywords"),
    ];
}

const fn filter_list(pointer: &'static str) -> ListLimit {
    ListLimit {
        pointer,
        max: MAX_FILTER_VALUES,
        items: "values",
    }
}

impl Body for super::ResearchRequest {
    const LISTS: &'static [ListLimit] = &[ListLimit {
        pointer: "/questions",
        max: MAX_RESEARCH_QUESTIONS,
        items: "questions",
    }];
}

impl Body for super::PersonRecord {}

impl Body for EnrichmentBatchRequest {
    const LISTS: &'static [ListLimit] = &[ListLimit {
        pointer: "/records",
        max: MAX_BATCH_RECORDS,
        items: "records",
    }];

    fn shape_errors(value: &Value, errors: &mut FieldErrors) {
        // Decode each record on its own so a bad record anywhere in a batch of
        // 10,000 is reported with its index, and all of them counted.
        if let Some(Value::Array(records)) = value.get("records") {
            for (i, record) in records.iter().enumerate() {
                if let Some(error) =
                    shape_error::<super::PersonRecord>(record, &format!("/records/{i}"))
                {
                    errors.push(error);
                }
            }
            if errors.is_empty() {
                // Records are fine: check the envelope (unknown top-level fields).
                errors.extend(shape_error::<Self>(value, ""));
            }
            return;
        }
        errors.extend(shape_error::<Self>(value, ""));
    }

    fn decode(mut value: Value) -> Result<Self, BodyError> {
        if value.get(INVALID_RECORDS).is_some() {
            // Only a job payload carries the set-aside records.
            return Err(one_error(&format!("/{INVALID_RECORDS}"), "unknown field"));
        }
        let skip = value.get("onInvalidRecord") == Some(&Value::from("skip"));
        let records = match value.get_mut("records") {
            Some(Value::Array(records)) if skip && !records.is_empty() => std::mem::take(records),
            _ => return decode_strict(value),
        };
        let mut valid = Vec::new();
        let mut invalid = Vec::new();
        for (index, record) in records.iter().enumerate() {
            match check_record(record) {
                Ok(person) => valid.push(person),
                Err(errors) => invalid.push(InvalidRecord {
                    index,
                    external_id: record
                        .get("externalId")
                        .and_then(Value::as_str)
                        .filter(|id| !id.trim().is_empty())
                        .map(|id| clip(id, MAX_DETAIL_CHARS)),
                    errors,
                }),
            }
        }
        if valid.is_empty() {
            // Nothing would run: refused as without `skip`, every record named.
            if let Some(slot) = value.get_mut("records") {
                *slot = Value::Array(records);
            }
            return decode_strict(value);
        }
        // The envelope on its own (unknown fields, a bad `onInvalidRecord`).
        if let Some(error) = shape_error::<Self>(&value, "") {
            let mut errors = FieldErrors::new();
            errors.push(error);
            return Err(BodyError::Invalid(errors));
        }
        let mut body: Self =
            serde_json::from_value(value).map_err(|e| one_error("", &e.to_string()))?;
        body.records = valid;
        body.invalid_records = invalid;
        Ok(body)
    }

    fn decode_payload(mut value: Value) -> Result<Self, BodyError> {
        let pointer = format!("/{INVALID_RECORDS}");
        let invalid: Vec<InvalidRecord> = match value
            .as_object_mut()
            .and_then(|object| object.remove(INVALID_RECORDS))
        {
            None => Vec::new(),
            Some(list) => {
                if let Some(error) = shape_error::<Vec<InvalidRecord>>(&list, &pointer) {
                    let mut errors = FieldErrors::new();
                    errors.push(error);
                    return Err(BodyError::Invalid(errors));
                }
                serde_json::from_value(list).map_err(|e| one_error(&pointer, &e.to_string()))?
            }
        };
        // What is left is a body whose records are all valid.
        let mut body = Self::decode(value)?;
        if !body.invalid_records.is_empty() {
            let first = body.invalid_records[0].index;
            return Err(one_error(
                &format!("/records/{first}"),
                "a job payload's records must all be valid",
            ));
        }
        let total = body.records.len() + invalid.len();
        let in_order = invalid.windows(2).all(|w| w[0].index < w[1].index)
            && invalid.last().is_none_or(|last| last.index < total)
            && invalid.iter().all(|record| !record.errors.is_empty());
        if !invalid.is_empty() && body.on_invalid_record.is_reject() {
            return Err(one_error(
                &pointer,
                "only a batch with onInvalidRecord: skip sets records aside",
            ));
        }
        if !in_order || total > MAX_BATCH_RECORDS {
            return Err(one_error(
                &pointer,
                "must list distinct records of the batch in order, each with its errors",
            ));
        }
        body.invalid_records = invalid;
        Ok(body)
    }
}

/// The payload field of the records set aside under `skip`.
const INVALID_RECORDS: &str = "invalidRecords";

/// One record of a batch, decoded and validated, or what is wrong with it
/// (named by the record's own fields).
fn check_record(record: &Value) -> Result<PersonRecord, Vec<RecordFieldError>> {
    let errors = match shape_error::<PersonRecord>(record, "") {
        Some(error) => vec![error],
        None => match serde_json::from_value::<PersonRecord>(record.clone()) {
            Ok(person) => {
                let errors = person.validate();
                if errors.is_empty() {
                    return Ok(person);
                }
                errors.into_iter().collect()
            }
            Err(e) => vec![FieldError::new("", e.to_string())],
        },
    };
    Err(errors
        .into_iter()
        .map(|error| RecordFieldError {
            field: field_name(&error.pointer),
            detail: error.detail,
        })
        .collect())
}

/// The record field a pointer relative to the record names (`/email` →
/// `email`, unescaped); `None` for the record itself.
fn field_name(pointer: &str) -> Option<String> {
    let token = pointer.strip_prefix('/')?.split('/').next()?;
    (!token.is_empty()).then(|| token.replace("~1", "/").replace("~0", "~"))
}

/// Parses and validates a request body.
pub fn parse_body<T: Body>(bytes: &[u8]) -> Result<T, BodyError> {
    T::decode(read_bounded::<T>(bytes, MAX_BODY_VALUES)?)
}

/// Parses and validates a job payload: a request body as the gateway
/// re-encoded it after parsing, which may carry what parsing set aside (a
/// batch's invalid records under `skip`). The operations service checks
/// every payload with it, so it accepts exactly what [`parse_body`]
/// produced.
pub fn parse_payload<T: Body>(bytes: &[u8]) -> Result<T, BodyError> {
    // A set-aside record is reported in more values than it was sent in (an
    // error per field): room for every record of a batch to be one.
    T::decode_payload(read_bounded::<T>(bytes, MAX_BODY_VALUES * 4)?)
}

/// Reads a body within `budget` values and checks its lists' lengths.
fn read_bounded<T: Body>(bytes: &[u8], budget: usize) -> Result<Value, BodyError> {
    let document =
        Document::read(bytes, budget).map_err(|e| BodyError::Malformed(e.to_string()))?;
    let mut errors = FieldErrors::new();
    if !document.value.is_object() {
        errors.push(FieldError::new("", "must be a JSON object"));
        return Err(BodyError::Invalid(errors));
    }
    for list in T::LISTS {
        match document.array_len(list.pointer) {
            Some(len) if len > list.max => {
                errors.push(too_many(list.pointer, list.max, list.items, len));
            }
            _ => {}
        }
    }
    if !errors.is_empty() {
        return Err(BodyError::Invalid(errors));
    }
    if let Some(at) = document.exhausted_at {
        // Only part of the body was kept: decoding that part could report
        // fields as missing that were sent, so this is the one error.
        errors.push(FieldError::new(
            at,
            format!(
                "the body holds more than {MAX_BODY_VALUES} JSON values, more than any valid \
                 request; nothing from here on was read"
            ),
        ));
        return Err(BodyError::Invalid(errors));
    }
    Ok(document.value)
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
pub(super) fn push_token(pointer: &mut String, token: &str) {
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

    /// The listed pointers and the total count of a refused body.
    fn problems<T: Body + std::fmt::Debug>(body: &[u8]) -> (Vec<String>, usize) {
        match parse_body::<T>(body) {
            Err(BodyError::Invalid(errors)) => {
                let total = errors.total();
                let pointers: Vec<String> = errors.into_iter().map(|e| e.pointer).collect();
                (pointers, total)
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    /// `{"records":[1,1,…]}` with `n` scalars.
    fn scalar_records(n: usize) -> Vec<u8> {
        let mut body = b"{\"records\":[".to_vec();
        body.extend(std::iter::repeat_n(&b"1,"[..], n - 1).flatten());
        body.extend_from_slice(b"1]}");
        body
    }

    #[test]
    fn too_many_records_is_one_error_before_any_item_is_looked_at() {
        let (pointers, total) = problems::<EnrichmentBatchRequest>(&scalar_records(2_000_000));
        assert_eq!(pointers, ["/records"]);
        assert_eq!(total, 1);
        let (pointers, total) = problems::<EnrichmentBatchRequest>(&scalar_records(10_001));
        assert_eq!((pointers, total), (vec!["/records".to_owned()], 1));
    }

    #[test]
    fn every_list_is_counted_before_its_items() {
        let ones = vec!["1"; 1_000].join(",");
        for (body, pointer) in [
            (
                format!(r#"{{"targetAccount":{{"name":"A"}},"filters":{{"titles":[{ones}]}}}}"#),
                "/filters/titles",
            ),
            (
                format!(
                    r#"{{"targetAccount":{{"name":"A"}},"filters":{{"departments":[{ones}]}}}}"#
                ),
                "/filters/departments",
            ),
            (
                format!(r#"{{"targetAccount":{{"name":"A"}},"filters":{{"locations":[{ones}]}}}}"#),
                "/filters/locations",
            ),
        ] {
            let (pointers, total) = problems::<SearchPeopleRequest>(body.as_bytes());
            assert_eq!(
                (pointers, total),
                (vec![pointer.to_owned()], 1),
                "{pointer}"
            );
        }
        let body = format!(r#"{{"subject":{{"company":{{"name":"A"}}}},"questions":[{ones}]}}"#);
        let (pointers, total) = problems::<ResearchRequest>(body.as_bytes());
        assert_eq!((pointers, total), (vec!["/questions".to_owned()], 1));
    }

    #[test]
    fn at_most_a_hundred_errors_are_listed_with_the_total() {
        let records = vec![r#"{"email":"bad"}"#; 5_000].join(",");
        let body = format!(r#"{{"records":[{records}]}}"#);
        let (pointers, total) = problems::<EnrichmentBatchRequest>(body.as_bytes());
        assert_eq!(pointers.len(), 100);
        assert_eq!(pointers[99], "/records/99/email");
        assert_eq!(total, 5_000);

        let (pointers, total) = problems::<EnrichmentBatchRequest>(&scalar_records(10_000));
        assert_eq!(pointers.len(), 100);
        assert_eq!(pointers[0], "/records/0");
        assert_eq!(total, 10_000);
    }

    #[test]
    fn echoed_names_and_values_are_cut_short() {
        let huge = "x".repeat(1_000_000);
        let body = format!(r#"{{"targetAccount":{{"name":"A"}},"{huge}":1}}"#);
        let (pointers, _) = problems::<SearchPeopleRequest>(body.as_bytes());
        assert!(pointers[0].starts_with("/xxx") && pointers[0].len() < 1_000);
        let body = format!(r#"{{"subject":{{"company":{{"name":"A"}}}},"depth":"{huge}"}}"#);
        match parse_body::<ResearchRequest>(body.as_bytes()) {
            Err(BodyError::Invalid(errors)) => {
                let error = errors.into_iter().next().unwrap();
                assert_eq!(error.pointer, "/depth");
                assert!(error.detail.len() < 1_000, "{} bytes", error.detail.len());
            }
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn nesting_too_deep_is_malformed_and_too_many_values_is_refused() {
        let deep = format!(r#"{{"records":[{}{}]}}"#, "[".repeat(500), "]".repeat(500));
        assert!(matches!(
            parse_body::<EnrichmentBatchRequest>(deep.as_bytes()),
            Err(BodyError::Malformed(_))
        ));
        // Few records, each a long list: far more values than any valid
        // batch holds.
        let inner = vec!["1"; 20_000].join(",");
        let records = vec![format!("[{inner}]"); 50].join(",");
        let body = format!(r#"{{"records":[{records}]}}"#);
        let (pointers, total) = problems::<EnrichmentBatchRequest>(body.as_bytes());
        assert!(!pointers.is_empty() && pointers.len() <= 100 && total >= pointers.len());
    }

    #[test]
    fn skip_sets_invalid_records_aside_and_the_payload_carries_them() {
        let body = br#"{"onInvalidRecord":"skip","records":[
            {"email":"a@b.co"},{"email":"bad","externalId":"crm-2"},{"emial":"x"},
            {"fullName":"Jane"},7,{"email":"c@d.co"}]}"#;
        let batch = parse_body::<EnrichmentBatchRequest>(body).unwrap();
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.total(), 6);
        type Reported<'a> = (usize, Option<&'a str>, Vec<Option<&'a str>>);
        let invalid: Vec<Reported<'_>> = batch
            .invalid_records
            .iter()
            .map(|r| {
                (
                    r.index,
                    r.external_id.as_deref(),
                    r.errors.iter().map(|e| e.field.as_deref()).collect(),
                )
            })
            .collect();
        assert_eq!(
            invalid,
            [
                (1, Some("crm-2"), vec![Some("email")]),
                (2, None, vec![Some("emial")]),
                (3, None, vec![None]),
                (4, None, vec![None]),
            ]
        );
        let order: Vec<bool> = batch
            .entries()
            .iter()
            .map(|e| matches!(e, crate::api::BatchEntry::Valid(_)))
            .collect();
        assert_eq!(order, [true, false, false, false, false, true]);

        // What the gateway stores is what the operations service accepts,
        // and decodes to the same batch.
        let payload = serde_json::to_vec(&batch).unwrap();
        assert_eq!(
            parse_payload::<EnrichmentBatchRequest>(&payload).unwrap(),
            batch
        );
        assert!(crate::api::check_payload(crate::Kind::EnrichmentBatch, &payload).is_ok());
        // ... but a client cannot send the set-aside list itself.
        assert_eq!(
            pointers::<EnrichmentBatchRequest>(std::str::from_utf8(&payload).unwrap()),
            ["/invalidRecords"]
        );
    }

    #[test]
    fn skip_with_nothing_valid_is_refused_like_reject_and_payloads_are_checked() {
        let body = r#"{"onInvalidRecord":"skip","records":[{"email":"bad"},{}]}"#;
        assert_eq!(
            pointers::<EnrichmentBatchRequest>(body),
            ["/records/0/email", "/records/1"]
        );
        let body = r#"{"onInvalidRecord":"sometimes","records":[{"email":"a@b.co"}]}"#;
        assert_eq!(
            pointers::<EnrichmentBatchRequest>(body),
            ["/onInvalidRecord"]
        );
        let body = r#"{"onInvalidRecord":"skip","records":[{"email":"a@b.co"},{}],"x":1}"#;
        assert_eq!(pointers::<EnrichmentBatchRequest>(body), ["/x"]);

        let refused =
            |payload: &str| parse_payload::<EnrichmentBatchRequest>(payload.as_bytes()).is_err();
        let aside = r#"[{"index":1,"errors":[{"detail":"d"}]}]"#;
        assert!(!refused(&format!(
            r#"{{"onInvalidRecord":"skip","records":[{{"email":"a@b.co"}}],"invalidRecords":{aside}}}"#
        )));
        // Set aside without `skip`, out of range, with no errors, or beside
        // an invalid record.
        assert!(refused(&format!(
            r#"{{"records":[{{"email":"a@b.co"}}],"invalidRecords":{aside}}}"#
        )));
        assert!(refused(
            r#"{"onInvalidRecord":"skip","records":[{"email":"a@b.co"}],"invalidRecords":[{"index":2,"errors":[{"detail":"d"}]}]}"#
        ));
        assert!(refused(
            r#"{"onInvalidRecord":"skip","records":[{"email":"a@b.co"}],"invalidRecords":[{"index":1,"errors":[]}]}"#
        ));
        assert!(refused(&format!(
            r#"{{"onInvalidRecord":"skip","records":[{{"email":"a@b.co"}},{{"email":"bad"}}],"invalidRecords":{aside}}}"#
        )));
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(
            pointers::<SearchPeopleRequest>(r#"{"targetAccount":{"name":"A"},"a/b~":1}"#),
            ["/a~1b~0"]
        );
    }
}
