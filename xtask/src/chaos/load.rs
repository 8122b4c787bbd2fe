//! The load of a chaos run: searches, small batches and researches at a
//! steady rate through the HTTP API, some with an `Idempotency-Key` retried
//! after an error, some cancelled (at once or later), every answer recorded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt as _, SeedableRng as _};
use serde_json::json;

use super::api::{Api, problem_code};
use super::check::{Answer, Cancel, Kind, Observations, Submission};

/// Client threads: enough that a request hanging on a fault does not stop
/// the load.
const THREADS: u64 = 4;
/// Share of requests carrying an `Idempotency-Key` (retried after errors).
const KEYED: f64 = 0.3;
/// Share of accepted operations cancelled.
const CANCELLED: f64 = 0.25;
/// Attempts of a keyed request (the first and its retries).
const ATTEMPTS: u32 = 4;

/// What the load submits: emails and companies of the stack's directory.
pub(crate) struct Inputs {
    /// Work emails, for batches.
    pub(crate) emails: Vec<String>,
    /// (name, domain) of companies, for searches.
    pub(crate) companies: Vec<(String, String)>,
    /// (name, domain) of the companies researched, whose sites the
    /// research worker reads from a loopback fixture.
    pub(crate) researched: Vec<(String, String)>,
}

/// A running load; [`Load::finish`] stops it and returns what it saw.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<(Vec<Submission>, Vec<Cancel>)>>,
    canceller: JoinHandle<Vec<Cancel>>,
}

/// Cancels to send later: when, and which operation.
type Due = Arc<Mutex<Vec<(Instant, String)>>>;

impl Load {
    /// Starts `rate` submissions per second against `api`.
    pub(crate) fn start(api: Arc<Api>, inputs: Arc<Inputs>, rate: f64, seed: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let slots = Arc::new(AtomicU64::new(0));
        let due: Due = Arc::default();
        let started = Instant::now();
        let clients = (0..THREADS)
            .map(|thread| {
                let client = Client {
                    api: api.clone(),
                    inputs: inputs.clone(),
                    rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ ((thread + 1) << 32)),
                    stop: stop.clone(),
                    due: due.clone(),
                    seed,
                };
                let slots = slots.clone();
                std::thread::spawn(move || client.run(&slots, started, rate))
            })
            .collect();
        let canceller = {
            let (api, stop) = (api.clone(), stop.clone());
            std::thread::spawn(move || cancel_when_due(&api, &due, &stop))
        };
        Load {
            stop,
            clients,
            canceller,
        }
    }

    /// Stops submitting, sends the cancels still due, and returns every
    /// answer.
    pub(crate) fn finish(self) -> Observations {
        self.stop.store(true, Ordering::SeqCst);
        let mut observations = Observations::default();
        for client in self.clients {
            if let Ok((submissions, cancels)) = client.join() {
                observations.submissions.extend(submissions);
                observations.cancels.extend(cancels);
            }
        }
        if let Ok(cancels) = self.canceller.join() {
            observations.cancels.extend(cancels);
        }
        observations
    }
}

/// One client thread.
struct Client {
    api: Arc<Api>,
    inputs: Arc<Inputs>,
    rng: Xoshiro256PlusPlus,
    stop: Arc<AtomicBool>,
    due: Due,
    seed: u64,
}

impl Client {
    /// Submits until the load stops; returns the submissions and the
    /// cancels sent at once.
    fn run(
        mut self,
        slots: &AtomicU64,
        started: Instant,
        rate: f64,
    ) -> (Vec<Submission>, Vec<Cancel>) {
        let (mut submissions, mut cancels) = (Vec::new(), Vec::new());
        loop {
            // The n-th submission of all threads together is due at n/rate.
            let slot = slots.fetch_add(1, Ordering::SeqCst);
            let at = started + Duration::from_secs_f64(slot as f64 / rate.max(0.1));
            if !self.sleep_until(at) {
                return (submissions, cancels);
            }
            let submission = self.submit(slot);
            if let Some(Answer::Accepted(id)) = submission.answers.last()
                && self.rng.random_bool(CANCELLED)
            {
                // Right after the accept (often still queued), or while it
                // may be running.
                if self.rng.random_bool(0.4) {
                    cancels.push(cancel(&self.api, id));
                } else {
                    let later = Duration::from_millis(self.rng.random_range(100..2_500));
                    lock(&self.due).push((Instant::now() + later, id.clone()));
                }
            }
            submissions.push(submission);
        }
    }

