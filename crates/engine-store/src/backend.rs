//! The narrow storage interface both backends (HDF5 and zarr) implement.
//!
//! It speaks only of groups, arrays and attributes: paths are `/`-separated from the root
//! (`"X/indptr"`, `""` for the root). Everything AnnData-specific lives above it, in
//! [`crate::encoding`], so the conformance suite in `tests/` can hold both backends to the same
//! behaviour.

use engine_common::Result;
use engine_matrix::{DType, DynArray};
use serde_json::{Map, Value as Json};
use std::fmt::Debug;
use std::ops::Range;
use std::path::Path;

/// Attributes of a node, as JSON (what zarr stores; HDF5 attributes map onto it).
pub type Attrs = Map<String, Json>;

/// What sits at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Group,
    Array,
}

/// The storage format of a file or store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreFormat {
    H5ad,
    Zarr2,
    Zarr3,
    /// 10x Genomics output (Cell Ranger HDF5 or an MTX directory), read only.
    Tenx,
}

impl StoreFormat {
    pub fn name(self) -> &'static str {
        match self {
            StoreFormat::H5ad => "h5ad",
            StoreFormat::Zarr2 => "zarr2",
            StoreFormat::Zarr3 => "zarr3",
            StoreFormat::Tenx => "10x",
        }
    }

    /// Parses `h5ad`, `zarr2`/`zarr`, `zarr3`.
    pub fn parse(s: &str) -> Option<StoreFormat> {
        match s {
            "h5ad" | "h5" | "hdf5" => Some(StoreFormat::H5ad),
            "zarr2" | "zarr" => Some(StoreFormat::Zarr2),
            "zarr3" => Some(StoreFormat::Zarr3),
            _ => None,
        }
    }
}

/// Element type of a stored array, including the layouts only old files use.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredType {
    /// A type the engine reads into a [`DynArray`].
    Plain(DType),
    /// A structured (record) type, with its field names: HDF5 compound, zarr structured.
    Compound(Vec<String>),
    /// Anything else; the string says what.
    Other(String),
}

impl std::fmt::Display for StoredType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredType::Plain(d) => write!(f, "{d}"),
            StoredType::Compound(fields) => write!(f, "compound{{{}}}", fields.join(", ")),
            StoredType::Other(s) => f.write_str(s),
        }
    }
}

/// Layout of a stored array: shape, chunking and compression.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayInfo {
    pub shape: Vec<u64>,
    pub dtype: StoredType,
    /// Chunk shape (for sharded zarr: the shard's inner chunk), `None` when contiguous.
    pub chunks: Option<Vec<u64>>,
    /// Shard shape for sharded zarr v3 arrays.
    pub shards: Option<Vec<u64>>,
    /// Compression pipeline, human readable (`gzip(4)`, `blosc(lz4, 5, shuffle)`).
    pub compression: Vec<String>,
    /// Bytes the array takes in storage, where cheaply known.
    pub stored_bytes: Option<u64>,
}

impl ArrayInfo {
    /// The chunk shape to iterate by: the storage chunk or, when contiguous, the whole array.
    pub fn chunk_or_shape(&self) -> Vec<u64> {
        self.chunks
            .clone()
            .unwrap_or_else(|| self.shape.iter().map(|&s| s.max(1)).collect())
    }

    /// Number of storage chunks a hyperslab touches.
    pub fn chunks_touched(&self, sel: &[Range<u64>]) -> u64 {
        let chunk = self.chunk_or_shape();
        sel.iter()
            .zip(chunk.iter())
            .map(|(r, &c)| {
                if r.is_empty() {
                    0
                } else {
                    (r.end - 1) / c - r.start / c + 1
                }
            })
            .product()
    }
}

/// The number of records in `fields`: every field is 1-D with one value per record.
///
/// # Errors
/// The first field that is not, for the message.
pub fn record_rows(fields: &[(String, DynArray)]) -> std::result::Result<usize, String> {
    let n = fields.first().map_or(0, |(_, a)| a.len());
    match fields.iter().find(|(_, a)| a.shape() != [n]) {
        Some((name, a)) => Err(format!(
            "record field `{name}` has shape {:?}, expected [{n}]",
            a.shape()
        )),
        None => Ok(n),
    }
}

/// Compression choice for a written array.
#[derive(Debug, Clone, PartialEq)]
pub enum Compression {
    None,
    Gzip(u32),
    Zstd(i32),
    /// Blosc with the given inner compressor (`lz4`, `zstd`, `blosclz`, …) and level, in
    /// blocks of `blocksize` bytes (0: blosc's choice, 256 KiB for lz4 at level 3; for lz4 and
    /// blosclz blosc multiplies a given size by the type size, to at least 64 KiB).
    Blosc {
        cname: String,
        clevel: u8,
        blocksize: usize,
    },
}

