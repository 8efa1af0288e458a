//! The AnnData on-disk specification (`encoding-type` / `encoding-version`), for reading.
//!
//! Everything here works through the [`Store`] trait, so the h5ad and zarr backends share one
//! interpretation of the spec. Files written before the spec (anndata < 0.7: compound obs/var
//! tables, categories in `uns`, `h5sparse_format` matrices) are recognised here too.

use crate::backend::{NodeKind, Store, StoredType, join};
use crate::value::{Column, Frame, Value};
use engine_common::{Error, Location, Result};
use engine_matrix::{Compressed, DType, DynArray, SparseFormat};
use ndarray::{Array1, ArrayD, IxDyn};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// An element's encoding, from its attributes (or its shape, for pre-spec files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encoding {
    AnnData,
    Raw,
    Array,
    StringArray,
    Sparse(SparseFormat),
    DataFrame,
    Categorical,
    NullableInteger,
    NullableBoolean,
    NullableString,
    Dict,
    NumericScalar,
    String,
    /// `null`: Python's `None` (an HDF5 dataset without a dataspace, a 0-d zarr array).
    Null,
    /// Pre-spec obs/var: one structured (compound) array.
    LegacyCompoundFrame,
    /// An obs/var group without encoding attributes: anndata reads it as a dict of columns
    /// (in name order, `_index` among them) with row numbers as the index.
    DictFrame,
    /// `rec-array`: a structured array (`rank_genes_groups` names, scores, …); also any
    /// structured array without encoding attributes outside obs/var (pre-0.7 `uns`).
    RecArray,
    /// An encoding this engine does not read, with its type and version.
    Unknown {
        kind: String,
        version: String,
    },
}

impl Encoding {
    pub fn name(&self) -> String {
        match self {
            Encoding::AnnData => "anndata".into(),
            Encoding::Raw => "raw".into(),
            Encoding::Array => "array".into(),
            Encoding::StringArray => "string-array".into(),
            Encoding::Sparse(f) => f.encoding().into(),
            Encoding::DataFrame => "dataframe".into(),
            Encoding::Categorical => "categorical".into(),
            Encoding::NullableInteger => "nullable-integer".into(),
            Encoding::NullableBoolean => "nullable-boolean".into(),
            Encoding::NullableString => "nullable-string-array".into(),
            Encoding::Dict => "dict".into(),
            Encoding::NumericScalar => "numeric-scalar".into(),
            Encoding::String => "string".into(),
            Encoding::Null => "null".into(),
            Encoding::LegacyCompoundFrame => "dataframe (pre-0.7 compound)".into(),
            Encoding::RecArray => "rec-array".into(),
            Encoding::DictFrame => "dataframe (a group without encoding attributes)".into(),
            Encoding::Unknown { kind, version } => format!("{kind} {version} (unsupported)"),
        }
    }
}

/// Versions of each encoding this reader understands, from the anndata IO spec.
fn supported_version(kind: &str, version: &str) -> bool {
    match kind {
        "array" | "string-array" | "numeric-scalar" | "string" | "categorical" | "rec-array" => {
            matches!(version, "0.2.0")
        }
        "dataframe" => matches!(version, "0.2.0" | "0.1.0"),
        "csr_matrix"
        | "csc_matrix"
        | "dict"
        | "anndata"
        | "raw"
        | "nullable-integer"
        | "nullable-boolean"
        | "nullable-string-array"
        | "null" => matches!(version, "0.1.0"),
        _ => false,
    }
}

fn loc(store: &dyn Store, path: &str) -> Location {
    Location::new(store.path(), format!("/{path}"))
}

/// A format error at an element of a store.
pub fn bad(store: &dyn Store, path: &str, msg: impl Into<String>) -> Error {
    Error::format(loc(store, path), msg)
}

fn attr_str<'a>(attrs: &'a serde_json::Map<String, Json>, key: &str) -> Option<&'a str> {
    attrs.get(key).and_then(|v| v.as_str())
}

/// Where pre-0.7 files keep dataframes as one structured array.
const LEGACY_FRAMES: [&str; 3] = ["obs", "var", "raw/var"];

