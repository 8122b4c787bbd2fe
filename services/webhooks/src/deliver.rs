//! The delivery worker: one consume loop on `webhook-deliveries`, one HTTP
//! POST per message, retried on the published schedule.
//!
//! Each attempt signs the same body under the same `webhook-id` with a
//! fresh `webhook-timestamp`, and is recorded (status code, failure class,
//! duration, time) in the delivery's record *before* the message is
//! settled, so a crash repeats an attempt rather than losing one. Outcomes:
//!
//! - 2xx: delivered; acked.
//! - 410 Gone: the receiver asked to stop: the endpoint is disabled (no
//!   more deliveries to it; the others waiting are dropped as they come)
//!   and the delivery failed; acked.
//! - anything else (another status, a timeout, a refused or failed
//!   connection, a redirect, which is never followed): nak'ed with the
//!   schedule's next delay, or, past the last, failed and acked.
//!
//! A delivery waiting for its retry stays unacknowledged in JetStream (the
//! nak's delay is the server's timer): nothing is polled, and a replica
//! that dies takes nothing with it.
//!
//! Every connection goes through the address guard (`dossier-netguard`):
//! IP-literal hosts are checked before each attempt, names by the guarded
//! resolver on the address each new connection uses, so a name that
//! resolves to a private address at delivery time (DNS rebinding) is
//! refused though it was public at registration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::jetstream::AckKind;
use dossier_broker::consume::{ConsumeLoop, DurableStream};
use dossier_contracts::time_ext;
use dossier_contracts::v1::{DeliveryAttempt, DeliveryStatus, WebhookDelivery, WebhookJob};
use dossier_netguard::{AddressGuard, GuardedResolver, refusal};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::deliveries::{key, push_attempt};
use crate::endpoints::signing_keys;
use crate::error::{Error, error_chain};
use crate::{Shared, signing};

/// Deliveries made at once by one replica, by default.
pub(crate) const DEFAULT_CONCURRENCY: u16 = 32;
/// Wait before a delivery the service itself could not handle (the broker
/// unreachable) is tried again; not counted as an attempt.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Tries of the record's compare-and-set around one attempt.
const CAS_TRIES: usize = 5;

/// The HTTP side of deliveries: a client that connects only through the
/// address guard and follows no redirects.
#[derive(Clone)]
pub(crate) struct Sender {
    client: reqwest::Client,
    guard: AddressGuard,
}

impl Sender {
    /// A sender resolving names with `resolver` (the system's, or a test's),
    /// each attempt bounded by `timeout`.
    pub(crate) fn new(
        resolver: Arc<dyn reqwest::dns::Resolve>,
        guard: AddressGuard,
        timeout: Duration,
    ) -> Result<Sender, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("Dossier-Webhooks/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(timeout)
            // A receiver's redirect could lead anywhere: an attempt that
            // gets one fails, as Standard Webhooks senders do.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect for us, past the guard.
            .no_proxy()
            .dns_resolver(GuardedResolver::new(resolver, guard.clone()))
            .build()?;
        Ok(Sender { client, guard })
    }

    /// One attempt: POSTs `job`'s body signed with `keys`.
    async fn attempt(
        &self,
        url: &str,
        job: &WebhookJob,
        keys: &[secrecy::SecretSlice<u8>],
    ) -> Outcome {
        let Ok(url) = reqwest::Url::parse(url) else {
            return Outcome::Failed(0, "connect");
        };
        if let Err(refused) = self.guard.check_host(&url) {
            tracing::warn!(message = "Refused a webhook delivery to a non-public address.", address = %refused.address, class = %refused.class);
            return Outcome::Failed(0, "not_public");
        }
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let keys: Vec<&secrecy::SecretSlice<u8>> = keys.iter().collect();
        let signature =
            signing::signature_header(&keys, &job.webhook_id, timestamp, &job.body_json);
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &job.webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(job.body_json.clone())
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                let code = u32::from(status.as_u16());
                if status.is_success() {
                    Outcome::Delivered(code)
                } else if status == reqwest::StatusCode::GONE {
                    Outcome::Gone
                } else if status.is_redirection() {
                    Outcome::Failed(code, "redirect")
                } else {
                    Outcome::Failed(code, "http_status")
                }
            }
            Err(error) if refusal(&error).is_some() => {
                tracing::warn!(message = "Refused a webhook delivery to a non-public address.", error = %error_chain(&error));
                Outcome::Failed(0, "not_public")
            }
            Err(error) if error.is_timeout() => Outcome::Failed(0, "timeout"),
            Err(error) => {
                tracing::info!(message = "A webhook delivery failed to connect.", error = %error_chain(&error));
                Outcome::Failed(0, "connect")
            }
        }
    }
}

