//! Files one after another along obs (`concat`), read lazily: a block's rows are split by
//! file, each file reads only its rows and the genes of the selection it has, and the pieces
//! are laid side by side in the concatenation's gene order (an outer join fills the genes a
//! file lacks). obs, var, obsm and uns are combined as `anndata.concat` combines them.

use super::BlockSource;
use super::columns::{concat_column, strings};
use super::file::FileSource;
use crate::annotations::{Annotations, drop_unused_categories};
use crate::block::XBlock;
use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, Block, Csr, DynArray};
use engine_plan::{ColType, Concat, Merge, Scan, Schema};
use engine_store::{Column, Frame, ReadCounter, Value};
use ndarray::{Array1, Array2};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug)]
pub(super) struct ConcatSource {
    concat: Arc<Concat>,
    parts: Vec<FileSource>,
    /// Where each file's rows begin, and the end.
    offsets: Vec<usize>,
    /// What an outer join puts where a file lacks a gene.
    fill: f64,
    /// Whether X is sparse as it flows (any file's is, as anndata's result).
    sparse: bool,
}

impl ConcatSource {
    pub fn open(concat: &Arc<Concat>, counter: &ReadCounter) -> Result<Self> {
        let parts = concat
            .parts
            .iter()
            .map(|p| FileSource::open(&p.path, &p.options, None, counter))
            .collect::<Result<Vec<_>>>()?;
        let sparse = concat.parts.iter().any(|p| p.schema.x_sparse);
        Ok(ConcatSource {
            offsets: concat.offsets(),
            // anndata's default: 0 when any file's X is sparse, else NaN.
            fill: concat
                .fill_value
                .unwrap_or(if sparse { 0.0 } else { f64::NAN }),
            sparse,
            concat: concat.clone(),
            parts,
        })
    }

    /// The files with rows in `rows`: each file's index, its rows (file positions) and where
    /// they sit among `rows`.
    fn split(&self, rows: &AxisSelection) -> Vec<(usize, AxisSelection)> {
        (0..self.parts.len())
            .filter_map(|k| {
                let own = rows.restrict(self.offsets[k]..self.offsets[k + 1]);
                (!own.is_empty()).then_some((k, own))
            })
            .collect()
    }

    /// File `k`'s block at its `rows`, laid out over the concatenation's columns `cols`.
    fn read_part(&self, k: usize, rows: &AxisSelection, cols: &AxisSelection) -> Result<XBlock> {
        let map = &self.concat.parts[k].columns;
        // (position among `cols`, the file's column) for the genes the file has; the file's
        // columns are read in their own (ascending) order, then placed.
        let mut own: Vec<(usize, usize)> = cols
            .indices()
            .enumerate()
            .filter_map(|(at, j)| map[j].map(|c| (at, c)))
            .collect();
        own.sort_unstable_by_key(|&(_, c)| c);
        let sel = AxisSelection::from_indices(&own.iter().map(|&(_, c)| c).collect::<Vec<_>>());
        let place: Vec<usize> = own.iter().map(|&(at, _)| at).collect();
        let width = cols.len();
        let missing = width - place.len();
        let n = rows.len();
        let block = if sel.is_empty() {
            XBlock::Dense(Array2::zeros((n, 0)))
        } else {
            self.parts[k].read(rows, &sel)?
        };
        if self.sparse {
            let x = block.to_csr()?;
            let mut present = vec![false; width];
            for &p in &place {
                present[p] = true;
            }
            let absent: Vec<u32> = (0..width)
                .filter(|&j| !present[j])
                .map(|j| j as u32)
                .collect();
            let filled = missing > 0 && self.fill != 0.0;
            let mut indptr = Vec::with_capacity(n + 1);
            indptr.push(0u64);
            let (mut indices, mut data) = (Vec::new(), Vec::new());
            let mut row: Vec<(u32, f64)> = Vec::new();
            for i in 0..n {
                row.clear();
                let (idx, val) = x.row(i);
                row.extend(
                    idx.iter()
                        .zip(val)
                        .map(|(&c, &v)| (place[c as usize] as u32, v)),
                );
                if filled {
                    row.extend(absent.iter().map(|&j| (j, self.fill)));
                }
                row.sort_unstable_by_key(|&(j, _)| j);
                indices.extend(row.iter().map(|&(j, _)| j));
                data.extend(row.iter().map(|&(_, v)| v));
                indptr.push(indices.len() as u64);
            }
            Ok(XBlock::Sparse {
                x: Csr::from_parts(width, indptr, indices, data),
                fill: None,
            })
        } else {
            let a = block.into_dense();
            let mut out = Array2::from_elem((n, width), self.fill);
            for (c, &p) in place.iter().enumerate() {
                out.column_mut(p).assign(&a.column(c));
            }
            Ok(XBlock::Dense(out))
        }
    }
}

