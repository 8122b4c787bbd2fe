//! The document's shared parts: security schemes, response headers, the
//! problem document and the responses every route shares (`401`, `429`,
//! `503`, …), and the header parameters of the creating POSTs.
#![allow(dead_code)] // Fields are read by the schema derives only.

use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Ref, SchemaFormat, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, RefOr};
use utoipa::{IntoParams, Modify, ToSchema};

use crate::auth::X_API_KEY;
use crate::error::PROBLEM_CONTENT_TYPE;

/// An RFC 9457 problem document: every error answer.
#[derive(ToSchema)]
#[schema(as = Problem, rename_all = "camelCase")]
pub(crate) struct ProblemDoc {
    /// `https://dossier.dev/problems/<code>`: the code names the problem
    /// (`validation`, `malformed_json`, `unauthorized`, `operation_not_found`,
    /// `operation_expired`, `operation_conflict`, `idempotency_conflict`,
    /// `payload_too_large`, `unsupported_media_type`, `rate_limited`,
    /// `service_unavailable`, `overloaded`, `too_many_streams`,
    /// `storage_full`, `accept_outcome_unknown`, `enrichment_unavailable`,
    /// …).
    #[schema(format = "uri")]
    r#type: String,
    /// A short, fixed title of the problem type.
    title: String,
    /// The HTTP status.
    status: u16,
    /// What happened, for a person.
    detail: String,
    /// What is wrong, one entry per bad field, parameter or header: the
    /// first 100 found (fewer if they would not fit the answer's 64 KiB);
    /// `errorCount` counts them all. A list over its `maxItems` is one
    /// entry at the list (`/records`), and its items are not checked. Names
    /// and values quoted from the request are cut short (`…`).
    #[schema(required = false, max_items = 100)]
    errors: Vec<ProblemIssue>,
    /// How many errors the request has, listed in `errors` or not; present
    /// whenever `errors` is.
    #[schema(required = false, minimum = 1)]
    error_count: Option<u64>,
    /// `accept_outcome_unknown` only: the operation the interrupted request
    /// may have created.
    #[schema(required = false, format = Uuid)]
    operation_id: Option<String>,
    /// The request id.
    meta: crate::error::Meta,
}

/// One bad field, parameter or header: exactly one of `pointer`,
/// `parameter`, `header`.
#[derive(ToSchema)]
pub(crate) struct ProblemIssue {
    /// RFC 6901 pointer into the request body (at most 128 characters).
    #[schema(required = false)]
    pointer: Option<String>,
    /// A query parameter (at most 128 characters).
    #[schema(required = false)]
    parameter: Option<String>,
    /// A request header.
    #[schema(required = false)]
    header: Option<String>,
    /// What is wrong (at most 256 characters).
    detail: String,
}

/// One server-sent event of an operation's stream (heartbeat comments
/// aside).
#[derive(ToSchema)]
pub(crate) struct OperationEvent {
    /// `operation` for a state that is not terminal, `terminal` for the
    /// last one.
    event: OperationEventKind,
    /// `R PPP C`: grows with every change (see the route).
    #[schema(pattern = "^[1-3][0-9]{3}[01]$")]
    id: String,
    /// The operation as `GET /api/operations/{id}` answers it (an
    /// `OperationResponse`), JSON on one line.
    #[schema(content_media_type = "application/json")]
    data: String,
}

/// The `event:` of an operation's stream.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum OperationEventKind {
    Operation,
    Terminal,
}

/// The header parameters of a POST that starts an operation.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct CreateHeaders {
    /// 1-255 visible ASCII characters. Same tenant + key within 24 h
    /// returns the same operation (202 again, with `Idempotent-Replayed:
    /// true`); the same key with a different body answers 409.
    #[param(rename = "Idempotency-Key", value_type = String, required = false, min_length = 1, max_length = 255, pattern = r"^[!-~]{1,255}$")]
    idempotency_key: Option<String>,
    /// `wait=N` (RFC 7240): wait up to N seconds for the operation to
    /// finish. N over 60 is clamped to 60, and to the gateway's request
    /// timeout less 1 s (29 s with the default 30 s timeout);
    /// `Preference-Applied: wait=M` names the wait applied. On `GET` the
    /// answer comes when the operation is terminal or the wait is over. On a
    /// POST that starts an operation the answer is `200` with the finished
    /// operation when it ends within the wait, else the usual `202` once the
    /// wait is over. A `wait` the gateway cannot read (`wait=0`, not a
    /// number) is ignored, as are other preferences; when the gateway is at
    /// its limit of streams it answers at once, without
    /// `Preference-Applied`.
    #[param(rename = "Prefer", value_type = String, required = false, example = "wait=30")]
    prefer: Option<String>,
}

