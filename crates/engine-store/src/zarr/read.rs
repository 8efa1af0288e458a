//! Reading zarr stores: [`ZarrStore`] and its [`Store`] implementation.

use crate::backend::{ArrayInfo, Attrs, NodeKind, Store, StoreFormat, StoredType};
use crate::zip::ZipStore;
use engine_common::{Error, Location, Result};
use engine_matrix::{DType, DynArray};
use ndarray::ArrayD;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use zarrs::array::{Array, ArraySubset};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::{ListableStorageTraits, ReadableListableStorageTraits, StoreKey, StorePrefix};

/// What the reader reads through: a directory, or a zip archive (read only).
type ReadStore = dyn ReadableListableStorageTraits;
pub(super) type ZArray = Array<ReadStore>;

use super::dtype::{fixed_width, numpy_num, v3_numeric};
use super::legacy::is_json2;
use super::ranges::ShardedRanges;
use super::{key, node_path, records};

/// Where a store's keys live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backing {
    Directory,
    /// A zip archive (`zarr.storage.ZipStore`, `.zarr.zip`).
    Zip,
    /// A URL: every key read is a request, so consolidated metadata is trusted as complete.
    Remote,
}

/// An open zarr store.
pub struct ZarrStore {
    pub(super) store: Arc<ReadStore>,
    /// The same store when it is remote, for reads that fetch ahead.
    pub(super) objects: Option<Arc<crate::remote::ObjectStorage>>,
    path: PathBuf,
    backing: Backing,
    format: StoreFormat,
    arrays: Mutex<HashMap<String, Arc<ZArray>>>,
    /// Direct range readers of sharded 1-D arrays (`None`: the array has another layout).
    ranges: Mutex<HashMap<String, Option<Arc<ShardedRanges>>>>,
    /// Consolidated metadata (v2 `.zmetadata`, v3 inline in the root `zarr.json`) by key
    /// (`X/.zarray`, `X/zarr.json`), consulted before the store so opening a dataset costs one
    /// read instead of one per element.
    consolidated: HashMap<String, Json>,
}

impl std::fmt::Debug for ZarrStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrStore")
            .field("path", &self.path)
            .field("format", &self.format)
            .finish()
    }
}

impl ZarrStore {
    /// Opens a local zarr directory (v2 or v3, detected from the root metadata).
    ///
    /// # Errors
    /// When the directory has no zarr root metadata.
    pub fn open(path: &Path) -> Result<ZarrStore> {
        let fs = FilesystemStore::new(path).map_err(|e| Error::io(Location::file(path), e))?;
        ZarrStore::with_store(path, Arc::new(fs), Backing::Directory)
    }

    /// Opens a zarr store kept in a zip archive (v2 or v3), as `zarr.storage.ZipStore` writes
    /// it (entries at the top) or as zipping a store's directory does (entries under one
    /// top-level folder). Entries are read in place; nothing is extracted.
    ///
    /// # Errors
    /// When the file is not a zip archive or holds no zarr root metadata.
    pub fn open_zip(path: &Path) -> Result<ZarrStore> {
        let loc = || Location::file(path);
        let bad_zip = |e: zarrs::storage::StorageError| {
            Error::format(loc(), format!("not a readable zip archive: {e}"))
        };
        let zip = ZipStore::open(path, "").map_err(bad_zip)?;
        let is_root = |s: &dyn ReadableListableStorageTraits, prefix: &str| {
            ["zarr.json", ".zgroup", ".zattrs"].iter().any(|k| {
                StoreKey::new(format!("{prefix}{k}"))
                    .ok()
                    .and_then(|k| s.size_key(&k).ok().flatten())
                    .is_some()
            })
        };
        if is_root(&zip, "") {
            return ZarrStore::with_store(path, Arc::new(zip), Backing::Zip);
        }
        let top = zip
            .list_dir(&StorePrefix::root())
            .map_err(|e| Error::io(loc(), e))?;
        match top.prefixes().as_slice() {
            [only] if top.keys().is_empty() && is_root(&zip, only.as_str()) => {
                let inner = ZipStore::open(path, only.as_str()).map_err(bad_zip)?;
                ZarrStore::with_store(path, Arc::new(inner), Backing::Zip)
            }
            _ => Err(Error::format(
                loc(),
                "zip archive holds no zarr store (no zarr.json or .zgroup at its top or in its one folder)",
            )),
        }
    }

