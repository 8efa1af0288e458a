//! Passes over X on other processes (workers of a dask.distributed cluster, through the
//! Python package). A pass that can leave the process is a [`Kernel`]: a serialisable fold
//! of row blocks into a [`Partial`] with an associative merge. The X it folds travels as a
//! [`LineageSpec`]: the source as parameters and a path, the rows and columns read, and the
//! maps and views applied since, which a worker reopens and recomputes block by block.
//!
//! ```text
//! driver: fold_kernel ── LineageSpec + Task{kernel, blocks} ──> Distributor ──> workers
//!         merge in task order <──────────── Partial per task <── run_task (fold_ranges)
//! ```
//!
//! Without a distributor, or for a lineage that cannot be described (a concatenation), the
//! same kernel folds in this process: one code path for both.

use crate::block::XBlock;
use crate::counts_check::first_non_count_row;
use crate::lineage::{Lineage, LineageStep};
use crate::maps::XMap;
use crate::physical::hvg::rows_by_batch;
use crate::source::{ScanSource, blobs, counts, file};
use engine_common::{Error, Result};
use engine_matrix::AxisSelection;
use engine_ops::expression::GroupExpression;
use engine_ops::randomized::CovProduct;
use engine_ops::sparse::{self, CellQc, ColumnSums};
use engine_ops::stats::{Gram, Moments};
use engine_plan::Source;
use engine_store::ReadCounter;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::Arc;

/// Runs a pass's tasks elsewhere (engine-py implements it over a dask client).
pub trait Distributor: Send + Sync + std::fmt::Debug {
    /// How many tasks to cut a pass into: at least one per worker thread of the cluster.
    fn tasks(&self) -> usize;

    /// Runs [`run_task`] on `lineage` (the same for every task) and each of `tasks`;
    /// returns their results in task order.
    ///
    /// # Errors
    /// When the cluster fails or a task does.
    fn run(&self, lineage: &[u8], tasks: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>>;
}

/// A source a worker can reopen: generated ones by their parameters (their rows do not
/// depend on which process computes them), files by path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum SourceSpec {
    Blobs {
        n_obs: usize,
        n_vars: usize,
        centers: usize,
        cluster_std: f64,
        seed: u64,
    },
    Counts {
        n_obs: usize,
        n_vars: usize,
        n_types: usize,
        n_batches: usize,
        library_size: f64,
        seed: u64,
    },
    File {
        path: String,
        genome: Option<String>,
        gex_only: bool,
        layer: Option<String>,
        use_raw: bool,
    },
}

impl SourceSpec {
    /// The description of a scan's source; `None` for a concatenation.
    pub(crate) fn of(source: &Source) -> Option<SourceSpec> {
        Some(match source {
            Source::Synthetic {
                n_obs,
                n_vars,
                centers,
                cluster_std,
                seed,
                ..
            } => SourceSpec::Blobs {
                n_obs: *n_obs,
                n_vars: *n_vars,
                centers: *centers,
                cluster_std: *cluster_std,
                seed: *seed,
            },
            Source::Counts {
                n_obs,
                n_vars,
                n_types,
                n_batches,
                library_size,
                seed,
            } => SourceSpec::Counts {
                n_obs: *n_obs,
                n_vars: *n_vars,
                n_types: *n_types,
                n_batches: *n_batches,
                library_size: *library_size,
                seed: *seed,
            },
            Source::File { path, options, .. } => SourceSpec::File {
                path: path.clone(),
                genome: options.genome.clone(),
                gex_only: options.gex_only,
                layer: options.layer.clone(),
                use_raw: options.use_raw,
            },
            Source::Concat(_) => return None,
        })
    }

    /// The same source for a process that may start in another directory: a local path
    /// made absolute.
    fn anywhere(mut self) -> SourceSpec {
        if let SourceSpec::File { path, .. } = &mut self {
            *path = absolute(path);
        }
        self
    }

