//! Everything of a node's AnnData value but X: obs, var and the obsm/varm/obsp/uns elements,
//! with the helpers nodes use to add columns and entries the way scanpy stores them.

use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, Block, Compressed, DynArray};
use engine_store::{Column, Frame, Value};
use ndarray::{Array1, Array2, CowArray, Ix2};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Per-node results that are not X.
#[derive(Debug, Clone)]
pub(crate) struct Annotations {
    pub obs: Frame,
    pub var: Frame,
    /// Embeddings we compute are float32, as scanpy stores X_pca for float32 data; those read
    /// from the input keep their stored type and layout.
    pub obsm: BTreeMap<String, Arc<Block>>,
    pub varm: BTreeMap<String, Arc<Block>>,
    /// Shared: a node with two consumers (a plot and the next step) hands both the same
    /// graph instead of a copy.
    pub obsp: BTreeMap<String, Arc<Compressed>>,
    pub uns: BTreeMap<String, Value>,
    /// uns entries of a source file that the engine cannot decode, copied from the file as
    /// stored when written (uns does not depend on the cells or genes kept).
    pub uns_verbatim: BTreeMap<String, Verbatim>,
}

/// An element left as stored in a source file.
#[derive(Debug, Clone)]
pub(crate) struct Verbatim {
    pub store: Arc<dyn engine_store::Store>,
    pub path: String,
}

impl Default for Annotations {
    fn default() -> Self {
        Annotations {
            obs: Frame::with_range_index(0),
            var: Frame::with_range_index(0),
            obsm: BTreeMap::new(),
            varm: BTreeMap::new(),
            obsp: BTreeMap::new(),
            uns: BTreeMap::new(),
            uns_verbatim: BTreeMap::new(),
        }
    }
}

impl Annotations {
    /// The view `adata[rows, cols]` of everything but X.
    pub(crate) fn select(&mut self, rows: Option<&AxisSelection>, cols: Option<&AxisSelection>) {
        if let Some(r) = rows {
            let pos: Vec<usize> = r.indices().collect();
            self.obs = self.obs.take(&pos);
            drop_unused_categories(&mut self.obs, &mut self.uns);
            for v in self.obsm.values_mut() {
                let all = AxisSelection::all(v.shape().get(1).copied().unwrap_or(1));
                *v = Arc::new(v.select(r, &all));
            }
            // A graph over cells keeps the selected cells' edges among themselves.
            for g in self.obsp.values_mut() {
                *g = Arc::new(g.select(r, r));
            }
        }
        if let Some(c) = cols {
            let pos: Vec<usize> = c.indices().collect();
            self.var = self.var.take(&pos);
            drop_unused_categories(&mut self.var, &mut self.uns);
            for v in self.varm.values_mut() {
                let all = AxisSelection::all(v.shape().get(1).copied().unwrap_or(1));
                *v = Arc::new(v.select(c, &all));
            }
        }
    }
}

/// What anndata's views do to a subset's categorical columns (`_remove_unused_categories`):
/// the categories no row has are dropped, and with them their entries of
/// `uns['<column>_colors']` when that lists one colour per category.
pub(crate) fn drop_unused_categories(frame: &mut Frame, uns: &mut BTreeMap<String, Value>) {
    for (name, col) in &mut frame.columns {
        let Column::Categorical {
            codes, categories, ..
        } = col
        else {
            continue;
        };
        let Some(c) = codes.to_i64_vec() else {
            continue;
        };
        let n = categories.len();
        let mut used = vec![false; n];
        for &k in &c {
            if let Some(u) = usize::try_from(k).ok().and_then(|k| used.get_mut(k)) {
                *u = true;
            }
        }
        if used.iter().all(|u| *u) {
            continue;
        }
        let keep: Vec<usize> = (0..n).filter(|&k| used[k]).collect();
        let mut new_code = vec![-1i64; n];
        for (new, &old) in keep.iter().enumerate() {
            new_code[old] = new as i64;
        }
        let remapped: Vec<i64> = c
            .iter()
            .map(|&k| usize::try_from(k).ok().map_or(-1, |k| new_code[k]))
            .collect();
        *codes = match codes {
            DynArray::I8(_) => {
                DynArray::I8(Array1::from_iter(remapped.iter().map(|&k| k as i8)).into_dyn())
            }
            DynArray::I16(_) => {
                DynArray::I16(Array1::from_iter(remapped.iter().map(|&k| k as i16)).into_dyn())
            }
            DynArray::I32(_) => {
                DynArray::I32(Array1::from_iter(remapped.iter().map(|&k| k as i32)).into_dyn())
            }
            _ => DynArray::I64(Array1::from(remapped).into_dyn()),
        };
        *categories = engine_matrix::take_1d(categories, &keep);
        let key = format!("{name}_colors");
        if let Some(Value::Array(colours)) = uns.get(&key)
            && colours.len() == n
        {
            let kept = engine_matrix::take_1d(colours, &keep);
            uns.insert(key, Value::Array(kept));
        }
    }
}

/// Sets a dataframe column, replacing one of the same name in place.
pub(crate) fn set_column(f: &mut Frame, name: &str, c: Column) {
    match f.columns.iter_mut().find(|(n, _)| n == name) {
        Some((_, old)) => *old = c,
        None => f.columns.push((name.to_string(), c)),
    }
}