/// Works out the encoding of the element at `path`.
///
/// # Errors
/// When nothing is at `path` or the store fails.
pub fn encoding_of(store: &dyn Store, path: &str) -> Result<Encoding> {
    let kind = store
        .node(path)?
        .ok_or_else(|| bad(store, path, "no such element"))?;
    let attrs = store.attributes(path)?;
    if let Some(t) = attr_str(&attrs, "encoding-type") {
        let version = attr_str(&attrs, "encoding-version")
            .unwrap_or("")
            .to_string();
        if !supported_version(t, &version) {
            return Ok(Encoding::Unknown {
                kind: t.to_string(),
                version,
            });
        }
        return Ok(match t {
            "anndata" => Encoding::AnnData,
            "raw" => Encoding::Raw,
            "array" => Encoding::Array,
            "string-array" => Encoding::StringArray,
            "csr_matrix" => Encoding::Sparse(SparseFormat::Csr),
            "csc_matrix" => Encoding::Sparse(SparseFormat::Csc),
            "dataframe" => Encoding::DataFrame,
            "categorical" => Encoding::Categorical,
            "nullable-integer" => Encoding::NullableInteger,
            "nullable-boolean" => Encoding::NullableBoolean,
            "nullable-string-array" => Encoding::NullableString,
            "dict" => Encoding::Dict,
            "numeric-scalar" => Encoding::NumericScalar,
            "string" => Encoding::String,
            "null" => Encoding::Null,
            "rec-array" => Encoding::RecArray,
            _ => Encoding::Unknown {
                kind: t.to_string(),
                version,
            },
        });
    }
    // Pre-spec files: infer from the layout.
    Ok(match kind {
        NodeKind::Group => match attr_str(&attrs, "h5sparse_format") {
            Some("csr") => Encoding::Sparse(SparseFormat::Csr),
            Some("csc") => Encoding::Sparse(SparseFormat::Csc),
            Some(other) => Encoding::Unknown {
                kind: format!("h5sparse_format={other}"),
                version: String::new(),
            },
            None if path.is_empty() => Encoding::AnnData,
            None if path == "raw" => Encoding::Raw,
            None if LEGACY_FRAMES.contains(&path) => Encoding::DictFrame,
            None => Encoding::Dict,
        },
        NodeKind::Array => {
            let info = store.array_info(path)?;
            match info.dtype {
                // anndata < 0.7 stored obs, var and raw.var as structured arrays; elsewhere
                // (uns) a structured array is a record array.
                StoredType::Compound(_) if LEGACY_FRAMES.contains(&path) => {
                    Encoding::LegacyCompoundFrame
                }
                StoredType::Compound(_) => Encoding::RecArray,
                StoredType::Plain(DType::Str) if info.shape.is_empty() => Encoding::String,
                StoredType::Plain(DType::Str) => Encoding::StringArray,
                StoredType::Plain(_) if info.shape.is_empty() => Encoding::NumericScalar,
                _ => Encoding::Array,
            }
        }
    })
}

/// Shape and type of a sparse matrix group, without reading its data.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseInfo {
    pub format: SparseFormat,
    pub shape: [usize; 2],
    pub dtype: DType,
    pub nnz: u64,
}

