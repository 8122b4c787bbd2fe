//! The per-replica list index behind `ListOperations`.
//!
//! KV is the durable read model, but it cannot answer "this tenant's
//! operations, newest first, with status S": listing keys scans the whole
//! bucket, which at a million operations is seconds per page. So every
//! replica keeps a small in-memory index of *ids only*, and a page is a range
//! read on the index followed by concurrent KV gets of at most `limit`
//! records.
//!
//! ## Shape
//!
//! Per tenant, a `BTreeMap<Uuid, Slot>` of every operation (`Slot` = status,
//! kind and the KV revision it was learnt at), plus one `BTreeSet<Uuid>` per
//! status and per kind. Ids are UUIDv7, whose order is creation order, so
//! "newest first" is reverse iteration and a cursor is "strictly below this
//! id" — a `range(..cursor).rev()`, `O(log n + limit)` whatever the size. A
//! filter walks the matching set, so a sparse filter (e.g. the few `failed`
//! among a million) never scans the others. With both filters the smaller
//! set is walked and each id is checked against the other in the map (the
//! one case that may scan: when the two filters rarely coincide, the walk
//! can cover the whole smaller set before filling a page).
//!
//! ## How replicas converge
//!
//! A task watches the whole bucket: first `watch_with_history(">")`, the
//! last value of every key (this *is* the rebuild at start — the index is
//! never persisted), then every change. Each replica therefore learns every
//! create, projection and cancel, whoever made it. A replica also inserts its
//! own creates and updates at once, so a caller listing right after creating
//! sees its operation on this replica without waiting for the watch. The
//! watch and the direct inserts race; each slot keeps the KV revision it came
//! from and an older revision never overwrites a newer one, so the index
//! ends up at the latest value whatever the order.
//!
//! Until the initial history has been delivered the replica reports
//! NOT_SERVING and answers `ListOperations` with UNAVAILABLE rather than an
//! incomplete page. A lost watch is resumed from the last revision seen, and
//! a listing fetches the records themselves from KV (and drops any that no
//! longer match the filter), so a briefly stale index never shows a wrong
//! status.
//!
//! ## Cost
//!
//! Memory: per operation one map entry (16-byte id + 16-byte slot) and two
//! set entries (16 bytes each), 64 bytes of payload; with B-tree node
//! overhead it measures about 140 bytes per operation, so **~140 MB per
//! million operations** (ignored test `index_memory_per_operation`). It
//! holds only operations within their retention: an expired record's delete
//! marker removes its id (see `retention.rs`), so memory follows the rate
//! of operations times the retention, not their total.
//!
//! Rebuild: the history is streamed by one ordered consumer; each entry
//! costs a prost decode of a ~150-byte record and a few B-tree inserts, and
//! the broker's delivery rate dominates. Measured at ~160,000 records/s
//! (release build, nats-server on the same 2-core machine), i.e. **~6 s per
//! million operations** before a replica reports SERVING (ignored test
//! `index_rebuild_rate` in `tests/api/bench.rs`, which also times pages).
//!
//! A page costs `O(log n + limit)` in the index plus `limit` concurrent KV
//! gets (direct gets, ~7 ms for 100 records on that machine), so it does not
//! grow with the number of stored operations.
//!
//! The lock is a `std::sync::RwLock` held only for in-memory work, never
//! across an `.await`, so it cannot stall the runtime.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use async_nats::jetstream::kv;
use dossier_contracts::v1::{Operation, result_ref};
use dossier_contracts::{Kind, Status};
use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::RECONNECT;
use crate::error::error_chain;
use crate::records::decode;

/// What the index knows about one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    status: Status,
    kind: Kind,
    revision: u64,
    /// The run whose result object the record names (`<operation>.<run>`),
    /// 0 for none: what the retention sweeper deletes with the record.
    result_run: u64,
}

/// An operation whose record is gone, for the retention sweeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Removed {
    /// The operation.
    pub(crate) id: Uuid,
    /// The run of its result object, when this replica indexed one.
    pub(crate) result_run: Option<u64>,
}

