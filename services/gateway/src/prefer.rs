//! `Prefer: wait=N` (RFC 7240): a client that would rather wait up to N
//! seconds for an operation to finish than poll it.
//!
//! N above [`MAX_WAIT_SECS`] is clamped to it, and every wait is cut to what
//! the request timeout leaves (less [`TIMEOUT_MARGIN`], so the answer is
//! sent before the timeout's 503); `Preference-Applied: wait=M` names the
//! wait actually applied. Preferences the gateway cannot read (no value, a
//! value that is not a number of seconds, `wait=0`) are ignored, as RFC 7240
//! asks of unknown or malformed preferences: the request is served as if it
//! had none. When a preference is given more than once, the first counts.

use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use http::{HeaderName, HeaderValue, header};

use crate::AppState;
use crate::context::RequestStart;

/// The longest wait a client may ask for, in seconds.
pub const MAX_WAIT_SECS: u64 = 60;
/// How long before the request timeout a wait ends.
pub const TIMEOUT_MARGIN: Duration = Duration::from_secs(1);

/// `Preference-Applied`.
pub static PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// The wait a request asked for (`None`: it did not, or not readably),
/// with the moment the request arrived.
#[derive(Debug, Clone, Copy)]
pub struct WaitPreference {
    requested: Option<u64>,
    arrived: Instant,
}

/// A wait the gateway will honour.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait {
    /// Seconds, as `Preference-Applied` says.
    pub(crate) secs: u64,
    /// When it ends.
    pub(crate) deadline: tokio::time::Instant,
}

impl Wait {
    /// `Preference-Applied: wait=<secs>`.
    pub(crate) fn applied(&self) -> (HeaderName, HeaderValue) {
        let value = HeaderValue::from_str(&format!("wait={}", self.secs))
            .unwrap_or_else(|_| HeaderValue::from_static("wait"));
        (PREFERENCE_APPLIED.clone(), value)
    }
}

impl WaitPreference {
    /// The wait to honour under `request_timeout`; `None` when
    /// the request asked for none or the timeout leaves no whole second.
    pub(crate) fn wait(&self, request_timeout: Duration) -> Option<Wait> {
        let requested = self.requested?.min(MAX_WAIT_SECS);
        let budget = request_timeout.saturating_sub(TIMEOUT_MARGIN);
        let secs = requested.min(budget.as_secs());
        if secs == 0 {
            return None;
        }
        // Counted from the request's arrival: the client waits for the
        // whole answer, not for what follows the accept.
        Some(Wait {
            secs,
            deadline: tokio::time::Instant::from_std(self.arrived + Duration::from_secs(secs)),
        })
    }
}

impl<S> FromRequestParts<S> for WaitPreference
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let arrived = parts
            .extensions
            .get::<RequestStart>()
            .map_or_else(Instant::now, |start| start.0);
        let values = parts
            .headers
            .get_all(header::HeaderName::from_static("prefer"))
            .iter()
            .filter_map(|value| value.to_str().ok());
        Ok(WaitPreference {
            requested: requested_wait(values),
            arrived,
        })
    }
}

/// The seconds of the first `wait` preference among the `Prefer` header
/// values, when it is readable and above zero.
fn requested_wait<'a>(values: impl Iterator<Item = &'a str>) -> Option<u64> {
    // preference = token [ BWS "=" BWS word ] *( OWS ";" [ OWS parameter ] )
    let first = values
        .flat_map(|value| value.split(','))
        .map(|preference| preference.split(';').next().unwrap_or_default())
        .find_map(|preference| {
            let (name, value) = preference.split_once('=').unwrap_or((preference, ""));
            name.trim()
                .eq_ignore_ascii_case("wait")
                .then(|| value.trim().trim_matches('"').to_owned())
        })?;
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only: a number too large for u64 is larger than the maximum.
    let secs = first.parse::<u64>().unwrap_or(u64::MAX);
    (secs > 0).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Option<u64> {
        requested_wait(values.iter().copied())
    }

    #[test]
    fn the_first_readable_wait_counts() {
        assert_eq!(parse(&["wait=10"]), Some(10));
        assert_eq!(parse(&["respond-async, wait=10"]), Some(10));
        assert_eq!(parse(&["Wait = \"7\" ; x=1"]), Some(7));
        assert_eq!(parse(&["return=minimal", "wait=5, wait=9"]), Some(5));
        assert_eq!(
            parse(&["wait=123456789012345678901234567890"]),
            Some(u64::MAX)
        );
        for ignored in [
            "",
            "wait",
            "wait=",
            "wait=0",
            "wait=-1",
            "wait=1.5",
            "wait=soon",
            "waiting=3",
        ] {
            assert_eq!(parse(&[ignored]), None, "{ignored:?}");
        }
        // The first wait is the one that counts, even when it is unreadable.
        assert_eq!(parse(&["wait=x, wait=3"]), None);
    }

    #[test]
    fn waits_are_clamped_to_sixty_seconds_and_to_the_request_timeout() {
        let preference = |requested| WaitPreference {
            requested: Some(requested),
            arrived: Instant::now(),
        };
        let secs = |requested, timeout| {
            preference(requested)
                .wait(Duration::from_secs(timeout))
                .map(|w| w.secs)
        };
        assert_eq!(secs(10, 30), Some(10));
        assert_eq!(secs(3600, 600), Some(60));
        assert_eq!(secs(30, 30), Some(29));
        assert_eq!(secs(5, 1), None, "no second left");
        let none = WaitPreference {
            requested: None,
            arrived: Instant::now(),
        };
        assert!(none.wait(Duration::from_secs(30)).is_none());
    }
}