impl Compression {
    /// Parses `none`, `gzip`, `gzip:6`, `zstd:3`, `lz4`, `blosc-lz4:5`, `blosc-zstd:5`; a
    /// level outside the codec's range is refused, not clamped.
    ///
    /// # Errors
    /// What is wrong, for the message (an unknown name, a bad or out-of-range level).
    pub fn parse(s: &str) -> std::result::Result<Compression, String> {
        let (name, level) = match s.split_once(':') {
            Some((n, l)) => (
                n,
                Some(
                    l.parse::<i32>()
                        .map_err(|_| format!("compression level `{l}` is not a whole number"))?,
                ),
            ),
            None => (s, None),
        };
        let ranged = |lo: i32, hi: i32, default: i32| -> std::result::Result<i32, String> {
            let l = level.unwrap_or(default);
            if (lo..=hi).contains(&l) {
                Ok(l)
            } else {
                Err(format!("{name} levels are {lo} to {hi}, not {l}"))
            }
        };
        Ok(match name {
            "none" if level.is_none() => Compression::None,
            "gzip" | "zlib" | "deflate" => Compression::Gzip(ranged(0, 9, 4)? as u32),
            "zstd" => Compression::Zstd(ranged(-7, 22, 3)?),
            "lz4" | "blosc" | "blosc-lz4" => Compression::Blosc {
                cname: "lz4".into(),
                clevel: ranged(0, 9, 5)? as u8,
                blocksize: 0,
            },
            "blosc-zstd" => Compression::Blosc {
                cname: "zstd".into(),
                clevel: ranged(0, 9, 5)? as u8,
                blocksize: 0,
            },
            _ => {
                return Err(format!(
                    "unknown compression `{s}`: use none, gzip[:0-9], zstd[:-7-22], lz4[:0-9], blosc-zstd[:0-9]"
                ));
            }
        })
    }
}

impl Compression {
    /// Refuses what `format` would change: h5ad writes zstd through the Blosc filter, whose
    /// levels stop at 9 (a level above was quietly lowered).
    ///
    /// # Errors
    /// What is wrong, for the message.
    pub fn check_for(&self, format: StoreFormat) -> std::result::Result<(), String> {
        match (self, format) {
            (Compression::Zstd(l), StoreFormat::H5ad) if !(0..=9).contains(l) => Err(format!(
                "h5ad stores zstd through Blosc, whose levels are 0 to 9, not {l}"
            )),
            _ => Ok(()),
        }
    }
}

/// How to store one array.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayOptions {
    /// Chunk shape; `None` lets the backend pick (contiguous for tiny arrays).
    pub chunks: Option<Vec<u64>>,
    /// Shard shape (zarr v3 only; multiples of `chunks`).
    pub shards: Option<Vec<u64>>,
    pub compression: Compression,
}

impl Default for ArrayOptions {
    fn default() -> Self {
        Self {
            chunks: None,
            shards: None,
            compression: Compression::None,
        }
    }
}

/// Read access to a hierarchical store.
pub trait Store: Send + Sync + Debug {
    /// Where the store lives, for messages.
    fn path(&self) -> &Path;
    fn format(&self) -> StoreFormat;
    /// What is at `path`, or `None` when nothing is.
    fn node(&self, path: &str) -> Result<Option<NodeKind>>;
    /// Names of a group's children, sorted.
    fn children(&self, group: &str) -> Result<Vec<String>>;
    fn attributes(&self, path: &str) -> Result<Attrs>;
    fn array_info(&self, path: &str) -> Result<ArrayInfo>;
    /// Reads a hyperslab: one range per dimension (none for a scalar).
    fn read(&self, path: &str, sel: &[Range<u64>]) -> Result<DynArray>;
    /// Reads the fields of a structured (record) array, one array each: HDF5 compound
    /// datasets, zarr v2 structured dtypes, zarr v3 `struct` arrays.
    fn read_records(&self, path: &str) -> Result<Vec<(String, DynArray)>>;

    /// Whether every chunk read is a network request: readers then ask for whole chunks,
    /// each once, instead of many partial reads.
    fn is_remote(&self) -> bool {
        false
    }

