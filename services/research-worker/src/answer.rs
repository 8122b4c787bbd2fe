//! Answers to the caller's questions, by deterministic retrieval from the
//! evidence gathered: every sentence of evidence is scored by the share of
//! the question's terms it contains, each term weighted by how rare it is in
//! the evidence (IDF), and the best few sentences are the answer, each with
//! its source. A question no sentence covers well enough gets an honest
//! "not found in the sources" — never a guess.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

/// The text of an unanswered question.
pub const NOT_FOUND: &str = "Not found in the sources.";
/// Least share of the question's (weighted) terms a sentence must cover.
const MIN_COVERAGE: f64 = 0.3;
/// Most sentences in one answer.
const MAX_SENTENCES: usize = 3;

/// Words that carry no meaning for retrieval.
const STOPWORDS: &[&str] = &[
    "a", "about", "all", "an", "and", "any", "are", "as", "at", "be", "been", "by", "can", "could",
    "did", "do", "does", "for", "from", "had", "has", "have", "how", "i", "in", "is", "it", "its",
    "many", "much", "of", "on", "or", "our", "should", "that", "the", "their", "them", "there",
    "these", "they", "this", "those", "to", "us", "was", "we", "were", "what", "when", "where",
    "which", "who", "whom", "why", "will", "with", "would", "you", "your",
];

/// One sentence of evidence and the source it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The source's id in the report.
    pub source: usize,
    /// The sentence.
    pub text: String,
}

/// How an answer was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerMethod {
    /// Sentences retrieved from the evidence, verbatim.
    Retrieval,
    /// Facts looked up in the report's structured sections (people by
    /// function and rank, counts, the profile, look-alikes, a person's
    /// record).
    Structured,
    /// A deterministic answer reworded by the synthesis provider, which
    /// may add no fact to it.
    Synthesis,
}

/// The answer to one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    /// The question, as asked.
    pub question: String,
    /// The answer with `[n]` citations, or [`NOT_FOUND`].
    pub answer: String,
    /// Whether the sources answer the question.
    pub found: bool,
    /// The ids of the sources the answer rests on, ascending.
    pub sources: Vec<usize>,
    /// How it was written.
    pub method: AnswerMethod,
}

/// A sentence of evidence with its score for one question.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored<'a> {
    /// The evidence.
    pub evidence: &'a Evidence,
    /// Weighted share of the question's terms it contains, 0–1.
    pub score: f64,
}

/// The retrieval index over the evidence of one report.
#[derive(Debug)]
pub struct Index<'a> {
    evidence: &'a [Evidence],
    terms: Vec<BTreeSet<String>>,
    idf: HashMap<String, f64>,
}

impl<'a> Index<'a> {
    /// Indexes `evidence`.
    pub fn new(evidence: &'a [Evidence]) -> Index<'a> {
        let terms: Vec<BTreeSet<String>> = evidence
            .iter()
            .map(|e| terms(&e.text).into_iter().collect())
            .collect();
        let mut df: HashMap<&str, usize> = HashMap::new();
        for set in &terms {
            for term in set {
                *df.entry(term.as_str()).or_default() += 1;
            }
        }
        let n = evidence.len() as f64;
        let idf = df
            .into_iter()
            .map(|(term, df)| (term.to_owned(), (1.0 + n / (1.0 + df as f64)).ln()))
            .collect();
        Index {
            evidence,
            terms,
            idf,
        }
    }

    /// The sentences that cover `question` well enough, best first (ties in
    /// evidence order), at most `limit`.
    pub fn retrieve(&self, question: &str, limit: usize) -> Vec<Scored<'a>> {
        let wanted: BTreeSet<String> = terms(question).into_iter().collect();
        // A term absent from the evidence still counts in the denominator,
        // with the weight of the rarest possible term: a question about
        // something the sources never mention must not be "answered" by its
        // one common word.
        let unseen = (1.0 + self.evidence.len() as f64)
            .ln()
            .max(f64::MIN_POSITIVE);
        let weight = |t: &String| self.idf.get(t).copied().unwrap_or(unseen);
        let total: f64 = wanted.iter().map(weight).sum();
        if wanted.is_empty() || total <= 0.0 {
            return Vec::new();
        }
        let mut scored: Vec<(usize, f64)> = self
            .terms
            .iter()
            .enumerate()
            .map(|(i, set)| {
                let covered: f64 = wanted.iter().filter(|t| set.contains(*t)).map(weight).sum();
                (i, covered / total)
            })
            .filter(|(_, score)| *score >= MIN_COVERAGE)
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut seen = BTreeSet::new();
        scored
            .into_iter()
            .filter(|(i, _)| seen.insert(self.evidence[*i].text.to_lowercase()))
            .take(limit)
            .map(|(i, score)| Scored {
                evidence: &self.evidence[i],
                score,
            })
            .collect()
    }

