//! Writing AnnData elements in the encodings Python anndata reads, atomically.
//!
//! Every writer works at a temporary sibling path ([`crate::target`]); it is put in place only
//! after everything was written and closed, so a failed or interrupted write leaves nothing
//! at the target path.

use crate::backend::{ArrayOptions, Attrs, StoreFormat, StoreWriter, default_chunks, join};
use crate::value::{Column, Frame, Value};
use crate::{h5, zarr};
use engine_common::{Error, Result};
use engine_matrix::{Compressed, DType, DynArray, SparseFormat};
use serde_json::{Value as Json, json};
use std::path::Path;

pub use crate::target::{AtomicTarget, remove_temporaries};

/// Creates a store writer of `format` at `path` (normally an [`AtomicTarget::tmp_path`]).
///
/// # Errors
/// When the file or directory cannot be created.
pub fn create_store(format: StoreFormat, path: &Path) -> Result<Box<dyn StoreWriter>> {
    Ok(match format {
        StoreFormat::H5ad => Box::new(h5::H5Writer::create(path)?),
        StoreFormat::Zarr2 | StoreFormat::Zarr3 => {
            Box::new(zarr::ZarrWriter::create(path, format)?)
        }
        StoreFormat::Tenx => {
            return Err(Error::usage(
                "10x formats are read only: write h5ad, zarr2 or zarr3",
            ));
        }
    })
}

/// Attributes naming an encoding.
pub fn enc_attrs(kind: &str, version: &str) -> Attrs {
    let mut a = Attrs::new();
    a.insert("encoding-type".into(), Json::String(kind.into()));
    a.insert("encoding-version".into(), Json::String(version.into()));
    a
}

/// The version anndata writes for each encoding.
fn version_of(kind: &str) -> &'static str {
    match kind {
        "array" | "string-array" | "numeric-scalar" | "string" | "categorical" | "dataframe"
        | "rec-array" => "0.2.0",
        _ => "0.1.0",
    }
}

/// Writes the root group of an AnnData store.
///
/// # Errors
/// On write failures.
pub fn write_root(w: &mut dyn StoreWriter) -> Result<()> {
    w.create_group("", &enc_attrs("anndata", "0.1.0"))
}

/// Writes a dense array (`array` or `string-array`).
///
/// # Errors
/// On write failures.
pub fn write_array(
    w: &mut dyn StoreWriter,
    path: &str,
    a: &DynArray,
    opts: &ArrayOptions,
) -> Result<()> {
    let kind = if a.dtype() == DType::Str {
        "string-array"
    } else {
        "array"
    };
    w.write_array(path, a, opts, &enc_attrs(kind, version_of(kind)))
}

/// Writes a CSR/CSC matrix.
///
/// # Errors
/// On write failures.
pub fn write_sparse(
    w: &mut dyn StoreWriter,
    path: &str,
    m: &Compressed,
    opts: &ArrayOptions,
) -> Result<()> {
    let mut s = SparseWriter::create(
        w,
        path,
        m.format,
        m.shape,
        m.data.dtype(),
        m.nnz() as u64,
        opts,
    )?;
    s.append(w, m)?;
    s.finish(w)
}

/// Streams a CSR (CSC) matrix to storage one row (column) block at a time. The number of
/// stored values must be known up front so `data` and `indices` can be created at full size.
#[derive(Debug)]
pub struct SparseWriter {
    path: String,
    format: SparseFormat,
    n_major: usize,
    nnz: u64,
    major_done: usize,
    nnz_done: u64,
    indptr: Vec<u64>,
    wide_indices: bool,
    /// Values written at a time: [`WRITE_PIECE`], or whole shards of `data` and `indices`
    /// (a piece ending inside a shard would make the next one rewrite it).
    piece: u64,
}

