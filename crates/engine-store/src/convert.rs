//! Copying a dataset into another format or chunking, streaming matrices block by block.

use crate::backend::default_chunks;
use crate::backend::{
    ArrayOptions, Attrs, NodeKind, Store, StoreFormat, StoreWriter, StoredType, fit_chunks, join,
};
use crate::dataset::{Dataset, MATRIX_GROUPS};
use crate::encoding::{Encoding, encoding_of, read_frame, read_value};
use crate::matrix::{Matrix, MatrixLayout};
use crate::write::{self, AtomicTarget, SparseWriter, enc_attrs};
use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, Block, SparseFormat};
use std::path::Path;

/// What `convert` should produce.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    pub format: StoreFormat,
    /// Storage options for X and layers (chunk shape, shards, compression).
    pub matrix: ArrayOptions,
    /// Per-element storage options, over `matrix` (and the defaults of obsm and the rest).
    pub elements: crate::backend::ElementOptions,
    /// Bytes of matrix data to hold per streamed block.
    pub block_bytes: usize,
    pub overwrite: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            format: StoreFormat::H5ad,
            matrix: ArrayOptions::default(),
            elements: crate::backend::ElementOptions::default(),
            block_bytes: 64 << 20,
            overwrite: false,
        }
    }
}

/// What a conversion did.
#[derive(Debug, Clone, Default)]
pub struct ConvertReport {
    pub elements: usize,
    pub matrix_blocks: usize,
}

/// Converts `src` into `out` atomically.
///
/// # Errors
/// On unreadable source elements or write failures; nothing is left at `out` then.
pub fn convert(src: &Dataset, out: &Path, opts: &ConvertOptions) -> Result<ConvertReport> {
    src.check_structure().map_err(|e| e.in_file(src.path()))?;
    let target = AtomicTarget::new(out, opts.overwrite)?;
    let mut report = ConvertReport::default();
    let written = (|| {
        let mut w = write::create_store(opts.format, target.tmp_path())?;
        copy_dataset(src, w.as_mut(), opts, &mut report).map_err(|e| e.in_file(src.path()))?;
        w.finish()
    })();
    written.map_err(|e| target.blame(e))?;
    target.commit()?;
    Ok(report)
}

fn copy_dataset(
    src: &Dataset,
    w: &mut dyn StoreWriter,
    opts: &ConvertOptions,
    report: &mut ConvertReport,
) -> Result<()> {
    let store = src.store().as_ref();
    write::write_root(w)?;
    write::write_frame(w, "obs", &src.obs(None)?)?;
    write::write_frame(w, "var", &src.var(None)?)?;
    report.elements += 2;
    if let Some(x) = src.x()? {
        let o = opts.elements.for_element("X", &opts.matrix);
        copy_matrix(&x, w, "X", &o, opts.block_bytes, report)?;
    }
    for group in MATRIX_GROUPS {
        w.create_group(group, &enc_attrs("dict", "0.1.0"))?;
        if store.node(group)? == Some(NodeKind::Array) {
            // Pre-0.7 files keep obsm/varm as one compound dataset, a field per entry.
            for (name, values) in store.read_records(group)? {
                let path = join(group, &name);
                let o = opts.elements.for_element(&path, &ArrayOptions::default());
                write::write_array(w, &path, &values, &o)?;
            }
            continue;
        }
        for key in src.keys(group)? {
            let path = join(group, &key);
            let el_opts = if group == "layers" {
                opts.elements.for_element(&path, &opts.matrix)
            } else {
                opts.elements.for_element(&path, &ArrayOptions::default())
            };
            match encoding_of(store, &path)? {
                Encoding::Array | Encoding::Sparse(_) => copy_matrix(
                    &src.matrix(&path)?,
                    w,
                    &path,
                    &el_opts,
                    opts.block_bytes,
                    report,
                )?,
                _ => copy_element(store, w, &path)?,
            }
        }
    }
    if store.node("raw")?.is_some() {
        w.create_group("raw", &enc_attrs("raw", "0.1.0"))?;
        if store.node("raw/X")?.is_some() {
            copy_matrix(
                &Matrix::open(src.store().clone(), "raw/X")?,
                w,
                "raw/X",
                &opts.elements.for_element("raw/X", &opts.matrix),
                opts.block_bytes,
                report,
            )?;
        }
        if store.node("raw/var")?.is_some() {
            write::write_frame(w, "raw/var", &read_frame(store, "raw/var", None)?)?;
        }
        if store.node("raw/varm")?.is_some() {
            copy_element(store, w, "raw/varm")?;
        }
    }
    w.create_group("uns", &enc_attrs("dict", "0.1.0"))?;
    let consumed = legacy_category_keys(store)?;
    for key in src.keys("uns")? {
        if !consumed.contains(&key) {
            copy_element(store, w, &join("uns", &key))?;
        }
    }
    Ok(())
}

/// `uns/<column>_categories` entries that pre-0.7 files use for categorical obs/var columns;
/// reading turns them into categoricals, so they are not copied again (as anndata does).
fn legacy_category_keys(store: &dyn Store) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for axis in ["obs", "var"] {
        if store.node(axis)? == Some(NodeKind::Array) {
            for (name, _) in store.read_records(axis)? {
                let key = format!("{name}_categories");
                if store.node(&join("uns", &key))?.is_some() {
                    out.push(key);
                }
            }
        }
    }
    Ok(out)
}

