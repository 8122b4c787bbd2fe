//! The optional synthesis provider: an OpenAI-compatible chat-completions
//! endpoint that writes an answer's prose from the retrieved evidence.
//!
//! It is off unless `DOSSIER_RESEARCH_SYNTHESIS_URL` is set. It only ever
//! sees numbered passages that were really gathered, and its answer is
//! checked: every `[n]` must be one of those passages and there must be at
//! least one, else the caller falls back to the deterministic answer. A
//! model that says the passages do not answer the question gets the honest
//! "not found".

use std::collections::BTreeSet;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::answer::{Answer, AnswerMethod, Scored, citations, not_found};
use crate::config::ResearchConfig;

/// What the model is asked to say when the passages do not answer.
const NOT_FOUND_TOKEN: &str = "NOT_FOUND";

/// Why a synthesised answer was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SynthesisError {
    /// The endpoint could not be reached or timed out.
    #[error("synthesis request failed: {0}")]
    Request(String),
    /// The endpoint answered with a non-success status.
    #[error("synthesis provider answered HTTP {0}")]
    Status(u16),
    /// The answer is not a chat completion.
    #[error("synthesis provider sent an invalid response: {0}")]
    InvalidResponse(String),
    /// The answer cites nothing, or something that was not given.
    #[error("synthesised answer cites sources that were not gathered: {0:?}")]
    InvalidCitations(Vec<usize>),
}

/// A configured synthesis provider.
#[derive(Debug, Clone)]
pub struct Synthesizer {
    client: reqwest::Client,
    url: String,
    api_key: Option<SecretString>,
    model: String,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

impl Synthesizer {
    /// The provider of `config`, or `None` when synthesis is off.
    pub fn from_config(config: &ResearchConfig) -> Result<Option<Synthesizer>, reqwest::Error> {
        let Some(url) = config.synthesis_url.clone() else {
            return Ok(None);
        };
        let client = reqwest::Client::builder()
            .timeout(config.synthesis_timeout)
            // A redirect could carry the bearer token somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Some(Synthesizer {
            client,
            url,
            api_key: config.synthesis_api_key.clone(),
            model: config.synthesis_model.clone(),
            timeout: config.synthesis_timeout,
        }))
    }

    /// The model named in requests.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Most time one request takes.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Asks the model to answer `question` from `passages` (numbered by their
    /// source ids) and checks its citations.
    pub async fn answer(
        &self,
        question: &str,
        passages: &[Scored<'_>],
    ) -> Result<Answer, SynthesisError> {
        let context = passages
            .iter()
            .map(|p| format!("[{}] {}", p.evidence.source, p.evidence.text))
            .collect::<Vec<_>>()
            .join("\n");
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "messages": [
                { "role": "system", "content": format!(
                    "You answer questions for a sales team using only the numbered passages \
                     given. Cite every claim with the passage number in square brackets, \
                     like [2]. Never cite a number that is not given. If the passages do not \
                     answer the question, reply exactly {NOT_FOUND_TOKEN}.") },
                { "role": "user", "content": format!("Passages:\n{context}\n\nQuestion: {question}") },
            ],
        });
        let mut request = self.client.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|e| SynthesisError::Request(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(SynthesisError::Status(response.status().as_u16()));
        }
        let completion: Completion = response
            .json()
            .await
            .map_err(|e| SynthesisError::InvalidResponse(e.without_url().to_string()))?;
        let text = completion
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SynthesisError::InvalidResponse("no message content".into()))?;
        if text == NOT_FOUND_TOKEN {
            return Ok(not_found(question));
        }
        let given: BTreeSet<usize> = passages.iter().map(|p| p.evidence.source).collect();
        let cited = citations(&text);
        let invalid: Vec<usize> = cited
            .iter()
            .copied()
            .filter(|n| !given.contains(n))
            .collect();
        if cited.is_empty() || !invalid.is_empty() {
            return Err(SynthesisError::InvalidCitations(invalid));
        }
        let sources: BTreeSet<usize> = cited.into_iter().collect();
        Ok(Answer {
            question: question.to_owned(),
            answer: text,
            found: true,
            sources: sources.into_iter().collect(),
            method: AnswerMethod::Synthesis,
        })
    }
}