/// How one attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 2xx, with the status.
    Delivered(u32),
    /// 410: stop.
    Gone,
    /// Anything else: the status (0 when none) and the failure class.
    Failed(u32, &'static str),
}

/// Runs the delivery worker until `shutdown`.
pub(crate) async fn run(shared: Arc<Shared>, concurrency: usize, shutdown: CancellationToken) {
    let source = DurableStream::new(
        shared.topology.webhooks.clone(),
        dossier_broker::WEBHOOK_DELIVERIES_CONSUMER,
        concurrency,
    );
    let deliveries = ConsumeLoop {
        retry: crate::RECONNECT,
        health: shared.deliveries_health.clone(),
        grace: Some(shared.settings.timeout + Duration::from_secs(1)),
        ..ConsumeLoop::new(dossier_broker::WEBHOOK_DELIVERIES_CONSUMER, concurrency)
    };
    deliveries
        .run(source, &shutdown, move |message, _| {
            handle(shared.clone(), message)
        })
        .await;
}

async fn handle(shared: Arc<Shared>, message: jetstream::Message) {
    let ack = match WebhookJob::decode(message.payload.clone()) {
        Ok(job) => match deliver(&shared, &job).await {
            Ok(ack) => ack,
            Err(error) => {
                tracing::warn!(message = "Cannot handle a webhook delivery; retrying.", webhook_id = %job.webhook_id, error = %error_chain(&error));
                AckKind::Nak(Some(RETRY_DELAY))
            }
        },
        Err(error) => {
            tracing::error!(message = "A webhook job does not decode; dropped.", %error);
            AckKind::Term
        }
    };
    if let Err(error) = message.ack_with(ack).await {
        tracing::warn!(message = "Cannot settle a webhook delivery.", %error);
    }
}

/// Makes the next attempt of `job` (unless it is settled already), records
/// it, and says how to settle the message.
async fn deliver(shared: &Shared, job: &WebhookJob) -> Result<AckKind, Error> {
    let key = key(&job.endpoint_id, &job.webhook_id);
    let (mut record, revision) = match shared.deliveries.load(&key).await? {
        Some((record, revision)) => (record, Some(revision)),
        None => (new_record(job), None),
    };
    if record.status != DeliveryStatus::Pending as i32 {
        // Settled before: a redelivery after a crash, or a copy published
        // after the duplicate window.
        return Ok(AckKind::Ack);
    }
    let endpoints = shared.endpoints.load(&job.tenant_id).await?;
    let endpoint = endpoints.iter().find(|e| e.id == job.endpoint_id);
    let Some(endpoint) = endpoint.filter(|e| e.disabled_at.is_none()) else {
        // Deleted or disabled since: nothing more goes to it.
        record.status = DeliveryStatus::Failed as i32;
        record.next_attempt_at = None;
        record.updated_at = Some(time_ext::now());
        save(shared, &key, record, revision).await?;
        return Ok(AckKind::Ack);
    };
    let number = record.attempts.last().map_or(0, |a| a.attempt) + 1;
    let started = Instant::now();
    let attempted_at = time_ext::now();
    let keys = signing_keys(endpoint, time::OffsetDateTime::now_utc());
    let outcome = shared.sender.attempt(&endpoint.url, job, &keys).await;
    let duration_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
    let (status_code, error) = match outcome {
        Outcome::Delivered(code) => (code, ""),
        Outcome::Gone => (410, "gone"),
        Outcome::Failed(code, class) => (code, class),
    };
    push_attempt(
        &mut record,
        DeliveryAttempt {
            attempt: number,
            attempted_at: Some(attempted_at),
            duration_ms,
            status_code,
            error: error.to_owned(),
        },
    );
    let now = time_ext::now();
    record.updated_at = Some(now);
    let delay = shared.settings.schedule.get(number as usize - 1).copied();
    let ack = match (outcome, delay) {
        (Outcome::Delivered(_), _) => {
            record.status = DeliveryStatus::Delivered as i32;
            record.next_attempt_at = None;
            AckKind::Ack
        }
        (Outcome::Gone, _) | (Outcome::Failed(..), None) => {
            record.status = DeliveryStatus::Failed as i32;
            record.next_attempt_at = None;
            AckKind::Ack
        }
        (Outcome::Failed(..), Some(delay)) => {
            record.next_attempt_at =
                time_ext::from_timestamp(&now).map(|t| time_ext::to_timestamp(t + delay));
            AckKind::Nak(Some(delay))
        }
    };
    tracing::info!(
        message = "Webhook attempt made.",
        webhook_id = %job.webhook_id,
        endpoint_id = %job.endpoint_id,
        attempt = number,
        status_code,
        error,
        duration_ms
    );
    metrics::counter!(crate::metrics::ATTEMPTS, "outcome" => if error.is_empty() { "delivered" } else { error })
        .increment(1);
    save(shared, &key, record, revision).await?;
    if outcome == Outcome::Gone {
        disable(shared, job).await?;
    }
    Ok(ack)
}

