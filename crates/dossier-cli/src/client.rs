//! The API over HTTP: authenticated requests, problem answers turned into
//! [`CliError`]s with their request id, operations, result pages.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::Settings;
use crate::error::{CliError, Problem};

/// Longest wait for a TCP/TLS connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence on an open response: the event stream sends a heartbeat
/// every 15 s, so a minute of nothing means the connection is dead.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Items asked for per page of a result (the API's maximum).
const RESULT_PAGE_LIMIT: u32 = 1000;

/// An operation as `GET /api/operations/{id}` answers it (the fields the
/// client uses; the rest stays in the JSON when printed whole).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// The operation id.
    pub id: String,
    /// `enrichment.batch`, `search.people` or `research.deep`.
    #[serde(default)]
    pub kind: String,
    /// `queued`, `processing`, or a terminal status.
    pub status: String,
    /// 0–100 when tracked.
    #[serde(default)]
    pub progress: Option<u8>,
    /// The kind's payload when finished (first page of a long one).
    #[serde(default)]
    pub result: Option<Value>,
    /// Why it failed or was cancelled.
    #[serde(default)]
    pub error: Option<OperationError>,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub created_at: Option<String>,
    /// Whether cancellation was requested.
    #[serde(default)]
    pub cancel_requested: bool,
}

/// An operation's `error`.
#[derive(Debug, Clone, Deserialize)]
pub struct OperationError {
    /// snake_case code.
    pub code: String,
    /// What happened.
    #[serde(default)]
    pub message: String,
}

impl Operation {
    /// Whether the status is final.
    pub fn is_terminal(&self) -> bool {
        is_terminal(&self.status)
    }

    /// `code: message` of the error, when there is one.
    pub fn error_text(&self) -> Option<String> {
        self.error
            .as_ref()
            .map(|e| format!("{}: {}", e.code, e.message))
    }
}

/// Whether `status` is one of the four final statuses.
pub fn is_terminal(status: &str) -> bool {
    matches!(
        status,
        "succeeded" | "failed" | "partial_success" | "cancelled"
    )
}

/// What a POST that starts an operation answered.
#[derive(Debug)]
pub enum Started {
    /// 202: accepted, running in the background.
    Accepted {
        /// The operation id.
        id: String,
    },
    /// 200 under `Prefer: wait`: it finished within the wait.
    Finished(Box<Operation>),
}

impl Started {
    /// The operation id.
    pub fn id(&self) -> &str {
        match self {
            Started::Accepted { id } => id,
            Started::Finished(op) => &op.id,
        }
    }
}

#[derive(Deserialize)]
struct AcceptedBody {
    id: String,
}

/// A client of one API with one key.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: SecretString,
}

impl Client {
    /// A client for `settings`.
    pub fn new(settings: &Settings) -> Result<Client, CliError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("dossier-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(CliError::from)?;
        Ok(Client {
            http,
            base: settings.api_url.clone(),
            key: settings.api_key.clone(),
        })
    }

    /// A request to `path` (below the base URL) with the key.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.key.expose_secret())
    }

    /// Sends `request`; a non-2xx answer becomes the problem it carries.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, CliError> {
        let response = request.send().await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(problem_of(response).await)
        }
    }

    /// Sends `request` and decodes the JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, CliError> {
        let response = self.send(request).await?;
        decode(response).await
    }

    /// POSTs `body` to `path`, which starts an operation, waiting up to
    /// `wait` seconds for it to end (`Prefer: wait`), with an
    /// `Idempotency-Key` when given.
    pub async fn start(
        &self,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
        wait: Option<u32>,
    ) -> Result<Started, CliError> {
        let mut request = self.request(Method::POST, path).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(wait) = wait.filter(|w| *w > 0) {
            request = request.header("prefer", format!("wait={wait}"));
        }
        let response = self.send(request).await?;
        if response.status() == StatusCode::ACCEPTED {
            let accepted: AcceptedBody = decode(response).await?;
            Ok(Started::Accepted { id: accepted.id })
        } else {
            Ok(Started::Finished(Box::new(decode(response).await?)))
        }
    }

    /// `GET /api/operations/{id}`, the raw JSON.
    pub async fn operation_json(&self, id: &str) -> Result<Value, CliError> {
        self.json(self.request(Method::GET, &operation_path(id)))
            .await
    }

    /// `GET /api/operations/{id}`.
    pub async fn operation(&self, id: &str) -> Result<Operation, CliError> {
        self.json(self.request(Method::GET, &operation_path(id)))
            .await
    }

    /// Every item of a finished operation's result `data`, in order: the
    /// first page the operation carries, then each further page.
    pub async fn result_items(&self, op: &Operation) -> Result<Vec<Value>, CliError> {
        let Some(result) = &op.result else {
            return Ok(Vec::new());
        };
        let mut items = result["data"].as_array().cloned().unwrap_or_default();
        let mut cursor = result["page"]["nextCursor"].as_str().map(str::to_owned);
        // Bounded: every page moves the cursor forward, and an API that
        // answered more pages than items would be a loop.
        let most_pages = result["page"]["total"].as_u64().unwrap_or(0) + 1;
        let mut pages = 0;
        while let Some(next) = cursor.take() {
            pages += 1;
            if pages > most_pages {
                return Err(CliError::Network(format!(
                    "the result pages of operation {} do not end",
                    op.id
                )));
            }
            let page: Value = self
                .json(
                    self.request(Method::GET, &format!("{}/results", operation_path(&op.id)))
                        .query(&[("cursor", next.as_str())])
                        .query(&[("limit", RESULT_PAGE_LIMIT)]),
                )
                .await?;
            items.extend(page["data"].as_array().cloned().unwrap_or_default());
            cursor = page["page"]["nextCursor"].as_str().map(str::to_owned);
        }
        Ok(items)
    }
}

/// The path of operation `id`.
pub fn operation_path(id: &str) -> String {
    format!("/api/operations/{id}")
}

/// Decodes a JSON answer.
async fn decode<T: DeserializeOwned>(response: Response) -> Result<T, CliError> {
    let request_id = request_id(&response);
    let bytes = response.bytes().await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        CliError::Network(format!(
            "unexpected answer from the API ({e}){}",
            request_id
                .map(|id| format!("\nrequest id: {id}"))
                .unwrap_or_default()
        ))
    })
}

/// The answer's `X-Request-Id`.
fn request_id(response: &Response) -> Option<String> {
    response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The problem a non-2xx answer carries (or one made from its status when
/// the body is not a problem, as a proxy's error page would be).
pub async fn problem_of(response: Response) -> CliError {
    let status = response.status();
    let request_id = request_id(&response);
    let body = response.bytes().await.unwrap_or_default();
    let mut problem: Problem = serde_json::from_slice(&body).unwrap_or_else(|_| Problem {
        title: status
            .canonical_reason()
            .unwrap_or("Unexpected answer")
            .to_owned(),
        detail: Some(String::from_utf8_lossy(&body).chars().take(300).collect())
            .filter(|d: &String| !d.trim().is_empty()),
        ..Problem::default()
    });
    problem.status = status.as_u16();
    problem.request_id = request_id.or_else(|| {
        serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["meta"]["requestId"].as_str().map(str::to_owned))
    });
    CliError::Api(Box::new(problem))
}