/// Copies a non-matrix element by decoding and re-encoding it; groups recurse so one
/// unsupported member does not stop its siblings, and unsupported encodings are copied
/// verbatim so nothing anndata sees goes missing.
fn copy_element(store: &dyn Store, w: &mut dyn StoreWriter, path: &str) -> Result<()> {
    match encoding_of(store, path)? {
        Encoding::Dict => {
            w.create_group(path, &enc_attrs("dict", "0.1.0"))?;
            for c in store.children(path)? {
                copy_element(store, w, &join(path, &c))?;
            }
            Ok(())
        }
        Encoding::Unknown { .. } => copy_verbatim(store, w, path, path),
        _ => match read_value(store, path) {
            Ok(v) => write::write_value(w, path, &v, &ArrayOptions::default()),
            // A value of a type the engine cannot decode (complex numbers, say) is still
            // copied as stored; if that fails too, the first reason is the one to give.
            Err(e) if e.kind() == "unsupported" => {
                copy_verbatim(store, w, path, path).map_err(|_| e)
            }
            Err(e) => Err(e),
        },
    }
}

/// Copies the groups, arrays and attributes at `path` in `store` as they are, to `to`.
///
/// # Errors
/// When an array's element type is one the engine cannot hold (neither plain nor records).
pub fn copy_verbatim(
    store: &dyn Store,
    w: &mut dyn StoreWriter,
    path: &str,
    to: &str,
) -> Result<()> {
    let attrs: Attrs = store.attributes(path)?;
    match store.node(path)? {
        Some(NodeKind::Group) => {
            w.create_group(to, &attrs)?;
            for c in store.children(path)? {
                copy_verbatim(store, w, &join(path, &c), &join(to, &c))?;
            }
            Ok(())
        }
        Some(NodeKind::Array) => match store.array_info(path)?.dtype {
            StoredType::Compound(_) => w.write_records(to, &store.read_records(path)?, &attrs),
            _ => {
                let data = store.read_all(path)?;
                w.write_array(to, &data, &ArrayOptions::default(), &attrs)
            }
        },
        None => Ok(()),
    }
}

/// Streams a matrix into `w` by blocks along its major axis (rows for dense and CSR,
/// columns for CSC), so memory holds one block at a time.
///
/// # Errors
/// On read or write failures.
pub fn copy_matrix(
    m: &Matrix,
    w: &mut dyn StoreWriter,
    path: &str,
    opts: &ArrayOptions,
    block_bytes: usize,
    report: &mut ConvertReport,
) -> Result<()> {
    let shape = m.shape();
    let dtype = m.dtype();
    match m.layout() {
        MatrixLayout::Dense(_) => {
            let shape64: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
            let mut o = opts.clone();
            let chunks = o
                .chunks
                .clone()
                .map(|c| fit_chunks(&c, &shape64))
                .unwrap_or_else(|| default_chunks(&shape64, dtype));
            o.chunks = Some(chunks.clone());
            if let Some(s) = &o.shards {
                o.shards = Some(fit_chunks(s, &shape64));
            }
            w.create_array(
                path,
                dtype,
                &shape64,
                &o,
                &write::enc_attrs("array", "0.2.0"),
            )?;
            let row_bytes = (shape[1..].iter().product::<usize>().max(1) * dtype.size()).max(1);
            // Whole storage chunks (whole shards when sharded) per block, so no chunk or
            // shard is read back and rewritten.
            let chunk_rows = o
                .shards
                .as_ref()
                .map_or(chunks[0], |s| s[0].div_ceil(chunks[0]) * chunks[0])
                as usize;
            let rows_per = ((block_bytes / row_bytes).max(1))
                .div_ceil(chunk_rows)
                .max(1)
                * chunk_rows;
            let n = shape[0];
            let cols = AxisSelection::all(m.n_cols());
            let mut start = 0;
            while start < n {
                let end = (start + rows_per).min(n);
                let block = m.read_block(&AxisSelection::range(start..end), &cols)?;
                let Block::Dense(a) = block else {
                    return Err(Error::internal("dense matrix returned a sparse block"));
                };
                let mut offset = vec![start as u64];
                offset.extend(std::iter::repeat_n(0, shape.len() - 1));
                w.write(path, &offset, &a)?;
                report.matrix_blocks += 1;
                start = end;
            }
        }
        MatrixLayout::Sparse(info) => {
            let mut s =
                SparseWriter::create(w, path, info.format, info.shape, dtype, info.nnz, opts)?;
            let (n_major, n_minor) = match info.format {
                SparseFormat::Csr => (info.shape[0], info.shape[1]),
                SparseFormat::Csc => (info.shape[1], info.shape[0]),
            };
            let avg = (info.nnz as usize / n_major.max(1)).max(1) * (dtype.size() + 4);
            let per = (block_bytes / avg).max(1);
            let mut start = 0;
            while start < n_major {
                let end = (start + per).min(n_major);
                let (rows, cols) = match info.format {
                    SparseFormat::Csr => (
                        AxisSelection::range(start..end),
                        AxisSelection::all(n_minor),
                    ),
                    SparseFormat::Csc => (
                        AxisSelection::all(n_minor),
                        AxisSelection::range(start..end),
                    ),
                };
                let Block::Sparse(b) = m.read_block(&rows, &cols)? else {
                    return Err(Error::internal("sparse matrix returned a dense block"));
                };
                s.append(w, &b)?;
                report.matrix_blocks += 1;
                start = end;
            }
            s.finish(w)?;
        }
    }
    report.elements += 1;
    Ok(())
}
