//! Binds a validated pipeline to data: opens file sources for their metadata (never their
//! data), infers every node's schema, and checks what each step needs is there.

use crate::plan::{
    ColType, FilterBy, HvgParams, LogicalPlan, Node, NodeId, Op, QcVar, ScaleParams, Scan, Schema,
    Selection, Source, Storage, SvdSolver,
};
use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, DType};
use engine_spec::{Arg, PipelineSpec, Step};
use engine_store::backend::StoredType;
use std::collections::HashMap;
use std::sync::Arc;

fn int(step: &Step, name: &str) -> i64 {
    step.arg(name).as_i64().unwrap_or(0)
}

fn positive(step: &Step, name: &str) -> Result<usize> {
    match step.arg(name).as_i64() {
        Some(v) if v > 0 => Ok(v as usize),
        other => Err(Error::step(
            &step.id,
            format!("`{name}` must be positive, got {other:?}"),
        )),
    }
}

/// What the planner records about a file's X.
fn storage_of(x: &engine_store::Matrix) -> Result<Storage> {
    let values = x.value_info()?;
    let index = x.index_info()?;
    let bytes = |t: &StoredType| match t {
        StoredType::Plain(d) => d.size(),
        _ => 8,
    };
    let (encoding, indptr) = match x.sparse_format() {
        None => ("dense".to_string(), None),
        Some(f) => (
            f.encoding().trim_end_matches("_matrix").to_string(),
            x.indptr()?.map(Arc::new),
        ),
    };
    Ok(Storage {
        encoding,
        shape: [x.n_rows(), x.n_cols()],
        dtype: x.dtype(),
        value_bytes: bytes(&values.dtype),
        index_bytes: index.as_ref().map_or(0, |i| bytes(&i.dtype)),
        chunks: values.chunks.clone(),
        compression: values.compression.clone(),
        indptr,
    })
}

/// A `select` step's `obs` or `var` argument resolved against the axis length.
fn selection(step: &Step, name: &str, n: usize) -> Result<Option<Selection>> {
    let Some(text) = step.arg(name).as_str() else {
        return Ok(None);
    };
    let items = engine_spec::index_expr::parse(text)
        .map_err(|(_, m)| Error::step(&step.id, format!("`{name}`: {m}")))?;
    let runs = engine_spec::index_expr::resolve(&items, n)
        .map_err(|m| Error::step(&step.id, format!("`{name}`: {m}")))?;
    Ok(Some(Selection {
        sel: AxisSelection::from_runs(runs),
        text: text.to_string(),
    }))
}

/// Both selections (positions within the same axis).
fn and(a: Option<Selection>, b: Option<Selection>) -> Option<Selection> {
    match (a, b) {
        (Some(a), Some(b)) => {
            let keep: std::collections::HashSet<usize> = b.sel.indices().collect();
            let both: Vec<usize> = a.sel.indices().filter(|i| keep.contains(i)).collect();
            Some(Selection {
                sel: AxisSelection::from_indices(&both),
                text: format!("{} and {}", a.text, b.text),
            })
        }
        (a, None) => a,
        (None, b) => b,
    }
}

/// The file rows (or columns) behind each position of `id`'s obs (var), when `id` reads a
/// file through views and elementwise steps only.
fn file_positions(plan: &LogicalPlan, id: NodeId, var: bool) -> Option<(String, AxisSelection)> {
    let node = plan.node(id);
    match &node.op {
        Op::Scan(scan) => {
            let Source::File { path, storage } = &scan.source else {
                return None;
            };
            let n = storage.shape[usize::from(var)];
            let sel = if var { &scan.cols } else { &scan.rows };
            Some((
                path.clone(),
                sel.as_ref()
                    .map_or_else(|| AxisSelection::all(n), |s| s.sel.clone()),
            ))
        }
        Op::Select { rows, cols } => {
            let (path, base) = file_positions(plan, *node.inputs.first()?, var)?;
            let sel = if var { cols } else { rows };
            Some((
                path,
                sel.as_ref().map_or(base.clone(), |s| base.compose(&s.sel)),
            ))
        }
        Op::Scale { .. } => file_positions(plan, *node.inputs.first()?, var),
        _ => None,
    }
}