impl SparseWriter {
    /// Creates the group and its arrays.
    ///
    /// # Errors
    /// On write failures.
    pub fn create(
        w: &mut dyn StoreWriter,
        path: &str,
        format: SparseFormat,
        shape: [usize; 2],
        dtype: DType,
        nnz: u64,
        opts: &ArrayOptions,
    ) -> Result<SparseWriter> {
        let mut attrs = enc_attrs(format.encoding(), "0.1.0");
        attrs.insert("shape".into(), json!([shape[0], shape[1]]));
        w.create_group(path, &attrs)?;
        let n_major = if format == SparseFormat::Csr {
            shape[0]
        } else {
            shape[1]
        };
        let n_minor = if format == SparseFormat::Csr {
            shape[1]
        } else {
            shape[0]
        };
        // scipy's choice: 32-bit indices while they fit.
        let idx_t = if n_minor < i32::MAX as usize {
            DType::I32
        } else {
            DType::I64
        };
        let ptr_t = if nnz < i32::MAX as u64 {
            DType::I32
        } else {
            DType::I64
        };
        // The member arrays are 1-D: a 2-D chunk request (rows, cols) becomes the number of
        // stored values it would cover at this matrix's density; `0` (all) means the axis.
        let density = nnz as f64 / (shape[0].max(1) as f64 * shape[1].max(1) as f64);
        let per_chunk = |req: &[u64]| -> u64 {
            let r = if req.first().copied().unwrap_or(0) == 0 {
                shape[0] as u64
            } else {
                req[0]
            };
            let c = if req.get(1).copied().unwrap_or(0) == 0 {
                shape[1] as u64
            } else {
                req[1]
            };
            ((r as f64 * c as f64 * density) as u64).max(1024)
        };
        let one_d = |len: u64, dtype: DType| {
            let chunk = opts
                .chunks
                .as_deref()
                .map_or_else(|| default_chunks(&[len], dtype)[0], per_chunk);
            ArrayOptions {
                chunks: Some(vec![chunk]),
                shards: opts
                    .shards
                    .as_deref()
                    .map(|s| vec![per_chunk(s).max(chunk).div_ceil(chunk) * chunk]),
                compression: opts.compression.clone(),
            }
        };
        let piece = match one_d(nnz, dtype).shards.as_deref() {
            Some([shard]) if *shard > 0 => shard * (WRITE_PIECE as u64).div_ceil(*shard),
            _ => WRITE_PIECE as u64,
        };
        w.create_array(
            &join(path, "data"),
            dtype,
            &[nnz],
            &one_d(nnz, dtype),
            &Attrs::new(),
        )?;
        w.create_array(
            &join(path, "indices"),
            idx_t,
            &[nnz],
            &one_d(nnz, idx_t),
            &Attrs::new(),
        )?;
        let ptr_len = n_major as u64 + 1;
        w.create_array(
            &join(path, "indptr"),
            ptr_t,
            &[ptr_len],
            &one_d(ptr_len, ptr_t),
            &Attrs::new(),
        )?;
        Ok(SparseWriter {
            path: path.to_string(),
            format,
            n_major,
            nnz,
            major_done: 0,
            nnz_done: 0,
            indptr: vec![0],
            wide_indices: idx_t == DType::I64,
            piece,
        })
    }

    /// Appends the next block along the major axis.
    ///
    /// # Errors
    /// When the block has the wrong format or overruns the declared size.
    pub fn append(&mut self, w: &mut dyn StoreWriter, block: &Compressed) -> Result<()> {
        if block.format != self.format {
            return Err(Error::internal(
                "sparse writer got a block of the other format",
            ));
        }
        let n = block.nnz() as u64;
        if self.nnz_done + n > self.nnz || self.major_done + block.n_major() > self.n_major {
            return Err(Error::internal(format!(
                "sparse writer for {} overran its declared size",
                self.path
            )));
        }
        // In pieces: the indices are converted to the stored integer type, and a whole graph
        // converted at once would be a second copy of it.
        let total = block.indices.len();
        let mut start = 0;
        while start < total {
            // Up to the next piece boundary of the whole array.
            let at_abs = self.nnz_done + start as u64;
            let next = (at_abs / self.piece + 1) * self.piece;
            let end = ((next - self.nnz_done) as usize).min(total);
            let at = [self.nnz_done + start as u64];
            let indices = index_array(&block.indices[start..end], self.wide_indices);
            w.write(&join(&self.path, "indices"), &at, &indices)?;
            if start == 0 && end == total {
                w.write(&join(&self.path, "data"), &at, &block.data)?;
            } else {
                let piece = engine_matrix::dyn_rewrap!(&block.data, a => a
                    .slice_axis(ndarray::Axis(0), ndarray::Slice::from(start..end))
                    .to_owned());
                w.write(&join(&self.path, "data"), &at, &piece)?;
            }
            start = end;
        }
        self.indptr
            .extend(block.indptr[1..].iter().map(|&p| p + self.nnz_done));
        self.nnz_done += n;
        self.major_done += block.n_major();
        Ok(())
    }

    /// Writes `indptr` and checks every row arrived.
    ///
    /// # Errors
    /// When fewer rows or values arrived than declared.
    pub fn finish(self, w: &mut dyn StoreWriter) -> Result<()> {
        if self.major_done != self.n_major || self.nnz_done != self.nnz {
            return Err(Error::internal(format!(
                "sparse writer for {} got {} of {} rows and {} of {} values",
                self.path, self.major_done, self.n_major, self.nnz_done, self.nnz
            )));
        }
        let ptr = if self.nnz < i32::MAX as u64 {
            DynArray::I32(
                ndarray::Array1::from_iter(self.indptr.iter().map(|&p| p as i32)).into_dyn(),
            )
        } else {
            DynArray::I64(
                ndarray::Array1::from_iter(self.indptr.iter().map(|&p| p as i64)).into_dyn(),
            )
        };
        w.write(&join(&self.path, "indptr"), &[0], &ptr)
    }
}

