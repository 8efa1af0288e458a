//! Writing zarr stores: [`ZarrWriter`] and its [`StoreWriter`] implementation.

use crate::backend::{ArrayOptions, Attrs, Compression, StoreFormat, StoreWriter};
use engine_common::{Error, Location, Result};
use engine_matrix::{DType, DynArray, dyn_map};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zarrs::array::{Array, ArraySubset};
use zarrs::filesystem::FilesystemStore;
use zarrs::storage::StoreKey;

use super::dtype::{fill, v2_dtype, v3_dtype};
use super::{DynStore, key, node_path, raw_metadata, records};

/// Writes a new zarr store, v2 or v3.
pub struct ZarrWriter {
    store: Arc<DynStore>,
    path: PathBuf,
    version: u8,
    arrays: HashMap<String, Array<DynStore>>,
    /// Metadata documents written, for v2 consolidated metadata (`.zmetadata`).
    written: BTreeMap<String, Json>,
}

impl std::fmt::Debug for ZarrWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZarrWriter")
            .field("path", &self.path)
            .field("version", &self.version)
            .finish()
    }
}

impl ZarrWriter {
    /// Creates the store directory.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn create(path: &Path, format: StoreFormat) -> Result<ZarrWriter> {
        // Like every write: once an interrupt has removed the temporaries, nothing recreates
        // the store's directory.
        let _writing = crate::target::write_guard()?;
        std::fs::create_dir_all(path).map_err(|e| Error::io(Location::file(path), e))?;
        let fs = FilesystemStore::new(path).map_err(|e| Error::io(Location::file(path), e))?;
        let version = if format == StoreFormat::Zarr3 { 3 } else { 2 };
        Ok(ZarrWriter {
            store: Arc::new(fs),
            path: path.to_path_buf(),
            version,
            arrays: HashMap::new(),
            written: BTreeMap::new(),
        })
    }

    fn put(&mut self, k: &str, j: &Json) -> Result<()> {
        let _writing = crate::target::write_guard()?;
        let sk = StoreKey::new(k).map_err(|e| Error::internal(e.to_string()))?;
        let bytes = serde_json::to_vec_pretty(j).map_err(|e| Error::internal(e.to_string()))?;
        self.store
            .set(&sk, bytes.into())
            .map_err(|e| Error::io(Location::new(&self.path, k), e))?;
        self.written.insert(k.to_string(), j.clone());
        Ok(())
    }
}

fn v3_compressor(c: &Compression, d: DType) -> Option<Json> {
    match c {
        Compression::None => None,
        Compression::Gzip(l) => Some(json!({"name": "gzip", "configuration": {"level": l}})),
        Compression::Zstd(l) => {
            Some(json!({"name": "zstd", "configuration": {"level": l, "checksum": false}}))
        }
        Compression::Blosc {
            cname,
            clevel,
            blocksize,
        } => Some(json!({"name": "blosc", "configuration": {
            "cname": cname, "clevel": clevel,
            "shuffle": if d == DType::Str { "noshuffle" } else { "shuffle" },
            // Variable-length strings are a byte stream: element size 1.
            "typesize": if d == DType::Str { 1 } else { d.size() }, "blocksize": blocksize}})),
    }
}

fn v2_compressor(c: &Compression, d: DType) -> Json {
    match c {
        Compression::None => Json::Null,
        Compression::Gzip(l) => json!({"id": "zlib", "level": l}),
        Compression::Zstd(l) => json!({"id": "zstd", "level": l}),
        Compression::Blosc {
            cname,
            clevel,
            blocksize,
        } => {
            json!({"id": "blosc", "cname": cname, "clevel": clevel, "shuffle": if d == DType::Str { 0 } else { 1 }, "blocksize": blocksize})
        }
    }
}

impl StoreWriter for ZarrWriter {
    fn create_group(&mut self, path: &str, attrs: &Attrs) -> Result<()> {
        if self.version == 3 {
            self.put(
                &key(path, "zarr.json"),
                &json!({"zarr_format": 3, "node_type": "group", "attributes": attrs}),
            )
        } else {
            self.put(&key(path, ".zgroup"), &json!({"zarr_format": 2}))?;
            self.put(&key(path, ".zattrs"), &Json::Object(attrs.clone()))
        }
    }

