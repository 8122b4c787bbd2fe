//! The checker: what the load saw (every answer to every request) and what
//! the operations look like at the end (read twice through the HTTP API)
//! against the invariants of SYSTEM.md. Pure, so that it is unit-tested on
//! synthetic observations.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// An operation kind, as the load submits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub(crate) enum Kind {
    /// `POST /api/search/people`.
    Search,
    /// `POST /api/enrichment/batch`.
    Batch,
    /// `POST /api/research`.
    Research,
}

impl Kind {
    /// The operation's `kind` in the API.
    pub(crate) fn api_name(self) -> &'static str {
        match self {
            Kind::Search => "search.people",
            Kind::Batch => "enrichment.batch",
            Kind::Research => "research.deep",
        }
    }
}

/// What one `POST` that creates an operation got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// 202 with this operation id.
    Accepted(String),
    /// 503 `accept_outcome_unknown`, with the operation it names (if any):
    /// the operation may exist, and if it does it must be followed.
    OutcomeUnknown(Option<String>),
    /// 503 (or 429) saying nothing was accepted.
    Refused(u16),
    /// Any other status, with the problem's code: not expected under faults.
    Unexpected(u16, String),
    /// No answer (connection refused or reset, a timeout).
    Unanswered(String),
}

/// One request of the load: an operation it asked for, and the answer to
/// each attempt (attempts after the first are retries with the same
/// `Idempotency-Key`).
#[derive(Clone, Debug)]
pub(crate) struct Submission {
    pub(crate) kind: Kind,
    pub(crate) key: Option<String>,
    /// Records in a batch (0 for other kinds).
    pub(crate) records: u64,
    pub(crate) answers: Vec<Answer>,
}

/// One cancel request and its answer (`None`: no answer).
#[derive(Clone, Debug)]
pub(crate) struct Cancel {
    pub(crate) id: String,
    pub(crate) status: Option<u16>,
}

/// Everything the load saw.
#[derive(Clone, Debug, Default)]
pub(crate) struct Observations {
    pub(crate) submissions: Vec<Submission>,
    pub(crate) cancels: Vec<Cancel>,
}

impl Observations {
    /// Every operation id an answer named (202, or a 503 whose outcome is
    /// unknown), with its kind and whether a 202 acknowledged it.
    pub(crate) fn ids(&self) -> BTreeMap<String, (Kind, bool)> {
        let mut ids: BTreeMap<String, (Kind, bool)> = BTreeMap::new();
        for submission in &self.submissions {
            for answer in &submission.answers {
                let (id, accepted) = match answer {
                    Answer::Accepted(id) => (id, true),
                    Answer::OutcomeUnknown(Some(id)) => (id, false),
                    _ => continue,
                };
                let entry = ids.entry(id.clone()).or_insert((submission.kind, false));
                entry.1 |= accepted;
            }
        }
        ids
    }
}

/// An operation as `GET /api/operations/{id}` showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpState {
    pub(crate) kind: String,
    pub(crate) status: String,
    /// What must never change once terminal: status, progress, result,
    /// error, `completedAt` (as JSON).
    pub(crate) fingerprint: String,
    /// A batch's `result.meta.processed` and `result.meta.total`.
    pub(crate) processed: Option<u64>,
    pub(crate) total: Option<u64>,
    /// The items read through every page of the result
    /// (`GET .../results?cursor=`), when it was read.
    pub(crate) items: Option<Result<u64, String>>,
}

/// One read of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    Op(OpState),
    /// 404.
    NotFound,
    /// 410.
    Gone,
    /// Any other answer, or none.
    Unreadable(String),
}

/// The end of one operation: two reads some seconds apart and, for a
/// sample, the statuses of the terminal events of its event stream.
#[derive(Clone, Debug)]
pub(crate) struct Final {
    pub(crate) first: Seen,
    pub(crate) second: Seen,
    pub(crate) sse: Option<Result<Vec<String>, String>>,
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub(crate) struct Violation {
    /// The operation (or `-` when the answer named none).
    pub(crate) id: String,
    pub(crate) reason: String,
}

/// The verdict.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Checked {
    /// Operations by kind and final status (`not found` for an
    /// outcome-unknown id that was never accepted).
    pub(crate) by_status: BTreeMap<String, BTreeMap<String, usize>>,
    /// Answers to the creating `POST`s and to the cancels, by what they were.
    pub(crate) answers: BTreeMap<String, usize>,
    pub(crate) violations: Vec<Violation>,
}

const TERMINAL: [&str; 4] = ["succeeded", "failed", "partial_success", "cancelled"];