/// A `select` step's SQL predicate (`where` over obs, `var_where` over var): positions of its
/// input, evaluated now with DataFusion over the file's table when the input reads a file
/// through views; otherwise (columns computed in the pipeline) the text, for run time.
fn predicate(
    plan: &LogicalPlan,
    sql: &dyn Predicates,
    input: Option<NodeId>,
    step: &Step,
    name: &str,
    var: bool,
    n: usize,
) -> Result<Pred> {
    let Some(text) = step.arg(name).as_str() else {
        return Ok(Pred::Now(None));
    };
    let Some((path, positions)) = input.and_then(|i| file_positions(plan, i, var)) else {
        return Ok(Pred::Later(text.to_string()));
    };
    let mask = sql
        .mask(std::path::Path::new(&path), var, text)
        .map_err(|e| Error::step(&step.id, format!("`{name}`: {e}")))?;
    let keep: Vec<usize> = positions
        .indices()
        .enumerate()
        .filter(|(_, f)| mask.get(*f).copied().unwrap_or(false))
        .map(|(p, _)| p)
        .collect();
    debug_assert!(keep.iter().all(|&p| p < n));
    Ok(Pred::Now(Some(Selection {
        sel: AxisSelection::from_indices(&keep),
        text: text.to_string(),
    })))
}

/// A predicate resolved at plan time, or left for run time.
enum Pred {
    Now(Option<Selection>),
    Later(String),
}

/// Adds a column name unless present (a recomputed column replaces the old one in place).
fn add(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|c| c == name) {
        list.push(name.to_string());
    }
}

/// Adds an obs/var column; one the step recomputes keeps its place and takes the new type.
fn col(list: &mut Vec<(String, ColType)>, name: &str, ty: ColType) {
    match list.iter_mut().find(|(c, _)| c == name) {
        Some(slot) => slot.1 = ty,
        None => list.push((name.to_string(), ty)),
    }
}

/// `qc_vars`: comma-separated gene sets, each an existing boolean var column (`mt`) or one
/// defined by gene-name prefixes (`mt=MT-`, `ribo=RPS|RPL`).
fn qc_vars(step: &Step, s: &Schema) -> Result<Vec<QcVar>> {
    let Some(text) = step.arg("qc_vars").as_str() else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let q = match item.split_once('=') {
            Some((name, prefixes)) => QcVar {
                name: name.trim().to_string(),
                prefixes: Some(
                    prefixes
                        .split('|')
                        .map(|p| p.trim().to_string())
                        .filter(|p| !p.is_empty())
                        .collect(),
                ),
            },
            None => {
                if !s.has_var(item) {
                    return Err(Error::step(
                        &step.id,
                        format!(
                            "qc_vars: `{item}` is not a var column; define it by gene-name prefix, e.g. `{item}=MT-`"
                        ),
                    ));
                }
                QcVar {
                    name: item.to_string(),
                    prefixes: None,
                }
            }
        };
        if q.name.is_empty() || q.prefixes.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::step(
                &step.id,
                format!("qc_vars: `{item}` needs a name and at least one prefix"),
            ));
        }
        out.push(q);
    }
    Ok(out)
}

