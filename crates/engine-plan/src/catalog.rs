//! What planning reads of a file: its metadata, never its data. A [`Catalog`] describes a
//! dataset by path; [`StoreCatalog`] reads the store's metadata: X's encoding, shape, dtype,
//! chunks and compression, the obs/var column names and types (from their encodings, not
//! their values; legacy compound frames are read whole), the obsm/varm/obsp keys with their
//! widths, the uns keys, and, for CSR, the row pointers (so EXPLAIN can count what a
//! selection reads). `where` predicates over a file's columns are the one exception: the
//! SQL engine reads the columns they name.

use crate::plan::{ColType, Schema, Storage, XEncoding};
use arrow_schema::DataType;
use engine_common::{Error, Result};
use engine_matrix::SparseFormat;
use engine_store::ReadOptions;
use engine_store::backend::StoredType;
use std::sync::Arc;

/// A dataset as planning sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// The scan's schema: shape, X's type, columns and element keys.
    pub schema: Schema,
    pub storage: Storage,
}

/// Answers the planner's questions about datasets.
pub trait Catalog: std::fmt::Debug + Send + Sync {
    /// # Errors
    /// When the dataset cannot be opened, has no X or its metadata is damaged.
    /// `options` says how a 10x input is read (genome, Gene Expression only).
    fn describe(&self, path: &str, options: &ReadOptions) -> Result<SourceInfo>;

    /// The dataset's gene names (its var index), so a step that names genes is checked
    /// before the run; `None` when they cannot be read.
    fn var_names(&self, _path: &str, _options: &ReadOptions) -> Option<Vec<String>> {
        None
    }

    /// A string stored at `element` (e.g. `uns/rank_genes_groups/params/groupby`), so a step
    /// can default to what an earlier tool recorded; `None` when there is none.
    fn stored_string(&self, _path: &str, _options: &ReadOptions, _element: &str) -> Option<String> {
        None
    }
}

/// Datasets described from their stores' metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreCatalog;

impl Catalog for StoreCatalog {
    fn describe(&self, path: &str, options: &ReadOptions) -> Result<SourceInfo> {
        let ds = engine_store::Dataset::open_with(path, options)?;
        let x = ds
            .x()?
            .ok_or_else(|| Error::usage(format!("{path}: the dataset has no X")))?;
        type Columns = (String, Vec<(String, ColType)>);
        let columns = |frame: &str| -> Result<Columns> {
            let schema = engine_store::arrow::frame_schema(ds.store().as_ref(), frame)?;
            // The first field is the index.
            let index = schema.fields().first().map(|f| f.name().clone());
            Ok((
                index.unwrap_or_default(),
                schema
                    .fields()
                    .iter()
                    .skip(1)
                    .map(|f| (f.name().clone(), col_type(f.data_type())))
                    .collect(),
            ))
        };
        let (obs_index, obs) = columns("obs")?;
        let (var_index, var) = columns("var")?;
        // Matrices only: obsm dataframes are not read.
        let matrices = |group: &str| -> Vec<(String, usize)> {
            ds.keys(group)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|k| {
                    let m = ds.matrix(&format!("{group}/{k}")).ok()?;
                    Some((k, m.n_cols()))
                })
                .collect()
        };
        let obsm = matrices("obsm");
        let varm = matrices("varm");
        let obsp = matrices("obsp").into_iter().map(|(k, _)| k).collect();
        let uns = ds.keys("uns")?;
        let storage = storage_of(&x)?;
        let schema = Schema {
            n_obs: ds.n_obs(),
            n_vars: ds.n_vars(),
            x_dtype: Some(x.dtype()),
            x_sparse: storage.encoding != XEncoding::Dense,
            obs_index,
            var_index,
            obs,
            var,
            obsm,
            varm,
            obsp,
            uns,
            ..Default::default()
        };
        Ok(SourceInfo { schema, storage })
    }

    fn var_names(&self, path: &str, options: &ReadOptions) -> Option<Vec<String>> {
        let var = engine_store::Dataset::open_with(path, options)
            .ok()?
            .var(Some(&[]))
            .ok()?;
        Some((0..var.n_rows()).map(|i| var.index.render(i)).collect())
    }

    fn stored_string(&self, path: &str, options: &ReadOptions, element: &str) -> Option<String> {
        let ds = engine_store::Dataset::open_with(path, options).ok()?;
        if !ds.has(element).ok()? {
            return None;
        }
        match engine_store::encoding::read_value(ds.store().as_ref(), element).ok()? {
            engine_store::Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// A column's plan type from its Arrow type (categoricals are dictionaries).
fn col_type(t: &DataType) -> ColType {
    match t {
        DataType::Dictionary(..) => ColType::Category,
        DataType::Boolean => ColType::Bool,
        DataType::Float16 | DataType::Float32 | DataType::Float64 => ColType::Float,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColType::Str,
        _ => ColType::Int,
    }
}

/// What the planner records about a file's X.
fn storage_of(x: &engine_store::Matrix) -> Result<Storage> {
    let values = x.value_info()?;
    let index = x.index_info()?;
    let bytes = |t: &StoredType| match t {
        StoredType::Plain(d) => d.size(),
        _ => 8,
    };
    let (encoding, indptr) = match x.sparse_format() {
        None => (XEncoding::Dense, None),
        Some(SparseFormat::Csr) => (XEncoding::Csr, x.indptr()?.map(Arc::new)),
        Some(SparseFormat::Csc) => (XEncoding::Csc, x.indptr()?.map(Arc::new)),
    };
    Ok(Storage {
        encoding,
        shape: [x.n_rows(), x.n_cols()],
        dtype: x.dtype(),
        value_bytes: bytes(&values.dtype),
        index_bytes: index.as_ref().map_or(0, |i| bytes(&i.dtype)),
        chunks: values.chunks.clone(),
        compression: values.compression.clone(),
        indptr,
        shards: values.shards.clone(),
        remote: x.is_remote(),
    })
}