fn is_terminal(status: &str) -> bool {
    TERMINAL.contains(&status)
}

/// Checks `observations` against the `finals` read at the end (one per id
/// of [`Observations::ids`]; a missing one is a violation).
pub(crate) fn check(observations: &Observations, finals: &BTreeMap<String, Final>) -> Checked {
    let mut out = Checked::default();
    let mut violate = |id: &str, reason: String| {
        out.violations.push(Violation {
            id: id.to_owned(),
            reason,
        })
    };
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_status: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let ids = observations.ids();
    // What each id ended as, for the cancels' check.
    let mut ended: BTreeMap<&str, &str> = BTreeMap::new();

    for submission in &observations.submissions {
        for answer in &submission.answers {
            let name = match answer {
                Answer::Accepted(_) => "POST 202".to_owned(),
                Answer::OutcomeUnknown(_) => "POST 503 accept_outcome_unknown".to_owned(),
                Answer::Refused(status) => format!("POST {status} (nothing accepted)"),
                Answer::Unexpected(status, code) => {
                    violate(
                        "-",
                        format!(
                            "POST {} answered {status} {code}",
                            submission.kind.api_name()
                        ),
                    );
                    format!("POST {status} {code}")
                }
                Answer::Unanswered(_) => "POST no answer".to_owned(),
            };
            *answers.entry(name).or_default() += 1;
        }
        // Once per key: every answer of one key names one operation.
        if submission.key.is_some() {
            let named: BTreeSet<&String> = submission
                .answers
                .iter()
                .filter_map(|a| match a {
                    Answer::Accepted(id) => Some(id),
                    Answer::OutcomeUnknown(Some(id)) => finals
                        .get(id)
                        .is_some_and(|f| matches!(f.first, Seen::Op(_)))
                        .then_some(id),
                    _ => None,
                })
                .collect();
            if named.len() > 1 {
                let list: Vec<&str> = named.iter().map(|s| s.as_str()).collect();
                violate(
                    list[0],
                    format!(
                        "one Idempotency-Key made {} operations: {}",
                        list.len(),
                        list.join(", ")
                    ),
                );
            }
        }
    }

    for (id, (kind, accepted)) in &ids {
        let status_of = |name: &str, by_status: &mut BTreeMap<String, BTreeMap<String, usize>>| {
            *by_status
                .entry(kind.api_name().to_owned())
                .or_default()
                .entry(name.to_owned())
                .or_default() += 1;
        };
        let Some(end) = finals.get(id) else {
            violate(id, "never read back".to_owned());
            continue;
        };
        let state = match &end.first {
            Seen::Op(state) => state,
            Seen::NotFound if !accepted => {
                // An outcome-unknown accept that was not accepted.
                status_of("not accepted (404)", &mut by_status);
                continue;
            }
            Seen::NotFound => {
                status_of("lost (404)", &mut by_status);
                violate(id, "answered 202, then not found (lost)".to_owned());
                continue;
            }
            Seen::Gone => {
                status_of("gone (410)", &mut by_status);
                violate(id, "answered 410 within its retention".to_owned());
                continue;
            }
            Seen::Unreadable(why) => {
                status_of("unreadable", &mut by_status);
                violate(id, format!("could not be read: {why}"));
                continue;
            }
        };
        status_of(&state.status, &mut by_status);
        ended.insert(id, &state.status);
        if state.kind != kind.api_name() {
            violate(
                id,
                format!("kind {}, submitted as {}", state.kind, kind.api_name()),
            );
        }
        if !is_terminal(&state.status) {
            violate(id, format!("still {} after the bounded wait", state.status));
            continue;
        }
        match &end.second {
            Seen::Op(again) if again.fingerprint == state.fingerprint => {}
            Seen::Op(again) => violate(
                id,
                format!(
                    "changed after terminal: {} then {} ({} → {})",
                    state.status, again.status, state.fingerprint, again.fingerprint
                ),
            ),
            other => violate(id, format!("terminal {}, then {other:?}", state.status)),
        }
        if *kind == Kind::Batch {
            check_batch(id, state, observations, &mut violate);
        }
        match &end.sse {
            None => {}
            Some(Err(why)) => violate(id, format!("event stream failed: {why}")),
            Some(Ok(terminals)) if terminals.as_slice() == [state.status.clone()] => {}
            Some(Ok(terminals)) => violate(
                id,
                format!(
                    "event stream's terminal events {terminals:?}, GET says {}",
                    state.status
                ),
            ),
        }
    }

    for cancel in &observations.cancels {
        let name = match cancel.status {
            Some(status) => format!("cancel {status}"),
            None => "cancel no answer".to_owned(),
        };
        *answers.entry(name).or_default() += 1;
        let ended = ended.get(cancel.id.as_str()).copied();
        match (cancel.status, ended) {
            // Its end is reported above.
            (_, None) | (Some(200 | 202), Some("cancelled")) => {}
            (Some(status @ (200 | 202)), Some(other)) => violate(
                &cancel.id,
                format!("cancel answered {status}, the operation ended {other}"),
            ),
            (Some(409), Some("cancelled")) => violate(
                &cancel.id,
                "cancel answered 409, the operation ended cancelled".to_owned(),
            ),
            // 409 for one that ended otherwise; 503 or no answer: nothing
            // was promised.
            (Some(409 | 503) | None, Some(_)) => {}
            (Some(status), Some(_)) => violate(
                &cancel.id,
                format!("cancel of an accepted operation answered {status}"),
            ),
        }
    }

    out.answers = answers;
    out.by_status = by_status;
    out.violations.sort();
    out.violations.dedup();
    out
}