/// `Prefer` alone (reading an operation).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct PreferHeader {
    /// `wait=N` (RFC 7240): answer as soon as the operation is terminal, or
    /// after N seconds with its state then (at once when it already is). N
    /// over 60 is clamped to 60 and to the request timeout less 1 s;
    /// `Preference-Applied: wait=M` names the wait applied. Anything else
    /// is ignored.
    #[param(rename = "Prefer", value_type = String, required = false, example = "wait=30")]
    prefer: Option<String>,
}

/// `Last-Event-ID`, as `EventSource` sends it when it reconnects.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub(crate) struct LastEventIdHeader {
    /// The `id` of the last event received.
    #[param(rename = "Last-Event-ID", value_type = String, required = false, pattern = "^[1-3][0-9]{3}[01]$")]
    last_event_id: Option<String>,
}

/// The path parameter naming an operation.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct OperationIdPath {
    /// The operation's id.
    #[param(format = Uuid)]
    id: String,
}

/// Names of the shared response headers (`#/components/headers/…`).
pub(crate) const REQUEST_ID: &str = "RequestId";
pub(crate) const RETRY_AFTER: &str = "RetryAfter";
pub(crate) const PREFERENCE_APPLIED: &str = "PreferenceApplied";

/// Adds what the derive cannot: the security schemes, the shared headers
/// and responses, and the requirement that every route but the probes
/// and this document sends an API key.
pub(crate) struct Shared;

impl Modify for Shared {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.security_schemes.insert(
            "bearer".to_owned(),
            RefOr::T(SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build(),
            )),
        );
        components.security_schemes.insert(
            "apiKey".to_owned(),
            RefOr::T(SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new(
                "X-API-Key",
            )))),
        );
        debug_assert!(X_API_KEY.eq_ignore_ascii_case("X-API-Key"));
        for (name, header) in [
            (
                REQUEST_ID,
                header(
                    "A fresh UUID per request; equals `meta.requestId`. Without an incoming \
                     `traceparent` it is also the trace id of the request.",
                    Type::String,
                    Some(KnownFormat::Uuid),
                ),
            ),
            (
                RETRY_AFTER,
                header("Seconds before polling or retrying.", Type::Integer, None),
            ),
            (
                PREFERENCE_APPLIED,
                header(
                    "`wait=M` when the gateway waited (up to M seconds) as `Prefer: wait` \
                     asked: N clamped to 60 and to the request timeout less 1 s.",
                    Type::String,
                    None,
                ),
            ),
        ] {
            components.headers.insert(name.to_owned(), RefOr::T(header));
        }
        for (name, response) in responses() {
            components
                .responses
                .insert(name.to_owned(), RefOr::T(response));
        }
    }
}

fn header(description: &str, kind: Type, format: Option<KnownFormat>) -> Header {
    let mut schema = ObjectBuilder::new().schema_type(kind);
    if let Some(format) = format {
        schema = schema.format(Some(SchemaFormat::KnownFormat(format)));
    }
    HeaderBuilder::new()
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// A header whose value is a URL.
fn uri_header(description: &str) -> Header {
    HeaderBuilder::new()
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::Custom("uri".to_owned()))),
        ))
        .build()
}

fn header_ref(name: &str) -> Ref {
    Ref::new(format!("#/components/headers/{name}"))
}