/// The run in the name of `record`'s result object, 0 for none (an inline
/// result, none yet, or a name from before runs were part of it).
fn result_run(record: &Operation) -> u64 {
    match record.result.as_ref().and_then(|r| r.location.as_ref()) {
        Some(result_ref::Location::ObjectName(name)) => name
            .strip_prefix(record.id.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|run| run.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

#[derive(Debug, Default)]
struct TenantIndex {
    all: BTreeMap<Uuid, Slot>,
    by_status: [BTreeSet<Uuid>; 6],
    by_kind: [BTreeSet<Uuid>; 3],
}

fn status_slot(status: Status) -> usize {
    match status {
        Status::Queued => 0,
        Status::Processing => 1,
        Status::Succeeded => 2,
        Status::Failed => 3,
        Status::PartialSuccess => 4,
        Status::Cancelled => 5,
    }
}

fn kind_slot(kind: Kind) -> usize {
    match kind {
        Kind::EnrichmentBatch => 0,
        Kind::SearchPeople => 1,
        Kind::ResearchDeep => 2,
    }
}

impl TenantIndex {
    fn upsert(&mut self, id: Uuid, slot: Slot) {
        match self.all.get_mut(&id) {
            Some(old) if old.revision >= slot.revision => {}
            Some(old) => {
                if old.status != slot.status {
                    self.by_status[status_slot(old.status)].remove(&id);
                    self.by_status[status_slot(slot.status)].insert(id);
                }
                if old.kind != slot.kind {
                    self.by_kind[kind_slot(old.kind)].remove(&id);
                    self.by_kind[kind_slot(slot.kind)].insert(id);
                }
                *old = slot;
            }
            None => {
                self.all.insert(id, slot);
                self.by_status[status_slot(slot.status)].insert(id);
                self.by_kind[kind_slot(slot.kind)].insert(id);
            }
        }
    }

    fn remove(&mut self, id: &Uuid, revision: u64) -> Option<Slot> {
        match self.all.get(id) {
            Some(old) if old.revision < revision => {
                self.by_status[status_slot(old.status)].remove(id);
                self.by_kind[kind_slot(old.kind)].remove(id);
                self.all.remove(id)
            }
            _ => None,
        }
    }

    fn page(
        &self,
        status: Option<Status>,
        kind: Option<Kind>,
        before: Option<Uuid>,
        take: usize,
    ) -> Vec<Uuid> {
        let range = (
            Bound::Unbounded,
            before.map_or(Bound::Unbounded, Bound::Excluded),
        );
        let matches = |id: &Uuid, want_status: Option<Status>, want_kind: Option<Kind>| {
            self.all.get(id).is_some_and(|slot| {
                want_status.is_none_or(|s| s == slot.status)
                    && want_kind.is_none_or(|k| k == slot.kind)
            })
        };
        match (status, kind) {
            (None, None) => self
                .all
                .range(range)
                .rev()
                .take(take)
                .map(|(id, _)| *id)
                .collect(),
            (Some(s), None) => self.by_status[status_slot(s)]
                .range(range)
                .rev()
                .take(take)
                .copied()
                .collect(),
            (None, Some(k)) => self.by_kind[kind_slot(k)]
                .range(range)
                .rev()
                .take(take)
                .copied()
                .collect(),
            (Some(s), Some(k)) => {
                let by_status = &self.by_status[status_slot(s)];
                let by_kind = &self.by_kind[kind_slot(k)];
                if by_status.len() <= by_kind.len() {
                    by_status
                        .range(range)
                        .rev()
                        .filter(|id| matches(id, None, Some(k)))
                        .take(take)
                        .copied()
                        .collect()
                } else {
                    by_kind
                        .range(range)
                        .rev()
                        .filter(|id| matches(id, Some(s), None))
                        .take(take)
                        .copied()
                        .collect()
                }
            }
        }
    }
}

/// The list index of one replica. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Index {
    tenants: RwLock<HashMap<String, TenantIndex>>,
    caught_up: AtomicBool,
}

impl Index {
    pub(crate) fn new() -> Index {
        Index::default()
    }

    /// Whether the initial history of the bucket has been indexed.
    pub(crate) fn is_caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    fn set_caught_up(&self) {
        if !self.caught_up.swap(true, Ordering::AcqRel) {
            tracing::info!(
                message = "List index caught up with the operations bucket.",
                operations = self.len()
            );
        }
    }

    /// Number of indexed operations.
    pub(crate) fn len(&self) -> usize {
        match self.tenants.read() {
            Ok(tenants) => tenants.values().map(|t| t.all.len()).sum(),
            Err(poisoned) => poisoned.get_ref().values().map(|t| t.all.len()).sum(),
        }
    }

    /// Records `record` as of KV `revision` (a record without a valid id,
    /// status or kind is not listed).
    pub(crate) fn upsert_record(&self, record: &Operation, revision: u64) {
        let (Ok(id), Some(status), Some(kind)) = (
            Uuid::parse_str(&record.id),
            Status::from_proto(record.status),
            Kind::from_proto(record.kind),
        ) else {
            tracing::warn!(message = "Not indexing a record without a valid id, status or kind.", operation_id = %record.id);
            return;
        };
        self.insert(
            &record.tenant_id,
            id,
            Slot {
                status,
                kind,
                revision,
                result_run: result_run(record),
            },
        );
    }

    /// Records that `id` of `tenant` is at `status` as of KV `revision`.
    #[cfg(test)]
    fn upsert(&self, tenant: &str, id: Uuid, status: Status, kind: Kind, revision: u64) {
        let slot = Slot {
            status,
            kind,
            revision,
            result_run: 0,
        };
        self.insert(tenant, id, slot);
    }

    fn insert(&self, tenant: &str, id: Uuid, slot: Slot) {
        // A poisoned lock means a panic elsewhere mid-update; the maps are
        // still structurally valid, and at worst one entry is stale until
        // the next change of that record, so keep serving.
        let mut tenants = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        match tenants.get_mut(tenant) {
            Some(index) => index.upsert(id, slot),
            None => {
                let mut index = TenantIndex::default();
                index.upsert(id, slot);
                tenants.insert(tenant.to_owned(), index);
            }
        }
    }

    /// Forgets `id` (its key was deleted at `revision`): the record expired
    /// (the broker's marker, see `retention.rs`) or an operator purged it.
    fn remove(&self, id: &Uuid, revision: u64) -> Option<Slot> {
        let mut tenants = self.tenants.write().unwrap_or_else(|p| p.into_inner());
        tenants
            .values_mut()
            .find_map(|index| index.remove(id, revision))
    }

    /// Up to `take` ids of `tenant` matching the filters, newest first,
    /// strictly older than `before` when given.
    pub(crate) fn page(
        &self,
        tenant: &str,
        status: Option<Status>,
        kind: Option<Kind>,
        before: Option<Uuid>,
        take: usize,
    ) -> Vec<Uuid> {
        let tenants = self.tenants.read().unwrap_or_else(|p| p.into_inner());
        tenants
            .get(tenant)
            .map(|index| index.page(status, kind, before, take))
            .unwrap_or_default()
    }

    /// Applies one KV entry of the operations bucket; returns the id of an
    /// operation whose record is gone (a delete or purge, an expiry's
    /// marker included), whether or not it was indexed.
    fn apply(&self, entry: &kv::Entry) -> Option<Removed> {
        let Ok(id) = Uuid::parse_str(&entry.key) else {
            tracing::warn!(message = "Ignoring a record whose key is not an operation id.", key = %entry.key);
            return None;
        };
        match entry.operation {
            kv::Operation::Put => match decode(&entry.key, &entry.value) {
                Ok(record) => self.upsert_record(&record, entry.revision),
                Err(error) => {
                    tracing::warn!(message = "Ignoring an undecodable record.", operation_id = %id, %error);
                }
            },
            kv::Operation::Delete | kv::Operation::Purge => {
                let removed = self.remove(&id, entry.revision);
                return Some(Removed {
                    id,
                    result_run: removed.map(|slot| slot.result_run).filter(|&run| run != 0),
                });
            }
        }
        None
    }
}

/// Keeps `index` in step with the operations bucket until `shutdown`, and
/// hands every change to its `watchers` (the replica's only watch of the
/// bucket; see `watchers.rs`) and every operation whose record is gone to
/// `removed` (the retention sweeper). See the module docs.
pub(crate) async fn run(
    index: std::sync::Arc<Index>,
    watchers: std::sync::Arc<crate::watchers::Watchers>,
    kv: kv::Store,
    removed: mpsc::Sender<Removed>,
    shutdown: CancellationToken,
) {
    // Highest revision applied; the watch resumes after it when it is lost.
    let mut last_revision = 0u64;
    let mut retries = RECONNECT.retries();
    loop {
        let watch = if last_revision == 0 {
            kv.watch_with_history(">").await
        } else {
            kv.watch_all_from_revision(last_revision + 1).await
        };
        let mut watch = match watch {
            Ok(watch) => watch,
            Err(error) => {
                tracing::warn!(message = "Cannot watch the operations bucket; retrying.", error = %error_chain(&error));
                if retries.pause(&shutdown).await {
                    return;
                }
                continue;
            }
        };

        // An empty bucket delivers no history, so "caught up" cannot only
        // come from the watch's own pending count. The stream's last sequence
        // at this point is delivered by the watch (it is the last value of
        // its key), so having applied it means the history is in.
        let mut target = None;
        if !index.is_caught_up() {
            match kv.status().await {
                Ok(status) if status.info.state.messages == 0 => index.set_caught_up(),
                Ok(status) => target = Some(status.info.state.last_sequence),
                Err(error) => {
                    tracing::warn!(message = "Cannot read the operations bucket's status; retrying.", error = %error_chain(&error));
                    if retries.pause(&shutdown).await {
                        return;
                    }
                    continue;
                }
            }
        }
        retries.reset();

        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = watch.next() => next,
            };
            match next {
                Some(Ok(entry)) => {
                    if entry.revision > last_revision {
                        if let Some(gone) = index.apply(&entry)
                            && removed.try_send(gone).is_err()
                        {
                            tracing::debug!(message = "Sweeper busy; the stores' max ages will remove this operation's data.", operation_id = %gone.id);
                        }
                        watchers.publish(&entry);
                        last_revision = entry.revision;
                    }
                    if !index.is_caught_up()
                        && (entry.delta == 0 || target.is_some_and(|t| entry.revision >= t))
                    {
                        index.set_caught_up();
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(message = "Operations bucket watch error.", error = %error_chain(&error));
                }
                None => {
                    tracing::warn!(
                        message = "Operations bucket watch ended; resuming.",
                        last_revision
                    );
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Uuid> {
        (0..n).map(|_| Uuid::now_v7()).collect()
    }

    #[test]
    fn the_result_run_comes_from_the_object_name() {
        use dossier_contracts::v1::ResultRef;
        let id = Uuid::now_v7().to_string();
        let with = |location| Operation {
            id: id.clone(),
            result: Some(ResultRef {
                location: Some(location),
                size_bytes: 1,
            }),
            ..Operation::default()
        };
        let name = |n: String| with(result_ref::Location::ObjectName(n));
        assert_eq!(result_run(&name(format!("{id}.42"))), 42);
        assert_eq!(result_run(&name(id.clone())), 0, "named before runs");
        assert_eq!(result_run(&name(format!("{id}.x"))), 0);
        assert_eq!(result_run(&name("another.42".into())), 0);
        assert_eq!(
            result_run(&with(result_ref::Location::InlineJson(b"{}".to_vec()))),
            0
        );
        assert_eq!(result_run(&Operation::default()), 0);
    }

    #[test]
    fn pages_newest_first_with_filters_and_cursor() {
        let index = Index::new();
        let all = ids(30);
        for (i, id) in all.iter().enumerate() {
            let status = if i % 3 == 0 {
                Status::Failed
            } else {
                Status::Queued
            };
            let kind = if i % 2 == 0 {
                Kind::SearchPeople
            } else {
                Kind::ResearchDeep
            };
            index.upsert("acme", *id, status, kind, i as u64 + 1);
        }
        let newest: Vec<Uuid> = all.iter().rev().copied().collect();
        assert_eq!(index.page("acme", None, None, None, 10), newest[..10]);
        assert_eq!(
            index.page("acme", None, None, Some(newest[9]), 10),
            newest[10..20]
        );
        assert!(index.page("other", None, None, None, 10).is_empty());

        let failed = index.page("acme", Some(Status::Failed), None, None, 100);
        assert_eq!(failed.len(), 10);
        let failed_search = index.page(
            "acme",
            Some(Status::Failed),
            Some(Kind::SearchPeople),
            None,
            100,
        );
        // i % 6 == 0 → 0, 6, 12, 18, 24
        assert_eq!(failed_search.len(), 5);
        let expected: Vec<Uuid> = all
            .iter()
            .enumerate()
            .rev()
            .filter(|(i, _)| i % 6 == 0)
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(failed_search, expected);
    }

    #[test]
    fn older_revisions_never_overwrite_newer_ones() {
        let index = Index::new();
        let id = Uuid::now_v7();
        index.upsert("acme", id, Status::Processing, Kind::SearchPeople, 5);
        index.upsert("acme", id, Status::Queued, Kind::SearchPeople, 3);
        assert!(
            index
                .page("acme", Some(Status::Queued), None, None, 10)
                .is_empty()
        );
        assert_eq!(
            index.page("acme", Some(Status::Processing), None, None, 10),
            vec![id]
        );
        index.upsert("acme", id, Status::Succeeded, Kind::SearchPeople, 7);
        assert!(
            index
                .page("acme", Some(Status::Processing), None, None, 10)
                .is_empty()
        );
        assert_eq!(index.page("acme", None, None, None, 10), vec![id]);
        index.remove(&id, 8);
        assert!(index.page("acme", None, None, None, 10).is_empty());
        assert_eq!(index.len(), 0);
    }

    /// Memory of the index alone (ignored: `cargo test -p operations --lib
    /// -- --ignored --nocapture index_memory`).
    #[test]
    #[ignore = "measurement"]
    fn index_memory_per_operation() {
        fn rss_kib() -> u64 {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse().ok())
                })
                .unwrap_or(0)
        }
        let n = 1_000_000;
        let ids = ids(n);
        let index = Index::new();
        let before = rss_kib();
        let started = std::time::Instant::now();
        for (i, id) in ids.iter().enumerate() {
            index.upsert(
                &format!("tenant-{}", i % 100),
                *id,
                Status::ALL[i % 6],
                Kind::ALL[i % 3],
                i as u64 + 1,
            );
        }
        let took = started.elapsed();
        let grown = rss_kib().saturating_sub(before);
        println!(
            "{n} operations: {grown} KiB ({} bytes/operation), inserted in {took:?}",
            grown * 1024 / n as u64
        );
        assert_eq!(index.len(), n);
    }
}