    /// Opens the source; file reads count their bytes in `counter`.
    pub(crate) fn open(
        &self,
        chunk_starts: Option<&[usize]>,
        counter: &ReadCounter,
    ) -> Result<Arc<dyn crate::source::BlockSource>> {
        Ok(match self {
            SourceSpec::Blobs {
                n_obs,
                n_vars,
                centers,
                cluster_std,
                seed,
            } => Arc::new(blobs::BlobSource::new(engine_ops::synthetic::Blobs {
                n_obs: *n_obs,
                n_vars: *n_vars,
                centers: *centers,
                cluster_std: *cluster_std,
                seed: *seed,
            })),
            SourceSpec::Counts {
                n_obs,
                n_vars,
                n_types,
                n_batches,
                library_size,
                seed,
            } => Arc::new(counts::CountsSource::new(engine_ops::counts::Counts {
                n_obs: *n_obs,
                n_vars: *n_vars,
                n_types: *n_types,
                n_batches: *n_batches,
                library_size: *library_size,
                seed: *seed,
            })),
            SourceSpec::File {
                path,
                genome,
                gex_only,
                layer,
                use_raw,
            } => {
                let options = engine_store::ReadOptions {
                    genome: genome.clone(),
                    gex_only: *gex_only,
                    layer: layer.clone(),
                    use_raw: *use_raw,
                };
                Arc::new(file::FileSource::open(
                    path,
                    &options,
                    chunk_starts,
                    counter,
                )?)
            }
        })
    }
}

/// URLs stay as they are; local paths become absolute.
fn absolute(path: &str) -> String {
    if path.contains("://") {
        return path.to_string();
    }
    std::path::absolute(path).map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

type Runs = Vec<(usize, usize)>;

/// The first value a pass saw that is not a count, with its row.
pub(crate) type NonCount = Option<(usize, f64)>;

fn runs(s: &AxisSelection) -> Runs {
    s.runs().iter().map(|r| (r.start, r.end)).collect()
}

fn selection(r: &Runs) -> AxisSelection {
    AxisSelection::from_runs(r.iter().map(|&(a, b)| a..b).collect())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum MapSpec {
    Standardize {
        mean: Vec<f64>,
        sd: Vec<f64>,
        zero_center: bool,
        max_value: Option<f64>,
    },
    Log1p,
    ScaleRows(Vec<f64>),
    Chain(Vec<MapSpec>),
}

impl MapSpec {
    fn of(m: &XMap) -> MapSpec {
        match m {
            XMap::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            } => MapSpec::Standardize {
                mean: mean.to_vec(),
                sd: sd.to_vec(),
                zero_center: *zero_center,
                max_value: *max_value,
            },
            XMap::Log1p => MapSpec::Log1p,
            XMap::ScaleRows(f) => MapSpec::ScaleRows(f.to_vec()),
            XMap::Chain(maps) => MapSpec::Chain(maps.iter().map(MapSpec::of).collect()),
        }
    }

    fn map(self) -> XMap {
        match self {
            MapSpec::Standardize {
                mean,
                sd,
                zero_center,
                max_value,
            } => XMap::Standardize {
                mean: Arc::new(mean),
                sd: Arc::new(sd),
                zero_center,
                max_value,
            },
            MapSpec::Log1p => XMap::Log1p,
            MapSpec::ScaleRows(f) => XMap::ScaleRows(Arc::new(f)),
            MapSpec::Chain(maps) => XMap::Chain(maps.into_iter().map(MapSpec::map).collect()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum StepSpec {
    Map(MapSpec),
    View {
        rows: Option<Runs>,
        cols: Option<Runs>,
    },
}

/// X as a worker rebuilds it: [`Lineage`] without opened handles.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LineageSpec {
    source: SourceSpec,
    rows: Runs,
    cols: Runs,
    chunk_starts: Option<Vec<usize>>,
    steps: Vec<StepSpec>,
    n_obs: usize,
    n_vars: usize,
    max_rows: usize,
}

impl LineageSpec {
    /// The description of `lin`, when its source has one.
    pub(crate) fn of(lin: &Lineage) -> Option<LineageSpec> {
        let s = &lin.source;
        Some(LineageSpec {
            source: s.spec.clone()?.anywhere(),
            rows: runs(&s.rows),
            cols: runs(&s.cols),
            chunk_starts: s.chunk_starts.as_ref().map(|c| c.to_vec()),
            steps: lin
                .steps
                .iter()
                .map(|step| match step {
                    LineageStep::Map(m) => StepSpec::Map(MapSpec::of(m)),
                    LineageStep::View { rows, cols } => StepSpec::View {
                        rows: rows.as_deref().map(runs),
                        cols: cols.as_deref().map(runs),
                    },
                })
                .collect(),
            n_obs: lin.n_obs,
            n_vars: lin.n_vars,
            max_rows: lin.max_rows,
        })
    }

    /// Reopens the source and rebuilds the lineage; reads count in `counter`.
    fn open(self, counter: &ReadCounter) -> Result<Lineage> {
        let source = self.source.open(self.chunk_starts.as_deref(), counter)?;
        Ok(Lineage {
            source: Arc::new(ScanSource {
                source,
                rows: selection(&self.rows),
                cols: selection(&self.cols),
                chunk_starts: self.chunk_starts.map(Arc::new),
                // Bands save a remote scan repeated fetches; a task reads its rows once.
                bands: None,
                spec: Some(self.source),
                // A worker's task is stopped by its cluster, not by a flag.
                cancel: None,
            }),
            steps: self
                .steps
                .into_iter()
                .map(|s| match s {
                    StepSpec::Map(m) => LineageStep::Map(m.map()),
                    StepSpec::View { rows, cols } => LineageStep::View {
                        rows: rows.map(|r| Arc::new(selection(&r))),
                        cols: cols.map(|c| Arc::new(selection(&c))),
                    },
                })
                .collect(),
            n_obs: self.n_obs,
            n_vars: self.n_vars,
            max_rows: self.max_rows,
            moments: None,
        })
    }
}

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

/// One task: a kernel over some of the pass's blocks.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Task {
    pub kernel: Kernel,
    pub blocks: Vec<(usize, usize)>,
}

/// What a task returns: its partial and the bytes its reads decoded.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskResult {
    pub partial: Partial,
    pub bytes: u64,
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(v).map_err(|e| Error::internal(format!("encoding a pass task: {e}")))
}

pub(crate) fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| {
        Error::usage(format!(
            "a pass task that this engine cannot read ({e}): are the driver and the workers \
             the same version of the engine?"
        ))
    })
}