    fn create_array(
        &mut self,
        path: &str,
        dtype: DType,
        shape: &[u64],
        opts: &ArrayOptions,
        attrs: &Attrs,
    ) -> Result<()> {
        let chunks: Vec<u64> = match &opts.chunks {
            Some(c) => crate::backend::fit_chunks(c, shape),
            None => crate::backend::default_chunks(shape, dtype),
        };
        if self.version == 3 {
            let mut codecs: Vec<Json> = vec![if dtype == DType::Str {
                json!({"name": "vlen-utf8"})
            } else {
                json!({"name": "bytes", "configuration": {"endian": "little"}})
            }];
            codecs.extend(v3_compressor(&opts.compression, dtype));
            let (grid, codecs) = match &opts.shards {
                Some(sh) if !shape.is_empty() => {
                    // Shards must hold whole chunks.
                    let sh: Vec<u64> = crate::backend::fit_chunks(sh, shape)
                        .iter()
                        .zip(&chunks)
                        .map(|(&s, &c)| s.max(c).div_ceil(c) * c)
                        .collect();
                    let sharding = json!({"name": "sharding_indexed", "configuration": {
                        "chunk_shape": chunks, "codecs": codecs,
                        "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
                        "index_location": "end"}});
                    (sh, vec![sharding])
                }
                _ => (chunks, codecs),
            };
            let meta = json!({
                "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": v3_dtype(dtype),
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": grid}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": fill(dtype), "codecs": codecs, "attributes": attrs,
            });
            self.put(&key(path, "zarr.json"), &meta)?;
        } else {
            let filters = if dtype == DType::Str {
                json!([{"id": "vlen-utf8"}])
            } else {
                Json::Null
            };
            let meta = json!({
                "zarr_format": 2, "shape": shape, "chunks": chunks, "dtype": v2_dtype(dtype),
                "compressor": v2_compressor(&opts.compression, dtype), "fill_value": if dtype == DType::Str { Json::Null } else { fill(dtype) },
                "order": "C", "filters": filters, "dimension_separator": ".",
            });
            self.put(&key(path, ".zarray"), &meta)?;
            self.put(&key(path, ".zattrs"), &Json::Object(attrs.clone()))?;
        }
        let a = Array::open(self.store.clone(), &node_path(path)).map_err(|e| {
            Error::internal(format!("zarrs rejected metadata written for /{path}: {e}"))
        })?;
        self.arrays.insert(path.to_string(), a);
        Ok(())
    }

    fn write(&mut self, path: &str, offset: &[u64], data: &DynArray) -> Result<()> {
        let a = self
            .arrays
            .get(path)
            .ok_or_else(|| Error::internal(format!("write to /{path} before create_array")))?;
        let ranges: Vec<Range<u64>> = offset
            .iter()
            .zip(data.shape())
            .map(|(&o, &n)| o..o + n as u64)
            .collect();
        if ranges.iter().any(|r| r.is_empty()) {
            return Ok(());
        }
        let subset = ArraySubset::new_with_ranges(&ranges);
        let _writing = crate::target::write_guard()?;
        let r = dyn_map!(data, v => {
            let v = v.as_standard_layout().into_owned();
            a.store_array_subset(&subset, v)
        });
        r.map_err(|e| Error::io(Location::new(&self.path, format!("/{path}")), e))
    }

    fn write_records(
        &mut self,
        path: &str,
        fields: &[(String, DynArray)],
        attrs: &Attrs,
    ) -> Result<()> {
        let loc = Location::new(&self.path, format!("/{path}"));
        let (layout, bytes) =
            records::encode(fields).map_err(|why| Error::unsupported(loc.clone(), why))?;
        let n = fields.first().map_or(0, |(_, a)| a.len()) as u64;
        // One chunk: record arrays are small summaries (`rank_genes_groups`).
        let chunk = n.max(1);
        let meta = if self.version == 3 {
            let (data_type, fill_value) = records::v3_dtype(&layout);
            json!({
                "zarr_format": 3, "node_type": "array", "shape": [n], "data_type": data_type,
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [chunk]}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": fill_value,
                "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                "attributes": attrs,
            })
        } else {
            json!({
                "zarr_format": 2, "shape": [n], "chunks": [chunk], "dtype": records::v2_dtype(&layout),
                "compressor": Json::Null, "fill_value": records::v2_fill(&layout), "order": "C",
                "filters": Json::Null, "dimension_separator": ".",
            })
        };
        if self.version == 3 {
            self.put(&key(path, "zarr.json"), &meta)?;
        } else {
            self.put(&key(path, ".zarray"), &meta)?;
            self.put(&key(path, ".zattrs"), &Json::Object(attrs.clone()))?;
        }
        if n == 0 || layout.width == 0 {
            return Ok(());
        }
        let _writing = crate::target::write_guard()?;
        let md = raw_metadata(meta, layout.width)
            .map_err(|e| Error::internal(format!("raw metadata for /{path}: {e}")))?;
        let a =
            Array::new_with_metadata(self.store.clone(), &node_path(path), md).map_err(|e| {
                Error::internal(format!("zarrs rejected raw metadata for /{path}: {e}"))
            })?;
        a.store_array_subset(
            &ArraySubset::new_with_ranges(&[0..n]),
            zarrs::array::ArrayBytes::new_flen(bytes),
        )
        .map_err(|e| Error::io(loc, e))
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        // Consolidated metadata, as anndata writes it, so a remote reader opens the store in
        // one request: v2 `.zmetadata`, v3 inline in the root `zarr.json` (zarr-python's
        // layout: every node's document under its path).
        let written = std::mem::take(&mut self.written);
        if self.version == 2 {
            let metadata: serde_json::Map<String, Json> = written.into_iter().collect();
            self.put(
                ".zmetadata",
                &json!({"metadata": metadata, "zarr_consolidated_format": 1}),
            )?;
        } else if let Some(mut root) = written.get("zarr.json").cloned() {
            let metadata: serde_json::Map<String, Json> = written
                .into_iter()
                .filter_map(|(k, v)| Some((k.strip_suffix("/zarr.json")?.to_string(), v)))
                .collect();
            root["consolidated_metadata"] =
                json!({"kind": "inline", "must_understand": false, "metadata": metadata});
            self.put("zarr.json", &root)?;
        }
        Ok(())
    }
}
