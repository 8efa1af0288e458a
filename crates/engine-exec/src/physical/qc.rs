//! `calculate_qc_metrics`: one pass for per-cell metrics and per-gene sums.

use super::{Data, ExecNode, single};
use crate::annotations::{Annotations, bool_column, float_column, set_column};
use crate::context::RunContext;
use crate::counts_check::CountsCheck;
use crate::distribute::Kernel;
use crate::lineage::Lineage;
use crate::pass::fold_kernel;
use engine_common::Result;
use engine_matrix::DynArray;
use engine_plan::QcVar;
use engine_store::Column;
use ndarray::Array1;
use std::borrow::Cow;

#[derive(Debug)]
pub(crate) struct QcNode {
    pub qc_vars: Vec<QcVar>,
    pub percent_top: Vec<usize>,
    pub log1p: bool,
    /// Totals are float32 when X is, as scanpy keeps X's dtype in them.
    pub f32_out: bool,
}

impl ExecNode for QcNode {
    fn name(&self) -> &'static str {
        "QcMetrics"
    }

    fn stages(&self) -> Vec<String> {
        vec!["pass over X: per-cell and per-gene counts (QC metrics)".into()]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data { x, mut ann } = single(inputs, "QcMetrics")?.into_owned();
        let (blocks, warning) = qc_metrics(
            &x,
            &mut ann,
            &self.qc_vars,
            &self.percent_top,
            self.log1p,
            self.f32_out,
            cx,
        )?;
        cx.warn(warning);
        cx.stage("QC metrics", blocks);
        Ok(Some(Data { x, ann }))
    }
}

/// `calculate_qc_metrics`: one pass for per-cell metrics and per-gene sums; the blocks
/// read, and a warning when X is not counts.
fn qc_metrics(
    lin: &Lineage,
    a: &mut Annotations,
    qc_vars: &[QcVar],
    percent_top: &[usize],
    log1p: bool,
    f32_out: bool,
    cx: &RunContext<'_>,
) -> Result<(usize, Option<String>)> {
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
    let bar = cx.progress("QC metrics", lin.blocks().len());
    let kernel = Kernel::Qc {
        sets,
        percent_top: percent_top.to_vec(),
    };
    let (partial, blocks) = fold_kernel(lin, cx, &bar, &kernel)?;
    let (q, genes, non_count) = partial.qc()?;
    let counts = CountsCheck::default();
    counts.merge(non_count);
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
    Ok((blocks, counts.warning("calculate_qc_metrics")))
}