/// A problem response: `description`, `X-Request-Id` and `extra` headers.
pub(crate) fn problem(description: &str, extra: &[(&str, Ref)]) -> Response {
    let mut builder = ResponseBuilder::new()
        .description(description)
        .header_ref("X-Request-Id", header_ref(REQUEST_ID));
    for (name, reference) in extra {
        builder = builder.header_ref(*name, reference.clone());
    }
    builder
        .content(
            PROBLEM_CONTENT_TYPE,
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .build()
}

/// The shared responses, by component name.
fn responses() -> Vec<(&'static str, Response)> {
    let retry = || ("Retry-After", header_ref(RETRY_AFTER));
    let plain_header = |description: &str| RefOr::T(header(description, Type::Integer, None));
    let mut too_many = problem(
        "The tenant is over its request rate (`rate_limited`); nothing was done. Retry after \
         `Retry-After` seconds.",
        &[retry()],
    );
    for (name, description) in [
        ("RateLimit-Limit", "The tenant's request quota (its burst)."),
        ("RateLimit-Remaining", "Requests left in the quota (0)."),
        ("RateLimit-Reset", "Seconds until the quota has room again."),
    ] {
        too_many
            .headers
            .insert(name.to_owned(), plain_header(description));
    }
    vec![
        ("Problem", problem("A problem (see `type` for which).", &[])),
        (
            "BadRequest",
            problem(
                "`malformed_json` or `validation`: the body is not JSON, or fields, parameters \
                 or headers are invalid, each named in `errors`.",
                &[],
            ),
        ),
        (
            "Unauthorized",
            problem("`unauthorized`: missing or unknown API key.", &[]),
        ),
        (
            "NotFound",
            problem(
                "`operation_not_found`: the caller's tenant has no operation with this id \
                 (another tenant's answers exactly the same).",
                &[],
            ),
        ),
        (
            "Conflict",
            problem(
                "`operation_conflict` (the operation's state does not allow it) or \
                 `idempotency_conflict` (the `Idempotency-Key` was used with another body).",
                &[],
            ),
        ),
        (
            "PayloadTooLarge",
            problem(
                "`payload_too_large`: the body is over the gateway's limit (8 MiB by default), \
                 named in `detail`.",
                &[],
            ),
        ),
        (
            "UnsupportedMediaType",
            problem(
                "`unsupported_media_type`: the body is not declared JSON (`Content-Type: \
                 application/json` or `application/*+json`).",
                &[],
            ),
        ),
        ("TooManyRequests", too_many),
        (
            "Gone",
            problem(
                "`operation_expired`: the operation passed its `expiresAt` and was deleted with \
                 its result (or the id, unknown to the caller's tenant, is older than the \
                 retention).",
                &[],
            ),
        ),
        (
            "Unavailable",
            problem(
                "Broker or operations service unavailable (`service_unavailable`), the gateway \
                 at its limit of requests in flight (`overloaded`), or, for an event stream, at \
                 its limit of open streams (`too_many_streams`); nothing was accepted. Retry \
                 after `Retry-After` seconds. On a POST that starts an operation, \
                 `accept_outcome_unknown` means the service was interrupted after the job may \
                 have been stored: `operationId` (when known) names the operation — `GET \
                 /api/operations/{operationId}` tells whether it was accepted (404: it was \
                 not) — and a retry with the same `Idempotency-Key` returns it without running \
                 it twice. `storage_full` (with `Retry-After: 30`): the broker's store for new \
                 work is full (e.g. the queue of jobs is at its byte limit); queued work is \
                 kept and runs, and room comes back as it does and as operations expire.",
                &[retry()],
            ),
        ),
        (
            "Accepted",
            ResponseBuilder::new()
                .description(
                    "Accepted; the job is stored durably. Poll `pollUrl`, or stream `pollUrl` + \
                     `/events`. A replay of an earlier request's `Idempotency-Key` answers the \
                     same 202 with `Idempotent-Replayed: true`.",
                )
                .header_ref("X-Request-Id", header_ref(REQUEST_ID))
                .header_ref("Preference-Applied", header_ref(PREFERENCE_APPLIED))
                .header("Location", uri_header("The poll URL."))
                .header_ref("Retry-After", header_ref(RETRY_AFTER))
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("AcceptedOperation"))),
                )
                .build(),
        ),
        (
            "FinishedWithinWait",
            ResponseBuilder::new()
                .description(
                    "Under `Prefer: wait=N`: the operation ended within the wait; the body is \
                     the operation as `GET /api/operations/{id}` answers it, with its result \
                     (or error).",
                )
                .header_ref("X-Request-Id", header_ref(REQUEST_ID))
                .header(
                    "Content-Location",
                    uri_header("The operation's URL (the body is its state)."),
                )
                .header_ref("Preference-Applied", header_ref(PREFERENCE_APPLIED))
                .content(
                    "application/json",
                    Content::new(Some(Ref::from_schema_name("OperationResponse"))),
                )
                .build(),
        ),
    ]
}

/// The answers of a POST that starts an operation: `200` (finished within
/// `Prefer: wait`), `202`, and the shared problems.
pub(crate) struct CreateResponses;

impl utoipa::IntoResponses for CreateResponses {
    fn responses() -> std::collections::BTreeMap<String, RefOr<Response>> {
        [
            ("200", "FinishedWithinWait"),
            ("202", "Accepted"),
            ("400", "BadRequest"),
            ("401", "Unauthorized"),
            ("409", "Conflict"),
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
            ("429", "TooManyRequests"),
            ("503", "Unavailable"),
        ]
        .into_iter()
        .map(|(status, name)| (status.to_owned(), RefOr::Ref(Ref::from_response_name(name))))
        .collect()
    }
}

/// Marker types naming the shared responses in `#[utoipa::path]`
/// (`response = Unauthorized`): each is a `$ref` to the component
/// [`Shared`] adds.
macro_rules! shared_responses {
    ($($name:ident),* $(,)?) => {
        $(
            #[doc = concat!("`#/components/responses/", stringify!($name), "`.")]
            pub(crate) struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    let name = stringify!($name);
                    (name, RefOr::Ref(Ref::from_response_name(name)))
                }
            }
        )*
    };
}

shared_responses!(
    Problem,
    BadRequest,
    Unauthorized,
    NotFound,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Gone,
    Unavailable,
);
