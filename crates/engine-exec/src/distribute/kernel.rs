//! Passes that can leave the process: a [`Kernel`] folds row blocks into a [`Partial`] with an
//! associative merge, here or on a worker.

use crate::block::XBlock;
use crate::counts_check::first_non_count_row;
use crate::physical::hvg::rows_by_batch;
use engine_common::{Error, Result};
use engine_ops::expression::GroupExpression;
use engine_ops::randomized::CovProduct;
use engine_ops::sparse::{self, CellQc, ColumnSums};
use engine_ops::stats::{Gram, Moments};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::Arc;

/// The first value a pass saw that is not a count, with its row.
pub(crate) type NonCount = Option<(usize, f64)>;

/// A pass over row blocks that can run in another process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Kernel {
    /// Per-row sums and stored values (filter_cells, normalize_total's totals), watching
    /// for values that are not counts when `check_counts`.
    RowSums { check_counts: bool },
    /// Per-column stored values and sums (filter_genes).
    ColumnSums,
    /// calculate_qc_metrics: per-cell QC (genes, total, top-gene shares, gene-set totals)
    /// and per-gene sums, watching for values that are not counts.
    Qc {
        sets: Vec<Vec<bool>>,
        percent_top: Vec<usize>,
    },
    /// Per-column mean and variance (scale).
    Moments,
    /// Per-column sums of each batch's rows (`codes`, one per row of X; `None`: one batch),
    /// of `expm1` of the values when asked or of the values clipped at each batch's `clip`
    /// (seurat_v3), then of the plain values when `plain` (highly_variable_genes with
    /// scale's moments merged into its pass; rank_genes_groups' total). Watches for values
    /// that are not counts when `check_counts`.
    BatchSums {
        codes: Option<Vec<i64>>,
        n_batches: usize,
        expm1: bool,
        clip: Option<Vec<Vec<f64>>>,
        plain: bool,
        check_counts: bool,
    },
    /// pca's Gram matrix and column sums around a shift fixed before the pass.
    Gram { shift: Vec<f64> },
    /// One pass of randomized PCA: the shifted blocks' `Bᵀ B W` and column moments.
    CovProduct {
        shift: Arc<Vec<f64>>,
        w: Arc<Vec<f64>>,
    },
    /// The values of X's columns `cols` (genes) for every row: a plot's colour, a violin's
    /// values (a map; the partial keeps block order).
    Columns { cols: Vec<usize> },
    /// A dot plot's per-group expression of `columns` (`group_of`: each row's group).
    Expression {
        columns: Vec<usize>,
        group_of: Vec<Option<usize>>,
        n_groups: usize,
        cutoff: f64,
    },
    /// Wilcoxon's values: each stored value of the genes `genes` with its row's group
    /// (`codes`; `n_groups` for a row in none), per gene in row order.
    GeneValues {
        codes: Vec<i64>,
        n_groups: u32,
        genes: (usize, usize),
        f32_values: bool,
    },
    /// pca's projection: each block's rows of X_pca (a map; the partial keeps block order).
    Project {
        mean: Vec<f64>,
        scale: Option<Vec<f64>>,
        components: Arc<ndarray::Array2<f64>>,
    },
}

/// What a kernel folded so far.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Partial {
    /// Each block's first row with its rows' sums and stored counts (in any order; sorted
    /// by [`Partial::row_sums`]), and the first value seen that is not a count.
    RowSums {
        blocks: Vec<(usize, Vec<f64>, Vec<u64>)>,
        non_count: NonCount,
    },
    ColumnSums(ColumnSums),
    /// Each block's first row with its cells' QC, the genes' sums, and the first value seen
    /// that is not a count.
    Qc {
        cells: Vec<(usize, CellQc)>,
        genes: ColumnSums,
        non_count: NonCount,
    },
    Moments(Moments),
    BatchSums {
        sums: Vec<ColumnSums>,
        non_count: NonCount,
    },
    Gram(#[serde(with = "gram_wire")] Gram),
    CovProduct(CovProduct),
    Expression(GroupExpression),
    GeneValues(Vec<Vec<(f64, u32)>>),
    /// Each block's first row with its rows (row-major, `width` values each).
    Rows {
        width: usize,
        blocks: Vec<(usize, Vec<f32>)>,
    },
}