/// A worker's side: rebuilds the lineage and folds the task's blocks (on all of this
/// process's cores); returns the encoded [`TaskResult`].
///
/// # Errors
/// When the task cannot be decoded, the source cannot be opened, or a block fails.
pub fn run_task(lineage: &[u8], task: &[u8]) -> Result<Vec<u8>> {
    let spec: LineageSpec = decode(lineage)?;
    let task: Task = decode(task)?;
    let counter = ReadCounter::new();
    let lin = spec.open(&counter)?;
    let ranges: Vec<Range<usize>> = task.blocks.iter().map(|&(a, b)| a..b).collect();
    let kernel = &task.kernel;
    let partial = crate::pass::fold_ranges(
        &lin,
        &ranges,
        &indicatif::ProgressBar::hidden(),
        || kernel.init(lin.n_vars),
        |acc, r, x| kernel.apply(acc, r, x),
        Partial::merge,
    )?;
    encode(&TaskResult {
        partial,
        bytes: counter.get(),
    })
}

/// Joins two encoded task results, `b`'s blocks after `a`'s: a distributor's tree-reduce
/// on the cluster, so the driver receives one partial instead of one per task.
///
/// # Errors
/// When a result cannot be decoded.
pub fn merge_results(a: &[u8], b: &[u8]) -> Result<Vec<u8>> {
    let a: TaskResult = decode(a)?;
    let b: TaskResult = decode(b)?;
    // `Partial::merge` keeps the first of two kinds; results that cross processes are
    // checked instead of trusted.
    if std::mem::discriminant(&a.partial) != std::mem::discriminant(&b.partial) {
        return Err(Error::internal(
            "merging the results of two different passes",
        ));
    }
    encode(&TaskResult {
        partial: a.partial.merge(b.partial),
        bytes: a.bytes + b.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Gram partial crosses processes with every number kept, and merges as before.
    #[test]
    fn a_gram_partial_survives_the_wire() {
        let x = ndarray::array![[1.0, 2.0, 0.5], [3.0, -1.0, 4.0], [0.25, 0.0, 2.0]];
        let mut g = Gram::new(vec![1.0, 0.5, 2.0]);
        g.update(x.view());
        let back: Partial = decode(&encode(&Partial::Gram(g.clone())).unwrap()).unwrap();
        let back = back.gram().unwrap();
        assert_eq!((back.n, &back.shift, &back.sum), (g.n, &g.shift, &g.sum));
        for i in 0..3 {
            for j in 0..3 {
                assert_eq!(back.xtx[(i, j)], g.xtx[(i, j)]);
            }
        }
        // Its cross products, shifted: the first row and column by hand.
        let shifted = [0.0, 1.5, -1.5, 2.0, -1.5, 2.0, -0.75, -0.5, 0.0];
        let xtx00: f64 = (0..3).map(|r| shifted[r * 3] * shifted[r * 3]).sum();
        assert_eq!(g.xtx[(0, 0)], xtx00);
    }

    fn task_result(kernel: &Kernel, rows: Range<usize>, x: &ndarray::Array2<f64>) -> Vec<u8> {
        let mut partial = kernel.init(x.ncols());
        let block = XBlock::Dense(x.slice(ndarray::s![rows.clone(), ..]).to_owned());
        kernel.apply(&mut partial, rows, &block).unwrap();
        encode(&TaskResult { partial, bytes: 1 }).unwrap()
    }

    /// A randomized PCA pass cut into two tasks, each decoded from the wire and merged,
    /// equals the pass folded whole (the values are exact in binary, so every bit agrees).
    #[test]
    fn a_cov_product_cut_into_tasks_equals_the_whole_fold() {
        let x = ndarray::array![
            [1.0, 2.0, 0.5],
            [3.0, -1.0, 4.0],
            [0.25, 0.0, 2.0],
            [1.5, 1.0, -2.0]
        ];
        let kernel = Kernel::CovProduct {
            shift: Arc::new(vec![1.0, 0.5, 2.0]),
            w: Arc::new(vec![1.0, 0.0, 0.5, 1.0, -1.0, 2.0]),
        };
        let whole: TaskResult = decode(&task_result(&kernel, 0..4, &x)).unwrap();
        let merged = merge_results(
            &task_result(&kernel, 0..2, &x),
            &task_result(&kernel, 2..4, &x),
        )
        .unwrap();
        let merged: TaskResult = decode(&merged).unwrap();
        assert_eq!(merged.bytes, 2);
        let (a, b) = (
            merged.partial.cov_product().unwrap(),
            whole.partial.cov_product().unwrap(),
        );
        assert_eq!(a.n, 4);
        assert_eq!(encode(&a).unwrap(), encode(&b).unwrap());
    }

    /// Projection tasks return their rows, which come back in row order however the results
    /// were merged: onto the first two unit vectors, X_pca is X's first two columns.
    #[test]
    fn projected_rows_come_back_in_row_order() {
        let x = ndarray::array![[1.0, 2.0, 0.5], [3.0, -1.0, 4.0], [0.25, 0.0, 2.0]];
        let kernel = Kernel::Project {
            mean: vec![0.0; 3],
            scale: None,
            components: Arc::new(ndarray::array![[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]),
        };
        let merged = merge_results(
            &task_result(&kernel, 2..3, &x),
            &task_result(&kernel, 0..2, &x),
        )
        .unwrap();
        let merged: TaskResult = decode(&merged).unwrap();
        let rows = merged.partial.rows(3).unwrap();
        assert_eq!(
            rows,
            ndarray::array![[1.0f32, 2.0], [3.0, -1.0], [0.25, 0.0]]
        );
        // A result of another pass is refused, not folded in.
        let other = task_result(&Kernel::Moments, 0..3, &x);
        let err = merge_results(&task_result(&kernel, 0..3, &x), &other).unwrap_err();
        assert!(err.to_string().contains("two different passes"), "{err}");
    }

    /// Row sums from several tasks merge into row order whatever order the tasks finish in.
    #[test]
    fn row_sums_come_back_in_row_order() {
        let a = Partial::RowSums {
            blocks: vec![(4, vec![4.0, 5.0], vec![1, 1])],
            non_count: Some((5, 0.5)),
        };
        let b = Partial::RowSums {
            blocks: vec![(0, vec![0.0, 1.0, 2.0, 3.0], vec![0, 1, 1, 1])],
            non_count: Some((2, 1.5)),
        };
        let (sums, nnz, first) = a.merge(b).row_sums().unwrap();
        assert_eq!(sums, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(nnz, [0, 1, 1, 1, 1, 1]);
        assert_eq!(first, Some((2, 1.5)));
    }
}
