//! The logical plan: a DAG of AnnData-valued nodes whose schemas are known before any data is
//! read. Nodes live in an arena in topological order (inputs before consumers), named by
//! [`NodeId`]; a node consumed twice is a fan-out, never a copy.

use engine_matrix::{AxisSelection, DType};
use std::fmt::Write as _;
use std::sync::Arc;

/// Index of a node in its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub usize);

/// Where X comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Gaussian blobs generated block by block.
    Synthetic {
        n_obs: usize,
        n_vars: usize,
        centers: usize,
        cluster_std: f64,
        seed: u64,
        dtype: DType,
    },
    /// Sparse single-cell-like counts generated block by block.
    Counts {
        n_obs: usize,
        n_vars: usize,
        n_types: usize,
        n_batches: usize,
        library_size: f64,
        seed: u64,
    },
    /// An .h5ad or .zarr dataset.
    File { path: String, storage: Storage },
}

/// How a file's X is stored, learnt at plan time from metadata (and, for CSR, the row
/// pointers), so EXPLAIN can say what a scan reads and `align_chunks` can follow the chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    /// `dense`, `csr` or `csc`.
    pub encoding: String,
    pub shape: [usize; 2],
    pub dtype: DType,
    /// Bytes per value and, for sparse, per stored column index.
    pub value_bytes: usize,
    pub index_bytes: usize,
    /// Chunk shape of the dense array, or the 1-D chunk of a sparse matrix's `data`;
    /// `None` when contiguous.
    pub chunks: Option<Vec<u64>>,
    pub compression: Vec<String>,
    /// CSR row pointers.
    pub indptr: Option<Arc<Vec<u64>>>,
}

/// A row or column selection (positions) with the text it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub sel: AxisSelection,
    pub text: String,
}

impl Selection {
    pub fn describe(&self, n: usize) -> String {
        format!(
            "{} ({} of {n} in {} run{})",
            self.text,
            self.sel.len(),
            self.sel.runs().len(),
            if self.sel.runs().len() == 1 { "" } else { "s" }
        )
    }
}

/// A read of X and obs from a source, with what the optimizer pushed into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    pub source: Source,
    /// Rows and columns read, as positions in the source (`push_down_selection`).
    pub rows: Option<Selection>,
    pub cols: Option<Selection>,
    /// The obs columns read; `None` reads all (`prune_elements`).
    pub obs_columns: Option<Vec<String>>,
    /// The obsm/varm/obsp/uns elements read from a file, as paths (`obsm/X_pca`); `None`
    /// reads all (`prune_elements`).
    pub elements: Option<Vec<String>>,
    /// Source rows where storage chunks begin, which pass blocks should not cross
    /// (`align_chunks`).
    pub chunk_starts: Option<Arc<Vec<usize>>>,
}

impl Scan {
    pub fn new(source: Source) -> Scan {
        Scan {
            source,
            rows: None,
            cols: None,
            obs_columns: None,
            elements: None,
            chunk_starts: None,
        }
    }

    /// Rows and columns of the full source.
    pub fn source_shape(&self) -> (usize, usize) {
        match &self.source {
            Source::Synthetic { n_obs, n_vars, .. } | Source::Counts { n_obs, n_vars, .. } => {
                (*n_obs, *n_vars)
            }
            Source::File { storage, .. } => (storage.shape[0], storage.shape[1]),
        }
    }
}

/// Standardisation parameters of `scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleParams {
    pub zero_center: bool,
    pub max_value: Option<f64>,
}

/// A gene set for QC: an existing boolean var column, or one defined by name prefixes.
#[derive(Debug, Clone, PartialEq)]
pub struct QcVar {
    pub name: String,
    pub prefixes: Option<Vec<String>>,
}

/// What a filter counts per cell (gene): stored non-zeros or the sum of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterBy {
    Counts,
    Detected,
}

