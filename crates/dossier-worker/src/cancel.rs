//! Cancellation of running jobs: a registry of the operations this worker is
//! running, and one background task that watches the cancellations bucket and
//! trips the matching job's token.
//!
//! The operations service records a cancellation request by putting the
//! operation id into `dossier_cancellations`. A job can learn about it in two
//! ways, and together they leave no gap:
//!
//! 1. Before running, a job registers itself here and only then reads the
//!    bucket. A request written before that read is found by the read ("
//!    cancelled while queued": the handler never runs).
//! 2. A request written after the read arrives through the watch, which was
//!    opened before the worker pulled its first job, and finds the job in the
//!    registry because it registered before the read.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::Statistics;
use async_nats::jetstream::kv;
use dossier_backoff::Backoff;
use dossier_broker::reconnected;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

/// The operations this worker is running, each with the token its handler
/// watches.
#[derive(Clone, Default)]
pub(crate) struct Running {
    // A std mutex: it is held only for map operations, never across an await.
    jobs: Arc<Mutex<HashMap<String, Slot>>>,
}

struct Slot {
    token: CancellationToken,
    // One operation can be held twice by one worker (a redelivery that
    // arrives while an earlier delivery still runs here); both deliveries
    // share one token and the slot lives until the last one ends.
    holders: usize,
}

impl Running {
    /// Registers a delivery of `operation_id`; it stays registered until the
    /// returned guard is dropped.
    pub(crate) fn register(&self, operation_id: &str) -> Registration {
        let mut jobs = self.lock();
        let slot = jobs.entry(operation_id.to_owned()).or_insert_with(|| Slot {
            token: CancellationToken::new(),
            holders: 0,
        });
        slot.holders += 1;
        Registration {
            running: self.clone(),
            operation_id: operation_id.to_owned(),
            token: slot.token.clone(),
        }
    }

    /// Trips the token of `operation_id` if it is running here.
    pub(crate) fn cancel(&self, operation_id: &str) -> bool {
        match self.lock().get(operation_id) {
            Some(slot) => {
                slot.token.cancel();
                true
            }
            None => false,
        }
    }

    /// The operations running now.
    pub(crate) fn operation_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every update is a single insert, increment or remove).
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A job's registration in [`Running`]; removed on drop.
pub(crate) struct Registration {
    running: Running,
    operation_id: String,
    token: CancellationToken,
}

impl Registration {
    /// The token tripped when the operation's cancellation is requested.
    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut jobs = self.running.lock();
        if let Some(slot) = jobs.get_mut(&self.operation_id) {
            slot.holders -= 1;
            if slot.holders == 0 {
                jobs.remove(&self.operation_id);
            }
        }
    }
}

/// Watches the cancellations bucket until `stop` is cancelled. `watch` is
/// opened by the caller before the worker takes its first job, so no request
/// written after a job's registration is missed.
pub(crate) async fn watch(
    bucket: kv::Store,
    running: Running,
    mut watch: kv::Watch,
    connection: Arc<Statistics>,
    stop: CancellationToken,
) {
    // A moment between retries: the watch recovers with the broker.
    let mut retries = Backoff::constant(Duration::from_millis(500)).retries();
    loop {
        let connects = connection.connects.load(Ordering::Relaxed);
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => return,
                next = watch.next() => next,
                // After a reconnect (a server restart) the watch's consumer
                // may be gone; it would notice only after missing heartbeats
                // for several seconds, so reopen it now.
                () = reconnected(&connection, connects) => None,
            };
            match next {
                Some(Ok(entry)) if entry.operation == kv::Operation::Put => {
                    if running.cancel(&entry.key) {
                        tracing::info!(
                            message = "Cancellation requested; stopping the job.",
                            operation_id = %entry.key
                        );
                    }
                }
                // Deletes and purges withdraw nothing: a cancelled operation
                // stays cancelled.
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    // The watch is an ordered consumer that recreates itself
                    // after gaps; errors are reported but it carries on.
                    tracing::warn!(message = "Cancellation watch error.", %error);
                    if retries.pause(&stop).await {
                        return;
                    }
                }
                None => break,
            }
        }

        // The watch ended (its subscription is gone) or the connection was
        // re-established. Open a new one, then read the bucket for every
        // running job: a request written while no watch was open would
        // otherwise be missed.
        tracing::info!(message = "Reopening the cancellation watch.");
        watch = loop {
            match bucket.watch_all().await {
                Ok(watch) => break watch,
                Err(error) => {
                    tracing::warn!(message = "Cannot reopen the cancellation watch.", %error);
                    if retries.pause(&stop).await {
                        return;
                    }
                }
            }
        };
        for operation_id in running.operation_ids() {
            if let Ok(Some(_)) = bucket.get(operation_id.as_str()).await {
                running.cancel(&operation_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_share_a_token_and_clean_up() {
        let running = Running::default();
        let first = running.register("op");
        let second = running.register("op");
        assert!(running.cancel("op"));
        assert!(first.token().is_cancelled() && second.token().is_cancelled());
        drop(first);
        assert_eq!(running.operation_ids(), vec!["op".to_owned()]);
        drop(second);
        assert!(running.operation_ids().is_empty());
        assert!(!running.cancel("op"));
        // A new delivery after the old ones ended starts uncancelled.
        assert!(!running.register("op").token().is_cancelled());
    }
}