/// A Gram partial as plain numbers (faer's matrix column by column).
mod gram_wire {
    use engine_ops::stats::Gram;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wire {
        n: u64,
        shift: Vec<f64>,
        sum: Vec<f64>,
        xtx: Vec<f64>,
    }

    pub fn serialize<S: Serializer>(g: &Gram, s: S) -> Result<S::Ok, S::Error> {
        let d = g.xtx.nrows();
        let xtx = (0..d)
            .flat_map(|j| (0..d).map(move |i| (i, j)))
            .map(|(i, j)| g.xtx[(i, j)])
            .collect();
        Wire {
            n: g.n,
            shift: g.shift.clone(),
            sum: g.sum.clone(),
            xtx,
        }
        .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Gram, D::Error> {
        let w = Wire::deserialize(d)?;
        let n = w.shift.len();
        if w.sum.len() != n || w.xtx.len() != n * n {
            return Err(serde::de::Error::custom("a Gram partial of the wrong size"));
        }
        let mut g = Gram::new(w.shift);
        g.n = w.n;
        g.sum = w.sum;
        g.xtx = faer::Mat::from_fn(n, n, |i, j| w.xtx[j * n + i]);
        Ok(g)
    }
}

impl Kernel {
    pub(crate) fn init(&self, n_vars: usize) -> Partial {
        match self {
            Kernel::RowSums { .. } => Partial::RowSums {
                blocks: Vec::new(),
                non_count: None,
            },
            Kernel::ColumnSums => Partial::ColumnSums(ColumnSums::new(n_vars)),
            Kernel::Qc { .. } => Partial::Qc {
                cells: Vec::new(),
                genes: ColumnSums::new(n_vars),
                non_count: None,
            },
            Kernel::Moments => Partial::Moments(Moments::new(n_vars)),
            Kernel::BatchSums {
                n_batches, plain, ..
            } => Partial::BatchSums {
                sums: vec![ColumnSums::new(n_vars); n_batches + usize::from(*plain)],
                non_count: None,
            },
            Kernel::Gram { shift } => Partial::Gram(Gram::new(shift.clone())),
            Kernel::CovProduct { shift, w } => {
                Partial::CovProduct(CovProduct::new(shift.clone(), w.clone()))
            }
            Kernel::Project { components, .. } => Partial::Rows {
                width: components.ncols(),
                blocks: Vec::new(),
            },
            Kernel::GeneValues { genes, .. } => {
                Partial::GeneValues(vec![Vec::new(); genes.1 - genes.0])
            }
            Kernel::Columns { cols } => Partial::Rows {
                width: cols.len(),
                blocks: Vec::new(),
            },
            Kernel::Expression {
                columns,
                n_groups,
                cutoff,
                ..
            } => Partial::Expression(GroupExpression::new(n_vars, columns, *n_groups, *cutoff)),
        }
    }

