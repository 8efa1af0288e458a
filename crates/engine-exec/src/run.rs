use crate::lineage::{Lineage, LineageStep, SourceKind, XBlock, XMap, XSource};
use engine_common::{Error, Location, Result};
use engine_matrix::AxisSelection;
use engine_matrix::{Block, Compressed, DynArray};
use engine_ops::randomized::{self, CovProduct, Randomized};
use engine_ops::sparse::{self, ColumnSums};
use engine_ops::stats::{Gram, Moments};
use engine_ops::synthetic::Blobs;
use engine_ops::{hvg, knn, leiden, pca, umap};
use engine_plan::{GRAM_MAX_VARS, LogicalPlan, NodeId, Op, ScaleParams, Source, SvdSolver, io};
use engine_store::backend::{ArrayOptions, Compression, StoreFormat};
use engine_store::write::{self, AtomicTarget};
use engine_store::{Column, Dataset, Frame, Value};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array1, Array2, Axis, CowArray, Ix2, s};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// How to run.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Bytes of X blocks in flight across all workers.
    pub memory_limit: usize,
    pub overwrite: bool,
    /// Draw a progress bar on stderr for passes over X.
    pub progress: bool,
    /// Evaluates `where` predicates over columns computed in the pipeline.
    pub predicates: Arc<dyn engine_plan::Predicates>,
    /// Hands memory freed by the previous stage back to the system; called on every thread
    /// before each stage (the allocator is the binary's choice).
    pub release_memory: Option<fn()>,
}

impl ExecOptions {
    /// Returns freed memory to the system on every thread, so scratch just dropped does not
    /// count in what comes next.
    fn release_freed(&self) {
        if let Some(release) = self.release_memory {
            release();
            rayon::broadcast(|_| release());
        }
    }
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            memory_limit: 256 << 20,
            overwrite: true,
            progress: false,
            predicates: Arc::new(engine_plan::NoPredicates),
            release_memory: None,
        }
    }
}

/// What one stage did.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub name: String,
    pub seconds: f64,
    pub blocks: usize,
    /// Bytes of matrix data decoded from storage (values, indices and row pointers).
    pub bytes: u64,
    /// The process's peak resident memory once the stage finished, in KiB (Linux).
    pub peak_rss_kib: Option<u64>,
}

/// Peak resident set size of this process so far, in KiB, where the OS reports it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub stages: Vec<StageReport>,
    pub outputs: Vec<String>,
}

/// A bar over a pass's blocks on stderr, or a hidden one.
fn progress(opts: &ExecOptions, label: &str, blocks: usize) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(blocks as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>24} [{bar:40}] {pos}/{len} blocks, {elapsed} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_string());
    bar
}

fn workers() -> usize {
    rayon::current_num_threads().max(1)
}

/// Folds `f` over row blocks in parallel and merges the partials.
fn fold_pass<P: Send>(
    lineage: &Lineage,
    bar: &ProgressBar,
    init: impl Fn() -> P + Sync + Send,
    f: impl Fn(&mut P, Range<usize>, &XBlock) -> Result<()> + Sync + Send,
    merge: impl Fn(P, P) -> P + Sync + Send,
) -> Result<(P, usize)> {
    let ranges = lineage.blocks();
    let n = ranges.len();
    // One accumulator per worker over a contiguous share of the blocks: rayon's own fold
    // would create an accumulator per split, and a Gram partial is n_vars² doubles.
    let workers = rayon::current_num_threads().max(1);
    let share = n.div_ceil(workers).max(1);
    let partials: Vec<P> = ranges
        .par_chunks(share)
        .map(|group| -> Result<P> {
            let mut acc = init();
            for r in group {
                let x = lineage.block(r.clone())?;
                f(&mut acc, r.clone(), &x)?;
                bar.inc(1);
            }
            Ok(acc)
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let out = partials.into_iter().reduce(&merge).unwrap_or_else(&init);
    Ok((out, n))
}

/// Per-node results that are not X.
#[derive(Debug, Clone)]
struct Annotations {
    obs: Frame,
    var: Frame,
    /// Embeddings we compute are float32, as scanpy stores X_pca for float32 data; those read
    /// from the input keep their stored type and layout.
    obsm: BTreeMap<String, Arc<Block>>,
    varm: BTreeMap<String, Arc<Block>>,
    /// Shared: a node with two consumers (a plot and the next step) hands both the same
    /// graph instead of a copy.
    obsp: BTreeMap<String, Arc<Compressed>>,
    uns: BTreeMap<String, Value>,
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
        }
    }
}

impl Annotations {
    /// The view `adata[rows, cols]` of everything but X.
    fn select(&mut self, rows: Option<&AxisSelection>, cols: Option<&AxisSelection>) {
        if let Some(r) = rows {
            let pos: Vec<usize> = r.indices().collect();
            self.obs = self.obs.take(&pos);
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
            for v in self.varm.values_mut() {
                let all = AxisSelection::all(v.shape().get(1).copied().unwrap_or(1));
                *v = Arc::new(v.select(c, &all));
            }
        }
    }
}

/// Sets a dataframe column, replacing one of the same name in place.
fn set_column(f: &mut Frame, name: &str, c: Column) {
    match f.columns.iter_mut().find(|(n, _)| n == name) {
        Some((_, old)) => *old = c,
        None => f.columns.push((name.to_string(), c)),
    }
}

/// A float column, float32 when scanpy keeps X's float32 in it.
fn float_column(v: &[f64], f32_out: bool) -> Column {
    if f32_out {
        Column::Plain(DynArray::F32(
            Array1::from_iter(v.iter().map(|&x| x as f32)).into_dyn(),
        ))
    } else {
        Column::Plain(DynArray::F64(Array1::from(v.to_vec()).into_dyn()))
    }
}