/// Stored values a sparse write converts at a time (4 MiB of 32-bit indices).
pub const WRITE_PIECE: usize = 1 << 20;

/// Indices as the 32-bit integers scipy and anndata write.
fn index_array(indices: &[u32], wide: bool) -> DynArray {
    if !wide {
        DynArray::I32(ndarray::Array1::from_iter(indices.iter().map(|&i| i as i32)).into_dyn())
    } else {
        DynArray::I64(ndarray::Array1::from_iter(indices.iter().map(|&i| i as i64)).into_dyn())
    }
}

/// Writes a dataframe with its columns.
///
/// # Errors
/// On write failures.
pub fn write_frame(w: &mut dyn StoreWriter, path: &str, f: &Frame) -> Result<()> {
    let mut attrs = enc_attrs("dataframe", "0.2.0");
    attrs.insert("_index".into(), Json::String(f.index_name.clone()));
    attrs.insert(
        "column-order".into(),
        Json::Array(
            f.columns
                .iter()
                .map(|(n, _)| Json::String(n.clone()))
                .collect(),
        ),
    );
    // anndata lets the index share its name with a column holding the same values (one
    // element then serves both, as it writes them); different values it refuses.
    match f.columns.iter().find(|(n, _)| *n == f.index_name) {
        Some((_, col)) if *col != f.index => {
            return Err(Error::usage(format!(
                "{path}: the index is named `{}` like a column with different values; anndata refuses such a dataframe: rename one",
                f.index_name
            )));
        }
        Some(_) => w.create_group(path, &attrs)?,
        None => {
            w.create_group(path, &attrs)?;
            write_column(w, &join(path, &f.index_name), &f.index)?;
        }
    }
    for (name, col) in &f.columns {
        write_column(w, &join(path, name), col)?;
    }
    Ok(())
}

/// Writes one column in its encoding.
///
/// # Errors
/// On write failures.
pub fn write_column(w: &mut dyn StoreWriter, path: &str, c: &Column) -> Result<()> {
    let opts = ArrayOptions::default();
    match c {
        Column::Plain(a) => write_array(w, path, a, &opts),
        Column::Categorical {
            codes,
            categories,
            ordered,
        } => {
            let mut attrs = enc_attrs("categorical", "0.2.0");
            attrs.insert("ordered".into(), Json::Bool(*ordered));
            w.create_group(path, &attrs)?;
            write_array(w, &join(path, "codes"), codes, &opts)?;
            write_array(w, &join(path, "categories"), categories, &opts)
        }
        Column::Nullable {
            values,
            mask,
            na_value,
        } => {
            let kind = c.encoding();
            let mut attrs = enc_attrs(kind, "0.1.0");
            if let Some(na) = na_value {
                attrs.insert("na-value".into(), Json::String(na.clone()));
            }
            w.create_group(path, &attrs)?;
            write_array(w, &join(path, "values"), values, &opts)?;
            let m = DynArray::Bool(ndarray::Array1::from(mask.clone()).into_dyn());
            write_array(w, &join(path, "mask"), &m, &opts)
        }
    }
}

/// Writes any value in its encoding.
///
/// # Errors
/// On write failures.
pub fn write_value(
    w: &mut dyn StoreWriter,
    path: &str,
    v: &Value,
    opts: &ArrayOptions,
) -> Result<()> {
    match v {
        Value::Array(a) => write_array(w, path, a, opts),
        Value::Sparse(m) => write_sparse(w, path, m, opts),
        Value::Frame(f) => write_frame(w, path, f),
        Value::Column(c) => write_column(w, path, c),
        Value::Dict(map) => {
            w.create_group(path, &enc_attrs("dict", "0.1.0"))?;
            for (k, child) in map {
                write_value(w, &join(path, k), child, &ArrayOptions::default())?;
            }
            Ok(())
        }
        Value::Scalar(a) => w.write_array(
            path,
            a,
            &ArrayOptions::default(),
            &enc_attrs("numeric-scalar", "0.2.0"),
        ),
        Value::Null => w.create_null(path, &enc_attrs("null", "0.1.0")),
        Value::Records(fields) => w.write_records(path, fields, &enc_attrs("rec-array", "0.2.0")),
        Value::String(s) => w.write_array(
            path,
            &crate::encoding::str_scalar(s),
            &ArrayOptions::default(),
            &enc_attrs("string", "0.2.0"),
        ),
    }
}