    /// Folds the block of rows `r`.
    pub(crate) fn apply(&self, acc: &mut Partial, r: Range<usize>, x: &XBlock) -> Result<()> {
        // Kernels that take dense blocks as they are.
        match (self, &mut *acc) {
            (Kernel::Moments, Partial::Moments(m)) => {
                let part = match x {
                    XBlock::Dense(d) => Moments::of_block(d.view()),
                    XBlock::Sparse { x, fill } => {
                        sparse::moments(x, fill.as_deref().map(Vec::as_slice))
                    }
                };
                *m = std::mem::replace(m, Moments::new(0)).merge(part);
                return Ok(());
            }
            (Kernel::Gram { .. }, Partial::Gram(g)) => {
                match x {
                    XBlock::Dense(d) => g.update(d.view()),
                    XBlock::Sparse { x, .. } => sparse::gram_update(g, x),
                }
                return Ok(());
            }
            (Kernel::CovProduct { .. }, Partial::CovProduct(c)) => {
                match x {
                    XBlock::Dense(d) => c.update(d.view()),
                    XBlock::Sparse { x, .. } => c.update_sparse(x),
                }
                return Ok(());
            }
            (
                Kernel::Project {
                    mean,
                    scale,
                    components,
                },
                Partial::Rows { blocks, .. },
            ) => {
                let scores = project_block(x, mean, scale.as_deref(), components);
                blocks.push((r.start, scores.iter().map(|&v| v as f32).collect()));
                return Ok(());
            }
            _ => {}
        }
        let x = x.to_csr()?;
        match (self, acc) {
            (Kernel::RowSums { check_counts }, Partial::RowSums { blocks, non_count }) => {
                if *check_counts {
                    *non_count = earliest(*non_count, first_non_count_row(r.start, &x));
                }
                let (sums, nnz) = x.row_sums_nnz();
                blocks.push((r.start, sums, nnz));
            }
            (Kernel::ColumnSums, Partial::ColumnSums(c)) => c.add(x.as_ref(), None, |v| v),
            (Kernel::Columns { cols }, Partial::Rows { blocks, .. }) => {
                blocks.push((r.start, gather_rows(&x, cols)));
            }
            (Kernel::Expression { group_of, .. }, Partial::Expression(e)) => {
                e.add(&x, &group_of[r]);
            }
            (
                Kernel::GeneValues {
                    codes,
                    n_groups,
                    genes: (lo, hi),
                    f32_values,
                },
                Partial::GeneValues(acc),
            ) => {
                let none = *n_groups;
                for (local, row) in r.enumerate() {
                    let code = u32::try_from(codes[row])
                        .ok()
                        .filter(|&c| c < none)
                        .unwrap_or(none);
                    let (idx, val) = x.row(local);
                    for (&j, &v) in idx.iter().zip(val) {
                        let k = (j as usize).wrapping_sub(*lo);
                        if k < hi - lo && v != 0.0 {
                            // scanpy ranks float32 X as float32.
                            let v = if *f32_values { f64::from(v as f32) } else { v };
                            acc[k].push((v, code));
                        }
                    }
                }
            }
            (
                Kernel::Qc { sets, percent_top },
                Partial::Qc {
                    cells,
                    genes,
                    non_count,
                },
            ) => {
                *non_count = earliest(*non_count, first_non_count_row(r.start, &x));
                cells.push((r.start, sparse::cell_qc(&x, sets, percent_top)));
                genes.add(&x, None, |v| v);
            }
            (
                Kernel::BatchSums {
                    codes,
                    n_batches,
                    expm1,
                    clip,
                    plain,
                    check_counts,
                },
                Partial::BatchSums {
                    sums: acc,
                    non_count,
                },
            ) => {
                if *check_counts {
                    *non_count = earliest(*non_count, first_non_count_row(r.start, &x));
                }
                let f = |v: f64| if *expm1 { v.exp_m1() } else { v };
                let add = |acc: &mut ColumnSums, b: usize, rows: Option<&[usize]>| match clip {
                    Some(c) => acc.add_clipped(&x, rows, &c[b]),
                    None => acc.add(&x, rows, f),
                };
                match codes {
                    None => add(&mut acc[0], 0, None),
                    Some(codes) => {
                        for (b, rows) in rows_by_batch(codes, r, *n_batches).iter().enumerate() {
                            add(&mut acc[b], b, Some(rows));
                        }
                    }
                }
                if *plain {
                    acc[*n_batches].add(&x, None, |v| v);
                }
            }
            _ => {
                return Err(Error::internal(
                    "a kernel folded into another kernel's partial",
                ));
            }
        }
        Ok(())
    }
}

/// The values of columns `cols` of every row of `x`, row-major. A row's indices need not be
/// sorted (scanpy writes raw.X unsorted).
fn gather_rows(x: &engine_matrix::Csr, cols: &[usize]) -> Vec<f32> {
    // Each column's place among `cols`, plus one.
    let mut slot = vec![0usize; x.n_cols()];
    for (k, &c) in cols.iter().enumerate() {
        slot[c] = k + 1;
    }
    let width = cols.len();
    let mut out = vec![0f32; x.n_rows() * width];
    for (i, row) in out.chunks_exact_mut(width.max(1)).enumerate() {
        let (idx, val) = x.row(i);
        for (&j, &v) in idx.iter().zip(val) {
            if let Some(k) = slot[j as usize].checked_sub(1) {
                row[k] = v as f32;
            }
        }
    }
    out
}

/// One block's principal component scores.
pub(crate) fn project_block(
    x: &XBlock,
    mean: &[f64],
    scale: Option<&[f64]>,
    components: &ndarray::Array2<f64>,
) -> ndarray::Array2<f64> {
    match x {
        XBlock::Dense(x) => engine_ops::pca::project(x.view(), mean, scale, components),
        XBlock::Sparse { x, fill } => sparse::project(
            x,
            fill.as_deref().map(Vec::as_slice),
            mean,
            scale,
            components,
        ),
    }
}

fn earliest(a: NonCount, b: NonCount) -> NonCount {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}

impl Partial {
    /// Joins two partials of one kernel (`other` folded the later blocks).
    pub(crate) fn merge(self, other: Partial) -> Partial {
        match (self, other) {
            (
                Partial::RowSums {
                    mut blocks,
                    non_count,
                },
                Partial::RowSums {
                    blocks: b,
                    non_count: n,
                },
            ) => {
                blocks.extend(b);
                Partial::RowSums {
                    blocks,
                    non_count: earliest(non_count, n),
                }
            }
            (Partial::ColumnSums(a), Partial::ColumnSums(b)) => Partial::ColumnSums(a.merge(&b)),
            (
                Partial::Qc {
                    mut cells,
                    genes,
                    non_count,
                },
                Partial::Qc {
                    cells: c,
                    genes: g,
                    non_count: n,
                },
            ) => {
                cells.extend(c);
                Partial::Qc {
                    cells,
                    genes: genes.merge(&g),
                    non_count: earliest(non_count, n),
                }
            }
            (Partial::Moments(a), Partial::Moments(b)) => Partial::Moments(a.merge(b)),
            (Partial::Gram(a), Partial::Gram(b)) => Partial::Gram(a.merge(&b)),
            (
                Partial::BatchSums { sums, non_count },
                Partial::BatchSums {
                    sums: b,
                    non_count: n,
                },
            ) => Partial::BatchSums {
                sums: sums.into_iter().zip(&b).map(|(x, y)| x.merge(y)).collect(),
                non_count: earliest(non_count, n),
            },
            (Partial::CovProduct(a), Partial::CovProduct(b)) => Partial::CovProduct(a.merge(b)),
            (Partial::Expression(a), Partial::Expression(b)) => Partial::Expression(a.merge(&b)),
            (Partial::GeneValues(mut a), Partial::GeneValues(b)) => {
                for (x, y) in a.iter_mut().zip(b) {
                    x.extend(y);
                }
                Partial::GeneValues(a)
            }
            (Partial::Rows { width, mut blocks }, Partial::Rows { blocks: b, .. }) => {
                blocks.extend(b);
                Partial::Rows { width, blocks }
            }
            // Kernels never mix: `fold_kernel` merges the partials of one kernel.
            (a, _) => a,
        }
    }