    /// Opens a zarr store by URL (`http(s)://`, `s3://`). With consolidated metadata this
    /// costs one request for v3 (the root `zarr.json`) and two for v2 (no `zarr.json`, then
    /// `.zmetadata`); without it, one per metadata document the reads use.
    ///
    /// # Errors
    /// When the URL holds no zarr root metadata, or the requests fail after their retries.
    pub fn open_remote(remote: &crate::remote::Remote) -> Result<ZarrStore> {
        crate::zarr_lz4::register();
        let objects = Arc::new(remote.storage()?);
        let mut store = ZarrStore {
            store: objects.clone(),
            objects: Some(objects),
            path: PathBuf::from(&remote.shown),
            backing: Backing::Remote,
            format: StoreFormat::Zarr3,
            arrays: Mutex::new(HashMap::new()),
            ranges: Mutex::new(HashMap::new()),
            consolidated: HashMap::new(),
        };
        if let Some(root) = store.get_json("zarr.json")? {
            store.consolidated = consolidated_v3(&root);
            store.consolidated.insert("zarr.json".into(), root);
            return Ok(store);
        }
        store.format = StoreFormat::Zarr2;
        store.consolidated = store.load_consolidated()?;
        if store.consolidated.is_empty() && store.get_json(".zgroup")?.is_none() {
            return Err(Error::format(
                Location::file(&remote.shown),
                "no zarr store here (no zarr.json, .zmetadata or .zgroup)",
            ));
        }
        Ok(store)
    }

    fn with_store(path: &Path, store: Arc<ReadStore>, backing: Backing) -> Result<ZarrStore> {
        crate::zarr_lz4::register();
        let v3 = StoreKey::new("zarr.json")
            .ok()
            .and_then(|k| store.size_key(&k).ok().flatten())
            .is_some();
        let mut store = ZarrStore {
            store,
            objects: None,
            path: path.to_path_buf(),
            backing,
            format: if v3 {
                StoreFormat::Zarr3
            } else {
                StoreFormat::Zarr2
            },
            arrays: Mutex::new(HashMap::new()),
            ranges: Mutex::new(HashMap::new()),
            consolidated: HashMap::new(),
        };
        store.consolidated = store.load_consolidated()?;
        Ok(store)
    }

    /// Remote stores take consolidated metadata as the whole truth: a key it lacks is absent,
    /// not a request. Local ones look further, as a store edited after consolidation may need.
    fn trusts_consolidated(&self) -> bool {
        self.backing == Backing::Remote && !self.consolidated.is_empty()
    }

    pub(super) fn loc(&self, path: &str) -> Location {
        Location::new(&self.path, format!("/{path}"))
    }

    /// Reads consolidated metadata if the store has it.
    fn load_consolidated(&self) -> Result<HashMap<String, Json>> {
        let mut out = HashMap::new();
        if let Some(Json::Object(m)) = self
            .get_json(".zmetadata")?
            .and_then(|z| z.get("metadata").cloned())
        {
            out.extend(m);
        } else if self.format == StoreFormat::Zarr3
            && let Some(root) = self.get_json("zarr.json")?
        {
            out = consolidated_v3(&root);
        }
        Ok(out)
    }

