//! The webhook endpoint a tenant registers (`POST /api/webhooks`): its body
//! and the rules both the gateway and the webhooks service check. What the
//! webhooks service adds on top is its own policy: https only (unless it
//! allows http for tests), and public addresses only.

use serde::{Deserialize, Serialize};

use super::validate::{FieldError, FieldErrors, Validate};

/// The event of an operation that ended: `succeeded`, `partial_success`,
/// `failed` or `cancelled`.
pub const EVENT_OPERATION_COMPLETED: &str = "operation.completed";
/// The event of an operation that is processing and changed (its progress).
pub const EVENT_OPERATION_PROGRESS: &str = "operation.progress";
/// Every event type an endpoint may ask for.
pub const EVENT_TYPES: &[&str] = &[EVENT_OPERATION_COMPLETED, EVENT_OPERATION_PROGRESS];
/// Longest endpoint URL, in bytes.
pub const MAX_WEBHOOK_URL_BYTES: usize = 2048;
/// Longest endpoint description, in characters.
pub const MAX_WEBHOOK_DESCRIPTION_CHARS: usize = 500;

/// `POST /api/webhooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where deliveries are POSTed: an absolute `https://` URL.
    pub url: String,
    /// The events to deliver (default: `operation.completed` only).
    #[serde(default = "default_event_types")]
    pub event_types: Vec<String>,
    /// A note for the tenant's own use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn default_event_types() -> Vec<String> {
    vec![EVENT_OPERATION_COMPLETED.to_owned()]
}

impl Validate for CreateWebhookRequest {
    fn validate_at(&self, at: &str, errors: &mut FieldErrors) {
        check_webhook(
            at,
            &self.url,
            &self.event_types,
            self.description.as_deref(),
            errors,
        );
    }
}

impl super::Body for CreateWebhookRequest {}

/// Checks an endpoint's fields, pointers under `at`: the URL an absolute
/// `http`/`https` URL with a host and no credentials or fragment, at most
/// [`MAX_WEBHOOK_URL_BYTES`]; one or more known event types, each once; a
/// description of at most [`MAX_WEBHOOK_DESCRIPTION_CHARS`].
pub fn check_webhook(
    at: &str,
    url: &str,
    event_types: &[String],
    description: Option<&str>,
    errors: &mut FieldErrors,
) {
    if let Err(detail) = check_webhook_url(url) {
        errors.push(FieldError::new(format!("{at}/url"), detail));
    }
    if event_types.is_empty() {
        errors.push(FieldError::new(
            format!("{at}/eventTypes"),
            format!("must name at least one of {}", EVENT_TYPES.join(", ")),
        ));
    } else if event_types.len() > EVENT_TYPES.len() {
        errors.push(FieldError::new(
            format!("{at}/eventTypes"),
            format!("must hold at most {} event types", EVENT_TYPES.len()),
        ));
    } else {
        for (i, event) in event_types.iter().enumerate() {
            if !EVENT_TYPES.contains(&event.as_str()) {
                errors.push(FieldError::new(
                    format!("{at}/eventTypes/{i}"),
                    format!("unknown event type; one of {}", EVENT_TYPES.join(", ")),
                ));
            } else if event_types[..i].contains(event) {
                errors.push(FieldError::new(
                    format!("{at}/eventTypes/{i}"),
                    "named twice",
                ));
            }
        }
    }
    if let Some(description) = description
        && description.chars().count() > MAX_WEBHOOK_DESCRIPTION_CHARS
    {
        errors.push(FieldError::new(
            format!("{at}/description"),
            format!("must be at most {MAX_WEBHOOK_DESCRIPTION_CHARS} characters"),
        ));
    }
}

/// Checks the shape of an endpoint URL (see [`check_webhook`]); whether
/// plain http is allowed and where the host leads are the webhooks
/// service's to check.
pub fn check_webhook_url(input: &str) -> Result<url::Url, &'static str> {
    if input.len() > MAX_WEBHOOK_URL_BYTES {
        return Err("must be at most 2048 bytes");
    }
    let url = url::Url::parse(input).map_err(|_| "not an absolute URL")?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("must be an https:// URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{BodyError, parse_body};

    fn pointers(body: &str) -> Vec<String> {
        match parse_body::<CreateWebhookRequest>(body.as_bytes()) {
            Err(BodyError::Invalid(errors)) => errors.into_iter().map(|e| e.pointer).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_webhook_defaults_to_completed_events() {
        let body: CreateWebhookRequest =
            parse_body(br#"{"url":"https://hooks.example.com/dossier"}"#).unwrap();
        assert_eq!(body.event_types, [EVENT_OPERATION_COMPLETED]);
    }

    #[test]
    fn bad_webhook_fields_are_named() {
        assert_eq!(pointers(r#"{"url":"ftp://x.example/"}"#), ["/url"]);
        assert_eq!(pointers(r#"{"url":"/relative"}"#), ["/url"]);
        assert_eq!(pointers(r#"{"url":"https://u:p@x.example/"}"#), ["/url"]);
        assert_eq!(
            pointers(r#"{"url":"https://x.example/","eventTypes":["operation.done"]}"#),
            ["/eventTypes/0"]
        );
        assert_eq!(
            pointers(r#"{"url":"https://x.example/","eventTypes":[]}"#),
            ["/eventTypes"]
        );
        assert_eq!(
            pointers(
                r#"{"url":"https://x.example/","eventTypes":["operation.progress","operation.progress"]}"#
            ),
            ["/eventTypes/1"]
        );
        let long = "d".repeat(501);
        assert_eq!(
            pointers(&format!(
                r#"{{"url":"https://x.example/","description":"{long}"}}"#
            )),
            ["/description"]
        );
        assert_eq!(pointers(r#"{"eventTypes":[]}"#), ["/url"]);
    }
}