    /// Sleeps until `at` (in short steps); `false` once the load stops.
    fn sleep_until(&self, at: Instant) -> bool {
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
            let now = Instant::now();
            if now >= at {
                return true;
            }
            std::thread::sleep((at - now).min(Duration::from_millis(100)));
        }
    }

    fn submit(&mut self, slot: u64) -> Submission {
        let roll = self.rng.random_range(0..100);
        let kind = match roll {
            0..45 => Kind::Search,
            45..85 => Kind::Batch,
            _ => Kind::Research,
        };
        let (path, body, records) = self.body(kind);
        let key = self
            .rng
            .random_bool(KEYED)
            .then(|| format!("chaos-{}-{slot}", self.seed));
        let mut answers = Vec::new();
        for attempt in 0..ATTEMPTS {
            let answer = classify(self.api.post(path, Some(&body), key.as_deref()));
            let retry = key.is_some()
                && matches!(
                    answer,
                    Answer::OutcomeUnknown(_) | Answer::Refused(_) | Answer::Unanswered(_)
                );
            answers.push(answer);
            if !retry || attempt + 1 == ATTEMPTS {
                break;
            }
            std::thread::sleep(Duration::from_millis(300 << attempt));
        }
        Submission {
            kind,
            key,
            records,
            answers,
        }
    }

    /// The path and body of a `kind` request, and its records.
    fn body(&mut self, kind: Kind) -> (&'static str, Vec<u8>, u64) {
        let inputs = self.inputs.clone();
        // The inputs are never empty (see `Inputs`' making).
        let pick = |rng: &mut Xoshiro256PlusPlus, items: &[(String, String)]| {
            items
                .get(rng.random_range(0..items.len().max(1)))
                .cloned()
                .unwrap_or_default()
        };
        match kind {
            Kind::Search => {
                let (_, domain) = pick(&mut self.rng, &inputs.companies);
                let body = json!({"targetAccount": {"domain": domain}, "limit": 25});
                ("/api/search/people", body.to_string().into_bytes(), 0)
            }
            Kind::Batch => {
                let n = self.rng.random_range(10..=200_u64);
                let records: Vec<_> = (0..n)
                    .map(|i| {
                        let at = self.rng.random_range(0..inputs.emails.len().max(1));
                        json!({
                            "email": inputs.emails.get(at).cloned().unwrap_or_default(),
                            "externalId": format!("r{i}"),
                        })
                    })
                    .collect();
                let body = json!({ "records": records });
                ("/api/enrichment/batch", body.to_string().into_bytes(), n)
            }
            Kind::Research => {
                let (name, domain) = pick(&mut self.rng, &inputs.researched);
                let body = json!({
                    "subject": {"company": {"name": name, "domain": domain}},
                    "questions": ["Who leads sales?", "Is the company hiring engineers?"],
                    "depth": "standard",
                });
                ("/api/research", body.to_string().into_bytes(), 0)
            }
        }
    }
}

/// What a creating `POST` answered.
fn classify(reply: Result<(u16, serde_json::Value), String>) -> Answer {
    match reply {
        Ok((202, body)) => match body["id"].as_str() {
            Some(id) => Answer::Accepted(id.to_owned()),
            None => Answer::Unexpected(202, "without an id".to_owned()),
        },
        Ok((503, body)) if problem_code(&body) == "accept_outcome_unknown" => {
            Answer::OutcomeUnknown(body["operationId"].as_str().map(str::to_owned))
        }
        Ok((status @ (429 | 503), _)) => Answer::Refused(status),
        Ok((status, body)) => Answer::Unexpected(status, problem_code(&body).to_owned()),
        Err(why) => Answer::Unanswered(why),
    }
}

/// `POST /api/operations/{id}/cancel`.
fn cancel(api: &Api, id: &str) -> Cancel {
    Cancel {
        id: id.to_owned(),
        status: api
            .post(&format!("/api/operations/{id}/cancel"), None, None)
            .ok()
            .map(|(status, _)| status),
    }
}

/// Sends each cancel once it is due, until the load stops and none is left.
fn cancel_when_due(api: &Api, due: &Due, stop: &AtomicBool) -> Vec<Cancel> {
    let mut sent = Vec::new();
    loop {
        let now = Instant::now();
        let ready: Vec<String> = {
            let mut due = lock(due);
            let ready = due
                .iter()
                .filter(|(at, _)| *at <= now || stop.load(Ordering::SeqCst))
                .map(|(_, id)| id.clone())
                .collect();
            due.retain(|(at, _)| *at > now && !stop.load(Ordering::SeqCst));
            ready
        };
        for id in ready {
            sent.push(cancel(api, &id));
        }
        if stop.load(Ordering::SeqCst) && lock(due).is_empty() {
            return sent;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