/// A succeeded batch has every record's result, readable through its pages.
fn check_batch(
    id: &str,
    state: &OpState,
    observations: &Observations,
    violate: &mut impl FnMut(&str, String),
) {
    let sent = observations
        .submissions
        .iter()
        .find(|s| {
            s.answers.iter().any(|a| match a {
                Answer::Accepted(x) | Answer::OutcomeUnknown(Some(x)) => x == id,
                _ => false,
            })
        })
        .map(|s| s.records);
    if let Some(Err(why)) = &state.items {
        violate(id, format!("result pages unreadable: {why}"));
    }
    if state.status != "succeeded" {
        return;
    }
    let (processed, total) = (state.processed, state.total);
    if processed.is_none() || processed != total || (sent.is_some() && total != sent) {
        violate(
            id,
            format!(
                "succeeded with meta.processed {processed:?} of meta.total {total:?} \
                 ({sent:?} records sent)"
            ),
        );
    }
    match &state.items {
        Some(Ok(items)) if Some(*items) == total => {}
        Some(Ok(items)) => violate(
            id,
            format!("its pages hold {items} items, meta.total is {total:?}"),
        ),
        None => violate(id, "its result pages were not read".to_owned()),
        Some(Err(_)) => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn op(kind: Kind, status: &str, result: &str) -> Seen {
        Seen::Op(OpState {
            kind: kind.api_name().to_owned(),
            status: status.to_owned(),
            fingerprint: format!("{status}:{result}"),
            processed: (kind == Kind::Batch).then_some(20),
            total: (kind == Kind::Batch).then_some(20),
            items: (kind == Kind::Batch).then_some(Ok(20)),
        })
    }

    fn twice(seen: Seen) -> Final {
        Final {
            first: seen.clone(),
            second: seen,
            sse: None,
        }
    }

    fn submitted(kind: Kind, key: Option<&str>, answers: Vec<Answer>) -> Submission {
        Submission {
            kind,
            key: key.map(str::to_owned),
            records: if kind == Kind::Batch { 20 } else { 0 },
            answers,
        }
    }

    fn accepted(id: &str) -> Answer {
        Answer::Accepted(id.to_owned())
    }

    /// A run where everything held: a search, a batch, a research
    /// cancelled with 202, a search whose cancel came too late (409), an
    /// outcome-unknown accept that was not accepted and one that was, and
    /// a keyed retry that found its operation.
    fn clean() -> (Observations, BTreeMap<String, Final>) {
        let observations = Observations {
            submissions: vec![
                submitted(Kind::Search, None, vec![accepted("s1")]),
                submitted(Kind::Batch, None, vec![accepted("b1")]),
                submitted(Kind::Research, None, vec![accepted("r1")]),
                submitted(Kind::Search, None, vec![accepted("s2")]),
                submitted(
                    Kind::Search,
                    None,
                    vec![Answer::OutcomeUnknown(Some("u1".into()))],
                ),
                submitted(
                    Kind::Batch,
                    Some("k"),
                    vec![
                        Answer::OutcomeUnknown(Some("u2".into())),
                        Answer::Unanswered("refused".into()),
                        accepted("u2"),
                    ],
                ),
            ],
            cancels: vec![
                Cancel {
                    id: "r1".into(),
                    status: Some(202),
                },
                Cancel {
                    id: "s2".into(),
                    status: Some(409),
                },
            ],
        };
        let mut finals: BTreeMap<String, Final> = [
            ("s1", twice(op(Kind::Search, "succeeded", "a"))),
            ("b1", twice(op(Kind::Batch, "succeeded", "b"))),
            ("r1", twice(op(Kind::Research, "cancelled", ""))),
            ("s2", twice(op(Kind::Search, "succeeded", "c"))),
            ("u1", twice(Seen::NotFound)),
            ("u2", twice(op(Kind::Batch, "succeeded", "d"))),
        ]
        .into_iter()
        .map(|(id, f)| (id.to_owned(), f))
        .collect();
        finals.get_mut("s1").unwrap().sse = Some(Ok(vec!["succeeded".into()]));
        (observations, finals)
    }

    #[test]
    fn a_run_that_kept_every_promise_has_no_violation() {
        let (observations, finals) = clean();
        let checked = check(&observations, &finals);
        assert_eq!(checked.violations, vec![], "{checked:#?}");
        assert_eq!(checked.by_status["search.people"]["succeeded"], 2);
        assert_eq!(checked.by_status["search.people"]["not accepted (404)"], 1);
        assert_eq!(checked.by_status["enrichment.batch"]["succeeded"], 2);
        assert_eq!(checked.by_status["research.deep"]["cancelled"], 1);
        assert_eq!(checked.answers["POST 202"], 5);
        assert_eq!(checked.answers["cancel 409"], 1);
    }

    fn reasons(observations: &Observations, finals: &BTreeMap<String, Final>) -> Vec<String> {
        check(observations, finals)
            .violations
            .into_iter()
            .map(|v| format!("{}: {}", v.id, v.reason))
            .collect()
    }

    #[test]
    fn a_double_terminal_is_a_violation() {
        let (observations, mut finals) = clean();
        finals.get_mut("s1").unwrap().second = op(Kind::Search, "failed", "");
        let found = reasons(&observations, &finals);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("s1: changed after terminal"),
            "{found:?}"
        );

        // The same result read twice but a second terminal event on the
        // stream.
        let (observations, mut finals) = clean();
        finals.get_mut("s1").unwrap().sse = Some(Ok(vec!["succeeded".into(), "failed".into()]));
        let found = reasons(&observations, &finals);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("terminal events"), "{found:?}");
    }

    #[test]
    fn a_lost_202_is_a_violation() {
        let (observations, mut finals) = clean();
        finals.insert("b1".into(), twice(Seen::NotFound));
        assert_eq!(
            reasons(&observations, &finals),
            vec!["b1: answered 202, then not found (lost)"]
        );
        // Never read back at all.
        let (observations, mut finals) = clean();
        finals.remove("s1");
        assert_eq!(reasons(&observations, &finals), vec!["s1: never read back"]);
    }

    #[test]
    fn a_202_cancel_that_ended_succeeded_is_a_violation_and_so_is_a_409_that_cancelled() {
        let (observations, mut finals) = clean();
        finals.insert("r1".into(), twice(op(Kind::Research, "succeeded", "x")));
        assert_eq!(
            reasons(&observations, &finals),
            vec!["r1: cancel answered 202, the operation ended succeeded"]
        );
        let (observations, mut finals) = clean();
        finals.insert("s2".into(), twice(op(Kind::Search, "cancelled", "")));
        assert_eq!(
            reasons(&observations, &finals),
            vec!["s2: cancel answered 409, the operation ended cancelled"]
        );
    }

    #[test]
    fn operations_left_running_incomplete_batches_and_one_key_twice_are_violations() {
        let (observations, mut finals) = clean();
        finals.insert("s1".into(), twice(op(Kind::Search, "processing", "")));
        assert_eq!(
            reasons(&observations, &finals),
            vec!["s1: still processing after the bounded wait"]
        );

        let (observations, mut finals) = clean();
        if let Seen::Op(state) = &mut finals.get_mut("b1").unwrap().first {
            state.processed = Some(10);
            state.items = Some(Ok(10));
        }
        finals.get_mut("b1").unwrap().second = finals["b1"].first.clone();
        let found = reasons(&observations, &finals);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|f| f.starts_with("b1: ")), "{found:?}");

        let (mut observations, mut finals) = clean();
        observations.submissions[5].answers.push(accepted("u3"));
        finals.insert("u3".into(), twice(op(Kind::Batch, "succeeded", "e")));
        let found = reasons(&observations, &finals);
        assert_eq!(
            found,
            vec!["u2: one Idempotency-Key made 2 operations: u2, u3"]
        );

        let (mut observations, finals) = clean();
        observations.submissions[0]
            .answers
            .push(Answer::Unexpected(500, "internal".into()));
        assert_eq!(
            reasons(&observations, &finals),
            vec!["-: POST search.people answered 500 internal"]
        );
    }
}