    fn get_json(&self, k: &str) -> Result<Option<Json>> {
        if let Some(j) = self.consolidated.get(k) {
            return Ok(Some(j.clone()));
        }
        if self.trusts_consolidated() && k != ".zmetadata" && k != "zarr.json" {
            return Ok(None);
        }
        let sk = StoreKey::new(k)
            .map_err(|e| Error::format(Location::new(&self.path, k), e.to_string()))?;
        let Some(bytes) = self
            .store
            .get(&sk)
            .map_err(|e| Error::io(Location::new(&self.path, k), e))?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::format(Location::new(&self.path, k), format!("invalid JSON: {e}")))
    }

    /// The metadata document of a node: (`zarr.json` or `.zarray`/`.zgroup`, its JSON).
    fn meta(&self, path: &str) -> Result<Option<(NodeKind, Json)>> {
        // A remote v2 store is not asked for v3 documents (each would be a request).
        let v3 = self.backing != Backing::Remote || self.format == StoreFormat::Zarr3;
        if v3 && let Some(j) = self.get_json(&key(path, "zarr.json"))? {
            let kind = match j.get("node_type").and_then(|v| v.as_str()) {
                Some("array") => NodeKind::Array,
                Some("group") => NodeKind::Group,
                other => {
                    return Err(Error::format(
                        Location::new(&self.path, key(path, "zarr.json")),
                        format!("node_type is {other:?}, expected \"array\" or \"group\""),
                    ));
                }
            };
            return Ok(Some((kind, j)));
        }
        if let Some(j) = self.get_json(&key(path, ".zarray"))? {
            return Ok(Some((NodeKind::Array, j)));
        }
        if let Some(j) = self.get_json(&key(path, ".zgroup"))? {
            return Ok(Some((NodeKind::Group, j)));
        }
        Ok(None)
    }

    pub(super) fn array(&self, path: &str) -> Result<Arc<ZArray>> {
        if let Some(a) = self
            .arrays
            .lock()
            .map_err(|_| Error::internal("poisoned lock"))?
            .get(path)
        {
            return Ok(a.clone());
        }
        // zarrs rejects node names starting with `__`, which anndata 0.7 used for
        // `__categories`; such arrays are opened through a store rooted at their directory.
        let a = if path.split('/').any(|p| p.starts_with("__")) {
            if self.backing != Backing::Directory {
                return Err(Error::unsupported(
                    self.loc(path),
                    "anndata 0.7 `__` array names inside a zip archive or at a URL (copy the store to a local directory first)",
                ));
            }
            let fs = FilesystemStore::new(self.path.join(path))
                .map_err(|e| Error::io(self.loc(path), e))?;
            let store: Arc<ReadStore> = Arc::new(fs);
            Array::open(store, "/")
        } else if let Some((NodeKind::Array, meta)) = self.meta(path)? {
            // Build the array from the metadata already in hand (possibly consolidated), so
            // zarrs does not fetch it again.
            let md = if meta.get("zarr_format").and_then(|v| v.as_u64()) == Some(3) {
                serde_json::from_value(meta).map(zarrs::metadata::ArrayMetadata::V3)
            } else {
                serde_json::from_value(meta).map(zarrs::metadata::ArrayMetadata::V2)
            }
            .map_err(|e| {
                Error::format(self.loc(path), format!("invalid zarr array metadata: {e}"))
            })?;
            Array::new_with_metadata(self.store.clone(), &node_path(path), md)
        } else {
            return Err(Error::format(self.loc(path), "not a zarr array"));
        }
        .map_err(|e| Error::format(self.loc(path), format!("cannot open zarr array: {e}")))?;
        let a = Arc::new(a);
        self.arrays
            .lock()
            .map_err(|_| Error::internal("poisoned lock"))?
            .insert(path.to_string(), a.clone());
        Ok(a)
    }
}

/// The consolidated metadata inlined in a v3 root `zarr.json`, by document key.
fn consolidated_v3(root: &Json) -> HashMap<String, Json> {
    fn walk(prefix: &str, node: &Json, out: &mut HashMap<String, Json>) {
        let Some(Json::Object(children)) = node.pointer("/consolidated_metadata/metadata") else {
            return;
        };
        for (name, meta) in children {
            let path = key(prefix, name);
            walk(&path, meta, out);
            out.insert(key(&path, "zarr.json"), meta.clone());
        }
    }
    let mut out = HashMap::new();
    walk("", root, &mut out);
    out
}

