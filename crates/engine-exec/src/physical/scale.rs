//! `scale`: column moments (one pass, or taken from the input's HVG pass when
//! `merge_passes` merged them), then standardisation as a map later passes apply.

use super::{Data, ExecNode, single};
use crate::annotations::{float_column, set_column};
use crate::context::RunContext;
use crate::distribute::Kernel;
use crate::maps::XMap;
use crate::pass::fold_kernel;
use engine_common::{Error, Result};
use engine_plan::ScaleParams;
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct ScaleNode {
    pub params: ScaleParams,
    pub fused: bool,
    /// The input's X carries its column moments from the pass that made it.
    pub moments_merged: bool,
}

impl ExecNode for ScaleNode {
    fn name(&self) -> &'static str {
        "Scale"
    }

    fn stages(&self) -> Vec<String> {
        if self.moments_merged {
            vec![]
        } else {
            vec!["pass over X: column moments (mean, variance)".into()]
        }
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data {
            x: mut lin,
            ann: mut a,
        } = single(inputs, "Scale")?.into_owned();
        let ((mean, var), blocks) = if self.moments_merged {
            let m = lin.moments.take().ok_or_else(|| {
                Error::internal(format!(
                    "step `{}`: merge_passes promised column moments from the input step, \
                     which did not compute them",
                    cx.step()
                ))
            })?;
            (Arc::unwrap_or_clone(m), 0)
        } else {
            let bar = cx.progress("moments", lin.blocks().len());
            let (partial, blocks) = fold_kernel(&lin, cx, &bar, &Kernel::Moments)?;
            let m = partial.moments()?;
            let var = m.var(1);
            ((m.mean, var), blocks)
        };
        let sd: Vec<f64> = var
            .iter()
            .map(|v| if *v > 0.0 { v.sqrt() } else { 1.0 })
            .collect();
        set_column(&mut a.var, "mean", float_column(&mean, false));
        set_column(&mut a.var, "std", float_column(&sd, false));
        lin.push_map(
            XMap::Standardize {
                mean: Arc::new(mean),
                sd: Arc::new(sd),
                zero_center: self.params.zero_center,
                max_value: self.params.max_value,
            },
            self.fused,
        );
        let label = if self.moments_merged {
            "moments (merged)"
        } else {
            "moments"
        };
        cx.stage(label, blocks);
        Ok(Some(Data { x: lin, ann: a }))
    }
}
