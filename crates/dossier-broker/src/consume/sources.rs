//! The three kinds of [`Source`] Dossier consumes from.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::Statistics;
use async_nats::jetstream::consumer::{self, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind, stream};
use futures::{FutureExt as _, StreamExt as _};

use super::{PullError, Pulled, Source};

/// A durable JetStream consumer read in pull requests of exactly as many
/// messages as there are free slots, each open for `expires`: the workers'
/// job consumers, so that a worker never holds a job it has no slot for.
///
/// A reconnect renews the pull at once: the new server session does not know
/// the open request, and waiting for it to expire would idle the worker for
/// the whole expiry.
pub struct PullBatches {
    consumer: PullConsumer,
    expires: Duration,
    connection: Arc<Statistics>,
    /// The connection's reconnect count when the open pull was made.
    connects: u64,
    batch: Option<pull::Batch>,
}

impl PullBatches {
    /// Pull requests on `consumer`, each waiting up to `expires` at the
    /// server; `connection` is the client's, to notice reconnects.
    pub fn new(consumer: PullConsumer, expires: Duration, connection: Arc<Statistics>) -> Self {
        PullBatches {
            consumer,
            expires,
            connection,
            connects: 0,
            batch: None,
        }
    }
}

impl Source for PullBatches {
    type Message = jetstream::Message;

    async fn pull(&mut self, max: usize) -> Result<Pulled, PullError> {
        self.batch = None;
        self.connects = self.connection.connects.load(Ordering::Relaxed);
        let batch = self
            .consumer
            .batch()
            .max_messages(max)
            .expires(self.expires)
            .messages()
            .await?;
        self.batch = Some(batch);
        Ok(Pulled::Requested)
    }

    async fn next(&mut self) -> Option<Result<jetstream::Message, PullError>> {
        let PullBatches {
            batch,
            connection,
            connects,
            ..
        } = self;
        let next = tokio::select! {
            next = batch.as_mut()?.next() => next,
            () = crate::reconnected(connection, *connects) => {
                tracing::info!(message = "Reconnected to NATS; renewing the pull request.");
                None
            }
        };
        if !matches!(next, Some(Ok(_))) {
            *batch = None;
        }
        next
    }

    /// Hands back (immediate nak) the messages the open pull already brought
    /// into the client's buffer. Messages the server sends after the request
    /// is dropped are redelivered after their ack deadline.
    async fn close(self) {
        let Some(mut batch) = self.batch else { return };
        while let Some(Some(Ok(message))) = batch.next().now_or_never() {
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
    }
}

/// A durable JetStream consumer read as one long-lived stream that the
/// client keeps topped up, `batch` messages per request: the operations
/// service's consumers, where handlers are short and throughput matters.
/// The consumer is looked up again (and the stream reopened) when it was
/// deleted or the stream ended.
///
/// Messages already in the client's buffer at shutdown are not acked, so
/// JetStream redelivers them (to any replica) after the ack wait.
pub struct DurableStream {
    stream: stream::Stream,
    consumer: String,
    batch: usize,
    messages: Option<pull::Stream>,
}

impl DurableStream {
    /// The durable `consumer` of `stream`, `batch` messages per request.
    pub fn new(stream: stream::Stream, consumer: impl Into<String>, batch: usize) -> Self {
        DurableStream {
            stream,
            consumer: consumer.into(),
            batch,
            messages: None,
        }
    }
}

impl Source for DurableStream {
    type Message = jetstream::Message;

    async fn pull(&mut self, _max: usize) -> Result<Pulled, PullError> {
        if self.messages.is_none() {
            let consumer: PullConsumer = self.stream.get_consumer(&self.consumer).await?;
            let messages = consumer
                .stream()
                .max_messages_per_batch(self.batch)
                .messages()
                .await?;
            tracing::debug!(message = "Consuming.", consumer = %self.consumer);
            self.messages = Some(messages);
        }
        Ok(Pulled::Bound)
    }

    async fn next(&mut self) -> Option<Result<jetstream::Message, PullError>> {
        loop {
            match self.messages.as_mut()?.next().await {
                Some(Ok(message)) => return Some(Ok(message)),
                Some(Err(error))
                    if error.kind() == consumer::pull::MessagesErrorKind::ConsumerDeleted =>
                {
                    self.messages = None;
                    return Some(Err(error.into()));
                }
                // Missing heartbeats and the like: the stream recovers by
                // itself once the broker is back.
                Some(Err(error)) => {
                    tracing::warn!(message = "Consumer error.", consumer = %self.consumer, %error);
                }
                None => {
                    tracing::warn!(
                        message = "Consumer stream ended; resubscribing.",
                        consumer = %self.consumer
                    );
                    self.messages = None;
                    return None;
                }
            }
        }
    }

    async fn close(self) {}
}

/// A core NATS subscription (a queue group's, typically): the synchronous
/// enrichment responder. Nothing is acknowledged; a request nobody answers
/// times out at its caller. It ends when the subscription does.
pub struct Subscription {
    subscriber: async_nats::Subscriber,
    ended: bool,
}

impl Subscription {
    /// Messages of `subscriber`.
    pub fn new(subscriber: async_nats::Subscriber) -> Self {
        Subscription {
            subscriber,
            ended: false,
        }
    }
}

impl Source for Subscription {
    type Message = async_nats::Message;

    async fn pull(&mut self, _max: usize) -> Result<Pulled, PullError> {
        Ok(if self.ended {
            Pulled::Finished
        } else {
            Pulled::Bound
        })
    }

    async fn next(&mut self) -> Option<Result<async_nats::Message, PullError>> {
        let message = self.subscriber.next().await;
        self.ended = message.is_none();
        message.map(Ok)
    }

    /// Unsubscribes: further requests go to the other members of the queue
    /// group.
    async fn close(mut self) {
        if let Err(error) = self.subscriber.unsubscribe().await {
            tracing::warn!(message = "Cannot unsubscribe.", %error);
        }
    }
}