    /// The deterministic answer to `question`.
    pub fn answer(&self, question: &str) -> Answer {
        let best: Vec<Evidence> = self
            .retrieve(question, MAX_SENTENCES)
            .into_iter()
            .map(|s| s.evidence.clone())
            .collect();
        from_evidence(question, &best, AnswerMethod::Retrieval)
    }
}

/// The answer made of `sentences`, each followed by its `[n]`; "not found"
/// when there are none.
pub fn from_evidence(question: &str, sentences: &[Evidence], method: AnswerMethod) -> Answer {
    if sentences.is_empty() {
        return not_found(question);
    }
    let text = sentences
        .iter()
        .map(|s| format!("{} [{}]", s.text, s.source))
        .collect::<Vec<_>>()
        .join(" ");
    let sources: BTreeSet<usize> = sentences.iter().map(|s| s.source).collect();
    Answer {
        question: question.to_owned(),
        answer: text,
        found: true,
        sources: sources.into_iter().collect(),
        method,
    }
}

/// The honest answer when the sources say nothing.
pub fn not_found(question: &str) -> Answer {
    Answer {
        question: question.to_owned(),
        answer: NOT_FOUND.to_owned(),
        found: false,
        sources: Vec::new(),
        method: AnswerMethod::Retrieval,
    }
}

/// The retrieval terms of a text: lower-cased words of letters and digits,
/// stop words dropped, crudely stemmed (`buying`, `buys` → `buy`).
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

fn stem(word: &str) -> String {
    for suffix in ["ing", "ies", "es", "ed", "s"] {
        if let Some(root) = word.strip_suffix(suffix)
            && root.chars().count() >= 3
        {
            return if suffix == "ies" {
                format!("{root}y")
            } else {
                root.to_owned()
            };
        }
    }
    word.to_owned()
}

/// The `[n]` citations in `text`, in order of appearance.
pub fn citations(text: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find(']')
            && let Ok(n) = rest[..close].trim().parse::<usize>()
        {
            out.push(n);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence() -> Vec<Evidence> {
        [
            (1, "Acme Corp builds rocket engines in San Francisco."),
            (2, "Acme is hiring Rust engineers for its platform team."),
            (
                2,
                "Our careers page lists open roles in engineering and sales.",
            ),
            (
                3,
                "Acme raised a Series C round led by Initech Ventures in 2025.",
            ),
            (4, "The buying committee is led by the VP Engineering."),
        ]
        .into_iter()
        .map(|(source, text)| Evidence {
            source,
            text: text.to_owned(),
        })
        .collect()
    }

    #[test]
    fn terms_drop_stop_words_and_stem() {
        assert_eq!(terms("Who buys the rockets?"), ["buy", "rocket"]);
        assert_eq!(
            terms("Is Acme hiring engineers"),
            ["acme", "hir", "engineer"]
        );
        assert_eq!(terms("companies"), ["company"]);
    }

    #[test]
    fn the_best_covering_sentence_answers_with_its_source() {
        let evidence = evidence();
        let index = Index::new(&evidence);
        let a = index.answer("Is Acme hiring Rust engineers?");
        assert!(a.found);
        assert!(
            a.answer.starts_with("Acme is hiring Rust engineers"),
            "{}",
            a.answer
        );
        assert!(a.answer.contains("[2]"));
        assert_eq!(a.sources.first(), Some(&2));
        let a = index.answer("Who raised the Series C round?");
        assert_eq!(a.sources, [3]);
        let a = index.answer("Who buys?");
        assert_eq!(a.sources, [4], "{a:?}");
        for cited in citations(&a.answer) {
            assert!(a.sources.contains(&cited));
        }
    }

    #[test]
    fn a_question_the_sources_do_not_cover_is_not_found() {
        let evidence = evidence();
        let index = Index::new(&evidence);
        for q in [
            "What is the annual revenue of the Berlin subsidiary?",
            "What?",
            "",
            "Who is the CFO of Globex?",
        ] {
            let a = index.answer(q);
            assert!(!a.found, "{q}: {a:?}");
            assert_eq!(a.answer, NOT_FOUND);
            assert!(a.sources.is_empty());
        }
        assert!(!Index::new(&[]).answer("Who buys?").found);
    }

    #[test]
    fn citations_are_parsed_in_order() {
        assert_eq!(citations("a [1] b [12][3] c [x] [ 4 ]"), [1, 12, 3, 4]);
        assert!(citations("no citations").is_empty());
    }
}
