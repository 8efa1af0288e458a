//! An object store as a (read-only) zarrs store: one request per key read, byte ranges as
//! range requests (suffixes for shard indexes, no size probe first), adjacent ranges of one
//! key coalesced and the rest fetched concurrently.

use super::{count, retries, run, scrub};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use zarrs::storage::byte_range::{ByteRange, ByteRangeIterator};
use zarrs::storage::{
    Bytes, ListableStorageTraits, MaybeBytes, MaybeBytesIterator, ReadableStorageTraits,
    StorageError, StoreKey, StoreKeys, StoreKeysPrefixes, StorePrefix,
};

/// Ranges of one key closer than this are fetched as one request (object_store's default).
const COALESCE: u64 = object_store::OBJECT_STORE_COALESCE_DEFAULT;

/// A read-only zarrs store over an object store, rooted at `prefix`.
pub(crate) struct ObjectStorage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// The store's URL, for messages.
    url: String,
    /// Byte ranges fetched ahead of a read ([`ObjectStorage::prefetch`]), served from memory
    /// until the read is over: per key, how many reads hold it and the ranges.
    prefetched: Mutex<HashMap<String, Held>>,
}

/// A prefetched key: how many reads hold it, its ranges, and whether it turned out not to
/// exist (a chunk never written).
#[derive(Default)]
struct Held {
    holds: usize,
    parts: Vec<(ByteRange, Bytes)>,
    missing: bool,
}

/// Requests in flight at once for one read's keys (`ENGINE_HTTP_CONCURRENCY`, default 16).
fn concurrency() -> usize {
    std::env::var("ENGINE_HTTP_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(16)
}

impl std::fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStorage")
            .field("url", &self.url)
            .finish()
    }
}

impl ObjectStorage {
    pub(super) fn new(store: Arc<dyn ObjectStore>, prefix: String, url: String) -> Self {
        Self {
            store,
            prefix,
            url,
            prefetched: Mutex::new(HashMap::new()),
        }
    }

