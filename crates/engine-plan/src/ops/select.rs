//! `select`: a view `adata[rows, cols]` by positions, names' indices or SQL predicates. A
//! predicate over a file's own columns is evaluated now (DataFusion over the file's table);
//! one over columns the pipeline computes stays a `Where`, evaluated at run time.

use super::scan::Source;
use super::{Bind, LogicalOp, Reads, XEffect};
use crate::plan::{LogicalPlan, NodeId, Op};
use crate::schema::Schema;
use engine_common::{Error, Result};
use engine_matrix::AxisSelection;
use engine_spec::Step;
use engine_spec::index_expr::IndexError;

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

/// A view by positions (and plan-time predicates), which `push_down_selection` moves into
/// the scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub rows: Option<Selection>,
    pub cols: Option<Selection>,
}

/// A view by SQL predicates over columns computed in the pipeline (QC metrics, …),
/// evaluated at run time over the input's obs (var) after the positional selections.
#[derive(Debug, Clone, PartialEq)]
pub struct Where {
    pub rows: Option<Selection>,
    pub cols: Option<Selection>,
    pub obs: Option<String>,
    pub var: Option<String>,
}

fn positions(rows: &Option<Selection>, cols: &Option<Selection>) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(r) = rows {
        parts.push(format!("rows={}", r.text));
    }
    if let Some(c) = cols {
        parts.push(format!("cols={}", c.text));
    }
    parts
}

impl LogicalOp for Select {
    fn describe(&self) -> String {
        positions(&self.rows, &self.cols).join(", ")
    }

    fn reads(&self) -> Reads {
        Reads::Nothing
    }

    fn x_effect(&self) -> XEffect {
        XEffect::Keeps
    }
}

impl LogicalOp for Where {
    fn describe(&self) -> String {
        let mut parts = positions(&self.rows, &self.cols);
        if let Some(o) = &self.obs {
            parts.push(format!("obs where {o} (at run time)"));
        }
        if let Some(v) = &self.var {
            parts.push(format!("var where {v} (at run time)"));
        }
        parts.join(", ")
    }

    /// A run-time predicate may name any obs column, the file's among them: only SQL knows
    /// which, so the scan keeps them all.
    fn reads(&self) -> Reads {
        if self.obs.is_some() {
            Reads::AllObs
        } else {
            Reads::Nothing
        }
    }

    fn x_effect(&self) -> XEffect {
        XEffect::Keeps
    }
}

/// Binds a `select` step.
pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
    let step = b.step;
    let mut s = b.input_schema();
    let input = b.inputs.first().copied();
    let (mut rows, mut cols) = (
        selection(step, "obs", s.n_obs)?,
        selection(step, "var", s.n_vars)?,
    );
    let mut later = (None, None);
    match predicate(b, input, "where", false, &s)? {
        Pred::Now(p) => rows = and(rows, p),
        Pred::Later(t) => later.0 = Some(t),
    }
    match predicate(b, input, "var_where", true, &s)? {
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
    Ok(match later {
        (None, None) => (Op::Select(Select { rows, cols }), s),
        (obs, var) => (
            Op::Where(Where {
                rows,
                cols,
                obs,
                var,
            }),
            s,
        ),
    })
}

/// A `select` step's `obs` or `var` argument resolved against the axis length.
fn selection(step: &Step, name: &str, n: usize) -> Result<Option<Selection>> {
    let Some(text) = step.arg(name).as_str() else {
        return Ok(None);
    };
    let bad = |e: IndexError| Error::step(&step.id, format!("`{name}`: {e}"));
    let items = engine_spec::index_expr::parse(text).map_err(bad)?;
    let runs = engine_spec::index_expr::resolve(&items, n).map_err(bad)?;
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

/// A file and how it is read.
type FileRef = (String, engine_store::ReadOptions);

/// The file rows (or columns) behind each position of `id`'s obs (var), when `id` reads a
/// file through views and elementwise steps only. Walks back to the scan, then composes the
/// views forward (a loop: chains can be long).
fn file_positions(plan: &LogicalPlan, id: NodeId, var: bool) -> Option<(FileRef, AxisSelection)> {
    let mut views = Vec::new();
    let mut at = id;
    let (file, mut sel) = loop {
        let node = plan.node(at);
        match &node.op {
            Op::Scan(scan) => {
                let Source::File {
                    path,
                    storage,
                    options,
                } = &scan.source
                else {
                    return None;
                };
                let n = storage.shape[usize::from(var)];
                let sel = if var { &scan.cols } else { &scan.rows };
                break (
                    (path.clone(), options.clone()),
                    sel.as_ref()
                        .map_or_else(|| AxisSelection::all(n), |s| s.sel.clone()),
                );
            }
            Op::Select(Select { rows, cols }) => {
                if let Some(s) = if var { cols } else { rows } {
                    views.push(&s.sel);
                }
            }
            Op::Scale(_) => {}
            _ => return None,
        }
        at = *node.inputs.first()?;
    };
    for v in views.into_iter().rev() {
        sel = sel.compose(v);
    }
    Some((file, sel))
}

/// A `select` step's SQL predicate (`where` over obs, `var_where` over var): positions of its
/// input, evaluated now with DataFusion over the file's table when the input reads a file
/// through views; otherwise (columns computed in the pipeline) the text, for run time.
fn predicate(
    b: &Bind<'_>,
    input: Option<NodeId>,
    name: &str,
    var: bool,
    schema: &Schema,
) -> Result<Pred> {
    let (plan, sql, step) = (b.plan, b.sql, b.step);
    let n = if var { schema.n_vars } else { schema.n_obs };
    let Some(text) = step.arg(name).as_str() else {
        return Ok(Pred::Now(None));
    };
    let Some(((path, options), positions)) = input.and_then(|i| file_positions(plan, i, var))
    else {
        // Evaluated at run time, but bound to the columns now.
        sql.check(schema, var, text)
            .map_err(|e| Error::step(&step.id, format!("`{name}`: {e}")))?;
        return Ok(Pred::Later(text.to_string()));
    };
    let mask = sql
        .mask(std::path::Path::new(&path), &options, var, text)
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
