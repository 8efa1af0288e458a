//! `highly_variable_genes` with `flavor` `seurat` or `cell_ranger`: one pass for per-gene
//! sums (per batch with a batch key), then the selection on the gene statistics. With
//! `merge_passes` the same pass also yields the column moments of a `scale` reading the
//! output.

use super::{Data, ExecNode, single};
use crate::annotations::{Annotations, bool_column, dict, float_column, set_column};
use crate::context::RunContext;
use crate::distribute::Kernel;
use crate::lineage::{ColumnMoments, Lineage};
use crate::pass::fold_kernel;
use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, DynArray};
use engine_ops::hvg;
use engine_plan::HvgParams;
use engine_store::{Column, Value};
use ndarray::Array1;
use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct HvgNode {
    pub params: HvgParams,
    /// The dispersion normalisation, chosen in lowering from the flavour.
    pub dispersion: hvg::Flavor,
}

impl ExecNode for HvgNode {
    fn name(&self) -> &'static str {
        match self.dispersion {
            hvg::Flavor::CellRanger => "HvgCellRanger",
            hvg::Flavor::Seurat => "HvgSeurat",
        }
    }

    fn stages(&self) -> Vec<String> {
        let h = &self.params;
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
        vec![format!(
            "pass over X: per-gene mean and variance{per}{also}"
        )]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data { x: lin, ann: mut a } = single(inputs, self.name())?.into_owned();
        let h = &self.params;
        let (blocks, moments) = highly_variable(&lin, &mut a, h, self.dispersion, cx)?;
        let mut lin = lin;
        lin.moments = moments.map(Arc::new);
        let out = subset(lin, &mut a, h.subset)?;
        cx.stage("highly variable genes", blocks);
        Ok(Some(Data { x: out, ann: a }))
    }
}

/// With `subset`, X and var keep only the highly variable genes (and so do moments a pass
/// computed on the way).
pub(super) fn subset(lin: Lineage, a: &mut Annotations, subset: bool) -> Result<Lineage> {
    if !subset {
        return Ok(lin);
    }
    let keep = bool_column(&a.var, "highly_variable")?;
    let sel = AxisSelection::from_mask(&keep);
    a.select(None, Some(&sel));
    Ok(lin.select(None, Some(&sel)))
}

/// `highly_variable_genes`: one pass for per-gene sums (per batch with a batch key), then the
/// selection on the gene statistics. With `column_moments` the pass also sums the values
/// themselves over all cells, returned for every gene.
fn highly_variable(
    lin: &Lineage,
    a: &mut Annotations,
    h: &HvgParams,
    flavor: hvg::Flavor,
    cx: &RunContext<'_>,
) -> Result<(usize, Option<ColumnMoments>)> {
    let step = cx.step();
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
    let bar = cx.progress("gene statistics", lin.blocks().len());
    let kernel = Kernel::BatchSums {
        codes: (n_batches > 1).then_some(codes),
        n_batches,
        expm1,
        clip: None,
        plain: h.column_moments,
        check_counts: false,
    };
    let (partial, blocks) = fold_kernel(lin, cx, &bar, &kernel)?;
    // One sum per batch, then (with column moments) one of the plain values.
    let (sums, _) = partial.batch_sums()?;
    let moments = h
        .column_moments
        .then(|| (sums[n_batches].mean(), sums[n_batches].var()));
    let sums = &sums[..n_batches];
    let err = |e: Error| e.in_step(step);
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
            .collect::<Result<Vec<_>>>()
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
        dict(vec![("flavor", Value::String(h.flavor.name().into()))]),
    );
    Ok((blocks, moments))
}

/// Batch codes per cell and the number of batches; one batch without a key.
pub(super) fn batch_codes(
    a: &Annotations,
    h: &HvgParams,
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
            _ => Err(Error::step(
                step,
                format!("batch_key obs['{key}'] must be categorical"),
            )),
        },
        None => Ok((vec![0; n_obs], 1)),
    }
}

/// Local rows of a block per batch.
pub(crate) fn rows_by_batch(
    codes: &[i64],
    rows: Range<usize>,
    n_batches: usize,
) -> Vec<Vec<usize>> {
    let mut by_batch: Vec<Vec<usize>> = vec![Vec::new(); n_batches];
    for (local, row) in rows.enumerate() {
        if let Ok(b) = usize::try_from(codes[row]) {
            by_batch[b].push(local);
        }
    }
    by_batch
}
