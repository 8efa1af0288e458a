//! X as a lineage: an opened source with the rows and columns a scan reads, then the
//! elementwise maps and unpushed views applied since, in order. Nothing is materialised:
//! any row block of X is recomputed from the source on demand, so passes stream.

use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, Block, SparseFormat};
use engine_ops::counts::CountsModel;
use engine_ops::sparse::Csr;
use engine_ops::synthetic::Blobs;
use engine_plan::io;
use engine_store::Matrix;
use ndarray::{Array2, Axis};
use std::ops::Range;
use std::sync::Arc;

/// A row block of X: dense, or CSR whose absent entries equal a per-column fill (zero when
/// there is none), which keeps standardised sparse data sparse.
#[derive(Debug, Clone)]
pub(crate) enum XBlock {
    Dense(Array2<f64>),
    Sparse { x: Csr, fill: Option<Arc<Vec<f64>>> },
}

impl XBlock {
    pub fn into_dense(self) -> Array2<f64> {
        match self {
            XBlock::Dense(a) => a,
            XBlock::Sparse { x, fill } => x.to_dense(fill.as_deref().map(Vec::as_slice)),
        }
    }

    /// The block as CSR values (dense blocks keep their non-zeros), for kernels that count
    /// non-zeros; the fill must be absent.
    pub fn to_csr(&self) -> Result<std::borrow::Cow<'_, Csr>> {
        match self {
            XBlock::Sparse { x, fill: None } => Ok(std::borrow::Cow::Borrowed(x)),
            XBlock::Sparse { fill: Some(_), .. } => Err(Error::usage(
                "this step needs unscaled values (counts or normalised counts), but X was standardised by `scale` upstream",
            )),
            XBlock::Dense(a) => {
                let rows: Vec<Vec<(u32, f64)>> = a
                    .outer_iter()
                    .map(|r| {
                        r.iter()
                            .enumerate()
                            .filter(|(_, v)| **v != 0.0)
                            .map(|(j, v)| (j as u32, *v))
                            .collect()
                    })
                    .collect();
                Ok(std::borrow::Cow::Owned(Csr::from_rows(a.ncols(), &rows)))
            }
        }
    }

    fn take_rows(&self, local: &[usize]) -> XBlock {
        match self {
            XBlock::Dense(a) => XBlock::Dense(a.select(Axis(0), local)),
            XBlock::Sparse { x, fill } => XBlock::Sparse {
                x: x.select_rows(local),
                fill: fill.clone(),
            },
        }
    }

    fn select_cols(&self, cols: &AxisSelection) -> XBlock {
        match self {
            XBlock::Dense(a) => {
                XBlock::Dense(a.select(Axis(1), &cols.indices().collect::<Vec<_>>()))
            }
            XBlock::Sparse { x, fill } => XBlock::Sparse {
                x: x.select_cols(cols),
                fill: fill
                    .as_ref()
                    .map(|f| Arc::new(cols.indices().map(|j| f[j]).collect())),
            },
        }
    }

    fn concat(mut parts: Vec<XBlock>, n_cols: usize) -> Result<XBlock> {
        if parts.len() == 1 {
            return Ok(parts
                .pop()
                .unwrap_or(XBlock::Dense(Array2::zeros((0, n_cols)))));
        }
        if parts.is_empty() {
            return Ok(XBlock::Dense(Array2::zeros((0, n_cols))));
        }
        if let XBlock::Sparse { fill, .. } = &parts[0] {
            let fill = fill.clone();
            let csr: Vec<Csr> = parts
                .into_iter()
                .map(|p| match p {
                    XBlock::Sparse { x, .. } => Ok(x),
                    XBlock::Dense(_) => {
                        Err(Error::internal("a lineage mixed dense and sparse blocks"))
                    }
                })
                .collect::<Result<_>>()?;
            return Ok(XBlock::Sparse {
                x: Csr::vstack(&csr, n_cols),
                fill,
            });
        }
        let dense: Vec<Array2<f64>> = parts.into_iter().map(XBlock::into_dense).collect();
        let views: Vec<_> = dense.iter().map(|p| p.view()).collect();
        ndarray::concatenate(Axis(0), &views)
            .map(XBlock::Dense)
            .map_err(|e| Error::internal(e.to_string()))
    }
}