impl BlockSource for ConcatSource {
    fn shape(&self) -> (usize, usize) {
        (self.offsets[self.parts.len()], self.concat.var_names.len())
    }

    fn read(&self, rows: &AxisSelection, cols: &AxisSelection) -> Result<XBlock> {
        let blocks = self
            .split(rows)
            .into_iter()
            .map(|(k, own)| self.read_part(k, &own, cols))
            .collect::<Result<Vec<_>>>()?;
        XBlock::concat(blocks, cols.len())
    }

    /// The files' counts, when every file's genes are all among the selected ones and filled
    /// genes are absent (a zero fill): then each file's stored values are the block's.
    fn stored_nnz(&self, rows: &AxisSelection, cols: &AxisSelection) -> Result<Option<u64>> {
        let (_, m) = self.shape();
        let filled = self.fill != 0.0
            && self
                .concat
                .parts
                .iter()
                .any(|p| p.columns.iter().any(Option::is_none));
        if !cols.is_full(m) || filled {
            return Ok(None);
        }
        let mut total = 0;
        for (k, own) in self.split(rows) {
            let part = &self.concat.parts[k];
            let kept = part.columns.iter().filter(|c| c.is_some()).count();
            if kept != part.schema.n_vars {
                return Ok(None);
            }
            match self.parts[k].stored_nnz(&own, &AxisSelection::all(part.schema.n_vars))? {
                Some(n) => total += n,
                None => return Ok(None),
            }
        }
        Ok(Some(total))
    }

    fn annotations(
        &self,
        scan: &Scan,
        schema: &Schema,
        rows: &AxisSelection,
        cols: &AxisSelection,
    ) -> Result<Annotations> {
        let c = &self.concat;
        let pieces = self.split(rows);
        let wanted = |p: &str| {
            scan.elements
                .as_ref()
                .is_none_or(|e| e.iter().any(|x| x == p))
        };
        // obs: each file's rows and the columns the scan keeps that it has.
        let keep: Vec<&(String, ColType)> = schema
            .obs
            .iter()
            .filter(|(k, _)| Some(k) != c.label.as_ref())
            .filter(|(k, _)| super::wants_obs(scan, k))
            .collect();
        let mut frames = Vec::new();
        for (k, own) in &pieces {
            let part = &c.parts[*k];
            let names: Vec<String> = keep
                .iter()
                .filter(|(n, _)| part.schema.has_obs(n))
                .map(|(n, _)| n.clone())
                .collect();
            let obs = self.parts[*k].dataset().obs(Some(&names))?;
            let take: Vec<usize> = own.indices().collect();
            frames.push((*k, obs.take(&take)));
        }
        let mut obs = concat_frames(&frames, &keep, c, &schema.obs_index)?;
        if let Some(label) = &c.label {
            let codes: Vec<i32> = frames
                .iter()
                .flat_map(|(k, f)| std::iter::repeat_n(*k as i32, f.n_rows()))
                .collect();
            obs.columns.retain(|(n, _)| n != label);
            obs.columns.push((
                label.clone(),
                Column::Categorical {
                    codes: DynArray::I32(Array1::from(codes).into_dyn()),
                    categories: DynArray::Str(Array1::from(c.keys.clone()).into_dyn()),
                    ordered: false,
                },
            ));
        }
        // var: the genes of the selection, the columns `merge` keeps.
        let genes: Vec<usize> = cols.indices().collect();
        let var = merged_var(self, c, schema, &genes)?;
        // obsm: each key every file has, its rows stacked.
        let mut obsm = BTreeMap::new();
        for (key, _) in &schema.obsm {
            let path = format!("obsm/{key}");
            if !wanted(&path) {
                continue;
            }
            let mut blocks = Vec::new();
            for (k, own) in &pieces {
                let m = self.parts[*k].dataset().matrix(&path)?;
                let all = AxisSelection::all(m.n_cols());
                blocks.push(m.read_block(own, &all)?);
            }
            obsm.insert(key.clone(), Arc::new(stack_blocks(blocks, key)?));
        }
        // uns: by `uns_merge` (nothing without it, as anndata).
        let mut uns = BTreeMap::new();
        if let Some(m) = c.uns_merge {
            let mut all = Vec::new();
            for (k, part) in c.parts.iter().enumerate() {
                let mut d = BTreeMap::new();
                for key in &part.schema.uns {
                    let path = format!("uns/{key}");
                    if !wanted(&path) {
                        continue;
                    }
                    let store = self.parts[k].dataset().store().clone();
                    match engine_store::encoding::read_value(store.as_ref(), &path) {
                        Ok(v) => {
                            d.insert(key.clone(), v);
                        }
                        // What the engine cannot decode is left out of the merge.
                        Err(e) if e.kind() == "unsupported" => {}
                        Err(e) => return Err(e),
                    }
                }
                all.push(d);
            }
            uns = merge_dicts(&all, m);
        }
        // A selection pushed into the read is a view, as anndata makes it.
        let (n, m) = self.shape();
        let mut obs = obs;
        let mut var = var;
        if !rows.is_full(n) {
            drop_unused_categories(&mut obs, &mut uns);
        }
        if !cols.is_full(m) {
            drop_unused_categories(&mut var, &mut uns);
        }
        Ok(Annotations {
            obs,
            var,
            obsm,
            uns,
            ..Default::default()
        })
    }
}

