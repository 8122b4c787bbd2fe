//! Results served in pages.
//!
//! A result is the kind's JSON payload. When it is an object with a `data`
//! array (every kind's result is: `{ "data": [ … ], "meta": { … } }`), the
//! array's items can be read in pages with `GetOperationResults`. Reads of
//! the operation carry a result with more than [`FIRST_PAGE_ITEMS`] items
//! with only the first ones, plus a `ResultPage` (offset, count, total,
//! next cursor); smaller results, and results without a `data` array, are
//! returned whole, exactly as stored.
//!
//! Large results live in the object store (a 10,000-record enrichment is
//! several MB, far beyond a NATS message or a gRPC answer). Paging one means
//! reading and splitting it; each replica keeps the most recently used
//! parsed results in a small cache bounded by bytes ([`CACHE_BYTES`]), so a
//! client walking the pages pays for the read once. Items stay raw JSON
//! text: a page is the items' bytes joined, nothing is re-encoded. Stored
//! results never change once an operation is terminal (a repeated run
//! writes the same object under the same name), so the cache needs no
//! invalidation; entries are keyed by object name and size all the same.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dossier_contracts::v1::{ResultPage, ResultRef, result_ref};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use tokio::io::AsyncReadExt as _;

use crate::error::Error;

/// Items of the result's `data` array that reads of the operation carry.
pub(crate) const FIRST_PAGE_ITEMS: usize = 100;
/// Page size of `GetOperationResults` when the request leaves it at 0.
pub(crate) const DEFAULT_PAGE_ITEMS: u32 = 100;
/// Largest page of `GetOperationResults`.
pub(crate) const MAX_PAGE_ITEMS: u32 = 1_000;
/// Bytes of result JSON one replica keeps parsed.
pub(crate) const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Prefix of every cursor's decoded text, so a list cursor is never taken
/// for a results cursor (and the format can change later).
const CURSOR_PREFIX: &str = "r1:";

/// A result split for paging.
pub(crate) struct Paged {
    /// The top-level members in order; `None` marks the `data` array.
    members: Vec<(String, Option<Box<RawValue>>)>,
    /// The `data` array's items.
    items: Vec<Box<RawValue>>,
}

/// A result as stored: pageable, or any other JSON.
pub(crate) enum Parsed {
    /// An object with a `data` array.
    Paged(Paged),
    /// Anything else, served whole.
    Whole(Vec<u8>),
}

impl fmt::Debug for Parsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parsed::Paged(p) => write!(f, "Paged({} items)", p.items.len()),
            Parsed::Whole(json) => write!(f, "Whole({} bytes)", json.len()),
        }
    }
}

/// The members of a JSON object in order, values raw.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl Parsed {
    /// Splits result JSON. Anything but an object with a `data` array is
    /// kept whole.
    pub(crate) fn parse(json: Vec<u8>) -> Parsed {
        let Ok(Members(members)) = serde_json::from_slice::<Members>(&json) else {
            return Parsed::Whole(json);
        };
        let mut items = None;
        let members = members
            .into_iter()
            .map(|(key, value)| {
                if key == "data"
                    && items.is_none()
                    && let Ok(array) = serde_json::from_str::<Vec<Box<RawValue>>>(value.get())
                {
                    items = Some(array);
                    return (key, None);
                }
                (key, Some(value))
            })
            .collect();
        match items {
            Some(items) => Parsed::Paged(Paged { members, items }),
            None => Parsed::Whole(json),
        }
    }
}

impl Paged {
    /// Items in the whole array.
    pub(crate) fn total(&self) -> usize {
        self.items.len()
    }

    /// The items `offset..offset + limit` as a JSON array, and where they are.
    pub(crate) fn page(&self, offset: usize, limit: usize) -> (Vec<u8>, ResultPage) {
        let offset = offset.min(self.items.len());
        let end = offset.saturating_add(limit).min(self.items.len());
        let slice = &self.items[offset..end];
        let mut json =
            Vec::with_capacity(slice.iter().map(|i| i.get().len() + 1).sum::<usize>() + 2);
        json.push(b'[');
        for (i, item) in slice.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(item.get().as_bytes());
        }
        json.push(b']');
        let page = ResultPage {
            offset: offset as u64,
            count: u32::try_from(slice.len()).unwrap_or(u32::MAX),
            total: self.items.len() as u64,
            next_cursor: if end < self.items.len() {
                encode_cursor(end)
            } else {
                String::new()
            },
        };
        (json, page)
    }

    /// The whole result with only the first `limit` items in `data`.
    pub(crate) fn first_page(&self, limit: usize) -> (Vec<u8>, ResultPage) {
        let (items, page) = self.page(0, limit);
        let mut json = Vec::with_capacity(items.len() + 256);
        json.push(b'{');
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            // A key came out of a JSON string, so it encodes again.
            json.extend_from_slice(
                serde_json::to_string(key)
                    .unwrap_or_else(|_| "\"\"".to_owned())
                    .as_bytes(),
            );
            json.push(b':');
            match value {
                Some(raw) => json.extend_from_slice(raw.get().as_bytes()),
                None => json.extend_from_slice(&items),
            }
        }
        json.push(b'}');
        (json, page)
    }
}

/// The cursor of the page starting at `offset`: opaque to clients.
pub(crate) fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{offset}"))
}

/// The offset a cursor stands for.
pub(crate) fn decode_cursor(cursor: &str) -> Result<usize, Error> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(CURSOR_PREFIX)?.parse::<usize>().ok())
        .ok_or_else(|| Error::InvalidArgument("cursor is not valid".to_owned()))
}