/// Reads the metadata of a `csr_matrix` / `csc_matrix` (or `h5sparse_format`) group.
///
/// # Errors
/// When the shape attribute or the member arrays are missing or inconsistent.
pub fn sparse_info(store: &dyn Store, path: &str, format: SparseFormat) -> Result<SparseInfo> {
    let attrs = store.attributes(path)?;
    let shape_json = attrs.get("shape").or_else(|| attrs.get("h5sparse_shape"));
    let shape: Vec<usize> = shape_json
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64().map(|n| n as usize))
                .collect()
        })
        .unwrap_or_default();
    if shape.len() != 2 {
        return Err(bad(
            store,
            path,
            "sparse matrix has no valid `shape` attribute",
        ));
    }
    for m in ["data", "indices", "indptr"] {
        if store.node(&join(path, m))? != Some(NodeKind::Array) {
            return Err(bad(
                store,
                path,
                format!("sparse matrix is missing its `{m}` array"),
            ));
        }
    }
    let data = store.array_info(&join(path, "data"))?;
    let indices = store.array_info(&join(path, "indices"))?;
    let indptr = store.array_info(&join(path, "indptr"))?;
    let dtype = match data.dtype {
        StoredType::Plain(d) if d.is_numeric() => d,
        other => {
            return Err(bad(
                store,
                &join(path, "data"),
                format!("sparse data has type {other}, expected numbers"),
            ));
        }
    };
    let n_major = if format == SparseFormat::Csr {
        shape[0]
    } else {
        shape[1]
    };
    if indptr.shape != [n_major as u64 + 1] {
        return Err(bad(
            store,
            &join(path, "indptr"),
            format!(
                "indptr has shape {:?}, expected [{}] for a {} of shape {:?}",
                indptr.shape,
                n_major + 1,
                format.encoding(),
                shape
            ),
        ));
    }
    if data.shape.len() != 1 || indices.shape != data.shape {
        return Err(bad(
            store,
            path,
            format!(
                "data has shape {:?} but indices has shape {:?}",
                data.shape, indices.shape
            ),
        ));
    }
    Ok(SparseInfo {
        format,
        shape: [shape[0], shape[1]],
        dtype,
        nnz: data.shape[0],
    })
}

/// Converts stored integer positions (indptr) to `u64`, rejecting negatives.
pub fn to_indptr(store: &dyn Store, path: &str, a: &DynArray) -> Result<Vec<u64>> {
    let v = a.to_i64_vec().ok_or_else(|| {
        bad(
            store,
            path,
            format!("indptr has type {}, expected integers", a.dtype()),
        )
    })?;
    v.into_iter()
        .map(|x| {
            u64::try_from(x)
                .map_err(|_| bad(store, path, format!("indptr holds a negative value {x}")))
        })
        .collect()
}

/// Converts stored indices to `u32`, rejecting negatives and values past `bound`.
pub fn to_indices(store: &dyn Store, path: &str, a: &DynArray, bound: usize) -> Result<Vec<u32>> {
    // The common stored types in one pass over a contiguous slice: every sparse read goes
    // through here.
    macro_rules! direct {
        ($s:expr) => {{
            let s = $s;
            if let Some(k) = s
                .iter()
                .position(|&x| i64::from(x) < 0 || i64::from(x) as u64 >= bound as u64)
            {
                return Err(bad(
                    store,
                    path,
                    format!(
                        "index {} at position {k} is out of range for an axis of length {bound}",
                        s[k]
                    ),
                ));
            }
            return Ok(s.iter().map(|&x| x as u32).collect());
        }};
    }
    match a {
        DynArray::I32(x) if x.as_slice().is_some() => direct!(x.as_slice().unwrap_or_default()),
        DynArray::I64(x) if x.as_slice().is_some() => direct!(x.as_slice().unwrap_or_default()),
        DynArray::U32(x) if x.as_slice().is_some() => direct!(x.as_slice().unwrap_or_default()),
        DynArray::U16(x) if x.as_slice().is_some() => direct!(x.as_slice().unwrap_or_default()),
        DynArray::U8(x) if x.as_slice().is_some() => direct!(x.as_slice().unwrap_or_default()),
        _ => {}
    }
    let v = a.to_i64_vec().ok_or_else(|| {
        bad(
            store,
            path,
            format!("indices have type {}, expected integers", a.dtype()),
        )
    })?;
    v.into_iter()
        .enumerate()
        .map(|(k, x)| {
            if x < 0 || x as u64 >= bound as u64 {
                Err(bad(
                    store,
                    path,
                    format!(
                        "index {x} at position {k} is out of range for an axis of length {bound}"
                    ),
                ))
            } else {
                Ok(x as u32)
            }
        })
        .collect()
}