/// Maps a zarr v2 `dtype` or v3 `data_type` to the engine's types.
fn parse_dtype(j: &Json) -> StoredType {
    if let Some(Ok(layout)) = records::parse_v2(j).or_else(|| records::parse_v3(j, false)) {
        return StoredType::Compound(layout.names());
    }
    let Some(s) = j.as_str() else {
        return StoredType::Other(format!("zarr {j}"));
    };
    if let Some((d, _)) = numpy_num(s) {
        return StoredType::Plain(d);
    }
    let t = s.trim_start_matches(['<', '>', '|', '=']);
    StoredType::Plain(match (s, t) {
        (_, "O") | ("string", _) => DType::Str,
        _ if fixed_width(s).is_some() => DType::Str,
        _ => match v3_numeric(s) {
            Some(d) => d,
            None => return StoredType::Other(format!("zarr {s}")),
        },
    })
}

fn describe_codec(c: &Json) -> String {
    let name = c
        .get("name")
        .or_else(|| c.get("id"))
        .and_then(|v| v.as_str())
        .unwrap_or("?");
    let cfg = c.get("configuration").unwrap_or(c);
    match name {
        "blosc" => format!(
            "blosc({}, {}{})",
            cfg.get("cname").and_then(|v| v.as_str()).unwrap_or("?"),
            cfg.get("clevel").map(|v| v.to_string()).unwrap_or_default(),
            match cfg.get("shuffle") {
                Some(Json::String(s)) if s != "noshuffle" => format!(", {s}"),
                Some(Json::Number(n)) if n.as_i64() == Some(1) => ", shuffle".into(),
                Some(Json::Number(n)) if n.as_i64() == Some(2) => ", bitshuffle".into(),
                _ => String::new(),
            }
        ),
        "zstd" | "gzip" | "zlib" => format!(
            "{name}({})",
            cfg.get("level").map(|v| v.to_string()).unwrap_or_default()
        ),
        other => other.to_string(),
    }
}

/// The most a chunk or shard may hold, decoded: far past any real chunk (1 TiB), far below
/// where sizes overflow.
const MAX_CHUNK_BYTES: u128 = 1 << 40;

/// An array's extents: `Ok(None)` when absent, an error naming what is wrong when an entry is
/// negative or not an integer.
fn extents(j: Option<&Json>) -> std::result::Result<Option<Vec<u64>>, String> {
    let Some(j) = j else { return Ok(None) };
    let a = j
        .as_array()
        .ok_or_else(|| format!("{j} is not a list of extents"))?;
    a.iter()
        .map(|v| {
            v.as_u64()
                .ok_or_else(|| format!("{j} has an extent {v} that is not a size"))
        })
        .collect::<std::result::Result<Vec<u64>, String>>()
        .map(Some)
}

pub(super) fn u64s(j: Option<&Json>) -> Option<Vec<u64>> {
    j.and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
}

pub(super) fn zarr_err(loc: Location, e: impl std::fmt::Display) -> Error {
    Error::format(loc, format!("zarr: {e}"))
}

impl Store for ZarrStore {
    fn path(&self) -> &Path {
        &self.path
    }

    fn format(&self) -> StoreFormat {
        self.format
    }

    fn node(&self, path: &str) -> Result<Option<NodeKind>> {
        Ok(self.meta(path)?.map(|(k, _)| k))
    }