/// Recently used parsed results of the object store, least recently used
/// first, bounded by their JSON size.
pub(crate) struct Cache {
    entries: Mutex<VecDeque<Entry>>,
    capacity: usize,
}

struct Entry {
    name: String,
    size: u64,
    parsed: Arc<Parsed>,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Cache {
        Cache {
            entries: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    fn get(&self, name: &str, size: u64) -> Option<Arc<Parsed>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let at = entries
            .iter()
            .position(|e| e.name == name && e.size == size)?;
        let entry = entries.remove(at)?;
        let parsed = entry.parsed.clone();
        entries.push_back(entry);
        Some(parsed)
    }

    fn insert(&self, name: String, size: u64, parsed: Arc<Parsed>) {
        if size as usize > self.capacity {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|e| e.name != name);
        entries.push_back(Entry { name, size, parsed });
        let mut held: u64 = entries.iter().map(|e| e.size).sum();
        while held > self.capacity as u64 {
            match entries.pop_front() {
                Some(evicted) => held -= evicted.size,
                None => break,
            }
        }
    }
}

/// The result `reference` points to, parsed; `None` when its object is gone
/// (results expire, `DOSSIER_RESULTS_MAX_AGE`).
pub(crate) async fn load(
    store: &async_nats::jetstream::object_store::ObjectStore,
    cache: &Cache,
    operation_id: &str,
    reference: &ResultRef,
) -> Result<Option<Arc<Parsed>>, Error> {
    let name = match &reference.location {
        Some(result_ref::Location::InlineJson(json)) => {
            return Ok(Some(Arc::new(Parsed::parse(json.clone()))));
        }
        Some(result_ref::Location::ObjectName(name)) => name,
        None => return Ok(None),
    };
    if let Some(parsed) = cache.get(name, reference.size_bytes) {
        return Ok(Some(parsed));
    }
    let mut object = match store.get(name).await {
        Ok(object) => object,
        Err(e) if e.kind() == async_nats::jetstream::object_store::GetErrorKind::NotFound => {
            // The status stays true; only the payload is gone.
            tracing::error!(message = "Result object is gone; answering without it.", operation_id, object = %name);
            return Ok(None);
        }
        Err(e) => return Err(Error::broker("reading a result")(e.into())),
    };
    let mut json = Vec::with_capacity(usize::try_from(reference.size_bytes).unwrap_or(0));
    object
        .read_to_end(&mut json)
        .await
        .map_err(|e| Error::broker("reading a result")(e.into()))?;
    let size = json.len() as u64;
    // Splitting a result of several MB is CPU work; keep it off the
    // runtime's I/O threads.
    let parsed = tokio::task::spawn_blocking(move || Parsed::parse(json))
        .await
        .map_err(|e| Error::broker("parsing a result")(e.into()))?;
    let parsed = Arc::new(parsed);
    cache.insert(name.clone(), size, parsed.clone());
    Ok(Some(parsed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn paged(json: &str) -> Paged {
        match Parsed::parse(json.as_bytes().to_vec()) {
            Parsed::Paged(p) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pages_slice_the_data_array_and_keep_the_other_members() {
        let p = paged(r#"{"meta":{"total":5},"data":[1,{"a":"x"},3,4,5],"extra":null}"#);
        assert_eq!(p.total(), 5);
        let (json, page) = p.first_page(2);
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"meta":{"total":5},"data":[1,{"a":"x"}],"extra":null}"#
        );
        assert_eq!((page.offset, page.count, page.total), (0, 2, 5));
        let next = decode_cursor(&page.next_cursor).unwrap();
        assert_eq!(next, 2);
        let (json, page) = p.page(next, 2);
        assert_eq!(json, b"[3,4]");
        let (json, page) = p.page(decode_cursor(&page.next_cursor).unwrap(), 2);
        assert_eq!(json, b"[5]");
        assert!(page.next_cursor.is_empty(), "last page");
        let (json, page) = p.page(99, 2);
        assert_eq!(json, b"[]");
        assert_eq!(page.offset, 5);
    }

    #[test]
    fn results_without_a_data_array_stay_whole() {
        for json in [
            r#"{"data":{"a":1}}"#,
            r#"[1,2]"#,
            r#"{"meta":1}"#,
            "not json",
        ] {
            assert!(
                matches!(Parsed::parse(json.as_bytes().to_vec()), Parsed::Whole(ref j) if j == json.as_bytes()),
                "{json}"
            );
        }
        let p = paged(r#"{"data":[]}"#);
        let (json, page) = p.first_page(100);
        assert_eq!(json, br#"{"data":[]}"#);
        assert_eq!((page.count, page.total), (0, 0));
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(1234)).unwrap(), 1234);
        assert!(decode_cursor("!!!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("x:1")).is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("r1:-1")).is_err());
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used_beyond_its_bytes() {
        let cache = Cache::new(100);
        let parsed = || Arc::new(Parsed::Whole(Vec::new()));
        cache.insert("a".into(), 40, parsed());
        cache.insert("b".into(), 40, parsed());
        assert!(cache.get("a", 40).is_some());
        cache.insert("c".into(), 40, parsed());
        assert!(cache.get("b", 40).is_none(), "b was least recently used");
        assert!(cache.get("a", 40).is_some());
        assert!(cache.get("c", 40).is_some());
        assert!(cache.get("a", 41).is_none(), "size is part of the key");
        cache.insert("huge".into(), 1_000, parsed());
        assert!(cache.get("huge", 1_000).is_none());
    }
}