/// Reads a whole sparse matrix and checks its structure.
///
/// # Errors
/// On damaged structure (indptr, indices) or store failures.
pub fn read_sparse(store: &dyn Store, path: &str, format: SparseFormat) -> Result<Compressed> {
    let info = sparse_info(store, path, format)?;
    let indptr_path = join(path, "indptr");
    let indptr = to_indptr(store, &indptr_path, &store.read_all(&indptr_path)?)?;
    let m = Compressed {
        format,
        shape: info.shape,
        indptr,
        indices: {
            let p = join(path, "indices");
            let n_minor = if format == SparseFormat::Csr {
                info.shape[1]
            } else {
                info.shape[0]
            };
            to_indices(store, &p, &store.read_all(&p)?, n_minor)?
        },
        data: store.read_all(&join(path, "data"))?,
    };
    m.validate().map_err(|e| bad(store, path, e.to_string()))?;
    Ok(m)
}

fn read_bool_attr(attrs: &serde_json::Map<String, Json>, key: &str) -> bool {
    match attrs.get(key) {
        Some(Json::Bool(b)) => *b,
        Some(Json::Number(n)) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// Reads a 1-D column element (array, string-array, categorical, nullable-*).
///
/// `legacy_categories` is the categories array kept in `uns` or `__categories` by old writers.
///
/// # Errors
/// On unsupported encodings or damaged columns.
pub fn read_column(store: &dyn Store, path: &str) -> Result<Column> {
    let enc = encoding_of(store, path)?;
    let col = match enc {
        Encoding::Array | Encoding::StringArray => {
            let a = store.read_all(path)?;
            if a.shape().len() != 1 {
                return Err(bad(
                    store,
                    path,
                    format!("column has shape {:?}, expected 1-D", a.shape()),
                ));
            }
            // anndata 0.7 kept categories for a dataframe column next to it, under `__categories`.
            let attrs = store.attributes(path)?;
            if attrs.contains_key("categories") {
                let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
                let cat_path = join(&join(parent, "__categories"), name);
                if store.node(&cat_path)?.is_some() {
                    let categories = store.read_all(&cat_path)?;
                    let ordered = read_bool_attr(&store.attributes(&cat_path)?, "ordered");
                    return checked_categorical(store, path, a, categories, ordered);
                }
            }
            Column::Plain(a)
        }
        Encoding::Categorical => {
            let codes = store.read_all(&join(path, "codes"))?;
            let categories = store.read_all(&join(path, "categories"))?;
            let ordered = read_bool_attr(&store.attributes(path)?, "ordered");
            return checked_categorical(store, path, codes, categories, ordered);
        }
        Encoding::NullableInteger | Encoding::NullableBoolean | Encoding::NullableString => {
            let values = store.read_all(&join(path, "values"))?;
            let mask_arr = store.read_all(&join(path, "mask"))?;
            let mask: Vec<bool> = match mask_arr {
                DynArray::Bool(m) => m.iter().copied().collect(),
                other => other
                    .to_i64_vec()
                    .ok_or_else(|| bad(store, &join(path, "mask"), "mask is not boolean"))?
                    .into_iter()
                    .map(|v| v != 0)
                    .collect(),
            };
            if mask.len() != values.len() {
                return Err(bad(
                    store,
                    path,
                    format!(
                        "mask has {} entries but values has {}",
                        mask.len(),
                        values.len()
                    ),
                ));
            }
            let na_value = store
                .attributes(path)?
                .get("na-value")
                .and_then(|v| v.as_str())
                .map(String::from);
            Column::Nullable {
                values,
                mask,
                na_value,
            }
        }
        other => {
            return Err(Error::unsupported(
                loc(store, path),
                format!("encoding {} for a dataframe column", other.name()),
            ));
        }
    };
    Ok(col)
}

fn checked_categorical(
    store: &dyn Store,
    path: &str,
    codes: DynArray,
    categories: DynArray,
    ordered: bool,
) -> Result<Column> {
    let v = codes.to_i64_vec().ok_or_else(|| {
        bad(
            store,
            path,
            format!(
                "categorical codes have type {}, expected integers",
                codes.dtype()
            ),
        )
    })?;
    let n = categories.len() as i64;
    let mut seen = std::collections::HashSet::new();
    if let Some(d) = (0..categories.len())
        .map(|i| crate::value::render_scalar(&categories, i))
        .find(|c| !seen.insert(c.clone()))
    {
        return Err(bad(
            store,
            path,
            format!("category `{d}` appears twice (pandas refuses duplicate categories)"),
        ));
    }
    if let Some(p) = v.iter().position(|&c| c < -1 || c >= n) {
        return Err(bad(
            store,
            path,
            format!(
                "categorical code {} at row {p} is out of range for {n} categories",
                v[p]
            ),
        ));
    }
    Ok(Column::Categorical {
        codes,
        categories,
        ordered,
    })
}

/// Names of a dataframe's index and columns, in order, from its attributes.
///
/// # Errors
/// When the element is not a dataframe.
pub fn frame_layout(store: &dyn Store, path: &str) -> Result<(String, Vec<String>)> {
    let attrs = store.attributes(path)?;
    let index_name = attr_str(&attrs, "_index").unwrap_or("_index").to_string();
    let columns: Vec<String> = match attrs.get("column-order") {
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        Some(Json::String(s)) => vec![s.clone()],
        _ => vec![],
    };
    Ok((index_name, columns))
}

/// Reads a dataframe, optionally only some columns (the index is always read).
///
/// # Errors
/// On a missing column, unsupported column encodings or mismatched column lengths.
pub fn read_frame(store: &dyn Store, path: &str, only: Option<&[String]>) -> Result<Frame> {
    match encoding_of(store, path)? {
        Encoding::DataFrame => {}
        Encoding::LegacyCompoundFrame => return read_legacy_frame(store, path, only),
        Encoding::DictFrame => return read_dict_frame(store, path, only),
        other => {
            return Err(bad(
                store,
                path,
                format!("expected a dataframe, found {}", other.name()),
            ));
        }
    }
    let (index_name, order) = frame_layout(store, path)?;
    let index_path = join(path, &index_name);
    if store.node(&index_path)?.is_none() {
        return Err(bad(
            store,
            path,
            format!("dataframe index `{index_name}` is missing"),
        ));
    }
    let index = read_column(store, &index_path)?;
    let n = index.len();
    let wanted: Vec<String> = match only {
        Some(cols) => {
            for c in cols {
                if !order.contains(c) {
                    return Err(Error::usage(format!(
                        "{}: no column `{c}` in {path}; columns are: {}",
                        store.path().display(),
                        order.join(", ")
                    )));
                }
            }
            order.iter().filter(|c| cols.contains(c)).cloned().collect()
        }
        None => order,
    };
    let mut columns = Vec::with_capacity(wanted.len());
    for name in wanted {
        let cp = join(path, &name);
        let col = read_column(store, &cp)?;
        if col.len() != n {
            return Err(bad(
                store,
                &cp,
                format!("column has {} rows but the index has {n}", col.len()),
            ));
        }
        columns.push((name, col));
    }
    Ok(Frame {
        index_name,
        index,
        columns,
    })
}

/// Reads an obs/var group that has no encoding attributes as anndata does: every child a
/// column, in name order, and row numbers `0, 1, …` as the index.
fn read_dict_frame(store: &dyn Store, path: &str, only: Option<&[String]>) -> Result<Frame> {
    let mut columns = Vec::new();
    let names = store.children(path)?;
    if let Some(cols) = only
        && let Some(c) = cols.iter().find(|c| !names.contains(c))
    {
        return Err(Error::usage(format!(
            "{}: no column `{c}` in {path}; columns are: {}",
            store.path().display(),
            names.join(", ")
        )));
    }
    let mut n = None;
    for name in names {
        let cp = join(path, &name);
        let col = read_column(store, &cp)?;
        match n {
            None => n = Some(col.len()),
            Some(n) if n != col.len() => {
                return Err(bad(
                    store,
                    &cp,
                    format!("column has {} rows but the others have {n}", col.len()),
                ));
            }
            _ => {}
        }
        if only.is_none_or(|cols| cols.contains(&name)) {
            columns.push((name, col));
        }
    }
    let mut f = Frame::with_range_index(n.unwrap_or(0));
    // The index is stored under a name no column has (anndata's own `_index` may be one;
    // zarr refuses names starting with `__`).
    if columns.iter().any(|(c, _)| *c == f.index_name) {
        f.index_name = "index".into();
        while columns.iter().any(|(c, _)| *c == f.index_name) {
            f.index_name.push('_');
        }
    }
    f.columns = columns;
    Ok(f)
}

/// Reads a pre-0.7 compound obs/var table; categorical columns keep their categories in
/// `uns/<column>_categories`. The first field is the index, as anndata takes it.
fn read_legacy_frame(store: &dyn Store, path: &str, only: Option<&[String]>) -> Result<Frame> {
    let mut fields = store.read_records(path)?.into_iter();
    let (index_name, index) = fields
        .next()
        .ok_or_else(|| bad(store, path, "structured dataframe has no fields"))?;
    if index.shape().len() != 1 {
        return Err(bad(
            store,
            path,
            format!("index field `{index_name}` is not one value per row"),
        ));
    }
    let mut columns = Vec::new();
    for (name, values) in fields {
        if let Some(cols) = only
            && !cols.contains(&name)
        {
            continue;
        }
        let cat_path = format!("uns/{name}_categories");
        let col = if store.node(&cat_path)? == Some(NodeKind::Array) {
            let categories = store.read_all(&cat_path)?;
            checked_categorical(store, &join(path, &name), values, categories, false)?
        } else {
            Column::Plain(values)
        };
        columns.push((name, col));
    }
    Ok(Frame {
        index_name,
        index: Column::Plain(index),
        columns,
    })
}

/// Reads any element fully into memory.
///
/// # Errors
/// On unsupported encodings (naming the element) or damaged data.
pub fn read_value(store: &dyn Store, path: &str) -> Result<Value> {
    Ok(match encoding_of(store, path)? {
        Encoding::Array | Encoding::StringArray => Value::Array(store.read_all(path)?),
        Encoding::Sparse(f) => Value::Sparse(read_sparse(store, path, f)?),
        Encoding::DataFrame | Encoding::LegacyCompoundFrame | Encoding::DictFrame => {
            Value::Frame(read_frame(store, path, None)?)
        }
        Encoding::Categorical
        | Encoding::NullableInteger
        | Encoding::NullableBoolean
        | Encoding::NullableString => Value::Column(read_column(store, path)?),
        Encoding::Dict | Encoding::AnnData | Encoding::Raw => {
            let mut map = BTreeMap::new();
            for child in store.children(path)? {
                map.insert(child.clone(), read_value(store, &join(path, &child))?);
            }
            Value::Dict(map)
        }
        Encoding::NumericScalar => Value::Scalar(store.read_all(path)?),
        Encoding::RecArray => Value::Records(store.read_records(path)?),
        // The stored data carries nothing: its attributes say `None`.
        Encoding::Null => Value::Null,
        Encoding::String => match store.read_all(path)? {
            DynArray::Str(a) => Value::String(a.iter().next().cloned().unwrap_or_default()),
            other => {
                return Err(bad(
                    store,
                    path,
                    format!("string element holds {}", other.dtype()),
                ));
            }
        },
        Encoding::Unknown { kind, version } => {
            return Err(Error::unsupported(
                loc(store, path),
                format!("encoding `{kind}` version `{version}`"),
            ));
        }
    })
}

/// A 1-D string array from a list.
pub fn str_array<S: Into<String>>(items: impl IntoIterator<Item = S>) -> DynArray {
    let v: Vec<String> = items.into_iter().map(Into::into).collect();
    DynArray::Str(Array1::from(v).into_dyn())
}

/// A 0-d array holding one string.
pub fn str_scalar(s: &str) -> DynArray {
    DynArray::Str(ArrayD::from_elem(IxDyn(&[]), s.to_string()))
}
