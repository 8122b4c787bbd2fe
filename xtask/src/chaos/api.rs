//! The chaos run's HTTP client of the public API: every call answers a
//! status and the JSON body, or why there was no answer (a fault may have
//! taken the gateway away: that is an observation, not an error).

use std::io::Read as _;
use std::time::Duration;

use serde_json::Value;

/// How long one call may take: longer than the gateway's own 10 s budget
/// for a call to the operations service, so its 503 arrives first.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// The API of one gateway, as one tenant.
pub(crate) struct Api {
    base: String,
    auth: String,
    agent: ureq::Agent,
}

impl Api {
    /// The API at `base` (`http://127.0.0.1:<port>`) with API key `key`.
    pub(crate) fn new(base: String, key: &str) -> Api {
        Api {
            base,
            auth: format!("Bearer {key}"),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(CALL_TIMEOUT))
                .build()
                .into(),
        }
    }

    /// `POST path` with a JSON `body` (or none) and an `Idempotency-Key`.
    pub(crate) fn post(
        &self,
        path: &str,
        body: Option<&[u8]>,
        key: Option<&str>,
    ) -> Result<(u16, Value), String> {
        let mut request = self
            .agent
            .post(&format!("{}{path}", self.base))
            .header("Authorization", &self.auth);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = match body {
            Some(body) => request
                .header("Content-Type", "application/json")
                .send(body),
            None => request.send_empty(),
        };
        read_json(response)
    }

    /// `GET path` with query parameters `query`.
    pub(crate) fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<(u16, Value), String> {
        let mut request = self
            .agent
            .get(&format!("{}{path}", self.base))
            .header("Authorization", &self.auth);
        for (name, value) in query {
            request = request.query(*name, *value);
        }
        read_json(request.call())
    }

    /// The statuses of the `terminal` events of `GET
    /// /api/operations/{id}/events` for an operation that is terminal (the
    /// stream sends its state and ends).
    pub(crate) fn terminal_events(&self, id: &str) -> Result<Vec<String>, String> {
        let response = self
            .agent
            .get(&format!("{}/api/operations/{id}/events", self.base))
            .header("Authorization", &self.auth)
            .header("Accept", "text/event-stream")
            .call()
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let mut text = String::new();
        response
            .into_body()
            .into_reader()
            .take(64 * 1024 * 1024)
            .read_to_string(&mut text)
            .map_err(|e| format!("reading the stream: {e}"))?;
        if status != 200 {
            return Err(format!("answered {status}"));
        }
        Ok(terminal_statuses(&text))
    }
}

/// The status of every `terminal` event of a server-sent events text.
fn terminal_statuses(text: &str) -> Vec<String> {
    let mut statuses = Vec::new();
    let (mut event, mut data) = (String::new(), String::new());
    // A blank line ends an event; the text's end ends the last one.
    for line in text.lines().chain(std::iter::once("")) {
        if line.is_empty() {
            if event == "terminal" {
                let value: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
                statuses.push(value["status"].as_str().unwrap_or("?").to_owned());
            }
            event.clear();
            data.clear();
        } else if let Some(name) = line.strip_prefix("event:") {
            event = name.trim().to_owned();
        } else if let Some(more) = line.strip_prefix("data:") {
            data.push_str(more.trim_start());
        }
    }
    statuses
}

fn read_json(
    response: Result<http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, Value), String> {
    crate::json_answer(response.map_err(|e| e.to_string())?)
        .map_err(|e| format!("reading the answer: {e}"))
}

/// The code of a problem document: the last segment of its `type`.
pub(crate) fn problem_code(problem: &Value) -> &str {
    problem["type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_events_are_picked_out_of_a_stream() {
        let text = "event: operation\ndata: {\"status\":\"processing\"}\nid: 20400\n\n\
                    : heartbeat\n\n\
                    event: terminal\ndata: {\"status\":\"succeeded\"}\nid: 31000\n";
        assert_eq!(terminal_statuses(text), vec!["succeeded"]);
        assert_eq!(terminal_statuses(""), Vec::<String>::new());
    }
}
