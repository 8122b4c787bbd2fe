//! The public API's JSON request bodies (camelCase, unknown fields rejected)
//! and their validation. The gateway validates with these types before it
//! accepts work; workers decode job payloads with the same types, so what was
//! accepted is exactly what runs.

mod bounded;
pub mod linkedin;
mod parse;
mod validate;
pub mod webhooks;

use serde::{Deserialize, Serialize};

pub use parse::{Body, BodyError, ListLimit, parse_body, parse_payload};
pub use validate::{
    FieldError, FieldErrors, MAX_DETAIL_CHARS, MAX_LOCATION_CHARS, Validate, clip, normalize_domain,
};

/// Most records in one batch enrichment request.
pub const MAX_BATCH_RECORDS: usize = 10_000;
/// Most questions in one research request.
pub const MAX_RESEARCH_QUESTIONS: usize = 10;
/// Most entries in one search filter list.
pub const MAX_FILTER_VALUES: usize = 50;
/// Most errors listed for one request; the rest are only counted.
pub const MAX_LISTED_ERRORS: usize = 100;
/// Most JSON values (scalars, arrays, objects) read from one body. The
/// largest valid body is a batch of [`MAX_BATCH_RECORDS`] records of an
/// object and six fields each: seven values a record. One record more than
/// that, with room for the envelope, is plenty; past it the body cannot be
/// valid and is not kept in memory (see `bounded`).
pub const MAX_BODY_VALUES: usize = (MAX_BATCH_RECORDS + 1) * 8;
/// Longest `Idempotency-Key`, in bytes (visible ASCII: one byte each).
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Checks an `Idempotency-Key` value: 1-255 visible ASCII characters, no
/// spaces or control characters. The gateway checks the header with it and
/// the operations service every `CreateOperation` it gets.
pub fn check_idempotency_key(value: &[u8]) -> Result<String, &'static str> {
    if value.is_empty() {
        return Err("must not be empty");
    }
    if value.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err("must be at most 255 characters");
    }
    if !value.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err("must be visible ASCII characters only (no spaces or control characters)");
    }
    // Visible ASCII is valid UTF-8.
    String::from_utf8(value.to_vec()).map_err(|_| "must be visible ASCII characters only")
}

/// Checks the job payload of an operation of `kind` exactly as the gateway
/// checks the request body it came from: the operations service stores only
/// jobs a worker can run, whoever its caller is.
pub fn check_payload(kind: crate::Kind, payload: &[u8]) -> Result<(), BodyError> {
    match kind {
        crate::Kind::EnrichmentBatch => parse_payload::<EnrichmentBatchRequest>(payload).map(drop),
        crate::Kind::SearchPeople => parse_payload::<SearchPeopleRequest>(payload).map(drop),
        crate::Kind::ResearchDeep => parse_payload::<ResearchRequest>(payload).map(drop),
    }
}

/// Default and maximum `limit` of a people search.
pub const DEFAULT_SEARCH_LIMIT: u32 = 25;
/// Largest `limit` of a people search.
pub const MAX_SEARCH_LIMIT: u32 = 100;

/// One person to enrich or research. Identified by at least one of `email`,
/// `linkedinUrl`, or `fullName` with `companyName` or `companyDomain`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonRecord {
    /// Work or personal email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // The pattern is what `is_email` accepts (narrowed to ASCII): a format
    // alone is only an annotation in JSON Schema 2020-12.
    #[schema(value_type = String, format = Email, max_length = 254, pattern = r"^[!-?A-~]+@[A-Za-z0-9]([A-Za-z0-9-]{0,58}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,58}[A-Za-z0-9])?)+$")]
    pub email: Option<String>,
    /// A LinkedIn profile URL in any common form (scheme, `www.` or a
    /// country subdomain, trailing slash are optional; the parser,
    /// `linkedin::profile_handle`, also takes queries and legacy `/pub/`
    /// URLs, which the pattern leaves out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, max_length = 500, pattern = r"^(https?://)?(www\.|[a-z]{2}\.)?linkedin\.com/in/[A-Za-z0-9_-]{1,100}/?$")]
    pub linkedin_url: Option<String>,
    /// The person's full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, min_length = 1, max_length = 500, pattern = r"\S")]
    pub full_name: Option<String>,
    /// The person's company name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, min_length = 1, max_length = 500, pattern = r"\S")]
    pub company_name: Option<String>,
    /// The person's company domain (`acme.com`; a URL is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, max_length = 500, pattern = r"^(https?://)?[A-Za-z0-9]([A-Za-z0-9-]{0,58}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,58}[A-Za-z0-9])?){1,3}\.?(/[!-~]*)?$")]
    pub company_domain: Option<String>,
    /// Your own id, echoed back in results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, min_length = 1, max_length = 500, pattern = r"\S")]
    pub external_id: Option<String>,
}