/// anndata's merge of mappings (`uns_merge`), recursing into nested dicts.
fn merge_dicts(all: &[BTreeMap<String, Value>], m: Merge) -> BTreeMap<String, Value> {
    let mut keys: Vec<&String> = Vec::new();
    for d in all {
        for k in d.keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let mut out = BTreeMap::new();
    for key in keys {
        let values: Vec<&Value> = all.iter().filter_map(|d| d.get(key)).collect();
        // Nested dicts merge key by key.
        if values.iter().all(|v| matches!(v, Value::Dict(_))) {
            let nested: Vec<BTreeMap<String, Value>> = all
                .iter()
                .filter_map(|d| match d.get(key) {
                    Some(Value::Dict(x)) => Some(x.clone()),
                    _ => None,
                })
                .collect();
            let merged = merge_dicts(&nested, m);
            let keep = match m {
                Merge::Same => values.len() == all.len() || !merged.is_empty(),
                _ => true,
            };
            if keep && !(merged.is_empty() && m != Merge::First) {
                out.insert(key.clone(), Value::Dict(merged));
            }
            continue;
        }
        let kept = match m {
            Merge::First => values.first().copied(),
            Merge::Only => (values.len() == 1).then(|| values[0]),
            Merge::Same => (values.len() == all.len() && values.iter().all(|v| *v == values[0]))
                .then(|| values[0]),
            Merge::Unique => values.iter().all(|v| *v == values[0]).then(|| values[0]),
        };
        if let Some(v) = kept {
            out.insert(key.clone(), v.clone());
        }
    }
    out
}

/// The concatenation's var at `genes` (its gene positions): the index, and the columns
/// `merge` keeps, each file's column taken at its genes (missing where it lacks one).
fn merged_var(src: &ConcatSource, c: &Concat, schema: &Schema, genes: &[usize]) -> Result<Frame> {
    let index = Column::Plain(DynArray::Str(
        Array1::from(
            genes
                .iter()
                .map(|&j| c.var_names[j].clone())
                .collect::<Vec<_>>(),
        )
        .into_dyn(),
    ));
    let mut frame = Frame {
        index_name: schema.var_index.clone(),
        index,
        columns: Vec::new(),
    };
    let Some(m) = c.merge else {
        return Ok(frame);
    };
    // Each file's var at the concatenation's genes, as pandas' `reindex`.
    let mut reindexed: Vec<Vec<(String, Column)>> = Vec::new();
    for (k, part) in c.parts.iter().enumerate() {
        let names: Vec<String> = schema
            .var
            .iter()
            .filter(|(n, _)| part.schema.has_var(n))
            .map(|(n, _)| n.clone())
            .collect();
        let var = src.parts[k].dataset().var(Some(&names))?;
        let at: Vec<Option<usize>> = genes.iter().map(|&j| part.columns[j]).collect();
        let mut cols = Vec::new();
        for (name, col) in var.columns {
            let ty = schema
                .var
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(ColType::Str, |(_, t)| *t);
            cols.push((name.clone(), reindex(&col, &at, ty, &name)?));
        }
        reindexed.push(cols);
    }
    for (name, _) in &schema.var {
        let values: Vec<&Column> = reindexed
            .iter()
            .filter_map(|cols| cols.iter().find(|(n, _)| n == name).map(|(_, c)| c))
            .collect();
        let kept = match m {
            Merge::First => values.first().copied(),
            Merge::Only => (values.len() == 1).then(|| values[0]),
            Merge::Same => (values.len() == reindexed.len()
                && values.iter().all(|v| same_values(v, values[0])))
            .then(|| values[0]),
            Merge::Unique => values
                .iter()
                .all(|v| same_values(v, values[0]))
                .then(|| values[0]),
        };
        if let Some(v) = kept {
            frame.columns.push((name.clone(), v.clone()));
        }
    }
    Ok(frame)
}

/// Whether two columns hold the same values, missing ones (NaN) equal, as pandas' `equals`.
fn same_values(a: &Column, b: &Column) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Column::Plain(x), Column::Plain(y)) if x.dtype() == y.dtype() => {
            match (x.to_f64_vec(), y.to_f64_vec()) {
                (Some(x), Some(y)) => {
                    x.len() == y.len()
                        && x.iter()
                            .zip(&y)
                            .all(|(p, q)| p == q || (p.is_nan() && q.is_nan()))
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// A column at positions `at` of its rows (`None`: missing there), typed `ty`.
fn reindex(col: &Column, at: &[Option<usize>], ty: ColType, name: &str) -> Result<Column> {
    let part = [(Some(col), at.to_vec())];
    concat_column(&part, ty, name)
}

/// Files' obs frames (in order, each with its file's index) concatenated as `pd.concat`
/// with anndata's dtype unification, the cell names suffixed with the file's key when
/// `index_unique` is set.
fn concat_frames(
    frames: &[(usize, Frame)],
    keep: &[&(String, ColType)],
    c: &Concat,
    index_name: &str,
) -> Result<Frame> {
    let mut names = Vec::new();
    for (k, f) in frames {
        let idx = strings(&f.index).ok_or_else(|| {
            Error::data(format!(
                "the obs index of `{}` is not strings",
                c.parts[*k].path
            ))
        })?;
        match &c.index_unique {
            Some(sep) => names.extend(idx.into_iter().map(|n| format!("{n}{sep}{}", c.keys[*k]))),
            None => names.extend(idx),
        }
    }
    let mut columns = Vec::new();
    for (name, ty) in keep {
        let parts: Vec<(Option<&Column>, Vec<Option<usize>>)> = frames
            .iter()
            .map(|(_, f)| {
                let n = f.n_rows();
                match f.column(name) {
                    Some(col) => (Some(col), (0..n).map(Some).collect()),
                    None => (None, vec![None; n]),
                }
            })
            .collect();
        columns.push((name.clone(), concat_column(&parts, *ty, name)?));
    }
    Ok(Frame {
        index_name: index_name.to_string(),
        index: Column::Plain(DynArray::Str(Array1::from(names).into_dyn())),
        columns,
    })
}

/// Files' blocks of one obsm key, rows stacked (dense arrays, or CSR).
fn stack_blocks(blocks: Vec<Block>, key: &str) -> Result<Block> {
    if blocks.iter().all(|b| matches!(b, Block::Dense(_))) {
        let arrays: Vec<&DynArray> = blocks
            .iter()
            .filter_map(|b| match b {
                Block::Dense(a) => Some(a),
                Block::Sparse(_) => None,
            })
            .collect();
        return engine_matrix::concat_axis(&arrays, 0)
            .map(Block::Dense)
            .map_err(|e| Error::data(format!("obsm['{key}']: {e}")));
    }
    if blocks.iter().all(|b| matches!(b, Block::Sparse(_))) {
        let parts: Vec<engine_matrix::Compressed> = blocks
            .into_iter()
            .filter_map(|b| match b {
                Block::Sparse(c) => Some(c),
                Block::Dense(_) => None,
            })
            .collect();
        return engine_matrix::Compressed::concat_major(&parts)
            .map(Block::Sparse)
            .map_err(|e| Error::data(format!("obsm['{key}']: {e}")));
    }
    Err(Error::data(format!(
        "obsm['{key}'] is dense in some files and sparse in others"
    )))
}