    fn children(&self, group: &str) -> Result<Vec<String>> {
        let prefix = if group.is_empty() {
            String::new()
        } else {
            format!("{group}/")
        };
        if self.trusts_consolidated() {
            let mut names: Vec<String> = self
                .consolidated
                .keys()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter_map(|rest| rest.split_once('/'))
                .filter(|(_, doc)| matches!(*doc, "zarr.json" | ".zarray" | ".zgroup"))
                .map(|(name, _)| name.to_string())
                .collect();
            names.sort();
            names.dedup();
            return Ok(names);
        }
        let sp = StorePrefix::new(prefix.clone()).map_err(|e| Error::internal(e.to_string()))?;
        let listing = self
            .store
            .list_dir(&sp)
            .map_err(|e| Error::io(self.loc(group), e))?;
        let mut names = Vec::new();
        for p in listing.prefixes() {
            let name = p
                .as_str()
                .trim_start_matches(&prefix)
                .trim_end_matches('/')
                .to_string();
            if !name.is_empty() && self.meta(&key(group, &name))?.is_some() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn attributes(&self, path: &str) -> Result<Attrs> {
        let Some((_, meta)) = self.meta(path)? else {
            return Err(Error::format(self.loc(path), "no such element"));
        };
        let attrs = if meta.get("zarr_format").and_then(|v| v.as_u64()) == Some(3) {
            meta.get("attributes").cloned()
        } else {
            self.get_json(&key(path, ".zattrs"))?
        };
        Ok(match attrs {
            Some(Json::Object(m)) => m,
            _ => Attrs::new(),
        })
    }

    fn array_info(&self, path: &str) -> Result<ArrayInfo> {
        let m = self.array_meta(path)?;
        self.info_from_meta(path, &m)
    }

    fn read(&self, path: &str, sel: &[Range<u64>]) -> Result<DynArray> {
        // One metadata lookup per read: layout and fixed-width check both come from it.
        let meta = self.array_meta(path)?;
        let info = self.info_from_meta(path, &meta)?;
        if self.backing == Backing::Remote
            && let Some(chunks) = info.chunks.clone()
        {
            // Whole (inner) chunks, each fetched once: zarrs' partial decoding of a chunk
            // fetches it more than once, which over a network is a request each time.
            let aligned = super::remote_read::align(sel, &chunks, &info.shape);
            let _held = self.hold_ahead(path, &meta, &chunks, &aligned, false)?;
            let whole = self.read_with(path, meta, info, &aligned)?;
            return Ok(if aligned == sel {
                whole
            } else {
                super::remote_read::crop(whole, sel, &aligned)
            });
        }
        self.read_with(path, meta, info, sel)
    }

    fn is_remote(&self) -> bool {
        self.backing == Backing::Remote
    }

    fn read_ranges_into(&self, path: &str, ranges: &[Range<u64>], out: &mut [u8]) -> Result<bool> {
        let Some(reader) = self.ranges_reader(path)? else {
            return Ok(false);
        };
        if out.len() != reader.bytes_for(ranges) {
            return Err(Error::internal(format!(
                "ranges of /{path} read into {} bytes for {}",
                out.len(),
                reader.bytes_for(ranges)
            )));
        }
        reader.read_into(ranges, out).map_err(|why| {
            zarr_err(
                self.loc(path),
                format!("cannot read chunk data (corrupt or truncated?): {why}"),
            )
        })?;
        Ok(true)
    }

    fn prefetch(&self, path: &str, sel: &[Range<u64>]) -> Result<crate::backend::Prefetched> {
        let meta = self.array_meta(path)?;
        let info = self.info_from_meta(path, &meta)?;
        match info.chunks {
            Some(chunks) => {
                let aligned = super::remote_read::align(sel, &chunks, &info.shape);
                self.hold_ahead(path, &meta, &chunks, &aligned, true)
            }
            None => Ok(crate::backend::Prefetched::default()),
        }
    }

    fn read_records(&self, path: &str) -> Result<Vec<(String, DynArray)>> {
        let meta = self.array_meta(path)?;
        let v3 = meta.get("zarr_format").and_then(|v| v.as_u64()) == Some(3);
        let parsed = if v3 {
            let big = meta
                .get("codecs")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .any(|c| c.pointer("/configuration/endian").and_then(Json::as_str) == Some("big"));
            records::parse_v3(meta.get("data_type").unwrap_or(&Json::Null), big)
        } else {
            records::parse_v2(meta.get("dtype").unwrap_or(&Json::Null))
        };
        let layout = match parsed {
            Some(Ok(l)) => l,
            Some(Err(why)) => return Err(Error::unsupported(self.loc(path), why)),
            None => return Err(Error::format(self.loc(path), "not a structured array")),
        };
        let shape = u64s(meta.get("shape")).unwrap_or_default();
        if shape.len() != 1 {
            return Err(Error::unsupported(
                self.loc(path),
                format!("a structured array of shape {shape:?} (only 1-D)"),
            ));
        }
        if shape[0] == 0 || layout.width == 0 {
            return Ok(records::decode(&layout, &[]));
        }
        let array = self.raw_array(path, meta, layout.width)?;
        let bytes = self.raw_bytes(path, &array, &[0..shape[0]])?;
        Ok(records::decode(&layout, &bytes))
    }
}

impl ZarrStore {
    /// The metadata document of the array at `path`.
    fn array_meta(&self, path: &str) -> Result<Json> {
        match self.meta(path)? {
            Some((NodeKind::Array, m)) => Ok(m),
            _ => Err(Error::format(self.loc(path), "not an array")),
        }
    }

    fn info_from_meta(&self, path: &str, m: &Json) -> Result<ArrayInfo> {
        let shape = extents(m.get("shape"))
            .map_err(|why| Error::format(self.loc(path), format!("shape {why}")))?
            .ok_or_else(|| Error::format(self.loc(path), "array metadata has no shape"))?;
        let v3 = m.get("zarr_format").and_then(|v| v.as_u64()) == Some(3);
        let (dtype, chunks, shards, compression) = if v3 {
            let grid = u64s(m.pointer("/chunk_grid/configuration/chunk_shape"));
            let codecs = m
                .get("codecs")
                .and_then(|c| c.as_array())
                .cloned()
                .unwrap_or_default();
            let mut compression = Vec::new();
            let mut inner = None;
            for c in &codecs {
                if c.get("name").and_then(|v| v.as_str()) == Some("sharding_indexed") {
                    inner = u64s(c.pointer("/configuration/chunk_shape"));
                    for ic in c
                        .pointer("/configuration/codecs")
                        .and_then(|v| v.as_array())
                        .into_iter()
                        .flatten()
                    {
                        compression.push(describe_codec(ic));
                    }
                } else {
                    compression.push(describe_codec(c));
                }
            }
            compression.retain(|c| c != "bytes" && c != "vlen-utf8");
            let dtype = parse_dtype(m.get("data_type").unwrap_or(&Json::Null));
            match inner {
                Some(inner) => (dtype, Some(inner), grid, compression),
                None => (dtype, grid, None, compression),
            }
        } else {
            let mut compression: Vec<String> = m
                .get("filters")
                .and_then(|f| f.as_array())
                .into_iter()
                .flatten()
                .map(describe_codec)
                .collect();
            if let Some(c) = m.get("compressor").filter(|c| !c.is_null()) {
                compression.push(describe_codec(c));
            }
            compression.retain(|c| c != "vlen-utf8");
            (
                parse_dtype(m.get("dtype").unwrap_or(&Json::Null)),
                u64s(m.get("chunks")),
                None,
                compression,
            )
        };
        // zarrs multiplies these out; nonsense sizes are refused here, by name, rather than
        // overflowing inside it.
        let elem = match &dtype {
            StoredType::Plain(d) => d.size() as u128,
            _ => 8,
        };
        for (what, grid) in [("chunk", &chunks), ("shard", &shards)] {
            let Some(g) = grid else { continue };
            if g.len() != shape.len() || g.contains(&0) {
                return Err(Error::format(
                    self.loc(path),
                    format!("{what} shape {g:?} does not suit an array of shape {shape:?}"),
                ));
            }
            let bytes = g
                .iter()
                .try_fold(elem, |acc, &c| acc.checked_mul(u128::from(c)));
            if bytes.is_none_or(|b| b > MAX_CHUNK_BYTES) {
                return Err(Error::format(
                    self.loc(path),
                    format!("{what} shape {g:?} is impossibly large (corrupt metadata?)"),
                ));
            }
        }
        Ok(ArrayInfo {
            shape,
            dtype,
            chunks,
            shards,
            compression,
            stored_bytes: None,
        })
    }

    /// The direct range reader of local array `path`, made once; `None` when it is not a
    /// sharded 1-D numeric array of a layout `ShardedRanges` reads.
    fn ranges_reader(&self, path: &str) -> Result<Option<Arc<ShardedRanges>>> {
        if self.backing != Backing::Directory {
            return Ok(None);
        }
        let lock = || {
            self.ranges
                .lock()
                .map_err(|_| Error::internal("poisoned lock"))
        };
        if let Some(r) = lock()?.get(path) {
            return Ok(r.clone());
        }
        let meta = self.array_meta(path)?;
        let info = self.info_from_meta(path, &meta)?;
        let reader = match info.dtype {
            StoredType::Plain(d) if d.is_numeric() && d != DType::Bool => {
                ShardedRanges::open(self.array(path)?, &meta, d.size()).map(Arc::new)
            }
            _ => None,
        };
        lock()?.insert(path.to_string(), reader.clone());
        Ok(reader)
    }

    fn read_with(
        &self,
        path: &str,
        meta: Json,
        info: ArrayInfo,
        sel: &[Range<u64>],
    ) -> Result<DynArray> {
        let StoredType::Plain(dtype) = info.dtype else {
            return Err(Error::unsupported(
                self.loc(path),
                format!("element type {}", info.dtype),
            ));
        };
        if sel.len() != info.shape.len()
            || sel
                .iter()
                .zip(&info.shape)
                .any(|(r, &n)| r.start > r.end || r.end > n)
        {
            return Err(Error::internal(format!(
                "read of /{path} with selection {sel:?} outside shape {:?}",
                info.shape
            )));
        }
        let out_shape: Vec<usize> = sel.iter().map(|r| (r.end - r.start) as usize).collect();
        if out_shape.contains(&0) {
            return Ok(DynArray::zeros(dtype, &out_shape));
        }
        if let Some((width, utf32)) = meta
            .get("dtype")
            .and_then(|d| d.as_str())
            .and_then(fixed_width)
        {
            let width = width.max(1);
            return self.read_fixed_width(path, meta, sel, width, utf32, &out_shape);
        }
        if is_json2(&meta) {
            return self.read_json2(path, &meta, &info.shape, sel);
        }
        let array = self.array(path)?;
        let subset = ArraySubset::new_with_ranges(sel);
        macro_rules! rd {
            ($t:ty, $v:ident) => {
                array
                    .retrieve_array_subset::<ArrayD<$t>>(&subset)
                    .map(DynArray::$v)
            };
        }
        // zarrs can panic on some corrupt variable-length chunks; report it as damage.
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match dtype {
            DType::Bool => rd!(bool, Bool),
            DType::I8 => rd!(i8, I8),
            DType::I16 => rd!(i16, I16),
            DType::I32 => rd!(i32, I32),
            DType::I64 => rd!(i64, I64),
            DType::U8 => rd!(u8, U8),
            DType::U16 => rd!(u16, U16),
            DType::U32 => rd!(u32, U32),
            DType::U64 => rd!(u64, U64),
            DType::F32 => rd!(f32, F32),
            DType::F64 => rd!(f64, F64),
            DType::Str => rd!(String, Str),
        }));
        match res {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(zarr_err(
                self.loc(path),
                format!("cannot read chunk data (corrupt or truncated?): {e}"),
            )),
            Err(_) => Err(zarr_err(
                self.loc(path),
                "corrupt chunk data (decoder failed)",
            )),
        }
    }
}