    /// Row sums and stored counts in row order, and the first value not a count.
    pub(crate) fn row_sums(self) -> Result<(Vec<f64>, Vec<u64>, NonCount)> {
        let Partial::RowSums {
            mut blocks,
            non_count,
        } = self
        else {
            return Err(Error::internal("expected row sums"));
        };
        blocks.sort_by_key(|b| b.0);
        let mut sums = Vec::new();
        let mut nnz = Vec::new();
        for (_, s, n) in blocks {
            sums.extend(s);
            nnz.extend(n);
        }
        Ok((sums, nnz, non_count))
    }

    /// The cells' QC in row order, the genes' sums, and the first value not a count.
    pub(crate) fn qc(self) -> Result<(CellQc, ColumnSums, NonCount)> {
        let Partial::Qc {
            mut cells,
            genes,
            non_count,
        } = self
        else {
            return Err(Error::internal("expected QC metrics"));
        };
        cells.sort_by_key(|c| c.0);
        let mut q = CellQc::default();
        for (_, c) in cells {
            q.n_genes.extend(c.n_genes);
            q.total.extend(c.total);
            q.pct_top.extend(c.pct_top);
            q.set_totals.extend(c.set_totals);
        }
        Ok((q, genes, non_count))
    }

    /// Per-batch column sums (then the plain values' when asked), and the first value not
    /// a count.
    pub(crate) fn batch_sums(self) -> Result<(Vec<ColumnSums>, NonCount)> {
        match self {
            Partial::BatchSums { sums, non_count } => Ok((sums, non_count)),
            _ => Err(Error::internal("expected per-batch column sums")),
        }
    }