/// A boolean dataframe column as a mask.
fn bool_column(f: &Frame, name: &str) -> Result<Vec<bool>> {
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

/// The median of the positive values (normalize_total's default target), 0 without any.
fn median_positive(v: &[f64]) -> f64 {
    let p: Vec<f64> = v.iter().copied().filter(|x| *x > 0.0).collect();
    if p.is_empty() {
        0.0
    } else {
        engine_ops::stats::median(&p)
    }
}

/// Runs `f` on every block in parallel; results in block order.
fn map_pass<T: Send>(
    lineage: &Lineage,
    bar: &ProgressBar,
    f: impl Fn(Range<usize>, &XBlock) -> Result<T> + Sync + Send,
) -> Result<(Vec<T>, usize)> {
    fold_pass(
        lineage,
        bar,
        Vec::new,
        |acc, r, x| {
            acc.push(f(r, x)?);
            Ok(())
        },
        |mut a, b| {
            a.extend(b);
            a
        },
    )
}

/// `calculate_qc_metrics`: one pass for per-cell metrics and per-gene sums.
#[allow(clippy::too_many_arguments)]
fn qc_metrics(
    lin: &Lineage,
    a: &mut Annotations,
    qc_vars: &[engine_plan::QcVar],
    percent_top: &[usize],
    log1p: bool,
    f32_out: bool,
    opts: &ExecOptions,
    step: &str,
) -> Result<usize> {
    let names: Vec<String> = (0..a.var.n_rows()).map(|i| a.var.index.render(i)).collect();
    let mut sets = Vec::new();
    for q in qc_vars {
        let mask = match &q.prefixes {
            Some(prefixes) => {
                let m: Vec<bool> = names
                    .iter()
                    .map(|n| prefixes.iter().any(|p| n.starts_with(p.as_str())))
                    .collect();
                set_column(
                    &mut a.var,
                    &q.name,
                    Column::Plain(DynArray::Bool(Array1::from(m.clone()).into_dyn())),
                );
                m
            }
            None => bool_column(&a.var, &q.name)?,
        };
        sets.push(mask);
    }
    let bar = progress(opts, &format!("{step}: QC metrics"), lin.blocks().len());
    let ((cells, genes), blocks) = fold_pass(
        lin,
        &bar,
        || (Vec::new(), ColumnSums::new(lin.n_vars())),
        |(cells, genes): &mut (Vec<(usize, sparse::CellQc)>, ColumnSums), r, x| {
            let x = x.to_csr()?;
            cells.push((r.start, sparse::cell_qc(&x, &sets, percent_top)));
            genes.add(&x, None, |v| v);
            Ok(())
        },
        |(mut ca, ga), (cb, gb)| {
            ca.extend(cb);
            (ca, ga.merge(&gb))
        },
    )?;
    let mut q = sparse::CellQc::default();
    for (_, c) in cells {
        q.n_genes.extend(c.n_genes);
        q.total.extend(c.total);
        q.pct_top.extend(c.pct_top);
        q.set_totals.extend(c.set_totals);
    }
    let ln = |v: &[f64]| v.iter().map(|x| x.ln_1p()).collect::<Vec<f64>>();
    let n_genes: Vec<f64> = q.n_genes.iter().map(|&n| n as f64).collect();
    let obs = &mut a.obs;
    set_column(
        obs,
        "n_genes_by_counts",
        Column::Plain(DynArray::I32(
            Array1::from_iter(q.n_genes.iter().map(|&n| n as i32)).into_dyn(),
        )),
    );
    if log1p {
        set_column(
            obs,
            "log1p_n_genes_by_counts",
            float_column(&ln(&n_genes), false),
        );
    }
    set_column(obs, "total_counts", float_column(&q.total, f32_out));
    if log1p {
        set_column(
            obs,
            "log1p_total_counts",
            float_column(&ln(&q.total), f32_out),
        );
    }
    for (k, n) in percent_top.iter().enumerate() {
        let v: Vec<f64> = q.pct_top.iter().map(|p| p[k]).collect();
        set_column(
            obs,
            &format!("pct_counts_in_top_{n}_genes"),
            float_column(&v, false),
        );
    }
    for (s, qv) in qc_vars.iter().enumerate() {
        let t: Vec<f64> = q.set_totals.iter().map(|t| t[s]).collect();
        set_column(
            obs,
            &format!("total_counts_{}", qv.name),
            float_column(&t, f32_out),
        );
        if log1p {
            set_column(
                obs,
                &format!("log1p_total_counts_{}", qv.name),
                float_column(&ln(&t), f32_out),
            );
        }
        let pct: Vec<f64> = t.iter().zip(&q.total).map(|(s, t)| s / t * 100.0).collect();
        set_column(
            obs,
            &format!("pct_counts_{}", qv.name),
            float_column(&pct, f32_out),
        );
    }
    let n = lin.n_obs().max(1) as f64;
    let mean = genes.mean();
    let var = &mut a.var;
    set_column(
        var,
        "n_cells_by_counts",
        Column::Plain(DynArray::I64(
            Array1::from_iter(genes.nnz.iter().map(|&c| c as i64)).into_dyn(),
        )),
    );
    set_column(var, "mean_counts", float_column(&mean, f32_out));
    if log1p {
        set_column(var, "log1p_mean_counts", float_column(&ln(&mean), f32_out));
    }
    let dropout: Vec<f64> = genes
        .nnz
        .iter()
        .map(|&c| (1.0 - c as f64 / n) * 100.0)
        .collect();
    set_column(var, "pct_dropout_by_counts", float_column(&dropout, false));
    set_column(var, "total_counts", float_column(&genes.sum, f32_out));
    if log1p {
        set_column(
            var,
            "log1p_total_counts",
            float_column(&ln(&genes.sum), f32_out),
        );
    }
    Ok(blocks)
}

/// Column means and variances (ddof 1) of a step's input, computed in that step's pass for a
/// `scale` reading its output (`merge_passes`).
type ColumnMoments = (Vec<f64>, Vec<f64>);

/// `highly_variable_genes`: one pass for per-gene sums (per batch with a batch key), then the
/// selection on the gene statistics. With `column_moments` the pass also sums the values
/// themselves over all cells, returned for every gene.
fn highly_variable(
    lin: &Lineage,
    a: &mut Annotations,
    h: &engine_plan::HvgParams,
    opts: &ExecOptions,
    step: &str,
) -> Result<(usize, Option<ColumnMoments>)> {
    if h.flavor == "seurat_v3" {
        return Ok((highly_variable_v3(lin, a, h, opts, step)?, None));
    }
    let flavor = match h.flavor.as_str() {
        "cell_ranger" => hvg::Flavor::CellRanger,
        _ => hvg::Flavor::Seurat,
    };
    let cutoff = match h.n_top_genes {
        Some(n) => hvg::Cutoff::Top(n),
        None => hvg::Cutoff::Bounds {
            min_disp: h.min_disp,
            max_disp: h.max_disp,
            min_mean: h.min_mean,
            max_mean: h.max_mean,
        },
    };
    let (codes, n_batches) = batch_codes(a, h, lin.n_obs(), step)?;
    let expm1 = flavor == hvg::Flavor::Seurat;
    let bar = progress(
        opts,
        &format!("{step}: gene statistics"),
        lin.blocks().len(),
    );
    // One accumulator per batch, then (with column moments) one of the plain values.
    let n_sums = n_batches + usize::from(h.column_moments);
    let (sums, blocks) = fold_pass(
        lin,
        &bar,
        || vec![ColumnSums::new(lin.n_vars()); n_sums],
        |acc, r, x| {
            let x = x.to_csr()?;
            let f = |v: f64| if expm1 { v.exp_m1() } else { v };
            if n_batches == 1 {
                acc[0].add(&x, None, f);
            } else {
                for (b, rows) in rows_by_batch(&codes, r, n_batches).iter().enumerate() {
                    acc[b].add(&x, Some(rows), f);
                }
            }
            if h.column_moments {
                acc[n_batches].add(&x, None, |v| v);
            }
            Ok(())
        },
        |a, b| a.into_iter().zip(&b).map(|(x, y)| x.merge(y)).collect(),
    )?;
    let moments = h
        .column_moments
        .then(|| (sums[n_batches].mean(), sums[n_batches].var()));
    let sums = &sums[..n_batches];
    let err = |e: String| Error::usage(format!("step `{step}`: {e}"));
    let result = if h.batch_key.is_none() {
        let s = &sums[0];
        hvg::single_batch(&s.mean(), &s.var(), None, flavor, h.n_bins, cutoff).map_err(err)?
    } else {
        let per_batch = sums
            .iter()
            .filter(|s| s.n > 0)
            .map(|s| {
                let expressed: Vec<bool> = s.nnz.iter().map(|&c| c > 0).collect();
                hvg::single_batch(
                    &s.mean(),
                    &s.var(),
                    Some(&expressed),
                    flavor,
                    h.n_bins,
                    cutoff,
                )
            })
            .collect::<std::result::Result<Vec<_>, String>>()
            .map_err(err)?;
        let names: Vec<String> = (0..a.var.n_rows()).map(|i| a.var.index.render(i)).collect();
        hvg::combine_batches(&per_batch, cutoff, Some(&names))
    };
    let var = &mut a.var;
    set_column(
        var,
        "highly_variable",
        Column::Plain(DynArray::Bool(
            Array1::from(result.highly_variable.clone()).into_dyn(),
        )),
    );
    set_column(var, "means", float_column(&result.means, false));
    set_column(var, "dispersions", float_column(&result.dispersions, false));
    set_column(
        var,
        "dispersions_norm",
        float_column(&result.dispersions_norm, true),
    );
    if let Some(nb) = &result.nbatches {
        set_column(
            var,
            "highly_variable_nbatches",
            Column::Plain(DynArray::I64(Array1::from(nb.clone()).into_dyn())),
        );
        let all = sums.iter().filter(|s| s.n > 0).count() as i64;
        set_column(
            var,
            "highly_variable_intersection",
            Column::Plain(DynArray::Bool(
                Array1::from_iter(nb.iter().map(|&c| c == all)).into_dyn(),
            )),
        );
    }
    a.uns.insert(
        "hvg".into(),
        dict(vec![("flavor", Value::String(h.flavor.clone()))]),
    );
    Ok((blocks, moments))
}

/// Batch codes per cell and the number of batches; one batch without a key.
fn batch_codes(
    a: &Annotations,
    h: &engine_plan::HvgParams,
    n_obs: usize,
    step: &str,
) -> Result<(Vec<i64>, usize)> {
    match &h.batch_key {
        Some(key) => match a.obs.column(key) {
            Some(Column::Categorical {
                codes, categories, ..
            }) => {
                let c = codes
                    .to_i64_vec()
                    .ok_or_else(|| Error::internal("categorical codes are not integers"))?;
                Ok((c, categories.len()))
            }
            _ => Err(Error::usage(format!(
                "step `{step}`: batch_key obs['{key}'] must be categorical"
            ))),
        },
        None => Ok((vec![0; n_obs], 1)),
    }
}

/// Local rows of a block per batch.
fn rows_by_batch(codes: &[i64], rows: Range<usize>, n_batches: usize) -> Vec<Vec<usize>> {
    let mut by_batch: Vec<Vec<usize>> = vec![Vec::new(); n_batches];
    for (local, row) in rows.enumerate() {
        if let Ok(b) = usize::try_from(codes[row]) {
            by_batch[b].push(local);
        }
    }
    by_batch
}

/// `flavor="seurat_v3"` on counts: per batch, the mean and variance (one pass), a LOESS of
/// log variance on log mean giving each gene's expected spread, then the variance of the
/// counts clipped at `mean + sqrt(n) · sd` in units of that spread (a second pass); genes
/// are ranked per batch and picked by median rank.
fn highly_variable_v3(
    lin: &Lineage,
    a: &mut Annotations,
    h: &engine_plan::HvgParams,
    opts: &ExecOptions,
    step: &str,
) -> Result<usize> {
    let (codes, n_batches) = batch_codes(a, h, lin.n_obs(), step)?;
    let n_vars = lin.n_vars();
    let per_batch = |acc: &mut Vec<ColumnSums>,
                     r: Range<usize>,
                     x: &XBlock,
                     clip: Option<&[Vec<f64>]>|
     -> Result<()> {
        let x = x.to_csr()?;
        for (b, rows) in rows_by_batch(&codes, r, n_batches).iter().enumerate() {
            match clip {
                None => acc[b].add(&x, Some(rows), |v| v),
                Some(c) => acc[b].add_clipped(&x, Some(rows), &c[b]),
            }
        }
        Ok(())
    };
    // Per-batch column sums of the counts, clipped when clips are given.
    let pass = |label: &str, clip: Option<&[Vec<f64>]>| {
        fold_pass(
            lin,
            &progress(opts, &format!("{step}: {label}"), lin.blocks().len()),
            || vec![ColumnSums::new(n_vars); n_batches],
            |acc, r, x| per_batch(acc, r, x, clip),
            |a: Vec<ColumnSums>, b| a.into_iter().zip(&b).map(|(x, y)| x.merge(y)).collect(),
        )
    };
    let (sums, blocks) = pass("gene statistics", None)?;
    // Per-batch means and variances as scanpy computes them: from the sums without a batch
    // key, by its Welford kernel over the rows in order with one (a sequential pass).
    let mut batch_stats: Vec<(Vec<f64>, Vec<f64>)> =
        sums.iter().map(|s| (s.mean(), s.var())).collect();
    let mut welford_blocks = 0;
    if h.batch_key.is_some() {
        let mut acc = vec![sparse::Welford::new(n_vars); n_batches];
        let bar = progress(
            opts,
            &format!("{step}: batch statistics"),
            lin.blocks().len(),
        );
        for r in lin.blocks() {
            let x = lin.block(r.clone())?;
            let x = x.to_csr()?;
            for (b, rows) in rows_by_batch(&codes, r, n_batches).iter().enumerate() {
                acc[b].add(&x, rows);
            }
            bar.inc(1);
            welford_blocks += 1;
        }
        bar.finish_and_clear();
        batch_stats = acc.iter().map(sparse::Welford::mean_var).collect();
    }
    // Batches without cells are skipped, as scanpy iterates over the batches present.
    let present: Vec<usize> = (0..n_batches).filter(|&b| sums[b].n > 0).collect();
    let err = |e: String| Error::usage(format!("step `{step}`: {e}"));
    let mut clip = vec![vec![f64::INFINITY; n_vars]; n_batches];
    let mut reg_std = vec![Vec::new(); n_batches];
    for &b in &present {
        let (mean, var) = (&batch_stats[b].0, &batch_stats[b].1);
        let sd = hvg::seurat_v3_reg_std(mean, var, h.span).map_err(err)?;
        let root_n = (sums[b].n as f64).sqrt();
        clip[b] = (0..n_vars).map(|j| sd[j] * root_n + mean[j]).collect();
        reg_std[b] = sd;
    }
    let (clipped, more) = pass("clipped variances", Some(&clip))?;
    let norm_vars: Vec<Vec<f64>> = present
        .iter()
        .map(|&b| {
            hvg::seurat_v3_norm_var(
                &batch_stats[b].0,
                &reg_std[b],
                sums[b].n as usize,
                &clipped[b].sum,
                &clipped[b].sumsq,
            )
        })
        .collect();
    let n_top = h.n_top_genes.unwrap_or(2000);
    let result = hvg::seurat_v3_select(&norm_vars, n_top);
    let all = sums
        .iter()
        .skip(1)
        .fold(sums[0].clone(), |acc, s| acc.merge(s));
    let var = &mut a.var;
    set_column(
        var,
        "highly_variable",
        Column::Plain(DynArray::Bool(
            Array1::from(result.highly_variable).into_dyn(),
        )),
    );
    set_column(
        var,
        "highly_variable_rank",
        Column::Plain(DynArray::F32(Array1::from(result.rank).into_dyn())),
    );
    set_column(var, "means", float_column(&all.mean(), false));
    set_column(var, "variances", float_column(&all.var(), false));
    set_column(
        var,
        "variances_norm",
        float_column(&result.variances_norm, false),
    );
    if h.batch_key.is_some() {
        set_column(
            var,
            "highly_variable_nbatches",
            Column::Plain(DynArray::I64(Array1::from(result.nbatches).into_dyn())),
        );
    }
    a.uns.insert(
        "hvg".into(),
        dict(vec![("flavor", Value::String(h.flavor.clone()))]),
    );
    Ok(blocks + welford_blocks + more)
}

/// A categorical column with named categories.
fn named_categorical(codes: &[u32], names: impl Iterator<Item = String>) -> Column {
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

fn f64_array(v: &[f64]) -> Value {
    Value::Array(DynArray::F64(Array1::from(v.to_vec()).into_dyn()))
}

/// The obsm matrix (and leading columns) `neighbors` built its graph on, as recorded in
/// `uns['neighbors']['params']`; `None` when there is none.
fn umap_representation<'a>(
    uns: &BTreeMap<String, Value>,
    obsm: &'a BTreeMap<String, Arc<Block>>,
) -> Result<Option<(CowArray<'a, f32, Ix2>, usize)>> {
    let params = match uns.get("neighbors") {
        Some(Value::Dict(d)) => match d.get("params") {
            Some(Value::Dict(p)) => Some(p),
            _ => None,
        },
        _ => None,
    };
    let use_rep = match params.and_then(|p| p.get("use_rep")) {
        Some(Value::String(r)) => r.as_str(),
        _ => "X_pca",
    };
    let n_pcs = match params.and_then(|p| p.get("n_pcs")) {
        Some(Value::Scalar(v)) => v.to_i64_vec().and_then(|v| v.first().copied()),
        _ => None,
    };
    Ok(match obsm.get(use_rep) {
        Some(rep) => {
            let rep = embedding(rep, use_rep)?;
            let cols = n_pcs.map_or(rep.ncols(), |n| (n.max(0) as usize).min(rep.ncols()));
            Some((rep, cols))
        }
        None => None,
    })
}

/// Reads the obsm/varm/obsp/uns elements of a file that the scan keeps, restricted to its
/// rows and columns as a view would be.
fn load_elements(
    ds: &Dataset,
    schema: &engine_plan::Schema,
    scan: &engine_plan::Scan,
    rows: &AxisSelection,
    cols: &AxisSelection,
    a: &mut Annotations,
) -> Result<()> {
    let wanted = |p: &str| {
        scan.elements
            .as_ref()
            .is_none_or(|e| e.iter().any(|x| x == p))
    };
    let all = |m: &engine_store::Matrix| AxisSelection::all(m.n_cols());
    for (k, _) in &schema.obsm {
        let path = format!("obsm/{k}");
        if wanted(&path) {
            let m = ds.matrix(&path)?;
            a.obsm
                .insert(k.clone(), Arc::new(m.read_block(rows, &all(&m))?));
        }
    }
    for (k, _) in &schema.varm {
        let path = format!("varm/{k}");
        if wanted(&path) {
            let m = ds.matrix(&path)?;
            a.varm
                .insert(k.clone(), Arc::new(m.read_block(cols, &all(&m))?));
        }
    }
    for k in &schema.obsp {
        let path = format!("obsp/{k}");
        if wanted(&path) {
            let graph = match ds.matrix(&path)?.read_block(rows, rows)? {
                Block::Sparse(c) => c,
                Block::Dense(_) => {
                    return Err(Error::unsupported(
                        Location::new(ds.path(), format!("/{path}")),
                        "a dense obsp matrix (expected CSR or CSC)",
                    ));
                }
            };
            a.obsp.insert(k.clone(), Arc::new(graph));
        }
    }
    for k in &schema.uns {
        let path = format!("uns/{k}");
        if wanted(&path) {
            a.uns.insert(
                k.clone(),
                engine_store::encoding::read_value(ds.store().as_ref(), &path)?,
            );
        }
    }
    Ok(())
}

/// A plot's colours, owned.
enum Colours {
    Groups(Vec<u32>, Vec<String>),
    Values(Vec<f64>),
}

/// How scanpy colours by an obs column: categories (and booleans and strings, which it
/// makes categorical) by group, numbers on a continuous scale; missing values apart.
fn colours(col: &Column) -> Option<Colours> {
    let groups_of = |labels: Vec<Option<String>>| {
        let mut names: Vec<String> = labels.iter().flatten().cloned().collect();
        names.sort();
        names.dedup();
        let codes = labels
            .iter()
            .map(|l| match l {
                Some(l) => names
                    .binary_search(l)
                    .map_or(engine_plot::MISSING, |k| k as u32),
                None => engine_plot::MISSING,
            })
            .collect();
        Colours::Groups(codes, names)
    };
    match col {
        Column::Categorical {
            codes, categories, ..
        } => {
            let codes = codes
                .to_i64_vec()?
                .into_iter()
                .map(|v| u32::try_from(v).unwrap_or(engine_plot::MISSING))
                .collect();
            let names = (0..categories.len())
                .map(|i| engine_store::value::render_scalar(categories, i))
                .collect();
            Some(Colours::Groups(codes, names))
        }
        Column::Plain(DynArray::Bool(b)) => Some(groups_of(
            b.iter()
                .map(|v| Some(if *v { "True" } else { "False" }.to_string()))
                .collect(),
        )),
        Column::Plain(DynArray::Str(s)) => Some(groups_of(s.iter().cloned().map(Some).collect())),
        Column::Plain(a) => a.to_f64_vec().map(Colours::Values),
        Column::Nullable { values, mask, .. } => match values {
            DynArray::Bool(b) => Some(groups_of(
                b.iter()
                    .zip(mask)
                    .map(|(v, m)| (!m).then(|| if *v { "True" } else { "False" }.to_string()))
                    .collect(),
            )),
            DynArray::Str(s) => Some(groups_of(
                s.iter()
                    .zip(mask)
                    .map(|(v, m)| (!m).then(|| v.clone()))
                    .collect(),
            )),
            other => {
                let v = other.to_f64_vec()?;
                Some(Colours::Values(
                    v.into_iter()
                        .zip(mask)
                        .map(|(x, m)| if *m { f64::NAN } else { x })
                        .collect(),
                ))
            }
        },
    }
}

/// An obsm matrix as float32 rows: borrowed when stored so, converted otherwise.
fn embedding<'a>(b: &'a Block, key: &str) -> Result<CowArray<'a, f32, Ix2>> {
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
fn f32_block(a: Array2<f32>) -> Arc<Block> {
    Arc::new(Block::Dense(DynArray::F32(a.into_dyn())))
}

