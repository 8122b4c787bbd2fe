//! The optional synthesis provider: an OpenAI-compatible chat-completions
//! endpoint that writes an answer's prose from the retrieved evidence.
//!
//! It is off unless `DOSSIER_RESEARCH_SYNTHESIS_URL` is set. It only ever
//! sees the sentences of the deterministic answer, numbered by their
//! sources, and may reword them but add nothing: its answer is checked, and
//! the caller falls back to the deterministic answer unless every `[n]` is
//! one of those sources (at least one cited) and every number and every
//! capitalised word (a name, a place, a company) is in those sentences or
//! the question. A model that says the passages do not answer the question
//! gets the honest "not found".

use std::collections::BTreeSet;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::answer::{Answer, AnswerMethod, Evidence, citations, not_found};
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
    /// The answer states something the passages do not: a number or a name.
    #[error("synthesised answer adds a fact: {0}")]
    AddsFacts(String),
}

/// Words a rewording may capitalise without naming anything new.
const PLAIN_WORDS: &[&str] = &[
    "a",
    "according",
    "all",
    "also",
    "an",
    "and",
    "are",
    "as",
    "at",
    "based",
    "both",
    "but",
    "for",
    "from",
    "he",
    "her",
    "his",
    "in",
    "is",
    "it",
    "its",
    "no",
    "none",
    "not",
    "of",
    "on",
    "only",
    "or",
    "our",
    "she",
    "that",
    "the",
    "their",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "was",
    "we",
    "were",
    "with",
    "yes",
];

/// What `text` (a reworded answer) states that `grounds` (the passages and
/// the question) do not: a number, or a capitalised word (a person, a
/// place, a company). `None` when it adds nothing.
pub fn added_fact(text: &str, grounds: &str) -> Option<String> {
    let words = |t: &str| -> Vec<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let known: BTreeSet<String> = words(grounds).iter().map(|w| w.to_lowercase()).collect();
    let mut stated = text.to_owned();
    for n in citations(text) {
        stated = stated.replace(&format!("[{n}]"), " ");
    }
    for word in words(&stated) {
        let lower = word.to_lowercase();
        let number = word.chars().any(|c| c.is_ascii_digit());
        let capital = word.chars().next().is_some_and(char::is_uppercase);
        if (number || capital) && !known.contains(&lower) && !PLAIN_WORDS.contains(&lower.as_str())
        {
            return Some(if number {
                format!("the number {word} is not in the sources")
            } else {
                format!("{word} is not in the sources")
            });
        }
    }
    None
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

    /// Asks the model to reword the answer to `question` made of `passages`
    /// (numbered by their source ids), and checks that it cites only them
    /// and adds no fact ([`added_fact`]).
    pub async fn answer(
        &self,
        question: &str,
        passages: &[Evidence],
    ) -> Result<Answer, SynthesisError> {
        let context = passages
            .iter()
            .map(|p| format!("[{}] {}", p.source, p.text))
            .collect::<Vec<_>>()
            .join("\n");
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "messages": [
                { "role": "system", "content": format!(
                    "You answer questions for a sales team using only the numbered passages \
                     given: reword them, add nothing (no other name, number or fact). Cite \
                     every claim with the passage number in square brackets, like [2]. Never \
                     cite a number that is not given. If the passages do not answer the \
                     question, reply exactly {NOT_FOUND_TOKEN}.") },
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
        let given: BTreeSet<usize> = passages.iter().map(|p| p.source).collect();
        let cited = citations(&text);
        let invalid: Vec<usize> = cited
            .iter()
            .copied()
            .filter(|n| !given.contains(n))
            .collect();
        if cited.is_empty() || !invalid.is_empty() {
            return Err(SynthesisError::InvalidCitations(invalid));
        }
        let grounds = passages
            .iter()
            .map(|p| p.text.as_str())
            .chain([question])
            .collect::<Vec<_>>()
            .join("\n");
        if let Some(added) = added_fact(&text, &grounds) {
            return Err(SynthesisError::AddsFacts(added));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewording_may_add_no_name_and_no_number() {
        let grounds = "Jane Doe, VP Sales, is the most senior sales person found at Acme \
                       Corp.\nWho leads sales?";
        assert_eq!(
            added_fact("The sales leader is Jane Doe (VP Sales) [2].", grounds),
            None
        );
        assert_eq!(
            added_fact("Yes: Jane Doe leads sales at Acme [2].", grounds),
            None
        );
        assert!(
            added_fact("Jane Doe and John Smith lead sales [2].", grounds)
                .is_some_and(|e| e.contains("John"))
        );
        assert!(
            added_fact("Jane Doe leads 40 sellers [2].", grounds).is_some_and(|e| e.contains("40"))
        );
        assert!(added_fact("Jane Doe, based in Berlin [2].", grounds).is_some());
    }
}