/// A company, identified by at least one of `name`, `domain`, `linkedinHandle`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompanyRef {
    /// The company's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, min_length = 1, max_length = 500, pattern = r"\S")]
    pub name: Option<String>,
    /// The company's web domain (`acme.com`; a URL is accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, max_length = 500, pattern = r"^(https?://)?[A-Za-z0-9]([A-Za-z0-9-]{0,58}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,58}[A-Za-z0-9])?){1,3}\.?(/[!-~]*)?$")]
    pub domain: Option<String>,
    /// The slug of the LinkedIn company page, or the page's full URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, max_length = 500, pattern = r"^([A-Za-z0-9_-]{1,100}/?|(https?://)?(www\.|[a-z]{2}\.)?linkedin\.com/(company|school|showcase)/[A-Za-z0-9_-]{1,100}/?)$")]
    pub linkedin_handle: Option<String>,
}

/// `POST /api/enrichment/batch`.
///
/// As a request body: `records` and `onInvalidRecord`. Under
/// `onInvalidRecord: skip` the parser ([`parse_body`]) moves the invalid
/// records out of `records` into `invalid_records`, so `records` holds the
/// valid ones in input order and a job payload carries both (see
/// [`EnrichmentBatchRequest::entries`]). Clients never send
/// `invalidRecords`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnrichmentBatchRequest {
    /// 1 to 10,000 person records. Under `onInvalidRecord: skip` a record
    /// that is not a valid `PersonRecord` is answered `invalid` in its
    /// place rather than refusing the batch.
    #[schema(min_items = 1, max_items = 10_000)]
    pub records: Vec<PersonRecord>,
    /// What an invalid record does: `reject` (the default) refuses the
    /// whole batch; `skip` reports it in the result and runs the rest.
    #[serde(default, skip_serializing_if = "OnInvalidRecord::is_reject")]
    #[schema(default = "reject")]
    pub on_invalid_record: OnInvalidRecord,
    /// The records set aside under `skip`, by position in the batch as
    /// sent; part of a job payload, never of a request body.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(ignore)]
    pub invalid_records: Vec<InvalidRecord>,
}

impl EnrichmentBatchRequest {
    /// A batch of `records` with the default `onInvalidRecord: reject`.
    pub fn new(records: Vec<PersonRecord>) -> Self {
        EnrichmentBatchRequest {
            records,
            on_invalid_record: OnInvalidRecord::Reject,
            invalid_records: Vec::new(),
        }
    }

    /// Records in the batch as sent, valid or not.
    pub fn total(&self) -> usize {
        self.records.len() + self.invalid_records.len()
    }

    /// The batch as sent, in order: each valid record or the report of an
    /// invalid one. Relies on `invalid_records` being sorted by index
    /// within `0..total()`, which parsing guarantees.
    pub fn entries(&self) -> Vec<BatchEntry<'_>> {
        let mut valid = self.records.iter();
        let mut invalid = self.invalid_records.iter().peekable();
        (0..self.total())
            .filter_map(|i| match invalid.peek() {
                Some(record) if record.index == i => invalid.next().map(BatchEntry::Invalid),
                _ => valid.next().map(BatchEntry::Valid),
            })
            .collect()
    }
}

/// One record of a batch as sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchEntry<'a> {
    /// A valid record, to enrich.
    Valid(&'a PersonRecord),
    /// An invalid one, reported as such (`onInvalidRecord: skip`).
    Invalid(&'a InvalidRecord),
}

/// What a batch does with an invalid record: `reject` (the default)
/// refuses the whole batch with a 400 naming `/records/{i}/{field}`; `skip`
/// answers each invalid record in its place (`status: invalid`, `errors`)
/// and enriches the others. A batch with no valid record is refused either
/// way: nothing would run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalidRecord {
    /// Refuse the whole batch (400 naming `/records/{i}/{field}`).
    #[default]
    Reject,
    /// Report the record in the result (`status: invalid` with its errors)
    /// and enrich the others. A batch with no valid record is still
    /// refused: nothing would run.
    Skip,
}

impl OnInvalidRecord {
    /// Whether this is the default.
    pub fn is_reject(&self) -> bool {
        *self == OnInvalidRecord::Reject
    }
}

/// A record of a batch that is not valid, set aside under
/// `onInvalidRecord: skip`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvalidRecord {
    /// Its position in the batch as sent.
    pub index: usize,
    /// Its `externalId`, when it had a usable one, to join the answer back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// What is wrong with it (at least one).
    pub errors: Vec<RecordFieldError>,
}

/// One problem of an invalid record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordFieldError {
    /// The record's field (`email`); absent when the record as a whole is
    /// wrong (not an object, or no identifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong.
    pub detail: String,
}

/// Seniority levels for people search filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Seniority {
    Owner,
    CSuite,
    Vp,
    Director,
    Manager,
    Senior,
    Entry,
}

/// Departments for people search filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Department {
    Engineering,
    Sales,
    Marketing,
    Finance,
    Operations,
    Hr,
    Legal,
    Product,
    Support,
    Executive,
}

