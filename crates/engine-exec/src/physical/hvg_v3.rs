//! `highly_variable_genes` with `flavor="seurat_v3"` on counts: per batch the mean and
//! variance, a LOESS of log variance on log mean, then the variances of the counts clipped
//! around that trend (a second pass); genes ranked per batch and picked by median rank.

use super::hvg::{batch_codes, rows_by_batch, subset};
use super::{Data, ExecNode, single};
use crate::annotations::{Annotations, dict, float_column, set_column};
use crate::context::RunContext;
use crate::counts_check::CountsCheck;
use crate::distribute::Kernel;
use crate::lineage::Lineage;
use crate::pass::fold_kernel;
use engine_common::{Error, Result};
use engine_matrix::DynArray;
use engine_ops::hvg;
use engine_ops::sparse;
use engine_plan::{HvgParams, SEURAT_V3_N_TOP};
use engine_store::{Column, Value};
use ndarray::Array1;
use std::borrow::Cow;

#[derive(Debug)]
pub(crate) struct HvgV3Node {
    pub params: HvgParams,
}

impl ExecNode for HvgV3Node {
    fn name(&self) -> &'static str {
        "HvgSeuratV3"
    }

    fn stages(&self) -> Vec<String> {
        let h = &self.params;
        let per = if h.batch_key.is_some() {
            " per batch"
        } else {
            ""
        };
        let mut passes = vec![format!("pass over X: per-gene mean and variance{per}")];
        if h.batch_key.is_some() {
            passes.push(
                "pass over X (in row order): per-batch mean and variance as scanpy's aggregate"
                    .into(),
            );
        }
        passes.push(format!(
            "pass over X: clipped variance around the LOESS trend{per}"
        ));
        passes
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data { x: lin, ann: mut a } = single(inputs, "HvgSeuratV3")?.into_owned();
        let h = &self.params;
        let (blocks, warning) = highly_variable_v3(&lin, &mut a, h, cx)?;
        cx.warn(warning);
        let out = subset(lin, &mut a, h.subset)?;
        cx.stage("highly variable genes", blocks);
        Ok(Some(Data { x: out, ann: a }))
    }
}

/// `flavor="seurat_v3"` on counts: per batch, the mean and variance (one pass), a LOESS of
/// log variance on log mean giving each gene's expected spread, then the variance of the
/// counts clipped at `mean + sqrt(n) · sd` in units of that spread (a second pass); genes
/// are ranked per batch and picked by median rank.
fn highly_variable_v3(
    lin: &Lineage,
    a: &mut Annotations,
    h: &HvgParams,
    cx: &RunContext<'_>,
) -> Result<(usize, Option<String>)> {
    let step = cx.step();
    let (codes, n_batches) = batch_codes(a, h, lin.n_obs(), step)?;
    let n_vars = lin.n_vars();
    // Per-batch column sums of the counts, clipped when clips are given.
    let pass = |label: &str, clip: Option<Vec<Vec<f64>>>| {
        let check_counts = clip.is_none();
        let kernel = Kernel::BatchSums {
            // With a batch key, rows of no batch (a missing category) count in none.
            codes: h.batch_key.is_some().then(|| codes.clone()),
            n_batches,
            expm1: false,
            clip,
            plain: false,
            check_counts,
        };
        let bar = cx.progress(label, lin.blocks().len());
        let (partial, blocks) = fold_kernel(lin, cx, &bar, &kernel)?;
        let (sums, non_count) = partial.batch_sums()?;
        Ok::<_, Error>((sums, non_count, blocks))
    };
    let (sums, non_count, blocks) = pass("gene statistics", None)?;
    let counts = CountsCheck::default();
    counts.merge(non_count);
    // Per-batch means and variances as scanpy computes them: from the sums without a batch
    // key, by its Welford kernel over the rows in order with one (a sequential pass).
    let mut batch_stats: Vec<(Vec<f64>, Vec<f64>)> =
        sums.iter().map(|s| (s.mean(), s.var())).collect();
    let mut welford_blocks = 0;
    if h.batch_key.is_some() {
        let mut acc = vec![sparse::Welford::new(n_vars); n_batches];
        let bar = cx.progress("batch statistics", lin.blocks().len());
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
    let err = |e: Error| e.in_step(step);
    let mut clip = vec![vec![f64::INFINITY; n_vars]; n_batches];
    let mut reg_std = vec![Vec::new(); n_batches];
    for &b in &present {
        let (mean, var) = (&batch_stats[b].0, &batch_stats[b].1);
        let sd = hvg::seurat_v3_reg_std(mean, var, h.span).map_err(err)?;
        let root_n = (sums[b].n as f64).sqrt();
        clip[b] = (0..n_vars).map(|j| sd[j] * root_n + mean[j]).collect();
        reg_std[b] = sd;
    }
    let (clipped, _, more) = pass("clipped variances", Some(clip))?;
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
    let n_top = h.n_top_genes.unwrap_or(SEURAT_V3_N_TOP);
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
        dict(vec![("flavor", Value::String(h.flavor.name().into()))]),
    );
    Ok((
        blocks + welford_blocks + more,
        counts.warning("highly_variable_genes (flavor seurat_v3)"),
    ))
}