/// A float column, float32 when scanpy keeps X's float32 in it.
pub(crate) fn float_column(v: &[f64], f32_out: bool) -> Column {
    if f32_out {
        Column::Plain(DynArray::F32(
            Array1::from_iter(v.iter().map(|&x| x as f32)).into_dyn(),
        ))
    } else {
        Column::Plain(DynArray::F64(Array1::from(v.to_vec()).into_dyn()))
    }
}

/// A boolean dataframe column as a mask.
pub(crate) fn bool_column(f: &Frame, name: &str) -> Result<Vec<bool>> {
    match f.column(name) {
        Some(Column::Plain(DynArray::Bool(b))) => Ok(b.iter().copied().collect()),
        Some(Column::Nullable {
            values: DynArray::Bool(b),
            mask,
            ..
        }) => Ok(b.iter().zip(mask).map(|(v, m)| *v && !m).collect()),
        Some(other) => Err(Error::usage(format!(
            "var['{name}'] must be boolean, it is {}",
            other.type_name()
        ))),
        None => Err(Error::usage(format!("there is no var['{name}']"))),
    }
}

/// A numeric (or boolean) column's values, NaN where a nullable one has none.
pub(crate) fn numeric_values(col: &Column) -> Option<Vec<f64>> {
    match col {
        Column::Plain(DynArray::Bool(b)) => {
            Some(b.iter().map(|v| f64::from(u8::from(*v))).collect())
        }
        Column::Plain(a) => a.to_f64_vec(),
        Column::Nullable { values, mask, .. } => {
            let v: Vec<f64> = match values {
                DynArray::Bool(b) => b.iter().map(|v| f64::from(u8::from(*v))).collect(),
                other => other.to_f64_vec()?,
            };
            Some(
                v.into_iter()
                    .zip(mask)
                    .map(|(x, m)| if *m { f64::NAN } else { x })
                    .collect(),
            )
        }
        Column::Categorical { .. } => None,
    }
}

/// The categorical obs column `name`: each cell's code (-1 for none) and the categories as
/// text; a mistake in `step` when the column is missing or not categorical.
pub(crate) fn obs_groups(f: &Frame, name: &str, step: &str) -> Result<(Vec<i64>, Vec<String>)> {
    match f.column(name) {
        Some(Column::Categorical {
            codes, categories, ..
        }) => Ok((
            codes
                .to_i64_vec()
                .ok_or_else(|| Error::internal("categorical codes are not integers"))?,
            (0..categories.len())
                .map(|i| engine_store::value::render_scalar(categories, i))
                .collect(),
        )),
        _ => Err(Error::step(
            step,
            format!("obs['{name}'] must be categorical"),
        )),
    }
}

/// A categorical column with string categories "0".."k-1" (scanpy's cluster labels), codes
/// in the narrowest integer type as pandas stores them.
pub(crate) fn categorical(labels: &[u32], k: usize) -> Column {
    named_categorical(labels, (0..k).map(|c| c.to_string()))
}

/// A categorical column with named categories.
pub(crate) fn named_categorical(codes: &[u32], names: impl Iterator<Item = String>) -> Column {
    let categories = engine_store::encoding::str_array(names);
    let k = categories.len();
    let codes = if k <= i8::MAX as usize {
        DynArray::I8(Array1::from_iter(codes.iter().map(|&l| l as i8)).into_dyn())
    } else {
        DynArray::I16(Array1::from_iter(codes.iter().map(|&l| l as i16)).into_dyn())
    };
    Column::Categorical {
        codes,
        categories,
        ordered: false,
    }
}

pub(crate) fn f64_array(v: &[f64]) -> Value {
    Value::Array(DynArray::F64(Array1::from(v.to_vec()).into_dyn()))
}

pub(crate) fn dict(items: Vec<(&str, Value)>) -> Value {
    Value::Dict(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

pub(crate) fn scalar_i64(v: i64) -> Value {
    Value::Scalar(DynArray::I64(ndarray::ArrayD::from_elem(
        ndarray::IxDyn(&[]),
        v,
    )))
}

pub(crate) fn scalar_f64(v: f64) -> Value {
    Value::Scalar(DynArray::F64(ndarray::ArrayD::from_elem(
        ndarray::IxDyn(&[]),
        v,
    )))
}

pub(crate) fn scalar_bool(v: bool) -> Value {
    Value::Scalar(DynArray::Bool(ndarray::ArrayD::from_elem(
        ndarray::IxDyn(&[]),
        v,
    )))
}

/// An obsm matrix as float32 rows: borrowed when stored so, converted otherwise.
pub(crate) fn embedding<'a>(b: &'a Block, key: &str) -> Result<CowArray<'a, f32, Ix2>> {
    let bad = || Error::usage(format!("obsm['{key}'] is not a numeric matrix"));
    match b {
        Block::Dense(DynArray::F32(a)) => a
            .view()
            .into_dimensionality::<Ix2>()
            .map(CowArray::from)
            .map_err(|_| bad()),
        other => {
            let shape = other.shape();
            let dense = other.to_dense();
            let v = dense.to_f64_vec().ok_or_else(bad)?;
            let [n, m] = shape[..] else { return Err(bad()) };
            let a = Array2::from_shape_vec((n, m), v.into_iter().map(|x| x as f32).collect())
                .map_err(|_| bad())?;
            Ok(CowArray::from(a))
        }
    }
}

/// A computed embedding as an obsm entry.
pub(crate) fn f32_block(a: Array2<f32>) -> Arc<Block> {
    Arc::new(Block::Dense(DynArray::F32(a.into_dyn())))
}
