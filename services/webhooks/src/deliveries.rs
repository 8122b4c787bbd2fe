//! Delivery records: one value per (endpoint, event) in
//! `dossier_webhook_deliveries`, key `<endpoint id>.<webhook id>`, holding
//! the delivery's status and its latest attempts. The bucket's max age is
//! the operations' retention, so a record goes some time after its last
//! write.
//!
//! The record doubles as the fan-out's memory: a record revision whose
//! delivery already has a record was handled before (a redelivered record
//! revision, or a revision that changed nothing an endpoint is told), so it
//! does not make a second delivery.

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::{kv, stream};
use dossier_contracts::v1::{DeliveryAttempt, WebhookDelivery};
use futures::StreamExt as _;
use prost::Message as _;

use crate::error::Error;

/// Attempts kept in a record: the schedule's (10 by default) with room for
/// redeliveries after crashes; older ones are dropped.
pub(crate) const MAX_KEPT_ATTEMPTS: usize = 20;

/// The record key of `webhook_id` to `endpoint_id`.
pub(crate) fn key(endpoint_id: &str, webhook_id: &str) -> String {
    format!("{endpoint_id}.{webhook_id}")
}

/// The delivery records bucket.
#[derive(Clone)]
pub(crate) struct Deliveries {
    kv: kv::Store,
    /// The bucket's stream, for listing an endpoint's keys.
    stream: stream::Stream,
    bucket: String,
}

impl Deliveries {
    pub(crate) fn new(kv: kv::Store, stream: stream::Stream, bucket: &str) -> Deliveries {
        Deliveries {
            kv,
            stream,
            bucket: bucket.to_owned(),
        }
    }

    /// The record under `key` and its revision.
    pub(crate) async fn load(&self, key: &str) -> Result<Option<(WebhookDelivery, u64)>, Error> {
        let entry = self
            .kv
            .entry(key)
            .await
            .map_err(Error::broker("read a webhook delivery"))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(None);
        };
        let record = WebhookDelivery::decode(entry.value).map_err(|error| Error::Corrupt {
            what: "webhook delivery",
            key: key.to_owned(),
            reason: error.to_string(),
        })?;
        Ok(Some((record, entry.revision)))
    }

    /// Whether a record exists under `key`.
    pub(crate) async fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.load(key).await?.is_some())
    }

    /// Creates the record; `false` when one exists already.
    pub(crate) async fn create(&self, key: &str, record: &WebhookDelivery) -> Result<bool, Error> {
        match self.kv.create(key, record.encode_to_vec().into()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::broker("create a webhook delivery")(e)),
        }
    }

    /// Writes the record over `revision` (`None`: creates it); `false`
    /// when another writer came first.
    pub(crate) async fn save(
        &self,
        key: &str,
        record: &WebhookDelivery,
        revision: Option<u64>,
    ) -> Result<bool, Error> {
        let Some(revision) = revision else {
            return self.create(key, record).await;
        };
        match self
            .kv
            .update(key, record.encode_to_vec().into(), revision)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(Error::broker("update a webhook delivery")(e)),
        }
    }

    /// A page of `endpoint_id`'s deliveries, newest operation first (webhook
    /// ids hold the operation's UUIDv7, which sorts by its creation time):
    /// at most `limit` after `cursor` (the last webhook id of the page
    /// before), and the cursor of the next page.
    ///
    /// The endpoint's keys come from one ordered, headers-only consumer on
    /// the bucket's stream filtered to the endpoint (the last revision of
    /// each key), then the page's values are read one by one: a page costs
    /// the endpoint's key count in headers and `limit` gets.
    pub(crate) async fn page(
        &self,
        endpoint_id: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<WebhookDelivery>, Option<String>), Error> {
        let prefix = format!("$KV.{}.{endpoint_id}.", self.bucket);
        let mut ids = self.webhook_ids(&prefix).await?;
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let start = match cursor {
            Some(cursor) => ids.partition_point(|id| id.as_str() >= cursor),
            None => 0,
        };
        let page: Vec<&String> = ids.iter().skip(start).take(limit).collect();
        let next = (start + page.len() < ids.len())
            .then(|| page.last().map(|id| (*id).clone()))
            .flatten();
        let mut records = Vec::with_capacity(page.len());
        for id in page {
            if let Some((record, _)) = self.load(&key(endpoint_id, id)).await? {
                records.push(record);
            }
        }
        Ok((records, next))
    }

    /// The webhook ids of the live keys under `prefix`.
    async fn webhook_ids(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let consumer = self
            .stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: format!("{prefix}>"),
                headers_only: true,
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(Error::broker("list webhook deliveries"))?;
        let mut ids = Vec::new();
        if consumer.cached_info().num_pending == 0 {
            return Ok(ids);
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(Error::broker("list webhook deliveries"))?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(Error::broker("list webhook deliveries"))?;
            let info = message
                .info()
                .map_err(|e| Error::broker("list webhook deliveries")(e.to_string()))?;
            let pending = info.pending;
            // Deleted and purged keys leave a marker whose operation says so.
            let deleted = message
                .headers
                .as_ref()
                .and_then(|h| h.get("KV-Operation"))
                .is_some_and(|op| op.as_str() != "PUT");
            if !deleted && let Some(id) = message.subject.as_str().strip_prefix(prefix) {
                ids.push(id.to_owned());
            }
            if pending == 0 {
                break;
            }
        }
        Ok(ids)
    }
}

/// Appends `attempt`, keeping the latest [`MAX_KEPT_ATTEMPTS`].
pub(crate) fn push_attempt(record: &mut WebhookDelivery, attempt: DeliveryAttempt) {
    record.attempts.push(attempt);
    let excess = record.attempts.len().saturating_sub(MAX_KEPT_ATTEMPTS);
    record.attempts.drain(..excess);
}