/// Highly-variable-gene selection (`seurat` / `cell_ranger`).
#[derive(Debug, Clone, PartialEq)]
pub struct HvgParams {
    pub flavor: String,
    pub n_top_genes: Option<usize>,
    pub min_disp: f64,
    pub max_disp: f64,
    pub min_mean: f64,
    pub max_mean: f64,
    pub n_bins: usize,
    pub subset: bool,
    pub batch_key: Option<String>,
    /// `seurat_v3`'s LOESS span.
    pub span: f64,
    /// Set by `merge_passes` when a `scale` reads this step's output: the gene-statistics
    /// pass also sums the values themselves, which are scale's column moments.
    pub column_moments: bool,
}

impl Default for HvgParams {
    /// `sc.pp.highly_variable_genes`' defaults.
    fn default() -> Self {
        HvgParams {
            flavor: "seurat".into(),
            n_top_genes: None,
            min_disp: 0.5,
            max_disp: f64::INFINITY,
            min_mean: 0.0125,
            max_mean: 3.0,
            n_bins: 20,
            subset: false,
            batch_key: None,
            span: 0.3,
            column_moments: false,
        }
    }
}

/// How PCA finds its components (scanpy's `svd_solver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvdSolver {
    /// The Gram matrix while variables are few ([`GRAM_MAX_VARS`]), randomized above.
    Auto,
    /// One pass builds the `n_vars²` Gram (covariance) matrix; exact.
    CovarianceEigh,
    /// Subspace iteration, one pass per iteration; each worker holds `n_vars × (n_comps +
    /// 10)` numbers instead of `n_vars²`.
    Randomized,
}

/// Variables up to which `auto` builds the Gram matrix: each worker holds `n_vars²` doubles,
/// 200 MB at 5,000.
pub const GRAM_MAX_VARS: usize = 5000;

impl SvdSolver {
    pub fn parse(name: &str) -> Option<SvdSolver> {
        match name {
            "auto" => Some(SvdSolver::Auto),
            "covariance_eigh" => Some(SvdSolver::CovarianceEigh),
            "randomized" => Some(SvdSolver::Randomized),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SvdSolver::Auto => "auto",
            SvdSolver::CovarianceEigh => "covariance_eigh",
            SvdSolver::Randomized => "randomized",
        }
    }