/// An elementwise map on X.
#[derive(Debug, Clone)]
pub(crate) enum XMap {
    /// `scale`: per column `(x - mean) / sd`, clipped.
    Standardize {
        mean: Arc<Vec<f64>>,
        sd: Arc<Vec<f64>>,
        zero_center: bool,
        max_value: Option<f64>,
    },
    Log1p,
    /// `normalize_total`: row `i` times `factors[i]` (positions at this depth).
    ScaleRows(Arc<Vec<f64>>),
    /// Maps applied in order in one sweep over each block (`fuse_elementwise`).
    Chain(Vec<XMap>),
}

impl XMap {
    /// The map with its per-row and per-column parameters restricted to a selection.
    fn restrict(&self, rows: Option<&AxisSelection>, cols: Option<&AxisSelection>) -> XMap {
        let take = |v: &Arc<Vec<f64>>, sel: Option<&AxisSelection>| match sel {
            Some(s) => Arc::new(s.indices().map(|i| v[i]).collect::<Vec<_>>()),
            None => v.clone(),
        };
        match self {
            XMap::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            } => XMap::Standardize {
                mean: take(mean, cols),
                sd: take(sd, cols),
                zero_center: *zero_center,
                max_value: *max_value,
            },
            XMap::ScaleRows(f) => XMap::ScaleRows(take(f, rows)),
            XMap::Log1p => XMap::Log1p,
            XMap::Chain(maps) => XMap::Chain(maps.iter().map(|m| m.restrict(rows, cols)).collect()),
        }
    }

    /// The map of one value at row position `i`, column `j`.
    fn scalar(&self, v: f64, i: usize, j: usize) -> f64 {
        match self {
            XMap::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            } => standardize(v, mean[j], sd[j], *zero_center, *max_value),
            XMap::Log1p => v.ln_1p(),
            XMap::ScaleRows(f) => v * f[i],
            XMap::Chain(maps) => maps.iter().fold(v, |v, m| m.scalar(v, i, j)),
        }
    }

    /// Appends `next` to this map as one kernel.
    pub fn then(self, next: XMap) -> XMap {
        match self {
            XMap::Chain(mut maps) => {
                maps.push(next);
                XMap::Chain(maps)
            }
            first => XMap::Chain(vec![first, next]),
        }
    }
}

/// A chain in one sweep: each stored value goes through every map in turn. Absent entries of
/// a sparse block stay absent while the maps keep zero at zero, and become a per-column fill
/// once one does not; a row scale after that point has no per-column fill, so the block is
/// then densified, as the unfused maps would.
fn apply_chain(maps: &[XMap], x: XBlock, pos: &AxisSelection) -> XBlock {
    let rows: Vec<usize> = pos.indices().collect();
    match x {
        XBlock::Sparse { mut x, fill } => {
            let mut col_fill: Option<Vec<f64>> = fill.as_ref().map(|f| f.to_vec());
            for m in maps {
                match (m, &mut col_fill) {
                    (XMap::ScaleRows(_), Some(_)) => {
                        // Nothing has been applied to the block yet: densify it as read.
                        let dense = XBlock::Sparse { x, fill };
                        return apply_chain_dense(maps, dense.into_dense(), &rows);
                    }
                    (XMap::ScaleRows(_) | XMap::Log1p, None) => {}
                    (m, f) => {
                        let cur = f.take().unwrap_or_else(|| vec![0.0; x.n_cols]);
                        *f = Some(
                            cur.iter()
                                .enumerate()
                                .map(|(j, &v)| m.scalar(v, 0, j))
                                .collect(),
                        );
                    }
                }
            }
            for m in maps {
                sweep_sparse(m, &mut x, &rows);
            }
            let fill = col_fill
                .filter(|f| f.iter().any(|v| *v != 0.0))
                .map(Arc::new);
            XBlock::Sparse { x, fill }
        }
        XBlock::Dense(a) => apply_chain_dense(maps, a, &rows),
    }
}

