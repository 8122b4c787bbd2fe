//! What can go wrong, and the exit code each outcome maps to (documented in
//! `dossier --help` and the README, "Command-line client").

use std::fmt;

use serde::Deserialize;

/// The process's exit codes. Scripts branch on them, so they never change
/// meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for was done.
    Ok = 0,
    /// An operation failed, was cancelled or finished partially (or some
    /// rows of a file were not enriched), or the output could not be written.
    Failed = 1,
    /// The command line, the configuration or an input file is wrong.
    Usage = 2,
    /// The API refused the request (a 4xx other than 401/403).
    Rejected = 3,
    /// The API could not be reached or failed (a 5xx, a network error).
    Unavailable = 4,
    /// The API key is missing from the request or not accepted (401/403).
    Auth = 5,
    /// Interrupted (Ctrl-C): what was done is kept, run again to go on.
    Interrupted = 130,
}

impl Exit {
    /// The code as the process returns it.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// `Failed` unless the operation's status is `succeeded`.
    pub fn for_status(status: &str) -> Exit {
        if status == "succeeded" {
            Exit::Ok
        } else {
            Exit::Failed
        }
    }
}

/// The `--help` text on exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    done
  1    the operation failed, was cancelled or finished partially (some rows
       not enriched), or the output could not be written
  2    usage error: arguments, configuration or input file
  3    the API rejected the request (4xx): the problem and request id are printed
  4    the API is unreachable or failed (5xx, network)
  5    authentication: no API key, or the API refused it (401/403)
  130  interrupted (Ctrl-C); run the same command again to resume";

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments, configuration or input.
    #[error("{0}")]
    Usage(String),
    /// The API answered with a problem (RFC 9457).
    #[error("{0}")]
    Api(Box<Problem>),
    /// No API key was configured.
    #[error("{0}")]
    NoKey(String),
    /// The API could not be reached, or answered something unreadable.
    #[error("{0}")]
    Network(String),
    /// A local file could not be written.
    #[error("{0}")]
    Output(String),
    /// Ctrl-C (or the test hook that stands for it).
    #[error("interrupted: run the same command again to go on where it stopped")]
    Interrupted,
}

impl CliError {
    /// The exit code of this failure.
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) => Exit::Usage,
            CliError::Api(problem) => match problem.status {
                401 | 403 => Exit::Auth,
                400..=499 => Exit::Rejected,
                _ => Exit::Unavailable,
            },
            CliError::NoKey(_) => Exit::Auth,
            CliError::Network(_) => Exit::Unavailable,
            CliError::Output(_) => Exit::Failed,
            CliError::Interrupted => Exit::Interrupted,
        }
    }
}

impl From<reqwest::Error> for CliError {
    fn from(error: reqwest::Error) -> Self {
        // reqwest's top-level message is vague ("error sending request"):
        // the cause chain says what happened (connection refused, timeout).
        let mut message = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        CliError::Network(message)
    }
}

/// One entry of a problem's `errors`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FieldError {
    /// A JSON pointer into the request body.
    #[serde(default)]
    pub pointer: Option<String>,
    /// A query parameter.
    #[serde(default)]
    pub parameter: Option<String>,
    /// A request header.
    #[serde(default)]
    pub header: Option<String>,
    /// What is wrong.
    #[serde(default)]
    pub detail: String,
}

impl FieldError {
    /// Where the error is: the pointer, parameter or header named.
    pub fn location(&self) -> &str {
        self.pointer
            .as_deref()
            .or(self.parameter.as_deref())
            .or(self.header.as_deref())
            .unwrap_or("")
    }
}

/// An RFC 9457 problem answer, with the request id it came with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// The HTTP status.
    #[serde(default)]
    pub status: u16,
    /// The problem type URI (its last segment is a stable code).
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Short summary.
    #[serde(default)]
    pub title: String,
    /// What happened.
    #[serde(default)]
    pub detail: Option<String>,
    /// Field errors, when the request was invalid.
    #[serde(default)]
    pub errors: Vec<FieldError>,
    /// How many errors there were, listed or not.
    #[serde(default)]
    pub error_count: Option<usize>,
    /// `X-Request-Id` of the answer (or `meta.requestId`).
    #[serde(skip)]
    pub request_id: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let title = if self.title.is_empty() {
            "The API refused the request"
        } else {
            &self.title
        };
        write!(f, "{title} (HTTP {})", self.status)?;
        if let Some(detail) = self.detail.as_deref().filter(|d| !d.is_empty()) {
            write!(f, ": {detail}")?;
        }
        for error in &self.errors {
            write!(f, "\n  {}: {}", error.location(), error.detail)?;
        }
        if let Some(count) = self.error_count.filter(|n| *n > self.errors.len()) {
            write!(f, "\n  … {} more", count - self.errors.len())?;
        }
        if let Some(id) = &self.request_id {
            write!(f, "\nrequest id: {id}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_prints_its_fields_and_request_id_and_maps_to_its_exit_code() {
        let problem: Problem = serde_json::from_str(
            r#"{"type":"https://dossier.dev/problems/validation","title":"Invalid request","status":400,
                "detail":"1 error","errors":[{"pointer":"/records/1/email","detail":"not an email address"}],
                "errorCount":3,"meta":{"requestId":"r-1"}}"#,
        )
        .unwrap();
        let problem = Problem {
            request_id: Some("r-1".to_owned()),
            ..problem
        };
        let text = problem.to_string();
        assert!(
            text.contains("Invalid request (HTTP 400): 1 error"),
            "{text}"
        );
        assert!(
            text.contains("/records/1/email: not an email address"),
            "{text}"
        );
        assert!(text.contains("… 2 more"), "{text}");
        assert!(text.contains("request id: r-1"), "{text}");
        assert_eq!(CliError::Api(Box::new(problem)).exit(), Exit::Rejected);
        let auth = Problem {
            status: 401,
            ..Problem::default()
        };
        assert_eq!(CliError::Api(Box::new(auth)).exit(), Exit::Auth);
        let down = Problem {
            status: 503,
            ..Problem::default()
        };
        assert_eq!(CliError::Api(Box::new(down)).exit().code(), 4);
    }
}
