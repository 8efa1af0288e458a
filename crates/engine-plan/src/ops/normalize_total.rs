//! `normalize_total`: every cell scaled to the same total (the median by default).

use super::{Bind, LogicalOp, Reads, XEffect, fused_note};
use crate::plan::Op;
use crate::schema::Schema;
use engine_common::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct NormalizeTotal {
    /// `None`: the median of the cells' totals, as scanpy.
    pub target_sum: Option<f64>,
    /// Set by `fuse_elementwise`: runs in the same per-block kernel as the maps before it.
    pub fused: bool,
}

impl NormalizeTotal {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let mut s = b.input_schema();
        let target_sum = step.arg("target_sum").as_f64();
        if target_sum.is_some_and(|t| !t.is_finite() || t <= 0.0) {
            return Err(b.error("`target_sum` must be a finite positive number"));
        }
        s.x_maps.push("normalize_total");
        Ok((
            Op::NormalizeTotal(NormalizeTotal {
                target_sum,
                fused: false,
            }),
            s,
        ))
    }
}

impl LogicalOp for NormalizeTotal {
    fn describe(&self) -> String {
        format!(
            "target_sum={}{}",
            self.target_sum.map_or("median".into(), |t| t.to_string()),
            fused_note(self.fused, true)
        )
    }

    fn reads(&self) -> Reads {
        Reads::Nothing
    }

    fn x_effect(&self) -> XEffect {
        XEffect::Map
    }

    fn fused_mut(&mut self) -> Option<&mut bool> {
        Some(&mut self.fused)
    }
}