    /// Whether PCA over `n_vars` variables runs the randomized solver.
    pub fn randomized_for(self, n_vars: usize) -> bool {
        match self {
            SvdSolver::Auto => n_vars > GRAM_MAX_VARS,
            SvdSolver::CovarianceEigh => false,
            SvdSolver::Randomized => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Scan(Scan),
    /// Per-cell and per-gene QC columns.
    Qc {
        qc_vars: Vec<QcVar>,
        percent_top: Vec<usize>,
        log1p: bool,
    },
    /// Keeps cells (`var == false`) or genes whose count lies within the bounds; the keep
    /// mask is known only after a pass, so the selection is made at run time.
    Filter {
        var: bool,
        by: FilterBy,
        min: Option<f64>,
        max: Option<f64>,
    },
    /// `fused` (set by `fuse_elementwise`): this step's map runs in the same per-block
    /// kernel as the maps before it.
    NormalizeTotal {
        target_sum: Option<f64>,
        fused: bool,
    },
    Log1p {
        fused: bool,
    },
    Hvg(HvgParams),
    /// A view `adata[rows, cols]` (positions in its input).
    Select {
        rows: Option<Selection>,
        cols: Option<Selection>,
    },
    /// A view by SQL predicates over columns computed in the pipeline (QC metrics, …),
    /// evaluated at run time over the input's obs (var) after the positional selections.
    Where {
        rows: Option<Selection>,
        cols: Option<Selection>,
        obs: Option<String>,
        var: Option<String>,
    },
    Scale {
        params: ScaleParams,
        fused: bool,
        /// Set by `merge_passes`: the column moments come from the input `highly_variable_genes`
        /// step's pass instead of a pass of their own.
        moments_merged: bool,
    },
    /// PCA of its input's X. `standardize` is set by `merge_passes` when a `scale` was
    /// folded in: the Gram of the unscaled data then yields the correlation matrix directly,
    /// and the output's X is the scaled X.
    Pca {
        n_comps: usize,
        zero_center: bool,
        standardize: Option<ScaleParams>,
        /// A boolean var column restricting the genes (scanpy's `mask_var`).
        mask_var: Option<String>,
        svd_solver: SvdSolver,
        /// Seeds the randomized solver's start.
        random_state: i64,
    },
    Neighbors {
        n_neighbors: usize,
        n_pcs: Option<usize>,
        use_rep: String,
        random_state: i64,
    },
    Leiden {
        resolution: f64,
        random_state: i64,
        n_iterations: i64,
        key_added: String,
    },
    Umap {
        min_dist: f64,
        spread: f64,
        n_components: usize,
        maxiter: Option<usize>,
        alpha: f64,
        gamma: f64,
        negative_sample_rate: usize,
        spectral: bool,
        random_state: i64,
        a: Option<f64>,
        b: Option<f64>,
    },
    Plot {
        basis: String,
        components: (usize, usize),
        color: Option<String>,
        path: String,
    },
    Write {
        path: String,
        format: Option<String>,
        chunks: Option<Vec<u64>>,
        compression: Option<String>,
    },
}

/// How EXPLAIN marks a map fused into the kernel before it.
fn fused_note(fused: bool, after_params: bool) -> String {
    match (fused, after_params) {
        (false, _) => String::new(),
        (true, true) => ", fused into the previous map's kernel".into(),
        (true, false) => "fused into the previous map's kernel".into(),
    }
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Scan(_) => "Scan",
            Op::Qc { .. } => "Qc",
            Op::Filter { .. } => "Filter",
            Op::NormalizeTotal { .. } => "NormalizeTotal",
            Op::Log1p { .. } => "Log1p",
            Op::Hvg(_) => "Hvg",
            Op::Select { .. } => "Select",
            Op::Where { .. } => "Where",
            Op::Scale { .. } => "Scale",
            Op::Pca { .. } => "Pca",
            Op::Neighbors { .. } => "Neighbors",
            Op::Leiden { .. } => "Leiden",
            Op::Umap { .. } => "Umap",
            Op::Plot { .. } => "Plot",
            Op::Write { .. } => "Write",
        }
    }