    /// Fetches `ranges` of each key ahead of a read, keys concurrently (at most
    /// [`concurrency`] at once) and each key's bounded ranges coalesced, and keeps them until
    /// [`ObjectStorage::release`]: zarrs then finds them in memory, however it splits its own
    /// requests. A key's whole object is `FromStart(0, None)`.
    /// `hold` starts a read's hold on the keys (one [`ObjectStorage::release`] each);
    /// without it the ranges join a hold already taken.
    pub(crate) fn prefetch(
        &self,
        wants: Vec<(String, Vec<ByteRange>)>,
        hold: bool,
    ) -> Result<(), StorageError> {
        let whole = [ByteRange::FromStart(0, None)];
        // Ranges an earlier prefetch holds (a shard's index, when a read goes chunk by chunk)
        // are not fetched again: the hold is taken on them.
        let (already, wants): (Vec<_>, Vec<_>) = wants
            .into_iter()
            .partition(|(key, ranges)| self.held_ranges(key, ranges).is_some());
        if hold {
            let mut held = self.lock();
            for (key, _) in &already {
                held.entry(key.clone()).or_default().holds += 1;
            }
        }
        // Whole objects the run's cache holds are not fetched again.
        let mut from_cache = Vec::new();
        let wants: Vec<_> = wants
            .into_iter()
            .filter_map(|(key, ranges)| {
                match cached(&format!("{}/{key}", self.url)).filter(|_| ranges == whole) {
                    Some(bytes) => {
                        from_cache.push((key, bytes));
                        None
                    }
                    None => Some((key, ranges)),
                }
            })
            .collect();
        let jobs: Vec<_> = wants
            .into_iter()
            .map(|(key, ranges)| {
                let (store, path) = (self.store.clone(), self.path(&key));
                async move {
                    let got = fetch_ranges(store, path, ranges.clone()).await;
                    (key, ranges, got)
                }
            })
            .collect();
        let n = concurrency();
        let results = run(async move {
            use futures::StreamExt;
            futures::stream::iter(jobs)
                .buffer_unordered(n)
                .collect::<Vec<_>>()
                .await
        })
        .map_err(|e| StorageError::Other(e.to_string()))?;
        let mut held = self.lock();
        for (key, bytes) in from_cache {
            let entry = held.entry(key).or_default();
            if hold {
                entry.holds += 1;
            }
            entry.parts.push((whole[0], bytes));
        }
        let mut failed = None;
        for (key, ranges, got) in results {
            if let Some(Some(parts)) = got.as_ref().ok().filter(|_| ranges.as_slice() == whole) {
                keep(format!("{}/{key}", self.url), &parts[0]);
            }
            let got = match got {
                Ok(got) => got,
                Err(e) => {
                    failed.get_or_insert_with(|| self.error(&key, &e));
                    continue;
                }
            };
            let entry = held.entry(key).or_default();
            if hold {
                entry.holds += 1;
            }
            match got {
                Some(parts) => entry.parts.extend(ranges.into_iter().zip(parts)),
                None => entry.missing = true,
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// `key`'s whole object from what was prefetched: `Some(None)` when it does not exist.
    fn held_whole(&self, key: &str) -> Option<Option<Bytes>> {
        let held = self.lock();
        let entry = held.get(key)?;
        if entry.missing {
            return Some(None);
        }
        entry
            .parts
            .iter()
            .find(|(r, _)| *r == ByteRange::FromStart(0, None))
            .map(|(_, b)| Some(b.clone()))
    }

    /// Ends one read's hold on its prefetched keys.
    pub(crate) fn release(&self, keys: &[String]) {
        let mut held = self.lock();
        for key in keys {
            if let Some(entry) = held.get_mut(key) {
                entry.holds = entry.holds.saturating_sub(1);
                if entry.holds == 0 {
                    held.remove(key);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.prefetched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `ranges` of `key` from what was prefetched, if all of them are there.
    fn held_ranges(&self, key: &str, ranges: &[ByteRange]) -> Option<Vec<Bytes>> {
        let held = self.lock();
        let parts = &held.get(key)?.parts;
        ranges
            .iter()
            .map(|want| {
                parts.iter().find_map(|(have, bytes)| match (*want, *have) {
                    (ByteRange::Suffix(a), ByteRange::Suffix(b)) if a == b => Some(bytes.clone()),
                    // Any part of a whole object held (zarrs decodes a chunk cut by the
                    // array's edge partially).
                    (want, ByteRange::FromStart(0, None)) => {
                        let len = bytes.len() as u64;
                        let (o, n) = match want {
                            ByteRange::FromStart(o, Some(n)) => (o, n),
                            ByteRange::FromStart(o, None) => (o, len.saturating_sub(o)),
                            ByteRange::Suffix(n) => (len.saturating_sub(n), n.min(len)),
                        };
                        (o + n <= len).then(|| bytes.slice(o as usize..(o + n) as usize))
                    }
                    (ByteRange::FromStart(o, Some(n)), ByteRange::FromStart(p, Some(m)))
                        if o >= p && o + n <= p + m =>
                    {
                        Some(bytes.slice((o - p) as usize..(o - p + n) as usize))
                    }
                    _ => None,
                })
            })
            .collect()
    }

    /// The first `n` bytes of `key` (fewer when it is shorter) and the object's size, in
    /// one request: opening a single-file store (an `.h5ad`) needs both.
    pub(crate) fn head_bytes(&self, key: &str, n: u64) -> Result<(Bytes, u64), StorageError> {
        let (store, path) = (self.store.clone(), self.path(key));
        let got = run(async move {
            let options = GetOptions {
                range: Some(GetRange::Bounded(0..n)),
                ..GetOptions::default()
            };
            let got = store.get_opts(&path, options).await?;
            let size = got.meta.size;
            let bytes = got.bytes().await?;
            count(bytes.len() as u64);
            Ok::<_, object_store::Error>((bytes, size))
        })
        .map_err(|e| StorageError::Other(e.to_string()))?;
        got.map_err(|e| self.error(key, &e))
    }

    /// Byte ranges of `key` (coalesced where close, fetched concurrently), from what was
    /// prefetched when it is all there.
    pub(crate) fn read_ranges(
        &self,
        key: &str,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>, StorageError> {
        let ranges: Vec<ByteRange> = ranges
            .iter()
            .map(|r| ByteRange::FromStart(r.start, Some(r.end - r.start)))
            .collect();
        self.held_or_fetched(key, ranges)?
            .ok_or_else(|| StorageError::Other(format!("{key}: the object is gone")))
    }

    /// `ranges` of `key`, from what was prefetched when it is all there, else fetched; `None`
    /// when the object does not exist.
    fn held_or_fetched(
        &self,
        key: &str,
        ranges: Vec<ByteRange>,
    ) -> Result<Option<Vec<Bytes>>, StorageError> {
        if let Some(parts) = self.held_ranges(key, &ranges) {
            return Ok(Some(parts));
        }
        let (store, path) = (self.store.clone(), self.path(key));
        run(fetch_ranges(store, path, ranges))
            .map_err(|e| self.error(key, &e))?
            .map_err(|e| self.error(key, &e))
    }

    fn path(&self, key: &str) -> ObjectPath {
        if self.prefix.is_empty() || key.is_empty() {
            // An empty key is the object the store is rooted at (a single file).
            ObjectPath::from(if key.is_empty() { &self.prefix } else { key })
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// A failed request on `key`, with the causes behind it (the connection's, the server's);
    /// where it happened (the store's URL) is the caller's location.
    fn error(&self, key: &str, e: &(dyn std::error::Error + 'static)) -> StorageError {
        StorageError::Other(scrub(&format!("{key}: {}", causes(e))))
    }
}

/// One request for `range` of `path`: `None` when the object does not exist. A body cut short
/// after the headers arrived is fetched again (object_store retries the request itself, not
/// a body that fails part way).
async fn fetch(
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    range: Option<GetRange>,
) -> object_store::Result<Option<Bytes>> {
    let mut attempt = 0;
    loop {
        let options = GetOptions {
            range: range.clone(),
            ..GetOptions::default()
        };
        let got = match store.get_opts(&path, options).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                count(0);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let expected = got.range.end - got.range.start;
        let body = got.bytes().await;
        let short = matches!(&body, Ok(b) if (b.len() as u64) < expected);
        match body {
            Ok(b) if !short => {
                count(b.len() as u64);
                return Ok(Some(b));
            }
            _ if attempt < retries() => {
                count(0);
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt.min(6))).await;
            }
            Ok(b) => {
                return Err(object_store::Error::Generic {
                    store: "HTTP",
                    source: format!(
                        "response body ended after {} of {expected} bytes ({} tries)",
                        b.len(),
                        attempt + 1
                    )
                    .into(),
                });
            }
            Err(e) => return Err(e),
        }
    }
}

/// `ranges` of one object: bounded ones coalesced and fetched concurrently, suffixes and open
/// ends one request each. `None` when the object does not exist.
async fn fetch_ranges(
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    ranges: Vec<ByteRange>,
) -> object_store::Result<Option<Vec<Bytes>>> {
    // Bounded ranges are coalesced; suffixes and open ends are one request each.
    let bounded: Vec<Range<u64>> = ranges
        .iter()
        .filter_map(|r| match *r {
            ByteRange::FromStart(o, Some(n)) => Some(o..o + n),
            _ => None,
        })
        .collect();
    let mut merged = if bounded.is_empty() {
        Vec::new()
    } else {
        let missing = std::sync::atomic::AtomicBool::new(false);
        let parts = object_store::coalesce_ranges(
            &bounded,
            |r| {
                let (store, path) = (store.clone(), path.clone());
                let missing = &missing;
                async move {
                    let got = fetch(store, path, Some(GetRange::Bounded(r.clone()))).await?;
                    let bytes = got.unwrap_or_else(|| {
                        missing.store(true, std::sync::atomic::Ordering::Relaxed);
                        Bytes::new()
                    });
                    Ok::<_, object_store::Error>(bytes)
                }
            },
            COALESCE,
        )
        .await?;
        if missing.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(None);
        }
        parts
    }
    .into_iter();
    let mut out = Vec::with_capacity(ranges.len());
    for r in &ranges {
        let bytes = match *r {
            ByteRange::FromStart(o, Some(n)) => {
                let b = merged.next().unwrap_or_default();
                if b.len() as u64 != n {
                    return Err(object_store::Error::Generic {
                        store: "HTTP",
                        source: format!("asked for {n} bytes at {o}, got {}", b.len()).into(),
                    });
                }
                Some(b)
            }
            ByteRange::FromStart(0, None) => fetch(store.clone(), path.clone(), None).await?,
            ByteRange::FromStart(o, None) => {
                fetch(store.clone(), path.clone(), Some(GetRange::Offset(o))).await?
            }
            ByteRange::Suffix(n) => {
                fetch(store.clone(), path.clone(), Some(GetRange::Suffix(n))).await?
            }
        };
        match bytes {
            Some(b) => out.push(b),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Whole objects fetched during a run, kept within the run's budget, shared by every remote
/// store: URL/key → bytes, and the bytes held.
type Cache = (HashMap<String, Bytes>, u64);

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

pub(super) fn clear_caches() {
    if let Ok(mut c) = CACHE.lock() {
        *c = None;
    }
}

fn cached(name: &str) -> Option<Bytes> {
    let c = CACHE.lock().ok()?;
    c.as_ref()?.0.get(name).cloned()
}

fn keep(name: String, bytes: &Bytes) {
    let budget = super::budget();
    let size = bytes.len() as u64;
    if size == 0 || size > budget {
        return;
    }
    let Ok(mut c) = CACHE.lock() else { return };
    let (map, held) = c.get_or_insert_with(Default::default);
    // Passes read chunks in the same order block after block, where evicting the least
    // recently used would evict each chunk just before its next use: a full cache keeps
    // what it has, so at least that much is fetched once.
    if *held + size > budget || map.contains_key(&name) {
        return;
    }
    map.insert(name, bytes.clone());
    *held += size;
}

impl ReadableStorageTraits for ObjectStorage {
    fn get(&self, key: &StoreKey) -> Result<MaybeBytes, StorageError> {
        if let Some(got) = self.held_whole(key.as_str()) {
            return Ok(got);
        }
        let name = format!("{}/{}", self.url, key.as_str());
        if let Some(b) = cached(&name) {
            return Ok(Some(b));
        }
        let (store, path) = (self.store.clone(), self.path(key.as_str()));
        let got = run(fetch(store, path, None))
            .map_err(|e| self.error(key.as_str(), &e))?
            .map_err(|e| self.error(key.as_str(), &e))?;
        if let Some(b) = &got {
            keep(name, b);
        }
        Ok(got)
    }

    fn get_partial_many<'a>(
        &'a self,
        key: &StoreKey,
        byte_ranges: ByteRangeIterator<'a>,
    ) -> Result<MaybeBytesIterator<'a>, StorageError> {
        let got = self.held_or_fetched(key.as_str(), byte_ranges.collect())?;
        Ok(got.map(|v| Box::new(v.into_iter().map(Ok)) as Box<dyn Iterator<Item = _> + 'a>))
    }

    fn size_key(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        let (store, path) = (self.store.clone(), self.path(key.as_str()));
        let head = run(async move {
            let head = store.head(&path).await;
            count(0);
            match head {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        });
        head.map_err(|e| self.error(key.as_str(), &e))?
            .map_err(|e| self.error(key.as_str(), &e))
    }

    fn supports_get_partial(&self) -> bool {
        true
    }
}

impl ListableStorageTraits for ObjectStorage {
    fn list(&self) -> Result<StoreKeys, StorageError> {
        self.list_prefix(&StorePrefix::root())
    }

    fn list_prefix(&self, prefix: &StorePrefix) -> Result<StoreKeys, StorageError> {
        let root = self.prefix.clone();
        let mut keys = self
            .listed(prefix)?
            .into_iter()
            .filter_map(|m| StoreKey::new(strip(&root, m.location.as_ref())).ok())
            .collect::<Vec<_>>();
        keys.sort();
        Ok(keys)
    }

    fn list_dir(&self, prefix: &StorePrefix) -> Result<StoreKeysPrefixes, StorageError> {
        let (store, root) = (self.store.clone(), self.prefix.clone());
        let at = self.path(prefix.as_str().trim_end_matches('/'));
        let listed = run(async move {
            count(0);
            store.list_with_delimiter(Some(&at)).await
        })
        .map_err(|e| self.error(prefix.as_str(), &e))?
        .map_err(|e| self.listing_error(prefix.as_str(), &e))?;
        let keys = listed
            .objects
            .iter()
            .filter_map(|m| StoreKey::new(strip(&root, m.location.as_ref())).ok())
            .collect();
        let prefixes = listed
            .common_prefixes
            .iter()
            .filter_map(|p| StorePrefix::new(format!("{}/", strip(&root, p.as_ref()))).ok())
            .collect();
        Ok(StoreKeysPrefixes::new(keys, prefixes))
    }

    fn size_prefix(&self, prefix: &StorePrefix) -> Result<u64, StorageError> {
        Ok(self.listed(prefix)?.iter().map(|m| m.size).sum())
    }
}

impl ObjectStorage {
    /// Every object under `prefix` (one listing request; S3 pages it).
    fn listed(&self, prefix: &StorePrefix) -> Result<Vec<object_store::ObjectMeta>, StorageError> {
        use futures::TryStreamExt;
        let store = self.store.clone();
        let at = self.path(prefix.as_str().trim_end_matches('/'));
        run(async move {
            count(0);
            store.list(Some(&at)).try_collect::<Vec<_>>().await
        })
        .map_err(|e| self.error(prefix.as_str(), &e))?
        .map_err(|e| self.listing_error(prefix.as_str(), &e))
    }

    /// Plain HTTP servers cannot list; say what would work instead.
    fn listing_error(&self, prefix: &str, e: &(dyn std::error::Error + 'static)) -> StorageError {
        StorageError::Other(scrub(&format!(
            "cannot list {}/{prefix} ({}); over HTTP a store needs consolidated metadata \
             (anndata writes it by default; zarr.consolidate_metadata adds it)",
            self.url,
            causes(e)
        )))
    }
}

/// An error and its sources, each said once.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg = format!("{msg}: {text}");
        }
        source = s.source();
    }
    msg
}

/// `location` relative to the store's root.
fn strip<'a>(root: &str, location: &'a str) -> &'a str {
    if root.is_empty() {
        location
    } else {
        location
            .strip_prefix(root)
            .map_or(location, |l| l.trim_start_matches('/'))
    }
}