fn apply_chain_dense(maps: &[XMap], mut a: Array2<f64>, rows: &[usize]) -> XBlock {
    let chain = XMap::Chain(maps.to_vec());
    for (mut row, &i) in a.outer_iter_mut().zip(rows) {
        for (j, v) in row.iter_mut().enumerate() {
            *v = chain.scalar(*v, i, j);
        }
    }
    XBlock::Dense(a)
}

/// One map over a sparse block's stored values, as its own tight loop: the block is in cache,
/// and a loop per map is several times faster than interpreting the whole chain per value
/// (the same operations in the same order, so the same bits).
fn sweep_sparse(m: &XMap, x: &mut Csr, rows: &[usize]) {
    match m {
        XMap::ScaleRows(f) => {
            for (r, &i) in rows.iter().enumerate().take(x.n_rows()) {
                let factor = f[i];
                for v in &mut x.data[x.indptr[r]..x.indptr[r + 1]] {
                    *v *= factor;
                }
            }
        }
        XMap::Log1p => x.data.iter_mut().for_each(|v| *v = v.ln_1p()),
        XMap::Standardize {
            mean,
            sd,
            zero_center,
            max_value,
        } => {
            for (v, &j) in x.data.iter_mut().zip(&x.indices) {
                let j = j as usize;
                *v = standardize(*v, mean[j], sd[j], *zero_center, *max_value);
            }
        }
        XMap::Chain(maps) => maps.iter().for_each(|m| sweep_sparse(m, x, rows)),
    }
}

fn standardize(v: f64, mean: f64, sd: f64, zero_center: bool, max_value: Option<f64>) -> f64 {
    let mut z = if zero_center { v - mean } else { v };
    z /= sd;
    if let Some(m) = max_value {
        z = z.clamp(if zero_center { -m } else { f64::MIN }, m);
    }
    z
}

