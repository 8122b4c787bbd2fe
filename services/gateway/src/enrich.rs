//! Synchronous enrichment (`POST /api/enrichment/person`): a core NATS
//! request-reply call to the enrichment workers.
//!
//! The gateway sends an `EnrichPersonRequest` on `dossier.enrich.person`;
//! one worker of the queue group matches the record and replies. Nothing is
//! stored, so the call has no side effects and a failed one is simply
//! answered 503 with `Retry-After`: no worker subscribed (NATS tells at
//! once), no reply within the timeout, NATS not connected, or the worker's
//! providers failed. This is the gateway's only use of NATS; jobs still go
//! through the operations service.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::client::RequestErrorKind;
use bytes::Bytes;
use dossier_contracts::api::PersonRecord;
use dossier_contracts::v1::{EnrichPersonReply, EnrichPersonRequest, enrich_person_reply};
use dossier_telemetry::{Traced, propagation, spans};
use prost::Message as _;
use serde_json::Value;

use crate::error::ApiError;

/// A NATS client for enrichment requests.
#[derive(Clone)]
pub struct EnrichClient {
    client: async_nats::Client,
    timeout: Duration,
}

impl std::fmt::Debug for EnrichClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrichClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Connects to NATS in the background: the gateway starts (and serves
/// everything else) while NATS is down, and sync enrichment answers 503
/// until the connection is up.
pub async fn connect(
    url: &str,
    credentials: &dossier_nats::NatsCredentials,
    timeout: Duration,
) -> Result<EnrichClient, async_nats::ConnectError> {
    let client = dossier_nats::connect(url, credentials, "gateway", timeout).await?;
    Ok(EnrichClient { client, timeout })
}

impl EnrichClient {
    /// Whether the NATS connection is up right now.
    pub fn is_connected(&self) -> bool {
        dossier_nats::is_connected(&self.client)
    }

    /// Asks a worker to enrich `record` for `tenant`; the enriched record
    /// (status `matched` or `not_found`) as JSON.
    pub async fn enrich(
        &self,
        tenant: &str,
        record: &PersonRecord,
        request_id: &str,
    ) -> Result<Value, ApiError> {
        if !self.is_connected() {
            return Err(ApiError::enrichment_unavailable(
                "Synchronous enrichment is temporarily unavailable; retry shortly.",
                None,
            ));
        }
        // The request's producer span, a child of the HTTP span: the worker's
        // `process` span hangs under it.
        let span = Traced::current_child(|| {
            spans::nats_publish(dossier_contracts::subjects::ENRICH_PERSON, request_id)
        });
        span.record("tenant.id", tenant);
        let record_json = serde_json::to_vec(record)
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("encode record")))?;
        let request = EnrichPersonRequest {
            tenant_id: tenant.to_owned(),
            record_json,
        };
        let mut headers = HeaderMap::new();
        propagation::inject_nats_traced(&span, request_id, &mut headers);

        let call = self.client.request_with_headers(
            dossier_contracts::subjects::ENRICH_PERSON,
            headers,
            Bytes::from(request.encode_to_vec()),
        );
        let reply = match span.wrap(tokio::time::timeout(self.timeout, call)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) if error.kind() == RequestErrorKind::NoResponders => {
                return Err(ApiError::enrichment_unavailable(
                    "No enrichment worker is running; retry shortly or use POST /api/enrichment/batch.",
                    Some(error.into()),
                ));
            }
            Ok(Err(error)) => {
                return Err(ApiError::enrichment_unavailable(
                    "Synchronous enrichment did not answer in time; retry shortly.",
                    Some(error.into()),
                ));
            }
            Err(_) => {
                return Err(ApiError::enrichment_unavailable(
                    "Synchronous enrichment did not answer in time; retry shortly.",
                    Some(anyhow::anyhow!("no reply within {:?}", self.timeout)),
                ));
            }
        };
        let reply = EnrichPersonReply::decode(reply.payload).map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("undecodable enrichment reply"))
        })?;
        match reply.outcome {
            Some(enrich_person_reply::Outcome::RecordJson(json)) => serde_json::from_slice(&json)
                .map_err(|e| {
                    ApiError::Internal(
                        anyhow::Error::new(e).context("enrichment reply is not JSON"),
                    )
                }),
            Some(enrich_person_reply::Outcome::Error(error)) => {
                Err(ApiError::enrichment_unavailable(
                    format!(
                        "The record could not be enriched now: {} Retry shortly.",
                        error.message
                    ),
                    Some(anyhow::anyhow!(
                        "worker answered {}: {}",
                        error.code,
                        error.message
                    )),
                ))
            }
            None => Err(ApiError::Internal(anyhow::anyhow!(
                "enrichment reply without an outcome"
            ))),
        }
    }
}