/// `percent_top`: sorted positive gene counts, none above the number of genes.
fn percent_top(step: &Step, n_vars: usize) -> Result<Vec<usize>> {
    let text = step.arg("percent_top").as_str().unwrap_or("");
    let mut v = Vec::new();
    for t in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        match t.parse::<usize>() {
            Ok(n) if n > 0 && n <= n_vars => v.push(n),
            _ => {
                return Err(Error::step(
                    &step.id,
                    format!(
                        "percent_top: `{t}` must be a number of genes from 1 to {n_vars} (set percent_top: \"\" to skip)"
                    ),
                ));
            }
        }
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// Evaluates a SQL predicate over a file's obs (or, with `var`, its var) into a mask. The
/// SQL engine lives in `engine-sql`; the binary passes it in, so planning (and everything
/// that depends on it) does not link DataFusion.
pub trait Predicates: Send + Sync + std::fmt::Debug {
    /// # Errors
    /// On SQL errors and read failures.
    fn mask(&self, path: &std::path::Path, var: bool, predicate: &str) -> Result<Vec<bool>>;

    /// Evaluates a predicate over an in-memory obs (or var) frame, for run time.
    ///
    /// # Errors
    /// On SQL errors.
    fn mask_frame(
        &self,
        frame: &engine_store::Frame,
        var: bool,
        predicate: &str,
    ) -> Result<Vec<bool>>;
}

/// For plans without SQL predicates: any `where` is an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPredicates;

impl Predicates for NoPredicates {
    fn mask(&self, _: &std::path::Path, _: bool, _: &str) -> Result<Vec<bool>> {
        Err(Error::usage("SQL predicates are not available here"))
    }

    fn mask_frame(&self, _: &engine_store::Frame, _: bool, _: &str) -> Result<Vec<bool>> {
        Err(Error::usage("SQL predicates are not available here"))
    }
}

/// Builds the logical plan of a pipeline.
///
/// # Errors
/// When a file source cannot be opened or a step's requirement (an obsm key, a graph, an obs
/// column) is not produced upstream.
pub fn plan(spec: &PipelineSpec, sql: &dyn Predicates) -> Result<LogicalPlan> {
    let mut plan = LogicalPlan::default();
    let mut by_step: HashMap<String, NodeId> = HashMap::new();
    for step in &spec.steps {
        let inputs: Vec<NodeId> = step.inputs.iter().map(|i| by_step[i]).collect();
        let input_schema = inputs.first().map(|i| plan.node(*i).schema.clone());
        let need = |what: &str, ok: bool| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(Error::step(
                    &step.id,
                    format!("`{}` needs {what} from its input", step.op.name),
                ))
            }
        };
        let (op, schema) = match step.op.name {
            "synthetic" => {
                let dtype = if step.arg("dtype").as_str() == Some("float64") {
                    DType::F64
                } else {
                    DType::F32
                };
                let (n_obs, n_vars) = (positive(step, "n_obs")?, positive(step, "n_vars")?);
                let src = Source::Synthetic {
                    n_obs,
                    n_vars,
                    centers: positive(step, "centers")?,
                    cluster_std: step.arg("cluster_std").as_f64().unwrap_or(1.0),
                    seed: int(step, "seed") as u64,
                    dtype,
                };
                let schema = Schema {
                    n_obs,
                    n_vars,
                    x_dtype: Some(dtype),
                    obs: vec![("blob".into(), ColType::Category)],
                    ..Default::default()
                };
                (Op::Scan(Scan::new(src)), schema)
            }
            "synthetic_counts" => {
                let (n_obs, n_vars) = (positive(step, "n_obs")?, positive(step, "n_vars")?);
                let src = Source::Counts {
                    n_obs,
                    n_vars,
                    n_types: positive(step, "n_types")?,
                    n_batches: positive(step, "n_batches")?,
                    library_size: step.arg("library_size").as_f64().unwrap_or(3000.0),
                    seed: int(step, "seed") as u64,
                };
                let schema = Schema {
                    n_obs,
                    n_vars,
                    x_dtype: Some(DType::F32),
                    x_sparse: true,
                    obs: vec![
                        ("cell_type".into(), ColType::Category),
                        ("batch".into(), ColType::Category),
                    ],
                    ..Default::default()
                };
                (Op::Scan(Scan::new(src)), schema)
            }
            "calculate_qc_metrics" => {
                let mut s = input_schema.unwrap_or_default();
                let qc_vars = qc_vars(step, &s)?;
                let percent_top = percent_top(step, s.n_vars)?;
                let log1p = step.arg("log1p").as_bool().unwrap_or(true);
                // Every metric is a float but the gene counts.
                col(&mut s.obs, "n_genes_by_counts", ColType::Int);
                let mut obs = vec![];
                if log1p {
                    obs.push("log1p_n_genes_by_counts".to_string());
                }
                obs.push("total_counts".into());
                if log1p {
                    obs.push("log1p_total_counts".into());
                }
                obs.extend(
                    percent_top
                        .iter()
                        .map(|n| format!("pct_counts_in_top_{n}_genes")),
                );
                for q in &qc_vars {
                    obs.push(format!("total_counts_{}", q.name));
                    if log1p {
                        obs.push(format!("log1p_total_counts_{}", q.name));
                    }
                    obs.push(format!("pct_counts_{}", q.name));
                    if q.prefixes.is_some() {
                        col(&mut s.var, &q.name, ColType::Bool);
                    }
                }
                for o in obs {
                    col(&mut s.obs, &o, ColType::Float);
                }
                col(&mut s.var, "n_cells_by_counts", ColType::Int);
                let mut var = vec!["mean_counts"];
                if log1p {
                    var.push("log1p_mean_counts");
                }
                var.extend(["pct_dropout_by_counts", "total_counts"]);
                if log1p {
                    var.push("log1p_total_counts");
                }
                for v in var {
                    col(&mut s.var, v, ColType::Float);
                }
                (
                    Op::Qc {
                        qc_vars,
                        percent_top,
                        log1p,
                    },
                    s,
                )
            }
            "filter_cells" | "filter_genes" => {
                let mut s = input_schema.unwrap_or_default();
                let var = step.op.name == "filter_genes";
                let detected = if var { "min_cells" } else { "min_genes" };
                let detected_max = if var { "max_cells" } else { "max_genes" };
                let given: Vec<(&str, f64)> = ["min_counts", detected, "max_counts", detected_max]
                    .into_iter()
                    .filter_map(|k| step.arg(k).as_f64().map(|v| (k, v)))
                    .collect();
                let [(name, value)] = given.as_slice() else {
                    return Err(Error::step(
                        &step.id,
                        format!(
                            "`{}`: give exactly one of `min_counts`, `{detected}`, `max_counts`, `{detected_max}`, as scanpy requires",
                            step.op.name
                        ),
                    ));
                };
                let by = if name.ends_with("counts") {
                    FilterBy::Counts
                } else {
                    FilterBy::Detected
                };
                let (min, max) = if name.starts_with("min") {
                    (Some(*value), None)
                } else {
                    (None, Some(*value))
                };
                let key = match (var, by) {
                    (_, FilterBy::Counts) => "n_counts",
                    (false, FilterBy::Detected) => "n_genes",
                    (true, FilterBy::Detected) => "n_cells",
                };
                // Counts are floats, numbers of genes or cells integers.
                let ty = match by {
                    FilterBy::Counts => ColType::Float,
                    FilterBy::Detected => ColType::Int,
                };
                if var {
                    col(&mut s.var, key, ty);
                    s.var_bound = true;
                } else {
                    col(&mut s.obs, key, ty);
                    s.obs_bound = true;
                }
                (Op::Filter { var, by, min, max }, s)
            }
            "normalize_total" => {
                let mut s = input_schema.unwrap_or_default();
                let target_sum = step.arg("target_sum").as_f64();
                if target_sum.is_some_and(|t| t <= 0.0) {
                    return Err(Error::step(&step.id, "`target_sum` must be positive"));
                }
                s.x_maps.push("normalize_total".into());
                (
                    Op::NormalizeTotal {
                        target_sum,
                        fused: false,
                    },
                    s,
                )
            }
            "log1p" => {
                let mut s = input_schema.unwrap_or_default();
                s.x_maps.push("log1p".into());
                add(&mut s.uns, "log1p");
                (Op::Log1p { fused: false }, s)
            }
            "highly_variable_genes" => {
                let mut s = input_schema.unwrap_or_default();
                let batch_key = step.arg("batch_key").as_str().map(String::from);
                if let Some(b) = &batch_key {
                    need(&format!("obs['{b}'] (the batch_key)"), s.has_obs(b))?;
                }
                let d = HvgParams::default();
                let h = HvgParams {
                    flavor: step.arg("flavor").as_str().map_or(d.flavor, String::from),
                    n_top_genes: step.arg("n_top_genes").as_i64().map(|v| v.max(0) as usize),
                    min_disp: step.arg("min_disp").as_f64().unwrap_or(d.min_disp),
                    max_disp: step.arg("max_disp").as_f64().unwrap_or(d.max_disp),
                    min_mean: step.arg("min_mean").as_f64().unwrap_or(d.min_mean),
                    max_mean: step.arg("max_mean").as_f64().unwrap_or(d.max_mean),
                    n_bins: positive(step, "n_bins")?,
                    subset: step.arg("subset").as_bool().unwrap_or(d.subset),
                    batch_key,
                    span: step.arg("span").as_f64().unwrap_or(d.span),
                    column_moments: false,
                };
                let v3 = h.flavor == "seurat_v3";
                if v3 && !(h.span > 0.0 && h.span <= 1.0) {
                    return Err(Error::step(
                        &step.id,
                        format!("`span` must be in (0, 1], got {}", h.span),
                    ));
                }
                let columns: &[&str] = if v3 {
                    &[
                        "highly_variable",
                        "highly_variable_rank",
                        "means",
                        "variances",
                        "variances_norm",
                    ]
                } else {
                    &[
                        "highly_variable",
                        "means",
                        "dispersions",
                        "dispersions_norm",
                    ]
                };
                for v in columns {
                    let ty = if *v == "highly_variable" {
                        ColType::Bool
                    } else {
                        ColType::Float
                    };
                    col(&mut s.var, v, ty);
                }
                if h.batch_key.is_some() {
                    col(&mut s.var, "highly_variable_nbatches", ColType::Int);
                    if !v3 {
                        col(&mut s.var, "highly_variable_intersection", ColType::Bool);
                    }
                }
                add(&mut s.uns, "hvg");
                if h.subset {
                    s.var_bound = true;
                }
                (Op::Hvg(h), s)
            }
            "read" => {
                let path = step.arg("path").as_str().unwrap_or_default().to_string();
                let ds = engine_store::Dataset::open(&path)?;
                let x = ds
                    .x()?
                    .ok_or_else(|| Error::usage(format!("{path}: the dataset has no X")))?;
                let obs = ColType::columns(&ds.obs(None)?);
                let var = ColType::columns(&ds.var(None)?);
                // Matrices only: obsm dataframes are not read.
                let matrices = |group: &str| -> Vec<(String, usize)> {
                    ds.keys(group)
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|k| {
                            let m = ds.matrix(&format!("{group}/{k}")).ok()?;
                            Some((k, m.n_cols()))
                        })
                        .collect()
                };
                let obsm = matrices("obsm");
                let varm = matrices("varm");
                let obsp = matrices("obsp").into_iter().map(|(k, _)| k).collect();
                let uns = ds.keys("uns")?;
                let storage = storage_of(&x)?;
                let schema = Schema {
                    n_obs: ds.n_obs(),
                    n_vars: ds.n_vars(),
                    x_dtype: Some(x.dtype()),
                    x_sparse: storage.encoding != "dense",
                    obs,
                    var,
                    obsm,
                    varm,
                    obsp,
                    uns,
                    ..Default::default()
                };
                (Op::Scan(Scan::new(Source::File { path, storage })), schema)
            }
            "select" => {
                let mut s = input_schema.unwrap_or_default();
                let input = inputs.first().copied();
                let (mut rows, mut cols) = (
                    selection(step, "obs", s.n_obs)?,
                    selection(step, "var", s.n_vars)?,
                );
                let mut later = (None, None);
                match predicate(&plan, sql, input, step, "where", false, s.n_obs)? {
                    Pred::Now(p) => rows = and(rows, p),
                    Pred::Later(t) => later.0 = Some(t),
                }
                match predicate(&plan, sql, input, step, "var_where", true, s.n_vars)? {
                    Pred::Now(p) => cols = and(cols, p),
                    Pred::Later(t) => later.1 = Some(t),
                }
                if let Some(r) = &rows {
                    s.n_obs = r.sel.len();
                }
                if let Some(c) = &cols {
                    s.n_vars = c.sel.len();
                }
                s.obs_bound |= later.0.is_some();
                s.var_bound |= later.1.is_some();
                match later {
                    (None, None) => (Op::Select { rows, cols }, s),
                    (obs, var) => (
                        Op::Where {
                            rows,
                            cols,
                            obs,
                            var,
                        },
                        s,
                    ),
                }
            }
            "scale" => {
                let mut s = input_schema.unwrap_or_default();
                s.x_maps.push("scale".into());
                col(&mut s.var, "mean", ColType::Float);
                col(&mut s.var, "std", ColType::Float);
                let p = ScaleParams {
                    zero_center: step.arg("zero_center").as_bool().unwrap_or(true),
                    max_value: step.arg("max_value").as_f64(),
                };
                (
                    Op::Scale {
                        params: p,
                        fused: false,
                        moments_merged: false,
                    },
                    s,
                )
            }
            "pca" => {
                let mut s = input_schema.unwrap_or_default();
                need("at least 2 cells (the selection left fewer)", s.n_obs >= 2)?;
                let n_comps = positive(step, "n_comps")?.min(s.n_vars).min(s.n_obs);
                // scanpy's default: the highly variable genes when they are annotated.
                let mask_var = match step.arg("mask_var").as_str() {
                    Some(m) => {
                        need(&format!("var['{m}'] (the mask_var)"), s.has_var(m))?;
                        Some(m.to_string())
                    }
                    None => s
                        .has_var("highly_variable")
                        .then(|| "highly_variable".to_string()),
                };
                s.obsm.retain(|(k, _)| k != "X_pca");
                s.obsm.push(("X_pca".into(), n_comps));
                s.varm.push(("PCs".into(), n_comps));
                s.uns.push("pca".into());
                (
                    Op::Pca {
                        n_comps,
                        zero_center: step.arg("zero_center").as_bool().unwrap_or(true),
                        standardize: None,
                        mask_var,
                        // The spec allows only the solvers this knows.
                        svd_solver: step
                            .arg("svd_solver")
                            .as_str()
                            .and_then(SvdSolver::parse)
                            .unwrap_or(SvdSolver::Auto),
                        random_state: int(step, "random_state"),
                    },
                    s,
                )
            }
            "neighbors" => {
                let mut s = input_schema.unwrap_or_default();
                let use_rep = step.arg("use_rep").as_str().unwrap_or("X_pca").to_string();
                need(
                    &format!("obsm['{use_rep}']"),
                    s.obsm.iter().any(|(k, _)| *k == use_rep),
                )?;
                s.obsp
                    .extend(["distances".to_string(), "connectivities".to_string()]);
                s.uns.push("neighbors".into());
                let op = Op::Neighbors {
                    n_neighbors: positive(step, "n_neighbors")?,
                    n_pcs: step.arg("n_pcs").as_i64().map(|v| v as usize),
                    use_rep,
                    random_state: int(step, "random_state"),
                };
                (op, s)
            }
            "leiden" => {
                let mut s = input_schema.unwrap_or_default();
                need(
                    "obsp['connectivities'] (run `neighbors` first)",
                    s.obsp.iter().any(|k| k == "connectivities"),
                )?;
                let key = step
                    .arg("key_added")
                    .as_str()
                    .unwrap_or("leiden")
                    .to_string();
                col(&mut s.obs, &key, ColType::Category);
                s.uns.push(key.clone());
                let op = Op::Leiden {
                    resolution: step.arg("resolution").as_f64().unwrap_or(1.0),
                    random_state: int(step, "random_state"),
                    n_iterations: int(step, "n_iterations"),
                    key_added: key,
                };
                (op, s)
            }
            "umap" => {
                let mut s = input_schema.unwrap_or_default();
                need(
                    "obsp['connectivities'] (run `neighbors` first)",
                    s.obsp.iter().any(|k| k == "connectivities"),
                )?;
                let n_components = positive(step, "n_components")?;
                s.obsm.push(("X_umap".into(), n_components));
                s.uns.push("umap".into());
                let op = Op::Umap {
                    min_dist: step.arg("min_dist").as_f64().unwrap_or(0.5),
                    spread: step.arg("spread").as_f64().unwrap_or(1.0),
                    n_components,
                    maxiter: step.arg("maxiter").as_i64().map(|v| v.max(0) as usize),
                    alpha: step.arg("alpha").as_f64().unwrap_or(1.0),
                    gamma: step.arg("gamma").as_f64().unwrap_or(1.0),
                    negative_sample_rate: positive(step, "negative_sample_rate")?,
                    spectral: step.arg("init_pos").as_str() != Some("random"),
                    random_state: int(step, "random_state"),
                    a: step.arg("a").as_f64(),
                    b: step.arg("b").as_f64(),
                };
                (op, s)
            }
            "plot" => {
                let s = input_schema.unwrap_or_default();
                let basis = step.arg("basis").as_str().unwrap_or("pca").to_string();
                let key = format!("X_{basis}");
                need(
                    &format!("obsm['{key}']"),
                    s.obsm.iter().any(|(k, _)| *k == key),
                )?;
                let color = match step.arg("color") {
                    Arg::Str(c) => {
                        need(&format!("obs['{c}']"), s.has_obs(c))?;
                        Some(c.clone())
                    }
                    _ => None,
                };
                let comps = step.arg("components").as_str().unwrap_or("1,2");
                let parsed: Vec<usize> = comps
                    .split(',')
                    .filter_map(|c| c.trim().parse::<usize>().ok())
                    .collect();
                let components = match parsed.as_slice() {
                    [a, b] if *a >= 1 && *b >= 1 => (a - 1, b - 1),
                    _ => {
                        return Err(Error::step(
                            &step.id,
                            format!(
                                "components must be two 1-based numbers like \"1,2\", got \"{comps}\""
                            ),
                        ));
                    }
                };
                let path = step.arg("path").as_str().unwrap_or_default().to_string();
                (
                    Op::Plot {
                        basis,
                        components,
                        color,
                        path,
                    },
                    s,
                )
            }
            other => return Err(Error::internal(format!("op `{other}` has no planner"))),
        };
        let mut schema = schema;
        schema.dedup();
        plan.nodes.push(Node {
            step: step.id.clone(),
            op,
            inputs,
            schema,
        });
        by_step.insert(step.id.clone(), NodeId(plan.nodes.len() - 1));
    }
    for out in &spec.outputs {
        let input = by_step[&out.step];
        let schema = plan.node(input).schema.clone();
        let op = Op::Write {
            path: out.path.clone(),
            format: out.format.clone(),
            chunks: out.chunks.clone(),
            compression: out.compression.clone(),
        };
        plan.nodes.push(Node {
            step: format!("{}:write", out.step),
            op,
            inputs: vec![input],
            schema,
        });
    }
    Ok(plan)
}
