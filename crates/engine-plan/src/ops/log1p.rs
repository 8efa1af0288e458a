//! `log1p`: `ln(1 + x)` of every value.

use super::{Bind, LogicalOp, Reads, XEffect, add, fused_note};
use crate::plan::Op;
use crate::schema::Schema;
use engine_common::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Log1p {
    /// Set by `fuse_elementwise`.
    pub fused: bool,
}

impl Log1p {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let mut s = b.input_schema();
        s.x_maps.push("log1p");
        add(&mut s.uns, "log1p");
        Ok((Op::Log1p(Log1p { fused: false }), s))
    }
}

impl LogicalOp for Log1p {
    fn describe(&self) -> String {
        fused_note(self.fused, false)
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
