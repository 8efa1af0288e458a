use engine_common::{Error, Location, Result};
use engine_matrix::AxisSelection;
use engine_matrix::{Block, Compressed, DynArray};
use engine_ops::stats::{Gram, Moments};
use engine_ops::synthetic::Blobs;
use engine_ops::{knn, leiden, pca};
use engine_plan::{LogicalPlan, NodeId, Op, ScaleParams, Source, io};
use engine_store::backend::{ArrayOptions, Compression, StoreFormat};
use engine_store::write::{self, AtomicTarget};
use engine_store::{Column, Dataset, Frame, Matrix, Value};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
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
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            memory_limit: 256 << 20,
            overwrite: true,
            progress: false,
        }
    }
}

/// What one stage did.
#[derive(Debug, Clone)]
pub struct StageReport {
    pub name: String,
    pub seconds: f64,
    pub blocks: usize,
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

/// An elementwise map on X.
#[derive(Debug, Clone)]
enum XMap {
    Standardize {
        mean: Arc<Vec<f64>>,
        sd: Arc<Vec<f64>>,
        zero_center: bool,
        max_value: Option<f64>,
    },
}

/// Where X comes from: an opened source and what has been applied since, in order.
#[derive(Debug, Clone)]
struct Lineage {
    source: Arc<XSource>,
    steps: Vec<LineageStep>,
    n_obs: usize,
    n_vars: usize,
    /// Rows per block within the memory budget.
    max_rows: usize,
}

#[derive(Debug, Clone)]
enum LineageStep {
    Map(XMap),
    /// A view that was not pushed into the scan: reads the rows it spans, then selects.
    View {
        rows: Option<Arc<AxisSelection>>,
        cols: Option<Arc<AxisSelection>>,
    },
}

#[derive(Debug)]
enum SourceKind {
    Blobs { blobs: Blobs, centers: Array2<f64> },
    File { matrix: Matrix },
}

/// An opened source with the rows and columns the scan reads (all, or a pushed selection).
#[derive(Debug)]
struct XSource {
    kind: SourceKind,
    rows: AxisSelection,
    cols: AxisSelection,
    chunk_starts: Option<Arc<Vec<usize>>>,
}

impl XSource {
    /// The scan's rows at positions `pos`, every selected column, as f64.
    fn read(&self, pos: &AxisSelection) -> Result<Array2<f64>> {
        let src = self.rows.compose(pos);
        let n_vars = self.cols.len();
        match &self.kind {
            SourceKind::Blobs { blobs, centers } => {
                let (x, _) = blobs.rows(centers, src.indices(), src.len());
                Ok(if self.cols.is_full(blobs.n_vars) {
                    x
                } else {
                    x.select(Axis(1), &self.cols.indices().collect::<Vec<_>>())
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
                let flush = |group: &mut Vec<Range<usize>>, parts: &mut Vec<Array2<f64>>| {
                    if group.is_empty() {
                        return Ok::<_, Error>(());
                    }
                    let cover = group[0].start..group[group.len() - 1].end;
                    let x =
                        read_dense_f64(matrix, &AxisSelection::range(cover.clone()), &self.cols)?;
                    let local: Vec<usize> = group
                        .iter()
                        .flat_map(|r| r.start - cover.start..r.end - cover.start)
                        .collect();
                    parts.push(if local.len() == cover.len() {
                        x
                    } else {
                        x.select(Axis(0), &local)
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
                if parts.len() == 1 {
                    return Ok(parts.pop().unwrap_or_default());
                }
                let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                if views.is_empty() {
                    return Ok(Array2::zeros((0, n_vars)));
                }
                ndarray::concatenate(Axis(0), &views).map_err(|e| Error::internal(e.to_string()))
            }
        }
    }
}

/// Rows `rows`, columns `cols` of a stored matrix as dense f64.
fn read_dense_f64(
    matrix: &Matrix,
    rows: &AxisSelection,
    cols: &AxisSelection,
) -> Result<Array2<f64>> {
    let dense = match matrix.read_block(rows, cols)? {
        Block::Dense(a) => a,
        Block::Sparse(c) => c.to_dense(),
    };
    let v = dense
        .to_f64_vec()
        .ok_or_else(|| Error::usage("X is not numeric"))?;
    Array2::from_shape_vec((rows.len(), cols.len()), v).map_err(|e| Error::internal(e.to_string()))
}

impl Lineage {
    fn n_obs(&self) -> usize {
        self.n_obs
    }
    fn n_vars(&self) -> usize {
        self.n_vars
    }

    /// Rows `rows` of X with every step applied, as f64.
    fn block(&self, rows: Range<usize>) -> Result<Array2<f64>> {
        self.rows_at(self.steps.len(), &AxisSelection::range(rows))
    }

    /// Rows at positions `pos` of X after the first `depth` steps.
    fn rows_at(&self, depth: usize, pos: &AxisSelection) -> Result<Array2<f64>> {
        if depth == 0 {
            return self.source.read(pos);
        }
        match &self.steps[depth - 1] {
            LineageStep::Map(m) => {
                let mut x = self.rows_at(depth - 1, pos)?;
                apply_map(m, &mut x);
                Ok(x)
            }
            LineageStep::View { rows, cols } => {
                let want = rows
                    .as_ref()
                    .map_or_else(|| pos.clone(), |r| r.compose(pos));
                let mut x = if want.is_empty() {
                    let width = self.width_at(depth - 1);
                    Array2::zeros((0, width))
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
                            parts.push(x.select(Axis(0), &local));
                        }
                        s = w.end;
                    }
                    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
                    ndarray::concatenate(Axis(0), &views)
                        .map_err(|e| Error::internal(e.to_string()))?
                };
                if let Some(c) = cols {
                    x = x.select(Axis(1), &c.indices().collect::<Vec<_>>());
                }
                Ok(x)
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

    /// Row blocks for a pass: aligned to storage chunks when X is the scan itself, within
    /// the memory budget either way.
    fn blocks(&self) -> Vec<Range<usize>> {
        let viewed = self
            .steps
            .iter()
            .any(|s| matches!(s, LineageStep::View { .. }));
        match (&self.source.chunk_starts, viewed) {
            (Some(starts), false) => io::aligned_blocks(&self.source.rows, starts, self.max_rows),
            _ => io::even_blocks(self.n_obs, self.max_rows),
        }
    }
}

fn apply_map(m: &XMap, x: &mut Array2<f64>) {
    match m {
        XMap::Standardize {
            mean,
            sd,
            zero_center,
            max_value,
        } => {
            for mut row in x.outer_iter_mut() {
                for (j, v) in row.iter_mut().enumerate() {
                    if *zero_center {
                        *v -= mean[j];
                    }
                    *v /= sd[j];
                    if let Some(m) = max_value {
                        *v = v.clamp(if *zero_center { -m } else { f64::MIN }, *m);
                    }
                }
            }
        }
    }
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
    f: impl Fn(&mut P, Range<usize>, ArrayView2<'_, f64>) + Sync + Send,
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
                f(&mut acc, r.clone(), x.view());
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
#[derive(Debug, Clone, Default)]
struct Annotations {
    obs: Vec<(String, Column)>,
    /// Embeddings as float32, as scanpy stores X_pca for float32 data and as we write them.
    obsm: BTreeMap<String, Array2<f32>>,
    varm: BTreeMap<String, Array2<f64>>,
    obsp: BTreeMap<String, Compressed>,
    uns: BTreeMap<String, Value>,
}

fn f64_array(v: &[f64]) -> Value {
    Value::Array(DynArray::F64(Array1::from(v.to_vec()).into_dyn()))
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
            Op::Scan(_) | Op::Select { .. } => vec![],
            Op::Scale(_) => vec!["pass over X: column moments (mean, variance)".into()],
            Op::Pca {
                standardize: Some(_),
                ..
            } => vec![
                "pass over X: Gram matrix + column sums (correlation, fused scale)".into(),
                "pass over X: project onto components -> obsm['X_pca']".into(),
            ],
            Op::Pca { .. } => vec![
                "pass over X: Gram matrix + column sums".into(),
                "pass over X: project onto components -> obsm['X_pca']".into(),
            ],
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
        let sink = matches!(node.op, Op::Plot { .. } | Op::Write { .. });
        let t = Instant::now();
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
        let stage =
            |name: String, blocks: usize, n_vars: usize, n_obs: usize, report: &mut RunReport| {
                report.stages.push(StageReport {
                    name,
                    seconds: t.elapsed().as_secs_f64(),
                    blocks,
                    bytes: (n_obs * n_vars * 8) as u64,
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
                        if wanted("blob") {
                            let labels: Vec<u32> =
                                rows.indices().map(|r| blobs.label(r) as u32).collect();
                            a.obs.push(("blob".into(), categorical(&labels, *centers)));
                        }
                        SourceKind::Blobs { blobs, centers: c }
                    }
                    Source::File { path, .. } => {
                        let ds = Dataset::open(path)?;
                        let matrix = ds
                            .x()?
                            .ok_or_else(|| Error::usage(format!("{path}: the dataset has no X")))?;
                        let obs = ds.obs(scan.obs_columns.as_deref())?;
                        let obs = if rows.is_full(n_all) {
                            obs
                        } else {
                            obs.take(&rows.indices().collect::<Vec<_>>())
                        };
                        a.obs.extend(obs.columns);
                        SourceKind::File { matrix }
                    }
                };
                let (n_obs, n_vars) = (rows.len(), cols.len());
                let source = XSource {
                    kind,
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
                        max_rows: io::max_block_rows(n_vars, opts.memory_limit, workers()),
                    },
                );
            }
            Op::Select { rows, cols } => {
                let mut l = in_lineage()?;
                let rows = rows.as_ref().map(|r| Arc::new(r.sel.clone()));
                let cols = cols.as_ref().map(|c| Arc::new(c.sel.clone()));
                if let Some(r) = &rows {
                    let pos: Vec<usize> = r.indices().collect();
                    a.obs = a
                        .obs
                        .iter()
                        .map(|(n, c)| (n.clone(), c.take(&pos)))
                        .collect();
                    for v in a.obsm.values_mut() {
                        *v = v.select(Axis(0), &pos);
                    }
                    l.n_obs = r.len();
                }
                if let Some(c) = &cols {
                    let pos: Vec<usize> = c.indices().collect();
                    for v in a.varm.values_mut() {
                        *v = v.select(Axis(0), &pos);
                    }
                    l.n_vars = c.len();
                }
                if rows.is_some() {
                    // A graph over cells keeps the selected cells' edges among themselves.
                    let r = rows
                        .as_deref()
                        .cloned()
                        .unwrap_or_else(|| AxisSelection::all(0));
                    for g in a.obsp.values_mut() {
                        *g = g.select(&r, &r);
                    }
                }
                l.steps.push(LineageStep::View { rows, cols });
                lineages.insert(id, l);
            }
            Op::Scale(p) => {
                let lin = in_lineage()?;
                let (m, blocks) = fold_pass(
                    &lin,
                    &progress(opts, &format!("{}: moments", node.step), lin.blocks().len()),
                    || Moments::new(lin.n_vars()),
                    |acc, _, x| {
                        *acc = std::mem::replace(acc, Moments::new(0)).merge(Moments::of_block(x))
                    },
                    Moments::merge,
                )?;
                let sd: Vec<f64> = m
                    .var(1)
                    .iter()
                    .map(|v| if *v > 0.0 { v.sqrt() } else { 1.0 })
                    .collect();
                let mut l = lin.clone();
                l.steps.push(LineageStep::Map(XMap::Standardize {
                    mean: Arc::new(m.mean),
                    sd: Arc::new(sd),
                    zero_center: p.zero_center,
                    max_value: p.max_value,
                }));
                stage(
                    format!("{}: moments", node.step),
                    blocks,
                    lin.n_vars(),
                    lin.n_obs(),
                    &mut report,
                );
                lineages.insert(id, l);
            }
            Op::Pca {
                n_comps,
                zero_center,
                standardize,
            } => {
                let lin = in_lineage()?;
                // The shift keeps the Gram free of cancellation: the mean of a first block.
                let first = lin.block(0..lin.n_obs().min(256))?;
                let shift = Moments::of_block(first.view()).mean;
                let (gram, blocks) = fold_pass(
                    &lin,
                    &progress(opts, &format!("{}: Gram", node.step), lin.blocks().len()),
                    || Gram::new(shift.clone()),
                    |g, _, x| g.update(x),
                    |a, b| a.merge(&b),
                )?;
                stage(
                    format!("{}: Gram", node.step),
                    blocks,
                    lin.n_vars(),
                    lin.n_obs(),
                    &mut report,
                );
                let t2 = Instant::now();
                let mean = if *zero_center {
                    gram.mean()
                } else {
                    vec![0.0; lin.n_vars()]
                };
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
                let p = pca::from_covariance(cov, *n_comps).map_err(Error::internal)?;
                // Output X is the scaled X when a scale was fused in.
                let mut out_lin = lin.clone();
                if let (
                    Some(ScaleParams {
                        zero_center: zc,
                        max_value,
                    }),
                    Some(sd),
                ) = (standardize, &scale)
                {
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
                        let x = lin.block(r)?;
                        let scores = pca::project(x.view(), &mean, scale.as_deref(), &p.components);
                        out.zip_mut_with(&scores, |o, &v| *o = v as f32);
                        bar.inc(1);
                        Ok(())
                    })?;
                bar.finish_and_clear();
                report.stages.push(StageReport {
                    name: format!("{}: project", node.step),
                    seconds: t2.elapsed().as_secs_f64(),
                    blocks: nblocks,
                    bytes: (lin.n_obs() * lin.n_vars() * 8) as u64,
                    peak_rss_kib: peak_rss_kib(),
                });
                a.obsm.insert("X_pca".into(), x_pca);
                a.varm.insert("PCs".into(), p.components.clone());
                a.uns.insert(
                    "pca".into(),
                    dict(vec![
                        ("variance", f64_array(&p.variance)),
                        ("variance_ratio", f64_array(&p.variance_ratio)),
                        (
                            "params",
                            dict(vec![
                                ("zero_center", scalar_bool(*zero_center)),
                                ("use_highly_variable", scalar_bool(false)),
                                (
                                    "mask_var",
                                    Value::Scalar(DynArray::Bool(ndarray::ArrayD::from_elem(
                                        ndarray::IxDyn(&[]),
                                        false,
                                    ))),
                                ),
                            ]),
                        ),
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
                let cols = n_pcs.unwrap_or(rep.ncols()).min(rep.ncols());
                let view = rep.slice(s![.., ..cols]);
                // scanpy's switch: exact search below 8,192 cells, NN-descent above.
                let (idx, dist) = if view.nrows() < 8192 {
                    knn::exact_knn(view.mapv(f64::from).view(), *n_neighbors)
                } else {
                    engine_ops::nndescent::nn_descent(view, *n_neighbors, *random_state as u64)
                };
                a.obsp
                    .insert("distances".into(), knn::distances(&idx, &dist));
                a.obsp.insert(
                    "connectivities".into(),
                    knn::umap_connectivities(&idx, &dist),
                );
                a.uns.insert(
                    "neighbors".into(),
                    dict(vec![
                        ("connectivities_key", Value::String("connectivities".into())),
                        ("distances_key", Value::String("distances".into())),
                        (
                            "params",
                            dict(vec![
                                ("n_neighbors", scalar_i64(*n_neighbors as i64)),
                                ("method", Value::String("umap".into())),
                                ("random_state", scalar_i64(*random_state)),
                                ("metric", Value::String("euclidean".into())),
                                ("use_rep", Value::String(use_rep.clone())),
                            ]),
                        ),
                    ]),
                );
                stage(
                    format!("{}: kNN + connectivities", node.step),
                    0,
                    0,
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
                a.obs.retain(|(n, _)| n != key_added);
                a.obs.push((key_added.clone(), categorical(&labels, k)));
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
                stage(format!("{}: Leiden", node.step), 0, 0, 0, &mut report);
                lineages.insert(id, in_lineage()?);
            }
            Op::Plot {
                basis,
                components,
                color,
                path,
            } => {
                let a = &ann[&input.ok_or_else(|| Error::internal("plot without input"))?];
                let emb = a.obsm.get(&format!("X_{basis}")).ok_or_else(|| {
                    Error::usage(format!("step `{}`: no obsm['X_{basis}']", node.step))
                })?;
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
                let groups = color
                    .as_ref()
                    .and_then(|c| a.obs.iter().find(|(n, _)| n == c))
                    .and_then(|(_, col)| match col {
                        Column::Categorical {
                            codes, categories, ..
                        } => {
                            let codes: Vec<u32> = codes
                                .to_i64_vec()?
                                .into_iter()
                                .map(|v| v.max(0) as u32)
                                .collect();
                            let names: Vec<String> = (0..categories.len())
                                .map(|i| engine_store::value::render_scalar(categories, i))
                                .collect();
                            Some((codes, names))
                        }
                        _ => None,
                    });
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
                    groups: groups.as_ref().map(|(g, n)| (g.as_slice(), n.as_slice())),
                    title: color.clone().unwrap_or_else(|| basis.clone()),
                    x_label: label(components.0),
                    y_label: label(components.1),
                };
                engine_plot::scatter_png(&plot, target.tmp_path())?;
                target.commit()?;
                report.outputs.push(path.clone());
                stage(format!("{}: plot", node.step), 0, 0, 0, &mut report);
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
                stage(
                    format!("{}: write", node.step),
                    blocks,
                    lin.n_vars(),
                    lin.n_obs(),
                    &mut report,
                );
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
    let categories = engine_store::encoding::str_array((0..k).map(|c| c.to_string()));
    let codes = if k <= i8::MAX as usize {
        DynArray::I8(Array1::from_iter(labels.iter().map(|&l| l as i8)).into_dyn())
    } else {
        DynArray::I16(Array1::from_iter(labels.iter().map(|&l| l as i16)).into_dyn())
    };
    Column::Categorical {
        codes,
        categories,
        ordered: false,
    }
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
    let mut obs = Frame::with_range_index(n_obs);
    obs.columns = a.obs.clone();
    write::write_frame(w.as_mut(), "obs", &obs)?;
    write::write_frame(w.as_mut(), "var", &Frame::with_range_index(n_vars))?;
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
    w.create_array(
        "X",
        engine_matrix::DType::F32,
        &[n_obs as u64, n_vars as u64],
        &x_opts,
        &write::enc_attrs("array", "0.2.0"),
    )?;
    let ranges = if chunk_rows > 0 {
        // Whole output chunks per block so none is rewritten.
        io::even_blocks(n_obs, lin.max_rows.div_ceil(chunk_rows) * chunk_rows)
    } else {
        lin.blocks()
    };
    let workers = workers();
    let bar = progress(opts, &format!("write {path}"), ranges.len());
    for window in ranges.chunks(workers) {
        bar.inc(window.len() as u64);
        let blocks: Vec<(Range<usize>, Array2<f32>)> = window
            .par_iter()
            .map(|r| {
                lin.block(r.clone())
                    .map(|x| (r.clone(), x.mapv(|v| v as f32)))
            })
            .collect::<Result<_>>()?;
        for (r, b) in blocks {
            w.write("X", &[r.start as u64, 0], &DynArray::F32(b.into_dyn()))?;
        }
    }
    let group = |w: &mut dyn engine_store::StoreWriter, name: &str| {
        w.create_group(name, &write::enc_attrs("dict", "0.1.0"))
    };
    group(w.as_mut(), "obsm")?;
    for (k, v) in &a.obsm {
        write::write_array(
            w.as_mut(),
            &format!("obsm/{k}"),
            &DynArray::F32(v.clone().into_dyn()),
            &ArrayOptions::default(),
        )?;
    }
    group(w.as_mut(), "varm")?;
    for (k, v) in &a.varm {
        write::write_array(
            w.as_mut(),
            &format!("varm/{k}"),
            &DynArray::F64(v.clone().into_dyn()),
            &ArrayOptions::default(),
        )?;
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