fn dict(items: Vec<(&str, Value)>) -> Value {
    Value::Dict(items.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

fn scalar_i64(v: i64) -> Value {
    Value::Scalar(DynArray::I64(ndarray::ArrayD::from_elem(
        ndarray::IxDyn(&[]),
        v,
    )))
}

fn scalar_f64(v: f64) -> Value {
    Value::Scalar(DynArray::F64(ndarray::ArrayD::from_elem(
        ndarray::IxDyn(&[]),
        v,
    )))
}

fn scalar_bool(v: bool) -> Value {
    Value::Scalar(DynArray::Bool(ndarray::ArrayD::from_elem(
        ndarray::IxDyn(&[]),
        v,
    )))
}

/// The scan feeding `id`'s X, and whether a view that was not pushed down sits in between.
fn root_scan(plan: &LogicalPlan, mut id: NodeId) -> Option<(&engine_plan::Scan, bool)> {
    let mut viewed = false;
    loop {
        let n = plan.node(id);
        match &n.op {
            Op::Scan(s) => return Some((s, viewed)),
            Op::Select { .. } => viewed = true,
            _ => {}
        }
        id = *n.inputs.first()?;
    }
}

/// What one pass over `scan` reads, as EXPLAIN text.
fn scan_reads(scan: &engine_plan::Scan, viewed: bool, opts: &ExecOptions) -> String {
    let (n, m) = scan.source_shape();
    let rows = scan.rows.as_ref().map_or(n, |r| r.sel.len());
    let cols = scan.cols.as_ref().map_or(m, |c| c.sel.len());
    let max_rows = io::max_block_rows(cols, opts.memory_limit, workers());
    let blocks = match (&scan.chunk_starts, viewed) {
        (Some(starts), false) => {
            let all = AxisSelection::all(n);
            let sel = scan.rows.as_ref().map_or(&all, |r| &r.sel);
            io::aligned_blocks(sel, starts, max_rows)
        }
        _ => io::even_blocks(rows, max_rows),
    };
    match io::scan_io(scan, &blocks) {
        Some(r) => format!("{} in {} blocks", r.describe(), blocks.len()),
        None => format!("generated in {} blocks, nothing read", blocks.len()),
    }
}

/// The passes each node makes over X and what they read, as text for EXPLAIN.
pub fn physical_plan(plan: &LogicalPlan, opts: &ExecOptions) -> String {
    let mut out = String::new();
    let mut stage = 0;
    let live = live_nodes(plan);
    for (i, n) in plan.nodes.iter().enumerate() {
        if !live[i] {
            out.push_str(&format!(
                "-- {} ({}) not needed by any output: skipped\n",
                n.step,
                n.op.name()
            ));
            continue;
        }
        if let Op::Scan(scan) = &n.op {
            out.push_str(&format!(
                "scan {}: each pass {}\n",
                n.step,
                scan_reads(scan, false, opts)
            ));
        }
        let passes: Vec<String> = match &n.op {
            Op::Scan(_) | Op::Select { .. } | Op::Log1p { .. } => vec![],
            Op::Where { .. } => vec![
                "in memory: predicates over obs/var; the kept rows become the scan's selection"
                    .into(),
            ],
            Op::Qc { .. } => {
                vec!["pass over X: per-cell and per-gene counts (QC metrics)".into()]
            }
            Op::Filter { var: false, .. } => vec![
                "pass over X: per-cell counts; the kept cells become the scan's selection".into(),
            ],
            Op::Filter { var: true, .. } => vec![
                "pass over X: per-gene counts; the kept genes become the scan's selection".into(),
            ],
            Op::NormalizeTotal { target_sum, .. } => vec![format!(
                "pass over X: per-cell totals{}",
                if target_sum.is_none() {
                    " and their median"
                } else {
                    ""
                }
            )],
            Op::Hvg(h) => {
                let per = if h.batch_key.is_some() {
                    " per batch"
                } else {
                    ""
                };
                let also = if h.column_moments {
                    " + scale's column moments"
                } else {
                    ""
                };
                let mut passes = vec![format!(
                    "pass over X: per-gene mean and variance{per}{also}"
                )];
                if h.flavor == "seurat_v3" && h.batch_key.is_some() {
                    passes.push(
                        "pass over X (in row order): per-batch mean and variance as scanpy's aggregate".into(),
                    );
                }
                if h.flavor == "seurat_v3" {
                    passes.push(format!(
                        "pass over X: clipped variance around the LOESS trend{per}"
                    ));
                }
                passes
            }
            Op::Scale {
                moments_merged: true,
                ..
            } => vec![],
            Op::Scale { .. } => vec!["pass over X: column moments (mean, variance)".into()],
            Op::Pca {
                n_comps,
                standardize,
                mask_var,
                svd_solver,
                ..
            } => {
                let fused = if standardize.is_some() {
                    " (correlation, fused scale)"
                } else {
                    ""
                };
                let (n_obs, n_vars) = (n.schema.n_obs, n.schema.n_vars);
                // A mask, or a filter or subset upstream, leaves only an upper bound on the
                // genes until the run: the solver and its passes are decided then.
                let bounded = mask_var.is_some() || n.schema.var_bound;
                let r = Randomized::new(*n_comps, n_obs, n_vars, 0);
                let passes = |over: &str| {
                    format!(
                        "{}{} passes{over}: randomized subspace iteration, covariance times {} vectors + column moments{fused}",
                        if bounded { "up to " } else { "" },
                        r.passes(),
                        (n_comps + r.oversamples).min(n_vars),
                    )
                };
                let gram = format!("pass over X: Gram matrix + column sums{fused}");
                let first = match svd_solver {
                    SvdSolver::Auto if bounded && n_vars > GRAM_MAX_VARS => {
                        format!("{gram}, or above {GRAM_MAX_VARS} genes {}", passes(""))
                    }
                    _ if svd_solver.randomized_for(n_vars) => passes(" over X"),
                    _ => gram,
                };
                vec![
                    first,
                    "pass over X: project onto components -> obsm['X_pca']".into(),
                ]
            }
            Op::Neighbors { .. } => {
                vec![
                    if n.schema.n_obs < 8192 {
                        "in memory: exact kNN on the representation, UMAP connectivities"
                    } else {
                        "in memory: NN-descent kNN on the representation, UMAP connectivities"
                    }
                    .into(),
                ]
            }
            Op::Leiden { .. } => vec!["in memory: Leiden on obsp['connectivities']".into()],
            Op::Umap { .. } => vec!["in memory: UMAP layout of obsp['connectivities']".into()],
            Op::Plot { .. } => vec!["in memory: scatter -> PNG".into()],
            Op::Write { .. } => vec![
                "pass over X: stream blocks into the writer; then obs/var/obsm/varm/obsp/uns"
                    .into(),
            ],
        };
        let unpushed = n
            .inputs
            .first()
            .and_then(|&x| root_scan(plan, x))
            .filter(|(_, viewed)| *viewed);
        for p in passes {
            let note = match unpushed {
                Some((scan, _)) if p.starts_with("pass over X") => format!(
                    " [through a view not pushed into the scan: {}]",
                    scan_reads(scan, true, opts)
                ),
                _ => String::new(),
            };
            out.push_str(&format!(
                "stage {stage}: {} ({}) {p}{note}\n",
                n.step,
                n.op.name()
            ));
            stage += 1;
        }
    }
    out
}

/// Nodes some sink (Write, Plot) depends on.
fn live_nodes(plan: &LogicalPlan) -> Vec<bool> {
    let mut live = vec![false; plan.nodes.len()];
    for i in (0..plan.nodes.len()).rev() {
        if matches!(plan.nodes[i].op, Op::Write { .. } | Op::Plot { .. }) {
            live[i] = true;
        }
        if live[i] {
            for inp in &plan.nodes[i].inputs {
                live[inp.0] = true;
            }
        }
    }
    live
}

/// Runs an (optimised) plan.
///
/// # Errors
/// On read/write failures or invalid data.
pub fn run(plan: &LogicalPlan, opts: &ExecOptions) -> Result<RunReport> {
    let mut report = RunReport::default();
    let live = live_nodes(plan);
    let mut lineages: HashMap<NodeId, Lineage> = HashMap::new();
    let mut merged_moments: HashMap<NodeId, ColumnMoments> = HashMap::new();
    let mut ann: HashMap<NodeId, Annotations> = HashMap::new();
    // Live consumers still to run per node: the last one takes the annotations instead of
    // copying them (an embedding or a graph is tens of MB at 50k cells).
    let mut pending = vec![0usize; plan.nodes.len()];
    for (i, n) in plan.nodes.iter().enumerate() {
        if live[i] {
            for inp in &n.inputs {
                pending[inp.0] += 1;
            }
        }
    }
    for (i, node) in plan.nodes.iter().enumerate() {
        let id = NodeId(i);
        if !live[i] {
            continue;
        }
        // Each stage starts with clean vector registers on every thread (see
        // `engine_ops::cpu`), and without the previous stage's freed memory.
        engine_ops::cpu::clean_all();
        opts.release_freed();
        let sink = matches!(node.op, Op::Plot { .. } | Op::Write { .. });
        // Each stage row times the work since the previous row of the same node.
        let t = std::cell::Cell::new(Instant::now());
        let input = node.inputs.first().copied();
        let in_lineage = || {
            input
                .map(|x| lineages[&x].clone())
                .ok_or_else(|| Error::internal("node without input"))
        };
        let mut a = match input {
            // Sinks only read: they borrow below.
            Some(_) if sink => Annotations::default(),
            Some(x) => {
                pending[x.0] -= 1;
                if pending[x.0] == 0 {
                    ann.remove(&x).unwrap_or_default()
                } else {
                    ann[&x].clone()
                }
            }
            None => Annotations::default(),
        };
        // Bytes of X decoded from storage since the previous row, as the store counts them.
        let read = std::cell::Cell::new(engine_store::matrix::bytes_read());
        let stage = |name: String, blocks: usize, report: &mut RunReport| {
            let now = engine_store::matrix::bytes_read();
            report.stages.push(StageReport {
                name,
                seconds: t.replace(Instant::now()).elapsed().as_secs_f64(),
                blocks,
                bytes: now - read.replace(now),
                peak_rss_kib: peak_rss_kib(),
            });
        };
        match &node.op {
            Op::Scan(scan) => {
                let (n_all, m_all) = scan.source_shape();
                let rows = scan
                    .rows
                    .as_ref()
                    .map_or_else(|| AxisSelection::all(n_all), |s| s.sel.clone());
                let cols = scan
                    .cols
                    .as_ref()
                    .map_or_else(|| AxisSelection::all(m_all), |s| s.sel.clone());
                let wanted = |name: &str| {
                    scan.obs_columns
                        .as_ref()
                        .is_none_or(|c| c.iter().any(|c| c == name))
                };
                let row_pos: Vec<usize> = rows.indices().collect();
                let col_pos: Vec<usize> = cols.indices().collect();
                // Bytes a row takes in a block, as a count of float64 values.
                let mut row_width = cols.len();
                let kind = match &scan.source {
                    Source::Synthetic {
                        n_obs,
                        n_vars,
                        centers,
                        cluster_std,
                        seed,
                        ..
                    } => {
                        let blobs = Blobs {
                            n_obs: *n_obs,
                            n_vars: *n_vars,
                            centers: *centers,
                            cluster_std: *cluster_std,
                            seed: *seed,
                        };
                        let c = blobs.center_matrix();
                        a.obs = Frame::with_range_index(*n_obs).take(&row_pos);
                        a.var = Frame::with_range_index(*n_vars).take(&col_pos);
                        if wanted("blob") {
                            let labels: Vec<u32> =
                                rows.indices().map(|r| blobs.label(r) as u32).collect();
                            set_column(&mut a.obs, "blob", categorical(&labels, *centers));
                        }
                        SourceKind::Blobs { blobs, centers: c }
                    }
                    Source::Counts {
                        n_obs,
                        n_vars,
                        n_types,
                        n_batches,
                        library_size,
                        seed,
                    } => {
                        let counts = engine_ops::counts::Counts {
                            n_obs: *n_obs,
                            n_vars: *n_vars,
                            n_types: *n_types,
                            n_batches: *n_batches,
                            library_size: *library_size,
                            seed: *seed,
                        };
                        a.obs = Frame::with_range_index(*n_obs).take(&row_pos);
                        let names = counts.var_names();
                        a.var = Frame {
                            index_name: "_index".into(),
                            index: Column::Plain(engine_store::encoding::str_array(
                                col_pos.iter().map(|&j| names[j].clone()),
                            )),
                            columns: vec![],
                        };
                        let label = |name: &str, k: usize, f: &dyn Fn(usize) -> usize| {
                            let codes: Vec<u32> = row_pos.iter().map(|&r| f(r) as u32).collect();
                            named_categorical(&codes, (0..k).map(|c| format!("{name}{c}")))
                        };
                        if wanted("cell_type") {
                            let c = label("type_", *n_types, &|r| counts.cell_type(r));
                            set_column(&mut a.obs, "cell_type", c);
                        }
                        if wanted("batch") {
                            let c = label("batch_", *n_batches, &|r| counts.batch(r));
                            set_column(&mut a.obs, "batch", c);
                        }
                        // Stored values per row, with the indices' share.
                        row_width = (library_size * 0.6).min(*n_vars as f64) as usize * 3 / 2;
                        SourceKind::Counts {
                            model: counts.model(),
                        }
                    }
                    Source::File { path, storage } => {
                        let ds = Dataset::open(path)?;
                        let matrix = ds
                            .x()?
                            .ok_or_else(|| Error::usage(format!("{path}: the dataset has no X")))?;
                        let obs = ds.obs(scan.obs_columns.as_deref())?;
                        a.obs = if rows.is_full(n_all) {
                            obs
                        } else {
                            obs.take(&row_pos)
                        };
                        let var = ds.var(None)?;
                        a.var = if cols.is_full(m_all) {
                            var
                        } else {
                            var.take(&col_pos)
                        };
                        load_elements(&ds, &node.schema, scan, &rows, &cols, &mut a)?;
                        if let Some(indptr) = &storage.indptr {
                            let nnz = indptr.last().copied().unwrap_or(0) as f64;
                            let per_row =
                                nnz / n_all.max(1) as f64 * cols.len() as f64 / m_all.max(1) as f64;
                            row_width = (per_row * 1.5).ceil() as usize;
                        }
                        SourceKind::File { matrix }
                    }
                };
                let (n_obs, n_vars) = (rows.len(), cols.len());
                let source = XSource {
                    kind: Arc::new(kind),
                    rows,
                    cols,
                    chunk_starts: scan.chunk_starts.clone(),
                };
                lineages.insert(
                    id,
                    Lineage {
                        source: Arc::new(source),
                        steps: vec![],
                        n_obs,
                        n_vars,
                        max_rows: io::max_block_rows(
                            row_width.max(1),
                            opts.memory_limit,
                            workers(),
                        ),
                    },
                );
            }
            Op::Select { rows, cols } => {
                let mut l = in_lineage()?;
                let rows = rows.as_ref().map(|r| Arc::new(r.sel.clone()));
                let cols = cols.as_ref().map(|c| Arc::new(c.sel.clone()));
                if let Some(r) = &rows {
                    l.n_obs = r.len();
                }
                if let Some(c) = &cols {
                    l.n_vars = c.len();
                }
                a.select(rows.as_deref(), cols.as_deref());
                l.steps.push(LineageStep::View { rows, cols });
                lineages.insert(id, l);
            }
            Op::Where {
                rows,
                cols,
                obs,
                var,
            } => {
                let mut lin = in_lineage()?;
                let (rows, cols) = (rows.as_ref().map(|r| &r.sel), cols.as_ref().map(|c| &c.sel));
                a.select(rows, cols);
                lin = lin.select(rows, cols);
                let eval = |frame: &Frame, var: bool, p: &str| -> Result<AxisSelection> {
                    let mask = opts
                        .predicates
                        .mask_frame(frame, var, p)
                        .map_err(|e| Error::usage(format!("step `{}`: {e}", node.step)))?;
                    Ok(AxisSelection::from_mask(&mask))
                };
                let r = obs.as_deref().map(|p| eval(&a.obs, false, p)).transpose()?;
                let c = var.as_deref().map(|p| eval(&a.var, true, p)).transpose()?;
                a.select(r.as_ref(), c.as_ref());
                let out = lin.select(r.as_ref(), c.as_ref());
                stage(
                    format!(
                        "{}: where, kept {} x {}",
                        node.step,
                        out.n_obs(),
                        out.n_vars()
                    ),
                    0,
                    &mut report,
                );
                lineages.insert(id, out);
            }
            Op::Qc {
                qc_vars,
                percent_top,
                log1p,
            } => {
                let lin = in_lineage()?;
                let f32_out = node.schema.x_dtype == Some(engine_matrix::DType::F32);
                let blocks = qc_metrics(
                    &lin,
                    &mut a,
                    qc_vars,
                    percent_top,
                    *log1p,
                    f32_out,
                    opts,
                    &node.step,
                )?;
                stage(format!("{}: QC metrics", node.step), blocks, &mut report);
                lineages.insert(id, lin);
            }
            Op::Filter { var, by, min, max } => {
                let lin = in_lineage()?;
                let f32_out = node.schema.x_dtype == Some(engine_matrix::DType::F32);
                let label = format!(
                    "{}: filter {}",
                    node.step,
                    if *var { "genes" } else { "cells" }
                );
                let bar = progress(opts, &label, lin.blocks().len());
                let detected = *by == engine_plan::FilterBy::Detected;
                let (values, blocks) = if *var {
                    let (c, blocks) = fold_pass(
                        &lin,
                        &bar,
                        || ColumnSums::new(lin.n_vars()),
                        |acc, _, x| {
                            acc.add(x.to_csr()?.as_ref(), None, |v| v);
                            Ok(())
                        },
                        |a, b| a.merge(&b),
                    )?;
                    let v: Vec<f64> = if detected {
                        c.nnz.iter().map(|&n| n as f64).collect()
                    } else {
                        c.sum
                    };
                    (v, blocks)
                } else {
                    let (parts, blocks) =
                        map_pass(&lin, &bar, |_, x| Ok(x.to_csr()?.row_sums_nnz()))?;
                    let v: Vec<f64> = parts
                        .into_iter()
                        .flat_map(|(sums, nnz)| {
                            if detected {
                                nnz.into_iter().map(|n| n as f64).collect::<Vec<_>>()
                            } else {
                                sums
                            }
                        })
                        .collect();
                    (v, blocks)
                };
                let keep: Vec<usize> = values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| min.is_none_or(|m| **v >= m) && max.is_none_or(|m| **v <= m))
                    .map(|(i, _)| i)
                    .collect();
                let key = match (*var, detected) {
                    (_, false) => "n_counts",
                    (false, true) => "n_genes",
                    (true, true) => "n_cells",
                };
                let col = if detected {
                    Column::Plain(DynArray::I64(
                        Array1::from_iter(values.iter().map(|v| *v as i64)).into_dyn(),
                    ))
                } else {
                    float_column(&values, f32_out)
                };
                let sel = AxisSelection::from_indices(&keep);
                if *var {
                    set_column(&mut a.var, key, col);
                    a.select(None, Some(&sel));
                } else {
                    set_column(&mut a.obs, key, col);
                    a.select(Some(&sel), None);
                }
                let out = if *var {
                    lin.select(None, Some(&sel))
                } else {
                    lin.select(Some(&sel), None)
                };
                stage(
                    format!("{label}: kept {} of {}", keep.len(), values.len()),
                    blocks,
                    &mut report,
                );
                lineages.insert(id, out);
            }
            Op::NormalizeTotal { target_sum, fused } => {
                let lin = in_lineage()?;
                let bar = progress(opts, &format!("{}: totals", node.step), lin.blocks().len());
                let (parts, blocks) =
                    map_pass(&lin, &bar, |_, x| Ok(x.to_csr()?.row_sums_nnz().0))?;
                let totals: Vec<f64> = parts.into_iter().flatten().collect();
                let target = match target_sum {
                    Some(t) => *t,
                    None => median_positive(&totals),
                };
                let factors: Vec<f64> = totals
                    .iter()
                    .map(|&c| if c > 0.0 { target / c } else { target })
                    .collect();
                let mut l = lin.clone();
                l.push_map(XMap::ScaleRows(Arc::new(factors)), *fused);
                stage(format!("{}: totals", node.step), blocks, &mut report);
                lineages.insert(id, l);
            }
            Op::Log1p { fused } => {
                let mut l = in_lineage()?;
                l.push_map(XMap::Log1p, *fused);
                a.uns.insert("log1p".into(), Value::Dict(BTreeMap::new()));
                lineages.insert(id, l);
            }
            Op::Hvg(h) => {
                let lin = in_lineage()?;
                let (blocks, moments) = highly_variable(&lin, &mut a, h, opts, &node.step)?;
                let out = if h.subset {
                    let keep = bool_column(&a.var, "highly_variable")?;
                    let sel = AxisSelection::from_mask(&keep);
                    a.select(None, Some(&sel));
                    let kept = |v: Vec<f64>| -> Vec<f64> {
                        v.into_iter()
                            .zip(&keep)
                            .filter_map(|(x, &k)| k.then_some(x))
                            .collect()
                    };
                    if let Some((mean, var)) = moments {
                        merged_moments.insert(id, (kept(mean), kept(var)));
                    }
                    lin.select(None, Some(&sel))
                } else {
                    if let Some(m) = moments {
                        merged_moments.insert(id, m);
                    }
                    lin.clone()
                };
                stage(
                    format!("{}: highly variable genes", node.step),
                    blocks,
                    &mut report,
                );
                lineages.insert(id, out);
            }
            Op::Scale {
                params: p,
                fused,
                moments_merged,
            } => {
                let lin = in_lineage()?;
                let merged = if *moments_merged {
                    let m = node.inputs.first().and_then(|i| merged_moments.remove(i));
                    Some(m.ok_or_else(|| {
                        Error::internal(format!(
                            "step `{}`: merge_passes promised column moments from the input \
                             step, which did not compute them",
                            node.step
                        ))
                    })?)
                } else {
                    None
                };
                let ((mean, var), blocks) = match merged {
                    Some(m) => (m, 0),
                    None => {
                        let (m, blocks) = fold_pass(
                            &lin,
                            &progress(opts, &format!("{}: moments", node.step), lin.blocks().len()),
                            || Moments::new(lin.n_vars()),
                            |acc, _, x| {
                                let part = match x {
                                    XBlock::Dense(d) => Moments::of_block(d.view()),
                                    XBlock::Sparse { x, fill } => {
                                        sparse::moments(x, fill.as_deref().map(Vec::as_slice))
                                    }
                                };
                                *acc = std::mem::replace(acc, Moments::new(0)).merge(part);
                                Ok(())
                            },
                            Moments::merge,
                        )?;
                        let var = m.var(1);
                        ((m.mean, var), blocks)
                    }
                };
                let sd: Vec<f64> = var
                    .iter()
                    .map(|v| if *v > 0.0 { v.sqrt() } else { 1.0 })
                    .collect();
                set_column(&mut a.var, "mean", float_column(&mean, false));
                set_column(&mut a.var, "std", float_column(&sd, false));
                let mut l = lin.clone();
                l.push_map(
                    XMap::Standardize {
                        mean: Arc::new(mean),
                        sd: Arc::new(sd),
                        zero_center: p.zero_center,
                        max_value: p.max_value,
                    },
                    *fused,
                );
                let label = if *moments_merged {
                    "moments (merged)"
                } else {
                    "moments"
                };
                stage(format!("{}: {label}", node.step), blocks, &mut report);
                lineages.insert(id, l);
            }
            Op::Pca {
                n_comps,
                zero_center,
                standardize,
                mask_var,
                svd_solver,
                random_state,
            } => {
                let full = in_lineage()?;
                let mask = match mask_var {
                    Some(m) => Some(AxisSelection::from_mask(&bool_column(&a.var, m)?)),
                    None => None,
                };
                let lin = match &mask {
                    Some(m) => full.select(None, Some(m)),
                    None => full.clone(),
                };
                if lin.n_vars() == 0 || lin.n_obs() < 2 {
                    return Err(Error::usage(format!(
                        "step `{}`: PCA needs at least 2 cells and 1 gene, got {} x {}",
                        node.step,
                        lin.n_obs(),
                        lin.n_vars()
                    )));
                }
                let n_comps = (*n_comps).min(lin.n_vars()).min(lin.n_obs());
                // The Gram's shift: a sparse block's fill (absent entries then cost nothing),
                // else the mean of a first block, which keeps the Gram free of cancellation.
                let first = lin.block(0..lin.n_obs().min(256))?;
                let shift = match &first {
                    XBlock::Dense(d) => Moments::of_block(d.view()).mean,
                    XBlock::Sparse { fill: Some(f), .. } => f.to_vec(),
                    XBlock::Sparse { fill: None, .. } => vec![0.0; lin.n_vars()],
                };
                drop(first);
                // The components, the data's column means and, with a fused scale, its
                // standard deviations.
                let (p, gram_mean, scale, t2) = if svd_solver.randomized_for(lin.n_vars()) {
                    let r =
                        Randomized::new(n_comps, lin.n_obs(), lin.n_vars(), *random_state as u64);
                    let (mut pass, mut blocks) = (0, 0);
                    let found = randomized::pca(
                        lin.n_vars(),
                        shift,
                        standardize.is_some(),
                        &r,
                        |shift, w| {
                            pass += 1;
                            let label = format!("{}: pass {pass}/{}", node.step, r.passes());
                            let (acc, n) = fold_pass(
                                &lin,
                                &progress(opts, &label, lin.blocks().len()),
                                || CovProduct::new(shift.clone(), w.clone()),
                                |acc, _, x| {
                                    match x {
                                        XBlock::Dense(d) => acc.update(d.view()),
                                        XBlock::Sparse { x, .. } => acc.update_sparse(x),
                                    }
                                    Ok(())
                                },
                                CovProduct::merge,
                            )?;
                            blocks += n;
                            Ok(acc)
                        },
                        Error::internal,
                    )?;
                    stage(
                        format!("{}: randomized, {} passes", node.step, r.passes()),
                        blocks,
                        &mut report,
                    );
                    (found.pca, found.mean, found.scale, Instant::now())
                } else {
                    let (gram, blocks) = fold_pass(
                        &lin,
                        &progress(opts, &format!("{}: Gram", node.step), lin.blocks().len()),
                        || Gram::new(shift.clone()),
                        |g, _, x| {
                            match x {
                                XBlock::Dense(d) => g.update(d.view()),
                                XBlock::Sparse { x, .. } => sparse::gram_update(g, x),
                            }
                            Ok(())
                        },
                        |a, b| a.merge(&b),
                    )?;
                    stage(format!("{}: Gram", node.step), blocks, &mut report);
                    // The eigensolve counts in the projection's stage.
                    let t2 = Instant::now();
                    let (cov, scale) = match standardize {
                        Some(_) => {
                            let (c, sd) = gram.correlation();
                            (c, Some(sd))
                        }
                        None => (gram.covariance(), None),
                    };
                    let gram_mean = gram.mean();
                    // The n_vars² Gram and covariance are freed before the eigensolver allocates.
                    drop(gram);
                    let p = pca::from_covariance(cov, n_comps).map_err(Error::internal)?;
                    (p, gram_mean, scale, t2)
                };
                let mean = if *zero_center {
                    gram_mean.clone()
                } else {
                    vec![0.0; lin.n_vars()]
                };
                // Output X is the scaled X when a scale was fused in.
                let mut out_lin = full.clone();
                if let (
                    Some(ScaleParams {
                        zero_center: zc,
                        max_value,
                    }),
                    Some(sd),
                ) = (standardize, &scale)
                {
                    // What the folded scale would have recorded.
                    set_column(&mut a.var, "mean", float_column(&gram_mean, false));
                    set_column(&mut a.var, "std", float_column(sd, false));
                    out_lin.steps.push(LineageStep::Map(XMap::Standardize {
                        mean: Arc::new(gram_mean),
                        sd: Arc::new(sd.clone()),
                        zero_center: *zc,
                        max_value: *max_value,
                    }));
                }
                // Each block projects straight into its rows of X_pca.
                let ranges = lin.blocks();
                let nblocks = ranges.len();
                let mut x_pca = Array2::<f32>::zeros((lin.n_obs(), p.components.ncols()));
                // Blocks may differ in size (aligned to chunks): split X_pca at their ends.
                let mut outs = Vec::with_capacity(nblocks);
                let mut rest = x_pca.view_mut();
                for r in &ranges {
                    let (head, tail) = rest.split_at(Axis(0), r.len());
                    outs.push(head);
                    rest = tail;
                }
                let bar = progress(opts, &format!("{}: project", node.step), nblocks);
                outs.into_par_iter()
                    .zip(ranges.into_par_iter())
                    .try_for_each(|(mut out, r)| -> Result<()> {
                        let scores = match lin.block(r)? {
                            XBlock::Dense(x) => {
                                pca::project(x.view(), &mean, scale.as_deref(), &p.components)
                            }
                            XBlock::Sparse { x, fill } => sparse::project(
                                &x,
                                fill.as_deref().map(Vec::as_slice),
                                &mean,
                                scale.as_deref(),
                                &p.components,
                            ),
                        };
                        out.zip_mut_with(&scores, |o, &v| *o = v as f32);
                        bar.inc(1);
                        Ok(())
                    })?;
                bar.finish_and_clear();
                let now = engine_store::matrix::bytes_read();
                report.stages.push(StageReport {
                    name: format!("{}: project", node.step),
                    seconds: t2.elapsed().as_secs_f64(),
                    blocks: nblocks,
                    bytes: now - read.replace(now),
                    peak_rss_kib: peak_rss_kib(),
                });
                // PCs over all genes: zero rows for genes outside the mask, as scanpy.
                let pcs = match &mask {
                    Some(m) => {
                        let mut full_pcs = Array2::zeros((full.n_vars(), p.components.ncols()));
                        for (row, j) in m.indices().enumerate() {
                            full_pcs.row_mut(j).assign(&p.components.row(row));
                        }
                        full_pcs
                    }
                    None => p.components.clone(),
                };
                a.obsm.insert("X_pca".into(), f32_block(x_pca));
                a.varm.insert(
                    "PCs".into(),
                    Arc::new(Block::Dense(DynArray::F64(pcs.into_dyn()))),
                );
                let mut params = vec![
                    ("zero_center", scalar_bool(*zero_center)),
                    (
                        "use_highly_variable",
                        scalar_bool(mask_var.as_deref() == Some("highly_variable")),
                    ),
                ];
                match mask_var {
                    Some(m) => params.push(("mask_var", Value::String(m.clone()))),
                    None => params.push(("mask_var", scalar_bool(false))),
                }
                a.uns.insert(
                    "pca".into(),
                    dict(vec![
                        ("variance", f64_array(&p.variance)),
                        ("variance_ratio", f64_array(&p.variance_ratio)),
                        ("params", dict(params)),
                    ]),
                );
                lineages.insert(id, out_lin);
            }
            Op::Neighbors {
                n_neighbors,
                n_pcs,
                use_rep,
                random_state,
            } => {
                let rep = a.obsm.get(use_rep).ok_or_else(|| {
                    Error::usage(format!("step `{}`: no obsm['{use_rep}']", node.step))
                })?;
                let rep = embedding(rep, use_rep)?;
                let cols = n_pcs.unwrap_or(rep.ncols()).min(rep.ncols());
                let view = rep.slice(s![.., ..cols]);
                // scanpy's switch: exact search below 8,192 cells, NN-descent above.
                let (idx, dist) = if view.nrows() < 8192 {
                    knn::exact_knn(view.mapv(f64::from).view(), *n_neighbors)
                } else {
                    engine_ops::nndescent::nn_descent(view, *n_neighbors, *random_state as u64)
                };
                // The search's lists and candidates are gone; the graphs come next.
                opts.release_freed();
                a.obsp
                    .insert("distances".into(), Arc::new(knn::distances(&idx, &dist)));
                a.obsp.insert(
                    "connectivities".into(),
                    Arc::new(knn::umap_connectivities(&idx, &dist)),
                );
                let mut params = vec![
                    ("n_neighbors", scalar_i64(*n_neighbors as i64)),
                    ("method", Value::String("umap".into())),
                    ("random_state", scalar_i64(*random_state)),
                    ("metric", Value::String("euclidean".into())),
                    ("use_rep", Value::String(use_rep.clone())),
                ];
                if let Some(n) = n_pcs {
                    params.push(("n_pcs", scalar_i64(*n as i64)));
                }
                a.uns.insert(
                    "neighbors".into(),
                    dict(vec![
                        ("connectivities_key", Value::String("connectivities".into())),
                        ("distances_key", Value::String("distances".into())),
                        ("params", dict(params)),
                    ]),
                );
                stage(
                    format!("{}: kNN + connectivities", node.step),
                    0,
                    &mut report,
                );
                lineages.insert(id, in_lineage()?);
            }
            Op::Leiden {
                resolution,
                random_state,
                n_iterations,
                key_added,
            } => {
                let conn = a.obsp.get("connectivities").ok_or_else(|| {
                    Error::usage(format!("step `{}`: no obsp['connectivities']", node.step))
                })?;
                let params = leiden::LeidenParams {
                    resolution: *resolution,
                    n_iterations: *n_iterations,
                    seed: *random_state as u64,
                    ..Default::default()
                };
                let labels = leiden::leiden(conn, &params);
                let k = labels.iter().max().map_or(0, |m| *m as usize + 1);
                set_column(&mut a.obs, key_added, categorical(&labels, k));
                a.uns.insert(
                    key_added.clone(),
                    dict(vec![(
                        "params",
                        dict(vec![
                            ("resolution", scalar_f64(*resolution)),
                            ("random_state", scalar_i64(*random_state)),
                            ("n_iterations", scalar_i64(*n_iterations)),
                        ]),
                    )]),
                );
                stage(format!("{}: Leiden", node.step), 0, &mut report);
                lineages.insert(id, in_lineage()?);
            }
            Op::Umap {
                min_dist,
                spread,
                n_components,
                maxiter,
                alpha,
                gamma,
                negative_sample_rate,
                spectral,
                random_state,
                a: fixed_a,
                b: fixed_b,
            } => {
                let conn = a.obsp.get("connectivities").ok_or_else(|| {
                    Error::usage(format!("step `{}`: no obsp['connectivities']", node.step))
                })?;
                // The representation the graph was built on places disconnected components.
                let params = umap::UmapParams {
                    min_dist: *min_dist,
                    spread: *spread,
                    n_components: *n_components,
                    n_epochs: *maxiter,
                    alpha: *alpha,
                    gamma: *gamma,
                    negative_sample_rate: *negative_sample_rate,
                    a: *fixed_a,
                    b: *fixed_b,
                    seed: *random_state as u64,
                    spectral: *spectral,
                };
                // Borrowed, not copied: at a million cells X_pca is 200 MB.
                let initial = match umap_representation(&a.uns, &a.obsm)? {
                    Some((rep, cols)) => umap::initialize(conn, rep.slice(s![.., ..cols]), &params),
                    None => {
                        umap::initialize(conn, ndarray::ArrayView2::from(&[[0f32; 0]; 0]), &params)
                    }
                };
                stage(format!("{}: UMAP init", node.step), 0, &mut report);
                let layout = umap::optimize(initial, &params);
                a.obsm.insert("X_umap".into(), f32_block(layout.embedding));
                let mut params = vec![("a", scalar_f64(layout.a)), ("b", scalar_f64(layout.b))];
                if *random_state != 0 {
                    params.push(("random_state", scalar_i64(*random_state)));
                }
                a.uns
                    .insert("umap".into(), dict(vec![("params", dict(params))]));
                stage(format!("{}: UMAP layout", node.step), 0, &mut report);
                lineages.insert(id, in_lineage()?);
            }
            Op::Plot {
                basis,
                components,
                color,
                path,
            } => {
                let a = &ann[&input.ok_or_else(|| Error::internal("plot without input"))?];
                let key = format!("X_{basis}");
                let emb = a.obsm.get(&key).ok_or_else(|| {
                    Error::usage(format!("step `{}`: no obsm['{key}']", node.step))
                })?;
                let emb = embedding(emb, &key)?;
                if components.0 >= emb.ncols() || components.1 >= emb.ncols() {
                    return Err(Error::usage(format!(
                        "step `{}`: X_{basis} has {} components",
                        node.step,
                        emb.ncols()
                    )));
                }
                let (x, y) = (
                    emb.column(components.0).mapv(f64::from).to_vec(),
                    emb.column(components.1).mapv(f64::from).to_vec(),
                );
                let colours = match color {
                    Some(c) => {
                        let col = a.obs.column(c).ok_or_else(|| {
                            Error::usage(format!("step `{}`: no obs['{c}']", node.step))
                        })?;
                        Some(colours(col).ok_or_else(|| {
                            Error::usage(format!(
                                "step `{}`: cannot colour by obs['{c}'] ({})",
                                node.step,
                                col.encoding()
                            ))
                        })?)
                    }
                    None => None,
                };
                ensure_dir(Path::new(path))?;
                let target = AtomicTarget::new(Path::new(path), opts.overwrite)?;
                let label = |c: usize| {
                    if basis == "pca" {
                        format!("PC{}", c + 1)
                    } else {
                        format!("{}{}", basis.to_uppercase(), c + 1)
                    }
                };
                let plot = engine_plot::Scatter {
                    x: &x,
                    y: &y,
                    colour: match &colours {
                        None => engine_plot::Colouring::Single,
                        Some(Colours::Groups(g, n)) => engine_plot::Colouring::Groups(g, n),
                        Some(Colours::Values(v)) => engine_plot::Colouring::Values(v),
                    },
                    title: color.clone().unwrap_or_else(|| basis.clone()),
                    x_label: label(components.0),
                    y_label: label(components.1),
                };
                engine_plot::scatter_png(&plot, target.tmp_path())?;
                target.commit()?;
                report.outputs.push(path.clone());
                stage(format!("{}: plot", node.step), 0, &mut report);
            }
            Op::Write {
                path,
                format,
                chunks,
                compression,
            } => {
                let lin = in_lineage()?;
                let a = &ann[&input.ok_or_else(|| Error::internal("write without input"))?];
                let blocks = write_anndata(
                    &lin,
                    a,
                    path,
                    format.as_deref(),
                    chunks.clone(),
                    compression.as_deref(),
                    opts,
                )?;
                report.outputs.push(path.clone());
                stage(format!("{}: write", node.step), blocks, &mut report);
            }
        }
        if sink {
            if let Some(x) = input {
                pending[x.0] -= 1;
                if pending[x.0] == 0 {
                    ann.remove(&x);
                    lineages.remove(&x);
                }
            }
        } else {
            ann.insert(id, a);
        }
    }
    Ok(report)
}

fn ensure_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(Location::file(dir), e))?;
    }
    Ok(())
}