/// The record of a delivery whose record the fan-out has not written yet.
fn new_record(job: &WebhookJob) -> WebhookDelivery {
    WebhookDelivery {
        webhook_id: job.webhook_id.clone(),
        endpoint_id: job.endpoint_id.clone(),
        tenant_id: job.tenant_id.clone(),
        event_type: job.event_type.clone(),
        operation_id: job.operation_id.clone(),
        status: DeliveryStatus::Pending as i32,
        attempts: Vec::new(),
        created_at: job.created_at,
        updated_at: job.created_at,
        next_attempt_at: job.created_at,
    }
}

/// Writes `record` over `revision`; when another writer came first (the
/// fan-out creating the record, or a copy of this delivery), keeps the
/// attempts of both.
async fn save(
    shared: &Shared,
    key: &str,
    mut record: WebhookDelivery,
    mut revision: Option<u64>,
) -> Result<(), Error> {
    for _ in 0..CAS_TRIES {
        if shared.deliveries.save(key, &record, revision).await? {
            return Ok(());
        }
        let Some((stored, stored_revision)) = shared.deliveries.load(key).await? else {
            revision = None;
            continue;
        };
        // A settled status wins over pending; attempts are merged by number.
        if stored.status != DeliveryStatus::Pending as i32 {
            record.status = stored.status;
            record.next_attempt_at = stored.next_attempt_at;
        }
        for attempt in stored.attempts {
            if !record.attempts.iter().any(|a| a.attempt == attempt.attempt) {
                push_attempt(&mut record, attempt);
            }
        }
        record.attempts.sort_by_key(|a| a.attempt);
        revision = Some(stored_revision);
    }
    Err(Error::Contention(format!("webhook delivery {key}")))
}

/// Disables the endpoint `job` went to: its receiver answered 410.
async fn disable(shared: &Shared, job: &WebhookJob) -> Result<(), Error> {
    let now = time_ext::now();
    shared
        .endpoints
        .modify(&job.tenant_id, |endpoints| {
            let Some(endpoint) = endpoints
                .iter_mut()
                .find(|e| e.id == job.endpoint_id && e.disabled_at.is_none())
            else {
                return Ok((false, ()));
            };
            endpoint.disabled_at = Some(now);
            endpoint.disabled_reason = "the receiver answered 410 Gone".to_owned();
            endpoint.updated_at = Some(now);
            Ok((true, ()))
        })
        .await?;
    tracing::warn!(message = "Webhook endpoint disabled: its receiver answered 410 Gone.", endpoint_id = %job.endpoint_id);
    Ok(())
}
