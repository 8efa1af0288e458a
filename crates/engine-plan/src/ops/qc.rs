//! `calculate_qc_metrics`: per-cell and per-gene QC columns from one pass over X.

use super::{Bind, LogicalOp, Reads, XEffect, col};
use crate::plan::Op;
use crate::schema::{ColType, Schema};
use engine_common::{Error, Result};
use engine_spec::Step;

/// A gene set for QC: an existing boolean var column, or one defined by name prefixes.
#[derive(Debug, Clone, PartialEq)]
pub struct QcVar {
    pub name: String,
    pub prefixes: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Qc {
    pub qc_vars: Vec<QcVar>,
    pub percent_top: Vec<usize>,
    pub log1p: bool,
}

impl Qc {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let mut s = b.input_schema();
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
        Ok((
            Op::Qc(Qc {
                qc_vars,
                percent_top,
                log1p,
            }),
            s,
        ))
    }
}

impl LogicalOp for Qc {
    fn describe(&self) -> String {
        format!(
            "qc_vars=[{}], percent_top={:?}, log1p={}",
            self.qc_vars
                .iter()
                .map(|q| match &q.prefixes {
                    Some(p) => format!("{}={}", q.name, p.join("|")),
                    None => q.name.clone(),
                })
                .collect::<Vec<_>>()
                .join(","),
            self.percent_top,
            self.log1p
        )
    }

    /// Gene sets are var columns, which scans always read.
    fn reads(&self) -> Reads {
        Reads::Nothing
    }

    fn x_effect(&self) -> XEffect {
        XEffect::Keeps
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