    /// Parameters as stable text for EXPLAIN.
    pub fn describe(&self) -> String {
        match self {
            Op::Scan(scan) => {
                let mut d = match &scan.source {
                    Source::Synthetic {
                        n_obs,
                        n_vars,
                        centers,
                        cluster_std,
                        seed,
                        dtype,
                    } => format!(
                        "synthetic(n_obs={n_obs}, n_vars={n_vars}, centers={centers}, cluster_std={cluster_std}, seed={seed}, dtype={dtype})"
                    ),
                    Source::Counts {
                        n_obs,
                        n_vars,
                        n_types,
                        n_batches,
                        library_size,
                        seed,
                    } => format!(
                        "synthetic_counts(n_obs={n_obs}, n_vars={n_vars}, n_types={n_types}, n_batches={n_batches}, library_size={library_size}, seed={seed})"
                    ),
                    Source::File { path, storage } => {
                        format!("file({path}, {} {})", storage.encoding, storage.dtype)
                    }
                };
                let (n, m) = scan.source_shape();
                if let Some(r) = &scan.rows {
                    let _ = write!(d, ", rows={}", r.describe(n));
                }
                if let Some(c) = &scan.cols {
                    let _ = write!(d, ", cols={}", c.describe(m));
                }
                if let Some(o) = &scan.obs_columns {
                    let _ = write!(d, ", obs=[{}]", o.join(","));
                }
                if let Some(e) = &scan.elements {
                    let _ = write!(d, ", elements=[{}]", e.join(","));
                }
                if let Some(a) = &scan.chunk_starts {
                    let _ = write!(d, ", blocks aligned to {} chunk boundaries", a.len());
                }
                d
            }
            Op::Qc {
                qc_vars,
                percent_top,
                log1p,
            } => format!(
                "qc_vars=[{}], percent_top={percent_top:?}, log1p={log1p}",
                qc_vars
                    .iter()
                    .map(|q| match &q.prefixes {
                        Some(p) => format!("{}={}", q.name, p.join("|")),
                        None => q.name.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Op::Filter { var, by, min, max } => {
                let what = match (var, by) {
                    (false, FilterBy::Counts) | (true, FilterBy::Counts) => "counts",
                    (false, FilterBy::Detected) => "genes",
                    (true, FilterBy::Detected) => "cells",
                };
                let mut d = format!("{} by {what}", if *var { "genes" } else { "cells" });
                if let Some(m) = min {
                    let _ = write!(d, ", min={m}");
                }
                if let Some(m) = max {
                    let _ = write!(d, ", max={m}");
                }
                d
            }
            Op::NormalizeTotal { target_sum, fused } => format!(
                "target_sum={}{}",
                target_sum.map_or("median".into(), |t| t.to_string()),
                fused_note(*fused, true)
            ),
            Op::Log1p { fused } => fused_note(*fused, false),
            Op::Hvg(h) if h.flavor == "seurat_v3" => {
                let mut d = format!(
                    "flavor=seurat_v3, n_top_genes={}, span={}, subset={}",
                    h.n_top_genes.unwrap_or(2000),
                    h.span,
                    h.subset
                );
                if let Some(b) = &h.batch_key {
                    let _ = write!(d, ", batch_key={b}");
                }
                d
            }
            Op::Hvg(h) => {
                let mut d = format!("flavor={}", h.flavor);
                match h.n_top_genes {
                    Some(n) => {
                        let _ = write!(d, ", n_top_genes={n}");
                    }
                    None => {
                        let _ = write!(
                            d,
                            ", min_mean={}, max_mean={}, min_disp={}, max_disp={}",
                            h.min_mean, h.max_mean, h.min_disp, h.max_disp
                        );
                    }
                }
                let _ = write!(d, ", n_bins={}, subset={}", h.n_bins, h.subset);
                if let Some(b) = &h.batch_key {
                    let _ = write!(d, ", batch_key={b}");
                }
                if h.column_moments {
                    d.push_str(", with scale's column moments");
                }
                d
            }
            Op::Where {
                rows,
                cols,
                obs,
                var,
            } => {
                let mut parts = Vec::new();
                if let Some(r) = rows {
                    parts.push(format!("rows={}", r.text));
                }
                if let Some(c) = cols {
                    parts.push(format!("cols={}", c.text));
                }
                if let Some(o) = obs {
                    parts.push(format!("obs where {o} (at run time)"));
                }
                if let Some(v) = var {
                    parts.push(format!("var where {v} (at run time)"));
                }
                parts.join(", ")
            }
            Op::Select { rows, cols } => {
                let mut parts = Vec::new();
                if let Some(r) = rows {
                    parts.push(format!("rows={}", r.text));
                }
                if let Some(c) = cols {
                    parts.push(format!("cols={}", c.text));
                }
                parts.join(", ")
            }
            Op::Scale {
                params: p,
                fused,
                moments_merged,
            } => format!(
                "zero_center={}, max_value={}{}{}",
                p.zero_center,
                p.max_value.map_or("none".into(), |v| v.to_string()),
                fused_note(*fused, true),
                if *moments_merged {
                    ", moments from the input's pass"
                } else {
                    ""
                }
            ),
            Op::Pca {
                n_comps,
                zero_center,
                standardize,
                mask_var,
                svd_solver,
                random_state,
            } => format!(
                "n_comps={n_comps}, zero_center={zero_center}{}{}{}",
                standardize.map_or(String::new(), |s| format!(
                    ", standardize(zero_center={})",
                    s.zero_center
                )),
                mask_var
                    .as_ref()
                    .map_or(String::new(), |m| format!(", mask_var={m}")),
                match svd_solver {
                    SvdSolver::Auto => String::new(),
                    SvdSolver::CovarianceEigh => ", svd_solver=covariance_eigh".into(),
                    SvdSolver::Randomized =>
                        format!(", svd_solver=randomized, random_state={random_state}"),
                }
            ),
            Op::Neighbors {
                n_neighbors,
                n_pcs,
                use_rep,
                ..
            } => {
                format!(
                    "n_neighbors={n_neighbors}, use_rep={use_rep}, n_pcs={}",
                    n_pcs.map_or("all".into(), |v| v.to_string())
                )
            }
            Op::Leiden {
                resolution,
                random_state,
                n_iterations,
                key_added,
            } => {
                format!(
                    "resolution={resolution}, random_state={random_state}, n_iterations={n_iterations}, key_added={key_added}"
                )
            }
            Op::Umap {
                min_dist,
                spread,
                n_components,
                maxiter,
                negative_sample_rate,
                spectral,
                random_state,
                ..
            } => {
                format!(
                    "min_dist={min_dist}, spread={spread}, n_components={n_components}, maxiter={}, negative_sample_rate={negative_sample_rate}, init_pos={}, random_state={random_state}",
                    maxiter.map_or("auto".into(), |v| v.to_string()),
                    if *spectral { "spectral" } else { "random" }
                )
            }
            Op::Plot {
                basis,
                components,
                color,
                path,
            } => {
                format!(
                    "basis={basis}, components={},{}, color={}, path={path}",
                    components.0 + 1,
                    components.1 + 1,
                    color.as_deref().unwrap_or("none")
                )
            }
            Op::Write {
                path,
                format,
                chunks,
                ..
            } => format!(
                "path={path}, format={}{}",
                format.as_deref().unwrap_or("auto"),
                chunks
                    .as_ref()
                    .map_or(String::new(), |c| format!(", chunks={c:?}"))
            ),
        }
    }
}

/// An obs/var column's type as the plan knows it before any data is read (bit widths and
/// missing values are the data's business).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Bool,
    Int,
    Float,
    Str,
    Category,
}

impl ColType {
    /// The type of a column read from a file.
    pub fn of(column: &engine_store::Column) -> ColType {
        let values = match column {
            engine_store::Column::Categorical { .. } => return ColType::Category,
            engine_store::Column::Plain(a) => a.dtype(),
            engine_store::Column::Nullable { values, .. } => values.dtype(),
        };
        match values {
            DType::Bool => ColType::Bool,
            DType::F32 | DType::F64 => ColType::Float,
            DType::Str => ColType::Str,
            _ => ColType::Int,
        }
    }

    /// A frame's columns with their types, in order.
    pub fn columns(frame: &engine_store::Frame) -> Vec<(String, ColType)> {
        frame
            .columns
            .iter()
            .map(|(n, c)| (n.clone(), ColType::of(c)))
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            ColType::Bool => "bool",
            ColType::Int => "int",
            ColType::Float => "float",
            ColType::Str => "str",
            ColType::Category => "category",
        }
    }
}

/// What a node's AnnData value holds, known at plan time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    pub n_obs: usize,
    pub n_vars: usize,
    pub x_dtype: Option<DType>,
    /// Whether X is stored sparse (CSR) as it flows.
    pub x_sparse: bool,
    /// Transformations applied to X since the scan, in order (e.g. `["scale"]`).
    pub x_maps: Vec<String>,
    /// `n_obs` (`n_vars`) is an upper bound: a filter upstream decides at run time.
    pub obs_bound: bool,
    pub var_bound: bool,
    /// obs and var columns with their types, in order.
    pub obs: Vec<(String, ColType)>,
    pub var: Vec<(String, ColType)>,
    /// `(key, columns)`.
    pub obsm: Vec<(String, usize)>,
    pub varm: Vec<(String, usize)>,
    pub obsp: Vec<String>,
    pub uns: Vec<String>,
}

