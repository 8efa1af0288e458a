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
            chunk_starts: None,
        }
    }

    /// Rows and columns of the full source.
    pub fn source_shape(&self) -> (usize, usize) {
        match &self.source {
            Source::Synthetic { n_obs, n_vars, .. } => (*n_obs, *n_vars),
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

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Scan(Scan),
    /// A view `adata[rows, cols]` (positions in its input).
    Select {
        rows: Option<Selection>,
        cols: Option<Selection>,
    },
    Scale(ScaleParams),
    /// PCA of its input's X. `standardize` is set by `merge_passes` when a `scale` was
    /// folded in: the Gram of the unscaled data then yields the correlation matrix directly,
    /// and the output's X is the scaled X.
    Pca {
        n_comps: usize,
        zero_center: bool,
        standardize: Option<ScaleParams>,
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

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Scan(_) => "Scan",
            Op::Select { .. } => "Select",
            Op::Scale(_) => "Scale",
            Op::Pca { .. } => "Pca",
            Op::Neighbors { .. } => "Neighbors",
            Op::Leiden { .. } => "Leiden",
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
                if let Some(a) = &scan.chunk_starts {
                    let _ = write!(d, ", blocks aligned to {} chunk boundaries", a.len());
                }
                d
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
            Op::Scale(p) => format!(
                "zero_center={}, max_value={}",
                p.zero_center,
                p.max_value.map_or("none".into(), |v| v.to_string())
            ),
            Op::Pca {
                n_comps,
                zero_center,
                standardize,
            } => format!(
                "n_comps={n_comps}, zero_center={zero_center}{}",
                standardize.map_or(String::new(), |s| format!(
                    ", standardize(zero_center={})",
                    s.zero_center
                ))
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

/// What a node's AnnData value holds, known at plan time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schema {
    pub n_obs: usize,
    pub n_vars: usize,
    pub x_dtype: Option<DType>,
    /// Transformations applied to X since the scan, in order (e.g. `["scale"]`).
    pub x_maps: Vec<String>,
    pub obs: Vec<String>,
    /// `(key, columns)`.
    pub obsm: Vec<(String, usize)>,
    pub varm: Vec<(String, usize)>,
    pub obsp: Vec<String>,
    pub uns: Vec<String>,
}

impl Schema {
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} x {} {}",
            self.n_obs,
            self.n_vars,
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
        s += &list("obs", &self.obs);
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