/// A categorical column with string categories "0".."k-1" (scanpy's cluster labels), codes
/// in the narrowest integer type as pandas stores them.
fn categorical(labels: &[u32], k: usize) -> Column {
    named_categorical(labels, (0..k).map(|c| c.to_string()))
}

#[allow(clippy::too_many_arguments)]
fn write_anndata(
    lin: &Lineage,
    a: &Annotations,
    path: &str,
    format: Option<&str>,
    chunks: Option<Vec<u64>>,
    compression: Option<&str>,
    opts: &ExecOptions,
) -> Result<usize> {
    let format = match format {
        Some(f) => {
            StoreFormat::parse(f).ok_or_else(|| Error::usage(format!("unknown format `{f}`")))?
        }
        None if path.ends_with(".h5ad") => StoreFormat::H5ad,
        None => StoreFormat::Zarr2,
    };
    ensure_dir(Path::new(path))?;
    let target = AtomicTarget::new(Path::new(path), opts.overwrite)?;
    let mut w = write::create_store(format, target.tmp_path())?;
    let (n_obs, n_vars) = (lin.n_obs(), lin.n_vars());
    write::write_root(w.as_mut())?;
    write::write_frame(w.as_mut(), "obs", &a.obs)?;
    write::write_frame(w.as_mut(), "var", &a.var)?;
    // X, streamed: blocks computed in parallel windows, written in order, as float32.
    let compression = compression
        .map(|c| {
            Compression::parse(c).ok_or_else(|| Error::usage(format!("unknown compression `{c}`")))
        })
        .transpose()?;
    let x_opts = ArrayOptions {
        chunks: chunks
            .map(|c| engine_store::backend::fit_chunks(&c, &[n_obs as u64, n_vars as u64])),
        shards: None,
        compression: compression.unwrap_or(Compression::None),
    };
    let chunk_rows = x_opts.chunks.as_ref().map_or(0, |c| c[0] as usize);
    // Unscaled sparse X is written as CSR, as scanpy keeps it; anything else dense.
    let sparse_x = n_obs > 0 && matches!(lin.block(0..1)?, XBlock::Sparse { fill: None, .. });
    let ranges = if chunk_rows > 0 && !sparse_x {
        // Whole output chunks per block so none is rewritten.
        io::even_blocks(n_obs, lin.max_rows.div_ceil(chunk_rows) * chunk_rows)
    } else {
        lin.blocks()
    };
    let workers = workers();
    let bar = progress(opts, &format!("write {path}"), ranges.len());
    if sparse_x {
        // The writer sizes `data` up front: a first pass counts the stored values.
        let (counts, _) = map_pass(lin, &ProgressBar::hidden(), |_, x| {
            Ok(x.to_csr()?.nnz() as u64)
        })?;
        let nnz: u64 = counts.iter().sum();
        let mut sw = write::SparseWriter::create(
            w.as_mut(),
            "X",
            engine_matrix::SparseFormat::Csr,
            [n_obs, n_vars],
            engine_matrix::DType::F32,
            nnz,
            &x_opts,
        )?;
        for window in ranges.chunks(workers) {
            bar.inc(window.len() as u64);
            let blocks: Vec<Compressed> = window
                .par_iter()
                .map(|r| {
                    let x = lin.block(r.clone())?;
                    let x = x.to_csr()?;
                    Ok(Compressed {
                        format: engine_matrix::SparseFormat::Csr,
                        shape: [x.n_rows(), n_vars],
                        indptr: x.indptr.iter().map(|&p| p as u64).collect(),
                        indices: x.indices.clone(),
                        data: DynArray::F32(
                            Array1::from_iter(x.data.iter().map(|&v| v as f32)).into_dyn(),
                        ),
                    })
                })
                .collect::<Result<_>>()?;
            for b in &blocks {
                sw.append(w.as_mut(), b)?;
            }
        }
        sw.finish(w.as_mut())?;
    } else {
        w.create_array(
            "X",
            engine_matrix::DType::F32,
            &[n_obs as u64, n_vars as u64],
            &x_opts,
            &write::enc_attrs("array", "0.2.0"),
        )?;
        for window in ranges.chunks(workers) {
            bar.inc(window.len() as u64);
            let blocks: Vec<(Range<usize>, Array2<f32>)> = window
                .par_iter()
                .map(|r| {
                    lin.block(r.clone())
                        .map(|x| (r.clone(), x.into_dense().mapv(|v| v as f32)))
                })
                .collect::<Result<_>>()?;
            for (r, b) in blocks {
                w.write("X", &[r.start as u64, 0], &DynArray::F32(b.into_dyn()))?;
            }
        }
    }
    let group = |w: &mut dyn engine_store::StoreWriter, name: &str| {
        w.create_group(name, &write::enc_attrs("dict", "0.1.0"))
    };
    for (name, elements) in [("obsm", &a.obsm), ("varm", &a.varm)] {
        group(w.as_mut(), name)?;
        for (k, v) in elements {
            let path = format!("{name}/{k}");
            let opts = ArrayOptions::default();
            match &**v {
                Block::Dense(d) => write::write_array(w.as_mut(), &path, d, &opts)?,
                Block::Sparse(c) => write::write_sparse(w.as_mut(), &path, c, &opts)?,
            }
        }
    }
    group(w.as_mut(), "obsp")?;
    for (k, v) in &a.obsp {
        write::write_sparse(
            w.as_mut(),
            &format!("obsp/{k}"),
            v,
            &ArrayOptions::default(),
        )?;
    }
    group(w.as_mut(), "varp")?;
    group(w.as_mut(), "layers")?;
    write::write_value(
        w.as_mut(),
        "uns",
        &Value::Dict(a.uns.clone()),
        &ArrayOptions::default(),
    )?;
    bar.finish_and_clear();
    w.finish()?;
    target.commit()?;
    Ok(ranges.len())
}