impl Schema {
    pub fn has_obs(&self, name: &str) -> bool {
        self.obs.iter().any(|(k, _)| k == name)
    }

    pub fn has_var(&self, name: &str) -> bool {
        self.var.iter().any(|(k, _)| k == name)
    }

    /// Drops repeated element keys: a step that recomputes an element (a second `neighbors`,
    /// a `umap` on a file that has one) replaces it, keeping its place and taking the new width.
    pub fn dedup(&mut self) {
        fn keyed<T>(v: &mut Vec<(String, T)>) {
            let mut out: Vec<(String, T)> = Vec::with_capacity(v.len());
            for (k, c) in v.drain(..) {
                match out.iter_mut().find(|(o, _)| *o == k) {
                    Some(slot) => slot.1 = c,
                    None => out.push((k, c)),
                }
            }
            *v = out;
        }
        fn names(v: &mut Vec<String>) {
            let mut seen = std::collections::HashSet::new();
            v.retain(|k| seen.insert(k.clone()));
        }
        keyed(&mut self.obsm);
        keyed(&mut self.varm);
        keyed(&mut self.obs);
        keyed(&mut self.var);
        for v in [&mut self.obsp, &mut self.uns] {
            names(v);
        }
    }

    pub fn describe(&self) -> String {
        let bound = |b: bool| if b { "<=" } else { "" };
        let mut s = format!(
            "{}{} x {}{} {}{}",
            bound(self.obs_bound),
            self.n_obs,
            bound(self.var_bound),
            self.n_vars,
            if self.x_sparse { "csr " } else { "" },
            self.x_dtype.map_or("?".to_string(), |d| d.to_string())
        );
        if !self.x_maps.is_empty() {
            let _ = write!(s, " X={}", self.x_maps.join("∘"));
        }
        let list = |name: &str, v: &[String]| {
            if v.is_empty() {
                String::new()
            } else {
                format!(" {name}[{}]", v.join(","))
            }
        };
        let typed = |v: &[(String, ColType)]| {
            v.iter()
                .map(|(k, t)| format!("{k}:{}", t.name()))
                .collect::<Vec<_>>()
        };
        s += &list("obs", &typed(&self.obs));
        s += &list("var", &typed(&self.var));
        s += &list(
            "obsm",
            &self
                .obsm
                .iter()
                .map(|(k, c)| format!("{k}:{c}"))
                .collect::<Vec<_>>(),
        );
        s += &list(
            "varm",
            &self
                .varm
                .iter()
                .map(|(k, c)| format!("{k}:{c}"))
                .collect::<Vec<_>>(),
        );
        s += &list("obsp", &self.obsp);
        s += &list("uns", &self.uns);
        s
    }
}

/// One node of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The pipeline step it came from.
    pub step: String,
    pub op: Op,
    pub inputs: Vec<NodeId>,
    pub schema: Schema,
}

/// The DAG.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogicalPlan {
    pub nodes: Vec<Node>,
}

impl LogicalPlan {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// Nodes that read `id`.
    pub fn consumers(&self, id: NodeId) -> Vec<NodeId> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.inputs.contains(&id))
            .map(|(i, _)| NodeId(i))
            .collect()
    }

    /// Stable indented text, one node per line in topological order.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let inputs = if n.inputs.is_empty() {
                String::new()
            } else {
                format!(
                    " <- {}",
                    n.inputs
                        .iter()
                        .map(|i| format!("#{}", i.0))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            let _ = writeln!(
                out,
                "#{i} {} = {}({}){inputs}",
                n.step,
                n.op.name(),
                n.op.describe()
            );
            let _ = writeln!(out, "     :: {}", n.schema.describe());
        }
        out
    }
}