    /// Fetches what reads inside `sel` of array `path` will need, concurrently, and keeps it
    /// until the returned guard drops: a remote reader then decodes chunk by chunk without
    /// waiting on one request at a time. Local stores do nothing.
    ///
    /// # Errors
    /// When a fetch fails after its retries.
    fn prefetch(&self, _path: &str, _sel: &[Range<u64>]) -> Result<Prefetched> {
        Ok(Prefetched::default())
    }

    /// Reads ranges of 1-D array `path` straight into `out` (their elements back to back, as
    /// the machine stores them), when the store has a direct path for that array (a local
    /// sharded zarr v3 array, its inner chunks `blosc` or uncompressed). `Ok(false)`: it has
    /// none, `out` is untouched, and the caller reads through `read`.
    ///
    /// # Errors
    /// When `out` is not as long as the ranges' elements, or the data is damaged.
    fn read_ranges_into(
        &self,
        _path: &str,
        _ranges: &[Range<u64>],
        _out: &mut [u8],
    ) -> Result<bool> {
        Ok(false)
    }

    /// Reads a whole array.
    fn read_all(&self, path: &str) -> Result<DynArray> {
        let info = self.array_info(path)?;
        let sel: Vec<Range<u64>> = info.shape.iter().map(|&n| 0..n).collect();
        self.read(path, &sel)
    }
}

/// What a [`Store::prefetch`] holds; dropping it lets go.
#[derive(Default)]
pub struct Prefetched(Option<Box<dyn FnOnce() + Send>>);

impl Prefetched {
    /// A hold that `release` ends.
    pub fn new(release: impl FnOnce() + Send + 'static) -> Prefetched {
        Prefetched(Some(Box::new(release)))
    }
}

impl Debug for Prefetched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Prefetched"
        } else {
            "Prefetched(nothing)"
        })
    }
}

impl Drop for Prefetched {
    fn drop(&mut self) {
        if let Some(release) = self.0.take() {
            release();
        }
    }
}

/// Write access to a new store. Writers are created at a temporary path and renamed into
/// place by [`crate::write::AtomicTarget`], so a failure never leaves a partial file.
pub trait StoreWriter: Send + Debug {
    fn create_group(&mut self, path: &str, attrs: &Attrs) -> Result<()>;
    /// Creates an array of the given type and shape, filled with zeros.
    fn create_array(
        &mut self,
        path: &str,
        dtype: DType,
        shape: &[u64],
        opts: &ArrayOptions,
        attrs: &Attrs,
    ) -> Result<()>;
    /// Writes `data` at `offset` (one entry per dimension) into an existing array.
    fn write(&mut self, path: &str, offset: &[u64], data: &DynArray) -> Result<()>;
    /// Creates a 1-D structured (record) array holding `fields` (equal-length 1-D arrays),
    /// as anndata writes a `rec-array`.
    fn write_records(
        &mut self,
        path: &str,
        fields: &[(String, DynArray)],
        attrs: &Attrs,
    ) -> Result<()>;
    /// Flushes and closes the store.
    fn finish(self: Box<Self>) -> Result<()>;

    /// Creates the element anndata writes for `None`: here a 0-d boolean array, as anndata
    /// writes it to zarr (HDF5 overrides this with a dataset without a dataspace).
    fn create_null(&mut self, path: &str, attrs: &Attrs) -> Result<()> {
        let data = DynArray::Bool(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[]), false));
        self.write_array(path, &data, &ArrayOptions::default(), attrs)
    }

    /// Creates an array holding exactly `data`.
    fn write_array(
        &mut self,
        path: &str,
        data: &DynArray,
        opts: &ArrayOptions,
        attrs: &Attrs,
    ) -> Result<()> {
        let shape: Vec<u64> = data.shape().iter().map(|&s| s as u64).collect();
        self.create_array(path, data.dtype(), &shape, opts, attrs)?;
        if !data.is_empty() || shape.is_empty() {
            self.write(path, &vec![0; shape.len()], data)?;
        }
        Ok(())
    }
}

/// Default chunking when the caller gave none: about 1 MiB per chunk, whole rows.
pub fn default_chunks(shape: &[u64], dtype: DType) -> Vec<u64> {
    if shape.is_empty() {
        return vec![];
    }
    let row: u64 = shape[1..].iter().product::<u64>().max(1) * dtype.size() as u64;
    let rows = ((1u64 << 20) / row).clamp(1, shape[0].max(1));
    let mut c = vec![rows];
    c.extend(shape[1..].iter().map(|&s| s.max(1)));
    c
}