/// Optional filters of a people search; every list may be empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchFilters {
    /// Title words or phrases (any matches).
    #[serde(default)]
    #[schema(schema_with = text_list)]
    pub titles: Vec<String>,
    /// Seniority levels (any matches).
    #[serde(default)]
    #[schema(max_items = 50)]
    pub seniorities: Vec<Seniority>,
    /// Departments (any matches).
    #[serde(default)]
    #[schema(max_items = 50)]
    pub departments: Vec<Department>,
    /// Locations (any matches).
    #[serde(default)]
    #[schema(schema_with = text_list)]
    pub locations: Vec<String>,
    /// Keywords matched against the profile.
    #[serde(default)]
    #[schema(schema_with = text_list)]
    pub keywords: Vec<String>,
}

/// A list of up to 50 free-text values (`MAX_FILTER_VALUES`), each not
/// blank and at most 500 characters, as validation requires.
fn text_list() -> utoipa::openapi::schema::Array {
    text_array(MAX_FILTER_VALUES)
}

/// A list of up to `max` free-text values, each 1-500 characters with
/// something other than spaces.
fn text_array(max: usize) -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(500))
                .pattern(Some(r"\S")),
        )
        .max_items(Some(max))
        .build()
}

/// `POST /api/search/people`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchPeopleRequest {
    /// The company to search inside.
    pub target_account: CompanyRef,
    /// Optional filters.
    #[serde(default)]
    pub filters: SearchFilters,
    /// 1 to 100 results (default 25). A whole number written with a
    /// fraction (`90.0`) is that number, as JSON Schema's `integer` says.
    #[serde(
        default = "default_search_limit",
        deserialize_with = "whole_number::deserialize"
    )]
    #[schema(minimum = 1, maximum = 100, default = 25, format = Int32)]
    pub limit: u32,
}

/// Up to 10 questions (`MAX_RESEARCH_QUESTIONS`), each free text.
fn question_list() -> utoipa::openapi::schema::Array {
    text_array(MAX_RESEARCH_QUESTIONS)
}

fn default_search_limit() -> u32 {
    DEFAULT_SEARCH_LIMIT
}

/// Reads a `u32` from any JSON number with no fractional part: JSON (and
/// the JSON Schema `integer` type the OpenAPI document declares) does not
/// tell `90` from `90.0`, and clients whose numbers are all floats send
/// the latter.
mod whole_number {
    use serde::de::{Deserializer, Error, Unexpected, Visitor};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        deserializer.deserialize_any(WholeNumber)
    }

    struct WholeNumber;

    impl Visitor<'_> for WholeNumber {
        type Value = u32;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number")
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<u32, E> {
            // Out of range is left to validation, which names the bounds:
            // saturate rather than refuse with a type error.
            Ok(u32::try_from(v).unwrap_or(u32::MAX))
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<u32, E> {
            // Negative: 0, which validation refuses with the bounds.
            Ok(u32::try_from(v.max(0)).unwrap_or(u32::MAX))
        }

        fn visit_f64<E: Error>(self, v: f64) -> Result<u32, E> {
            if v.fract() != 0.0 || !v.is_finite() {
                return Err(E::invalid_value(Unexpected::Float(v), &self));
            }
            // Whole and finite: the cast saturates at the bounds, which
            // validation then refuses by name.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(v.clamp(0.0, f64::from(u32::MAX)) as u32)
        }
    }
}

/// How much work a research operation does: `standard` (the default, up
/// to 30 s) or `deep` (more of each step, within a larger budget, up to
/// 90 s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Depth {
    /// The default.
    #[default]
    Standard,
    /// More of each step, within a larger time budget.
    Deep,
}

/// The subject of a research operation: exactly one of `company` or `person`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResearchSubject {
    /// A company to research.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = CompanyRef)]
    pub company: Option<CompanyRef>,
    /// A person to research.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = PersonRecord)]
    pub person: Option<PersonRecord>,
}

/// `POST /api/research`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResearchRequest {
    /// What to research.
    pub subject: ResearchSubject,
    /// 0 to 10 questions to answer from the evidence.
    #[serde(default)]
    #[schema(schema_with = question_list)]
    pub questions: Vec<String>,
    /// `standard` (default) or `deep`.
    #[serde(default)]
    #[schema(default = "standard")]
    pub depth: Depth,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys() {
        assert_eq!(check_idempotency_key(b"abc-123").unwrap(), "abc-123");
        assert!(check_idempotency_key(&[b'a'; 255]).is_ok());
        assert!(check_idempotency_key(&[b'a'; 256]).is_err());
        assert!(check_idempotency_key(b"").is_err());
        assert!(check_idempotency_key(b"a b").is_err());
        assert!(check_idempotency_key(b"a\x7f").is_err());
        assert!(check_idempotency_key("é".as_bytes()).is_err());
    }

    #[test]
    fn payloads_are_checked_per_kind() {
        use crate::Kind;
        let refused = |kind, payload: &str| check_payload(kind, payload.as_bytes()).is_err();
        assert!(refused(Kind::SearchPeople, r#"{"targetAccount":{}}"#));
        assert!(refused(Kind::SearchPeople, "[]"));
        assert!(refused(Kind::ResearchDeep, r#"{"subject":{}}"#));
        assert!(refused(Kind::EnrichmentBatch, r#"{"records":[]}"#));
        assert!(!refused(
            Kind::SearchPeople,
            r#"{"targetAccount":{"domain":"acme.com"}}"#
        ));
    }
}
