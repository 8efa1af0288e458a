//! `scale`: every gene to zero mean and unit variance, optionally clipped.

use super::{Bind, LogicalOp, Reads, XEffect, col, fused_note};
use crate::plan::Op;
use crate::schema::{ColType, Schema};
use engine_common::Result;

/// Standardisation parameters of `scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleParams {
    pub zero_center: bool,
    pub max_value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub params: ScaleParams,
    /// Set by `fuse_elementwise`.
    pub fused: bool,
    /// Set by `merge_passes`: the column moments come from the input
    /// `highly_variable_genes` step's pass instead of a pass of their own.
    pub moments_merged: bool,
}

impl Scale {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let mut s = b.input_schema();
        s.x_maps.push("scale");
        col(&mut s.var, "mean", ColType::Float);
        col(&mut s.var, "std", ColType::Float);
        let p = ScaleParams {
            zero_center: step.arg("zero_center").as_bool().unwrap_or(true),
            max_value: match step.arg("max_value").as_f64() {
                Some(v) if v.is_nan() || v <= 0.0 => {
                    return Err(b.error(format!("`max_value` must be positive, got {v}")));
                }
                v => v,
            },
        };
        Ok((
            Op::Scale(Scale {
                params: p,
                fused: false,
                moments_merged: false,
            }),
            s,
        ))
    }
}

impl LogicalOp for Scale {
    fn describe(&self) -> String {
        let p = &self.params;
        format!(
            "zero_center={}, max_value={}{}{}",
            p.zero_center,
            p.max_value.map_or("none".into(), |v| v.to_string()),
            fused_note(self.fused, true),
            if self.moments_merged {
                ", moments from the input's pass"
            } else {
                ""
            }
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