/// Fits a requested chunk (or shard) shape to an array: one entry per dimension, each in
/// `1..=len`; `0` or a missing entry means the whole axis.
pub fn fit_chunks(req: &[u64], shape: &[u64]) -> Vec<u64> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &s)| match req.get(i) {
            Some(&c) if c > 0 => c.min(s.max(1)),
            _ => s.max(1),
        })
        .collect()
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    let parent = parent.trim_end_matches('/');
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}/{child}")
    }
}

/// Storage options for some elements of a written dataset, by path pattern (the tutorial's
/// `write_dispatched`): `X`, `raw/X`, `layers/counts`, or `*` for one path segment
/// (`layers/*`, `obsm/*`). Unset fields keep the writer's choice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ElementOptions {
    rules: Vec<(String, ElementRule)>,
}

/// What one pattern sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ElementRule {
    /// Chunk shape; 0 = the whole axis.
    pub chunks: Option<Vec<u64>>,
    pub shards: Option<Vec<u64>>,
    pub compression: Option<Compression>,
}

impl ElementOptions {
    /// The element groups a pattern may name (a matrix slot), or `X` / `raw/X`.
    pub const SLOTS: [&'static str; 5] = ["layers", "obsm", "varm", "obsp", "varp"];

    /// Adds a rule.
    ///
    /// # Errors
    /// A pattern that names no matrix element: the message says which would.
    pub fn add(&mut self, pattern: &str, rule: ElementRule) -> std::result::Result<(), String> {
        let ok = match pattern.split_once('/') {
            None => pattern == "X",
            Some(("raw", "X")) => true,
            Some((slot, name)) => {
                Self::SLOTS.contains(&slot) && !name.is_empty() && !name.contains('/')
            }
        };
        if !ok {
            return Err(format!(
                "`{pattern}` names no matrix element: use X, raw/X, or layers/NAME, obsm/NAME, varm/NAME, obsp/NAME, varp/NAME (NAME may be *)"
            ));
        }
        self.rules.push((pattern.to_string(), rule));
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// [`ElementOptions::for_element`] with chunks and shards fitted to `shape` (`0` and
    /// missing axes become whole axes).
    pub fn for_shape(&self, path: &str, base: &ArrayOptions, shape: &[u64]) -> ArrayOptions {
        let mut o = self.for_element(path, base);
        o.chunks = o.chunks.map(|c| fit_chunks(&c, shape));
        o.shards = o.shards.map(|c| fit_chunks(&c, shape));
        o
    }

    /// `base` with the most specific rule for `path` applied (an exact name before `*`).
    pub fn for_element(&self, path: &str, base: &ArrayOptions) -> ArrayOptions {
        let matches = |p: &str| {
            p == path
                || p.strip_suffix("/*").is_some_and(|g| {
                    path.strip_prefix(g)
                        .and_then(|r| r.strip_prefix('/'))
                        .is_some_and(|r| !r.contains('/'))
                })
        };
        let rule = self
            .rules
            .iter()
            .filter(|(p, _)| matches(p))
            .max_by_key(|(p, _)| !p.ends_with('*'))
            .map(|(_, r)| r);
        let mut out = base.clone();
        if let Some(r) = rule {
            if r.chunks.is_some() {
                out.chunks = r.chunks.clone();
            }
            if r.shards.is_some() {
                out.shards = r.shards.clone();
            }
            if let Some(c) = &r.compression {
                out.compression = c.clone();
            }
        }
        out
    }
}

#[cfg(test)]
mod element_tests {
    use super::*;

    #[test]
    fn the_most_specific_pattern_wins() {
        let mut e = ElementOptions::default();
        let rule = |c: u64| ElementRule {
            chunks: Some(vec![0, c]),
            ..ElementRule::default()
        };
        e.add("layers/*", rule(25)).unwrap();
        e.add("layers/counts", rule(5)).unwrap();
        e.add("X", rule(7)).unwrap();
        let base = ArrayOptions {
            compression: Compression::Gzip(4),
            ..ArrayOptions::default()
        };
        assert_eq!(
            e.for_element("layers/counts", &base).chunks,
            Some(vec![0, 5])
        );
        assert_eq!(
            e.for_element("layers/lognorm", &base).chunks,
            Some(vec![0, 25])
        );
        assert_eq!(e.for_element("X", &base).chunks, Some(vec![0, 7]));
        assert_eq!(e.for_element("X", &base).compression, Compression::Gzip(4));
        assert_eq!(e.for_element("obsm/X_pca", &base), base);
        assert!(e.add("uns/x", rule(1)).is_err());
        assert!(e.add("obs", rule(1)).is_err());
    }
}