/// Applies `m` to a block whose rows sit at positions `pos` of this depth.
fn apply_map(m: &XMap, x: XBlock, pos: &AxisSelection) -> XBlock {
    match (m, x) {
        (XMap::Chain(maps), x) => apply_chain(maps, x, pos),
        (
            XMap::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            },
            XBlock::Sparse { mut x, fill },
        ) => {
            let f = |j: usize| fill.as_ref().map_or(0.0, |f| f[j]);
            let new_fill: Vec<f64> = (0..x.n_cols)
                .map(|j| standardize(f(j), mean[j], sd[j], *zero_center, *max_value))
                .collect();
            for (&j, v) in x.indices.iter().zip(x.data.iter_mut()) {
                let j = j as usize;
                *v = standardize(*v, mean[j], sd[j], *zero_center, *max_value);
            }
            let fill = if new_fill.iter().all(|v| *v == 0.0) {
                None
            } else {
                Some(Arc::new(new_fill))
            };
            XBlock::Sparse { x, fill }
        }
        (
            XMap::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            },
            XBlock::Dense(mut a),
        ) => {
            for mut row in a.outer_iter_mut() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = standardize(*v, mean[j], sd[j], *zero_center, *max_value);
                }
            }
            XBlock::Dense(a)
        }
        (XMap::Log1p, XBlock::Sparse { mut x, fill }) => {
            x.map_values(f64::ln_1p);
            let fill = fill.map(|f| Arc::new(f.iter().map(|v| v.ln_1p()).collect()));
            XBlock::Sparse { x, fill }
        }
        (XMap::Log1p, XBlock::Dense(mut a)) => {
            a.mapv_inplace(f64::ln_1p);
            XBlock::Dense(a)
        }
        (XMap::ScaleRows(factors), XBlock::Sparse { mut x, fill: None }) => {
            let f: Vec<f64> = pos.indices().map(|i| factors[i]).collect();
            x.scale_rows(&f);
            XBlock::Sparse { x, fill: None }
        }
        (XMap::ScaleRows(factors), other) => {
            // A row scale of standardised data has no per-column fill: densify.
            let mut a = other.into_dense();
            for (mut row, i) in a.outer_iter_mut().zip(pos.indices()) {
                row.mapv_inplace(|v| v * factors[i]);
            }
            XBlock::Dense(a)
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum LineageStep {
    Map(XMap),
    /// A view that was not pushed into the scan: reads the rows it spans, then selects.
    View {
        rows: Option<Arc<AxisSelection>>,
        cols: Option<Arc<AxisSelection>>,
    },
}

#[derive(Debug)]
pub(crate) enum SourceKind {
    Blobs { blobs: Blobs, centers: Array2<f64> },
    Counts { model: CountsModel },
    File { matrix: Matrix },
}

/// An opened source with the rows and columns the scan reads (all, or a selection).
#[derive(Debug)]
pub(crate) struct XSource {
    pub kind: Arc<SourceKind>,
    pub rows: AxisSelection,
    pub cols: AxisSelection,
    pub chunk_starts: Option<Arc<Vec<usize>>>,
}

impl XSource {
    /// The scan's rows at positions `pos`, every selected column.
    fn read(&self, pos: &AxisSelection) -> Result<XBlock> {
        let src = self.rows.compose(pos);
        let n_vars = self.cols.len();
        match self.kind.as_ref() {
            SourceKind::Blobs { blobs, centers } => {
                let (x, _) = blobs.rows(centers, src.indices(), src.len());
                let x = XBlock::Dense(x);
                Ok(if self.cols.is_full(blobs.n_vars) {
                    x
                } else {
                    x.select_cols(&self.cols)
                })
            }
            SourceKind::Counts { model } => {
                let x = XBlock::Sparse {
                    x: model.rows(src.indices()),
                    fill: None,
                };
                Ok(if self.cols.is_full(model.params.n_vars) {
                    x
                } else {
                    x.select_cols(&self.cols)
                })
            }
            SourceKind::File { matrix } => {
                // Scattered rows: read each cluster of nearby runs as one range and keep the
                // selected rows in memory, so a chunk is decoded once per block rather than
                // once per run.
                let gap = self
                    .chunk_starts
                    .as_ref()
                    .and_then(|s| s.windows(2).next().map(|w| w[1] - w[0]))
                    .unwrap_or(64);
                let mut parts = Vec::new();
                let mut group: Vec<Range<usize>> = Vec::new();
                let flush = |group: &mut Vec<Range<usize>>, parts: &mut Vec<XBlock>| {
                    if group.is_empty() {
                        return Ok::<_, Error>(());
                    }
                    let cover = group[0].start..group[group.len() - 1].end;
                    let x =
                        read_file_block(matrix, &AxisSelection::range(cover.clone()), &self.cols)?;
                    let local: Vec<usize> = group
                        .iter()
                        .flat_map(|r| r.start - cover.start..r.end - cover.start)
                        .collect();
                    parts.push(if local.len() == cover.len() {
                        x
                    } else {
                        x.take_rows(&local)
                    });
                    group.clear();
                    Ok(())
                };
                for r in src.runs() {
                    if group.last().is_some_and(|l| r.start - l.end > gap) {
                        flush(&mut group, &mut parts)?;
                    }
                    group.push(r.clone());
                }
                flush(&mut group, &mut parts)?;
                XBlock::concat(parts, n_vars)
            }
        }
    }
}

/// Rows `rows`, columns `cols` of a stored matrix: CSR stays sparse, anything else is dense.
fn read_file_block(matrix: &Matrix, rows: &AxisSelection, cols: &AxisSelection) -> Result<XBlock> {
    let numeric = || Error::usage("X is not numeric");
    match matrix.read_block(rows, cols)? {
        Block::Dense(a) => {
            let v = a.to_f64_vec().ok_or_else(numeric)?;
            Array2::from_shape_vec((rows.len(), cols.len()), v)
                .map(XBlock::Dense)
                .map_err(|e| Error::internal(e.to_string()))
        }
        Block::Sparse(c) => {
            let c = if c.format == SparseFormat::Csc {
                c.transpose_format()
            } else {
                c
            };
            Ok(XBlock::Sparse {
                x: Csr {
                    n_cols: c.shape[1],
                    indptr: c.indptr.iter().map(|&p| p as usize).collect(),
                    indices: c.indices,
                    data: c.data.to_f64_vec().ok_or_else(numeric)?,
                },
                fill: None,
            })
        }
    }
}

/// Where X comes from: an opened source and what has been applied since, in order.
#[derive(Debug, Clone)]
pub(crate) struct Lineage {
    pub source: Arc<XSource>,
    pub steps: Vec<LineageStep>,
    pub n_obs: usize,
    pub n_vars: usize,
    /// Rows per block within the memory budget.
    pub max_rows: usize,
}

impl Lineage {
    pub fn n_obs(&self) -> usize {
        self.n_obs
    }
    pub fn n_vars(&self) -> usize {
        self.n_vars
    }

    /// Rows `rows` of X with every step applied.
    pub fn block(&self, rows: Range<usize>) -> Result<XBlock> {
        self.rows_at(self.steps.len(), &AxisSelection::range(rows))
    }

    /// Rows at positions `pos` of X after the first `depth` steps.
    fn rows_at(&self, depth: usize, pos: &AxisSelection) -> Result<XBlock> {
        if depth == 0 {
            return self.source.read(pos);
        }
        match &self.steps[depth - 1] {
            LineageStep::Map(m) => {
                let x = self.rows_at(depth - 1, pos)?;
                Ok(apply_map(m, x, pos))
            }
            LineageStep::View { rows, cols } => {
                let want = rows
                    .as_ref()
                    .map_or_else(|| pos.clone(), |r| r.compose(pos));
                let width = self.width_at(depth - 1);
                let x = if want.is_empty() {
                    XBlock::Dense(Array2::zeros((0, width)))
                } else {
                    // Read every row the selection spans, window by window, keeping the
                    // selected ones: what a scan does when the view is not pushed into it.
                    let span = want.runs()[0].start..want.end();
                    let window = self.max_rows.max(1);
                    let mut parts = Vec::new();
                    let mut s = span.start;
                    while s < span.end {
                        let w = s..(s + window).min(span.end);
                        let x = self.rows_at(depth - 1, &AxisSelection::range(w.clone()))?;
                        let local: Vec<usize> = want.restrict(w.clone()).indices().collect();
                        if !local.is_empty() {
                            parts.push(x.take_rows(&local));
                        }
                        s = w.end;
                    }
                    XBlock::concat(parts, width)?
                };
                Ok(match cols {
                    Some(c) => x.select_cols(c),
                    None => x,
                })
            }
        }
    }

    /// Columns of X after the first `depth` steps.
    fn width_at(&self, depth: usize) -> usize {
        self.steps[..depth]
            .iter()
            .rev()
            .find_map(|s| match s {
                LineageStep::View { cols: Some(c), .. } => Some(c.len()),
                _ => None,
            })
            .unwrap_or(self.source.cols.len())
    }

    /// Adds an elementwise map: fused into the map before it (one sweep per block for both)
    /// when `fuse` is set and the last step is a map, else as a step of its own.
    pub fn push_map(&mut self, map: XMap, fuse: bool) {
        match self.steps.last_mut() {
            Some(LineageStep::Map(prev)) if fuse => {
                let first = std::mem::replace(prev, XMap::Log1p);
                *prev = first.then(map);
            }
            _ => self.steps.push(LineageStep::Map(map)),
        }
    }

    /// Whether a view that was not pushed into the scan sits in the lineage.
    fn viewed(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, LineageStep::View { .. }))
    }

    /// Row blocks for a pass: aligned to storage chunks when X is the scan itself, within
    /// the memory budget either way.
    pub fn blocks(&self) -> Vec<Range<usize>> {
        match (&self.source.chunk_starts, self.viewed()) {
            (Some(starts), false) => io::aligned_blocks(&self.source.rows, starts, self.max_rows),
            _ => io::even_blocks(self.n_obs, self.max_rows),
        }
    }

    /// X restricted to `rows` and `cols` (positions), decided at run time (a filter, a gene
    /// mask). With only maps since the scan, the selection goes into the scan itself, each
    /// map's per-row and per-column parameters taken along; otherwise it becomes a view.
    pub fn select(&self, rows: Option<&AxisSelection>, cols: Option<&AxisSelection>) -> Lineage {
        let mut out = self.clone();
        if let Some(r) = rows {
            out.n_obs = r.len();
        }
        if let Some(c) = cols {
            out.n_vars = c.len();
        }
        if self.viewed() {
            out.steps.push(LineageStep::View {
                rows: rows.map(|r| Arc::new(r.clone())),
                cols: cols.map(|c| Arc::new(c.clone())),
            });
            return out;
        }
        out.steps = self
            .steps
            .iter()
            .map(|s| match s {
                LineageStep::Map(m) => LineageStep::Map(m.restrict(rows, cols)),
                other => other.clone(),
            })
            .collect();
        out.source = Arc::new(XSource {
            kind: self.source.kind.clone(),
            rows: rows.map_or_else(|| self.source.rows.clone(), |r| self.source.rows.compose(r)),
            cols: cols.map_or_else(|| self.source.cols.clone(), |c| self.source.cols.compose(c)),
            chunk_starts: self.source.chunk_starts.clone(),
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> XBlock {
        // 3 x 4 with absent entries in every column but the last.
        XBlock::Sparse {
            x: Csr {
                n_cols: 4,
                indptr: vec![0, 2, 3, 5],
                indices: vec![0, 3, 1, 2, 3],
                data: vec![1.0, 4.0, 2.0, 3.0, 5.0],
            },
            fill: None,
        }
    }

    fn maps() -> (XMap, XMap, XMap) {
        let rows = XMap::ScaleRows(Arc::new(vec![9.0, 0.5, 2.0, 3.0, 7.0]));
        let cols = XMap::Standardize {
            mean: Arc::new(vec![0.1, 0.2, 0.3, 0.4]),
            sd: Arc::new(vec![1.0, 2.0, 0.5, 4.0]),
            zero_center: true,
            max_value: Some(1.5),
        };
        (rows, XMap::Log1p, cols)
    }

    /// The block through each map in turn, as unfused lineage steps apply them.
    fn one_by_one(ms: &[XMap], pos: &AxisSelection) -> Array2<f64> {
        ms.iter()
            .fold(block(), |x, m| apply_map(m, x, pos))
            .into_dense()
    }

    #[test]
    fn a_chain_in_one_sweep_equals_its_maps_one_by_one() {
        // Rows at positions 2..5 of their depth: the row factors are looked up by position.
        let pos = AxisSelection::range(2..5);
        let (rows, log, cols) = maps();
        for order in [
            vec![rows.clone(), log.clone(), cols.clone()],
            // A row scale after the fill exists: no per-column fill, so it densifies.
            vec![cols.clone(), log.clone(), rows.clone()],
            vec![log.clone(), cols.clone()],
        ] {
            let chain = order[1..]
                .iter()
                .fold(order[0].clone(), |c, m| c.then(m.clone()));
            let fused = apply_map(&chain, block(), &pos).into_dense();
            assert_eq!(fused, one_by_one(&order, &pos), "{order:?}");
        }
    }

    #[test]
    fn restricting_a_chain_restricts_every_map() {
        let (rows, log, cols) = maps();
        let chain = rows.then(log).then(cols);
        let keep_rows = AxisSelection::from_indices(&[1, 3]);
        let keep_cols = AxisSelection::from_indices(&[2]);
        let XMap::Chain(parts) = chain.restrict(Some(&keep_rows), Some(&keep_cols)) else {
            panic!("still a chain");
        };
        match (&parts[0], &parts[2]) {
            (XMap::ScaleRows(f), XMap::Standardize { mean, sd, .. }) => {
                assert_eq!(**f, vec![0.5, 3.0]);
                assert_eq!((**mean).clone(), vec![0.3]);
                assert_eq!((**sd).clone(), vec![0.5]);
            }
            other => panic!("{other:?}"),
        }
    }
}
