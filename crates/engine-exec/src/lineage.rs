//! X as a lineage: an opened source with the rows and columns a scan reads, then the
//! elementwise maps and unpushed views applied since, in order. Nothing is materialised:
//! any row block of X is recomputed from the source on demand, so passes stream.

use crate::block::XBlock;
use crate::maps::{XMap, apply_map};
use crate::source::ScanSource;
use engine_common::Result;
use engine_matrix::AxisSelection;
use engine_plan::io;
use ndarray::Array2;
use std::ops::Range;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub(crate) enum LineageStep {
    Map(XMap),
    /// A view that was not pushed into the scan: reads the rows it spans, then selects.
    View {
        rows: Option<Arc<AxisSelection>>,
        cols: Option<Arc<AxisSelection>>,
    },
}

/// Where X comes from: an opened source and what has been applied since, in order.
#[derive(Debug, Clone)]
pub(crate) struct Lineage {
    pub source: Arc<ScanSource>,
    pub steps: Vec<LineageStep>,
    pub n_obs: usize,
    pub n_vars: usize,
    /// Rows per block within the memory budget.
    pub max_rows: usize,
    /// Column means and variances (ddof 1) of this X, when a pass computed them on the way
    /// (`merge_passes`: the HVG pass for the `scale` that reads its output). Any map or row
    /// selection makes them stale, so those drop them.
    pub moments: Option<Arc<ColumnMoments>>,
}

/// Per-column means and variances.
pub(crate) type ColumnMoments = (Vec<f64>, Vec<f64>);

impl Lineage {
    pub fn n_obs(&self) -> usize {
        self.n_obs
    }
    pub fn n_vars(&self) -> usize {
        self.n_vars
    }

    /// The values this X stores, when the source can count them without reading X (a CSR
    /// file's row pointers) and every step keeps sparse values where they are (log1p and row
    /// scales do; `scale` fills, views were not pushed).
    pub fn stored_nnz(&self) -> Result<Option<u64>> {
        if !self
            .steps
            .iter()
            .all(|s| matches!(s, LineageStep::Map(m) if keeps(m)))
        {
            return Ok(None);
        }
        let s = &self.source;
        s.source.stored_nnz(&s.rows, &s.cols)
    }

    /// Whether X's blocks are sparse without a fill, when known without reading X: the
    /// source says, and every step since keeps values where they are (views do too).
    pub fn is_sparse(&self) -> Option<bool> {
        self.steps
            .iter()
            .all(|s| match s {
                LineageStep::Map(m) => keeps(m),
                LineageStep::View { .. } => true,
            })
            .then(|| self.source.source.sparse())
            .flatten()
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

    /// Keeps the column moments true of X restricted to `rows` × `cols`: a row selection
    /// changes every column's moments, a column selection only which columns there are.
    pub fn restrict_moments(&mut self, rows: Option<&AxisSelection>, cols: Option<&AxisSelection>) {
        if rows.is_some() {
            self.moments = None;
        }
        if let (Some(c), Some(m)) = (cols, self.moments.take()) {
            let take = |v: &[f64]| c.indices().map(|j| v[j]).collect();
            self.moments = Some(Arc::new((take(&m.0), take(&m.1))));
        }
    }

    /// Adds an elementwise map: fused into the map before it (one sweep per block for both)
    /// when `fuse` is set and the last step is a map, else as a step of its own.
    pub fn push_map(&mut self, map: XMap, fuse: bool) {
        self.moments = None;
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
        out.restrict_moments(rows, cols);
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
        out.source = Arc::new(self.source.select(rows, cols));
        out
    }
}

/// Whether a map keeps sparse values where they are (zeros stay zero, nothing fills).
fn keeps(m: &XMap) -> bool {
    match m {
        XMap::Log1p | XMap::ScaleRows(_) => true,
        XMap::Chain(maps) => maps.iter().all(keeps),
        XMap::Standardize { .. } => false,
    }
}
