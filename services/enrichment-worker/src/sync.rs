//! Synchronous enrichment: answering `EnrichPersonRequest`s on the core NATS
//! subject `dossier.enrich.person` (queue group `enrichment-worker`, so each
//! request reaches one worker) for `POST /api/enrichment/person`.
//!
//! The gateway waits for the reply with a timeout and answers 503 when
//! nobody replies, so a worker that is busy or gone costs the caller a retry,
//! never a wrong answer. Requests run concurrently, at most `concurrency` at
//! once; further requests wait in the subscription (and time out at the
//! gateway if the wait is too long).

use std::sync::Arc;

use async_nats::Subscriber;
use bytes::Bytes;
use dossier_broker::consume::{ConsumeLoop, Subscription};
use dossier_contracts::api::{PersonRecord, Validate as _};
use dossier_contracts::v1::{
    EnrichPersonReply, EnrichPersonRequest, OperationError, enrich_person_reply,
};
use dossier_service::CancellationToken;
use dossier_telemetry::propagation;
use prost::Message as _;

use dossier_targeting::matching::{
    CompanyCache, Matcher, PROVIDERS_UNAVAILABLE, RecordError, RecordStatus,
};

/// How long requests in hand may take to finish once shutdown begins.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Subscribes to synchronous enrichment requests (see `App::build` for when
/// the server has registered it).
pub(crate) async fn subscribe(client: &async_nats::Client) -> anyhow::Result<Subscriber> {
    let subscriber = client
        .queue_subscribe(
            dossier_contracts::subjects::ENRICH_PERSON,
            dossier_contracts::subjects::ENRICHMENT_QUEUE_GROUP.to_owned(),
        )
        .await?;
    client.flush().await?;
    Ok(subscriber)
}

/// Answers requests until `shutdown`, then stops taking new ones (they go
/// to the other workers of the queue group) and lets the ones in hand
/// finish. The loop is the shared consume loop (`dossier_broker::consume`).
pub(crate) async fn serve(
    client: async_nats::Client,
    subscriber: Subscriber,
    matcher: Arc<Matcher>,
    concurrency: usize,
    shutdown: CancellationToken,
) {
    let requests = ConsumeLoop {
        grace: Some(DRAIN_GRACE),
        ..ConsumeLoop::new(dossier_contracts::subjects::ENRICH_PERSON, concurrency)
    };
    requests
        .run(
            Subscription::new(subscriber),
            &shutdown,
            move |message, _| {
                let client = client.clone();
                let matcher = matcher.clone();
                async move { answer(&client, &matcher, message).await }
            },
        )
        .await;
}

/// Decodes, matches and replies to one request.
async fn answer(client: &async_nats::Client, matcher: &Matcher, message: async_nats::Message) {
    let Some(reply_to) = message.reply.clone() else {
        tracing::debug!(message = "Enrichment request without a reply subject; ignoring it.");
        return;
    };
    let request = EnrichPersonRequest::decode(message.payload.clone());
    // The gateway's request id names the message.
    let headers = message.headers.as_ref();
    let (span, _) = propagation::nats_consume(
        dossier_contracts::subjects::ENRICH_PERSON,
        propagation::nats_request_id(headers),
        headers,
    );
    let reply = span.wrap(async {
        let request = match request {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(message = "Undecodable enrichment request.", %error);
                return invalid("The request could not be decoded.");
            }
        };
        tracing::Span::current().record("tenant.id", request.tenant_id.as_str());
        let record: PersonRecord = match serde_json::from_slice(&request.record_json) {
            Ok(record) => record,
            Err(error) => {
                tracing::warn!(message = "Enrichment request with an invalid record.", %error);
                return invalid("The record is not a valid person record.");
            }
        };
        if !record.validate().is_empty() {
            return invalid("The record does not identify a person.");
        }
        let enriched = matcher.enrich(&record, &CompanyCache::default()).await;
        if enriched.status == RecordStatus::Error {
            let error = enriched.error.unwrap_or_else(|| RecordError {
                code: PROVIDERS_UNAVAILABLE.to_owned(),
                message: "The directory providers did not answer.".to_owned(),
            });
            tracing::warn!(message = "Synchronous enrichment failed.", code = %error.code, error = %error.message);
            return EnrichPersonReply {
                outcome: Some(enrich_person_reply::Outcome::Error(OperationError {
                    code: error.code,
                    message: error.message,
                    details_json: String::new(),
                })),
            };
        }
        match serde_json::to_vec(&enriched) {
            Ok(json) => EnrichPersonReply {
                outcome: Some(enrich_person_reply::Outcome::RecordJson(json)),
            },
            Err(error) => {
                tracing::error!(message = "Cannot encode an enriched record.", %error);
                invalid("The result could not be encoded.")
            }
        }
    })
    .await;
    if let Err(error) = span
        .wrap(client.publish(reply_to, Bytes::from(reply.encode_to_vec())))
        .await
    {
        tracing::warn!(message = "Cannot send an enrichment reply.", %error);
    }
}

fn invalid(message: &str) -> EnrichPersonReply {
    EnrichPersonReply {
        outcome: Some(enrich_person_reply::Outcome::Error(OperationError {
            code: "invalid_request".to_owned(),
            message: message.to_owned(),
            details_json: String::new(),
        })),
    }
}
