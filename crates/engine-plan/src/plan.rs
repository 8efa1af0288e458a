//! The logical plan: a DAG of AnnData-valued nodes whose schemas are known before any data is
//! read. Nodes live in an arena in topological order (inputs before consumers), named by
//! [`NodeId`]; a node consumed twice is a fan-out, never a copy.

use engine_matrix::DType;
use std::fmt::Write as _;

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
    File { path: String },
}

/// Standardisation parameters of `scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleParams {
    pub zero_center: bool,
    pub max_value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Scan(Source),
    Scale(ScaleParams),
    /// PCA of its input's X. `standardize` is set by `fuse_elementwise` when a `scale` was
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
            Op::Scan(Source::Synthetic {
                n_obs,
                n_vars,
                centers,
                cluster_std,
                seed,
                dtype,
            }) => {
                format!(
                    "synthetic(n_obs={n_obs}, n_vars={n_vars}, centers={centers}, cluster_std={cluster_std}, seed={seed}, dtype={dtype})"
                )
            }
            Op::Scan(Source::File { path }) => format!("file({path})"),
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
