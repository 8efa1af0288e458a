//! `normalize_total`: one pass for the per-cell totals; the row factors become a map that
//! later passes apply.

use super::{Data, ExecNode, single};
use crate::context::RunContext;
use crate::counts_check::CountsCheck;
use crate::distribute::Kernel;
use crate::maps::XMap;
use crate::pass::fold_kernel;
use engine_common::Result;
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct NormalizeTotalNode {
    /// `None`: the median of the positive totals, as scanpy.
    pub target_sum: Option<f64>,
    /// Runs in the same per-block kernel as the maps before it (`fuse_elementwise`).
    pub fused: bool,
}

impl ExecNode for NormalizeTotalNode {
    fn name(&self) -> &'static str {
        "NormalizeTotal"
    }

    fn stages(&self) -> Vec<String> {
        vec![format!(
            "pass over X: per-cell totals{}",
            if self.target_sum.is_none() {
                " and their median"
            } else {
                ""
            }
        )]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data { x: mut lin, ann } = single(inputs, "NormalizeTotal")?.into_owned();
        let bar = cx.progress("totals", lin.blocks().len());
        let kernel = Kernel::RowSums { check_counts: true };
        let (partial, blocks) = fold_kernel(&lin, cx, &bar, &kernel)?;
        let (totals, _, non_count) = partial.row_sums()?;
        let counts = CountsCheck::default();
        counts.merge(non_count);
        cx.warn(counts.warning("normalize_total"));
        let target = match self.target_sum {
            Some(t) => t,
            None => median_positive(&totals),
        };
        let factors: Vec<f64> = totals
            .iter()
            .map(|&c| if c > 0.0 { target / c } else { target })
            .collect();
        lin.push_map(XMap::ScaleRows(Arc::new(factors)), self.fused);
        cx.stage("totals", blocks);
        Ok(Some(Data { x: lin, ann }))
    }
}

/// The median of the positive values (normalize_total's default target), 0 without any.
fn median_positive(v: &[f64]) -> f64 {
    let p: Vec<f64> = v.iter().copied().filter(|x| *x > 0.0).collect();
    if p.is_empty() {
        0.0
    } else {
        engine_ops::stats::median(&p)
    }
}