    pub(crate) fn cov_product(self) -> Result<CovProduct> {
        match self {
            Partial::CovProduct(c) => Ok(c),
            _ => Err(Error::internal("expected a randomized PCA product")),
        }
    }

    pub(crate) fn gene_values(self) -> Result<Vec<Vec<(f64, u32)>>> {
        match self {
            Partial::GeneValues(v) => Ok(v),
            _ => Err(Error::internal("expected gene values")),
        }
    }

    pub(crate) fn expression(self) -> Result<GroupExpression> {
        match self {
            Partial::Expression(e) => Ok(e),
            _ => Err(Error::internal("expected per-group expression")),
        }
    }

    /// A map's rows as columns: `width` vectors of `n_rows` values, each block freed once
    /// copied (a gather's working set is bounded by its budget).
    pub(crate) fn columns(self, n_rows: usize) -> Result<Vec<Vec<f32>>> {
        let Partial::Rows { width, mut blocks } = self else {
            return Err(Error::internal("expected rows"));
        };
        blocks.sort_by_key(|b| b.0);
        let mut columns = vec![Vec::with_capacity(n_rows); width];
        for (_, values) in blocks {
            for row in values.chunks_exact(width.max(1)) {
                for (column, &v) in columns.iter_mut().zip(row) {
                    column.push(v);
                }
            }
        }
        if columns.iter().any(|c| c.len() != n_rows) {
            return Err(Error::internal("a gather's rows do not cover X"));
        }
        Ok(columns)
    }

    /// The rows of a map, in row order (`n_rows × width`).
    pub(crate) fn rows(self, n_rows: usize) -> Result<ndarray::Array2<f32>> {
        let Partial::Rows { width, mut blocks } = self else {
            return Err(Error::internal("expected rows"));
        };
        blocks.sort_by_key(|b| b.0);
        let values: Vec<f32> = blocks.into_iter().flat_map(|(_, v)| v).collect();
        ndarray::Array2::from_shape_vec((n_rows, width), values)
            .map_err(|e| Error::internal(format!("a map's rows do not cover X: {e}")))
    }

    pub(crate) fn gram(self) -> Result<Gram> {
        match self {
            Partial::Gram(g) => Ok(g),
            _ => Err(Error::internal("expected a Gram matrix")),
        }
    }

    pub(crate) fn moments(self) -> Result<Moments> {
        match self {
            Partial::Moments(m) => Ok(m),
            _ => Err(Error::internal("expected column moments")),
        }
    }

    pub(crate) fn column_sums(self) -> Result<ColumnSums> {
        match self {
            Partial::ColumnSums(c) => Ok(c),
            _ => Err(Error::internal("expected column sums")),
        }
    }
}
