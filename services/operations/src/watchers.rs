//! `WatchOperation`'s source of changes: the replica's one watch of the
//! whole operations bucket (the list index's, see `index::run`), fanned out
//! to the open watches of each operation.
//!
//! A KV watch per call would be a JetStream consumer per open watch, and
//! nats-server (2.15) caps a stream at 1,000 consumers by default: a few
//! hundred clients following their operations (server-sent events, waiting
//! requests) would exhaust it for every replica together, and each consumer
//! costs the broker memory and a create and a delete. The index already sees
//! every change of every record, in revision order; it hands each one to the
//! watchers of that operation here, so an open watch costs one broadcast
//! receiver in this process and nothing on the broker.
//!
//! The map is a `std::sync::Mutex` held only to look up, insert or remove a
//! sender, never across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_nats::jetstream::kv;
use bytes::Bytes;
use tokio::sync::broadcast;

/// Changes a watch may fall behind by before it lags (it then re-reads the
/// record: a watcher needs the latest state, not every one).
const BUFFER: usize = 16;

/// A new version of one record.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// Its KV revision.
    pub(crate) revision: u64,
    /// The encoded record.
    pub(crate) value: Bytes,
}

/// The open watches, by operation id.
#[derive(Debug, Default)]
pub(crate) struct Watchers {
    senders: Mutex<HashMap<String, broadcast::Sender<Change>>>,
}

impl Watchers {
    pub(crate) fn new() -> Watchers {
        Watchers::default()
    }

    fn senders(&self) -> MutexGuard<'_, HashMap<String, broadcast::Sender<Change>>> {
        // The map stays consistent whatever a panicking holder did.
        self.senders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts receiving the changes of operation `id` (from now on).
    pub(crate) fn subscribe(self: &Arc<Self>, id: &str) -> Subscription {
        let receiver = self
            .senders()
            .entry(id.to_owned())
            .or_insert_with(|| broadcast::channel(BUFFER).0)
            .subscribe();
        Subscription {
            id: id.to_owned(),
            receiver,
            watchers: self.clone(),
        }
    }

    /// Hands a change of the bucket to the watchers of its key. Deletions
    /// and purges are not changes a watcher is sent.
    pub(crate) fn publish(&self, entry: &kv::Entry) {
        if entry.operation != kv::Operation::Put {
            return;
        }
        let mut senders = self.senders();
        if let Some(sender) = senders.get(&entry.key) {
            let change = Change {
                revision: entry.revision,
                value: entry.value.clone(),
            };
            if sender.send(change).is_err() {
                // No receiver left (cannot happen while the subscriptions
                // remove their key on drop, but costs nothing to keep true).
                senders.remove(&entry.key);
            }
        }
    }

    /// How many operations have open watches.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.senders().len()
    }
}

/// One open watch's receiving end; leaving it removes the operation's
/// sender when it was the last watch of it.
#[derive(Debug)]
pub(crate) struct Subscription {
    id: String,
    receiver: broadcast::Receiver<Change>,
    watchers: Arc<Watchers>,
}

impl Subscription {
    /// The next change; `Lagged` when some were missed.
    pub(crate) async fn recv(&mut self) -> Result<Change, broadcast::error::RecvError> {
        self.receiver.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut senders = self.watchers.senders();
        // This receiver is still counted until the fields drop.
        if senders
            .get(&self.id)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            senders.remove(&self.id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_last_watch_of_an_operation_leaving_forgets_it() {
        let watchers = Arc::new(Watchers::new());
        let one = watchers.subscribe("a");
        let two = watchers.subscribe("a");
        let other = watchers.subscribe("b");
        assert_eq!(watchers.len(), 2);
        drop(one);
        assert_eq!(watchers.len(), 2, "a is still watched");
        drop(two);
        assert_eq!(watchers.len(), 1);
        drop(other);
        assert_eq!(watchers.len(), 0);
    }
}
