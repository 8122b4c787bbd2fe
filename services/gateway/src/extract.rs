//! Extractors with the gateway's error answers: a validated JSON body, the
//! `Idempotency-Key` header, and the external base URL that `pollUrl`s start
//! with.

use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Request};
use bytes::Bytes;
use dossier_contracts::api::{Body, BodyError, check_idempotency_key, parse_body};
use http::header;
use http::request::Parts;
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;

/// `Idempotency-Key`.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// A request body of type `T`: declared as JSON (else 415), within the size
/// limit (else 413), well-formed (else 400 `malformed_json`) and valid (else
/// 400 `validation`, one error per bad field with its JSON pointer).
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Whether a `Content-Type` is JSON: `application/json` or
/// `application/<anything>+json`, parameters (`; charset=utf-8`) ignored.
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application")
        && (subtype == "json" || (subtype.len() > 5 && subtype.ends_with("+json")))
}

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: Body,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_content_type);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await?;
        match parse_body::<T>(&bytes) {
            Ok(body) => Ok(JsonBody(body)),
            Err(BodyError::Malformed(e)) => Err(ApiError::MalformedJson(e)),
            Err(BodyError::Invalid(errors)) => Err(ApiError::invalid_body(errors)),
        }
    }
}

/// The `Idempotency-Key` header: absent, or 1-255 visible ASCII characters
/// (400 naming the header otherwise, also when sent twice).
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(IDEMPOTENCY_KEY).iter();
        let Some(value) = values.next() else {
            return Ok(IdempotencyKey(None));
        };
        if values.next().is_some() {
            return Err(ApiError::invalid_header(
                IDEMPOTENCY_KEY,
                "must be sent at most once",
            ));
        }
        check_idempotency_key(value.as_bytes())
            .map(|key| IdempotencyKey(Some(key)))
            .map_err(|detail| ApiError::invalid_header(IDEMPOTENCY_KEY, detail))
    }
}

/// The base of the URLs the client should use, e.g. `https://api.example.com`
/// (no trailing slash): the configured public base URL when set; else the
/// scheme of `X-Forwarded-Proto` (default `http`) with the host of
/// `X-Forwarded-Host`, else of `Host`, else the listener's address. Forwarded
/// and `Host` values that are not a plain `http`/`https` scheme or a
/// `host[:port]` are ignored, so a client cannot make the gateway answer a
/// URL with injected paths or credentials. Any client can send these headers:
/// deployments behind a proxy should set the public base URL.
#[derive(Debug, Clone)]
pub struct ExternalBase(pub String);

impl ExternalBase {
    /// The poll URL of operation `id`.
    pub fn poll_url(&self, id: &str) -> String {
        format!("{}/api/operations/{id}", self.0)
    }
}

/// Whether `s` is `host[:port]`: a DNS name or IPv4 address of
/// `[A-Za-z0-9.-]`, or a bracketed IPv6 address, optionally with a port.
pub fn is_valid_authority(s: &str) -> bool {
    if s.is_empty() || s.len() > 255 {
        return false;
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty()
            || !v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(s), None),
        }
    };
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && !h.starts_with(['.', '-'])
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    });
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    host_ok && port_ok
}

/// The first value of a possibly comma-separated, possibly repeated header.
fn first_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    let value = parts.headers.get(name)?.to_str().ok()?;
    Some(value.split(',').next().unwrap_or_default().trim())
}

/// The external base for a request; see [`ExternalBase`].
pub fn external_base(state: &AppState, parts: &Parts) -> ExternalBase {
    if let Some(base) = state.public_base_url() {
        return ExternalBase(base.to_owned());
    }
    let forwarded_proto = first_value(parts, "x-forwarded-proto")
        .map(str::to_ascii_lowercase)
        .filter(|p| p == "http" || p == "https");
    let forwarded_host = first_value(parts, "x-forwarded-host").filter(|h| is_valid_authority(h));
    if let Some(host) = forwarded_host {
        let scheme = forwarded_proto.as_deref().unwrap_or("http");
        return ExternalBase(format!("{scheme}://{host}"));
    }
    let scheme = forwarded_proto.as_deref().unwrap_or("http");
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::trim)
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .filter(|h| is_valid_authority(h));
    match host {
        Some(host) => ExternalBase(format!("{scheme}://{host}")),
        None => ExternalBase(format!("{scheme}://{}", state.listen_addr())),
    }
}

impl<S> FromRequestParts<S> for ExternalBase
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(external_base(&AppState::from_ref(state), parts))
    }
}

/// Validates a configured public base URL: `http` or `https`, a host, an
/// optional path prefix, nothing else. Returns it without a trailing slash.
pub fn parse_public_base_url(s: &str) -> Result<String, String> {
    let s = s.trim().trim_end_matches('/');
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("`{s}` is not an absolute http(s) URL"))?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return Err(format!("`{s}`: the scheme must be http or https"));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if !is_valid_authority(authority) {
        return Err(format!("`{s}`: `{authority}` is not a host[:port]"));
    }
    if path.contains(['?', '#']) || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("`{s}`: the path must be a plain prefix"));
    }
    Ok(format!(
        "{}://{authority}{path}",
        scheme.to_ascii_lowercase()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
        ] {
            assert!(is_json_content_type(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/+json",
            "json",
            "",
        ] {
            assert!(!is_json_content_type(bad), "{bad}");
        }
    }

    #[test]
    fn authorities() {
        for ok in [
            "example.com",
            "example.com:8443",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:80",
            "localhost",
        ] {
            assert!(is_valid_authority(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.com/path",
            "user@evil.com",
            "a b",
            "host:port",
            "host:99999",
            "[::1",
            "[zz]",
            "-x.com",
            "x.com:",
        ] {
            assert!(!is_valid_authority(bad), "{bad}");
        }
    }

    #[test]
    fn public_base_urls() {
        assert_eq!(
            parse_public_base_url("https://api.example.com/").unwrap(),
            "https://api.example.com"
        );
        assert_eq!(
            parse_public_base_url("HTTP://h:8080/dossier").unwrap(),
            "http://h:8080/dossier"
        );
        for bad in [
            "ftp://x",
            "x.com",
            "https://",
            "https://x.com/?q",
            "https://u@x.com",
        ] {
            assert!(parse_public_base_url(bad).is_err(), "{bad}");
        }
    }
}

/// The `{id}` of an operation route, canonical (lower-case, hyphenated).
/// Anything that is not a UUID is answered exactly like an unknown id (404),
/// so a malformed id tells a caller nothing a missing one would not.
#[derive(Debug)]
pub struct OperationId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for OperationId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::OperationNotFound)?;
        Uuid::try_parse(&raw)
            .map(|id| OperationId(id.hyphenated().to_string()))
            .map_err(|_| ApiError::OperationNotFound)
    }
}
