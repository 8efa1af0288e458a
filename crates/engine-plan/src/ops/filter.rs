//! `filter_cells` / `filter_genes`: keeps cells (genes) whose count lies within the bounds;
//! the keep mask is known only after a pass, so the selection is made at run time.

use super::{Bind, LogicalOp, Reads, XEffect, col};
use crate::plan::Op;
use crate::schema::{ColType, Schema};
use engine_common::{Error, Result};
use std::fmt::Write as _;

/// What a filter counts per cell (gene): stored non-zeros or the sum of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterBy {
    Counts,
    Detected,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Genes (`true`) or cells.
    pub var: bool,
    pub by: FilterBy,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Filter {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let mut s = b.input_schema();
        let var = step.op.name == "filter_genes";
        let detected = if var { "min_cells" } else { "min_genes" };
        let detected_max = if var { "max_cells" } else { "max_genes" };
        let given: Vec<(&str, f64)> = ["min_counts", detected, "max_counts", detected_max]
            .into_iter()
            .filter_map(|k| step.arg(k).as_f64().map(|v| (k, v)))
            .collect();
        let [(name, value)] = given.as_slice() else {
            return Err(Error::step(
                &step.id,
                format!(
                    "`{}`: give exactly one of `min_counts`, `{detected}`, `max_counts`, `{detected_max}`, as scanpy requires",
                    step.op.name
                ),
            ));
        };
        let by = if name.ends_with("counts") {
            FilterBy::Counts
        } else {
            FilterBy::Detected
        };
        let (min, max) = if name.starts_with("min") {
            (Some(*value), None)
        } else {
            (None, Some(*value))
        };
        let key = match (var, by) {
            (_, FilterBy::Counts) => "n_counts",
            (false, FilterBy::Detected) => "n_genes",
            (true, FilterBy::Detected) => "n_cells",
        };
        // Counts are floats, numbers of genes or cells integers.
        let ty = match by {
            FilterBy::Counts => ColType::Float,
            FilterBy::Detected => ColType::Int,
        };
        if var {
            col(&mut s.var, key, ty);
            s.var_bound = true;
        } else {
            col(&mut s.obs, key, ty);
            s.obs_bound = true;
        }
        Ok((Op::Filter(Filter { var, by, min, max }), s))
    }
}

impl LogicalOp for Filter {
    fn describe(&self) -> String {
        let what = match (self.var, self.by) {
            (false, FilterBy::Counts) | (true, FilterBy::Counts) => "counts",
            (false, FilterBy::Detected) => "genes",
            (true, FilterBy::Detected) => "cells",
        };
        let mut d = format!("{} by {what}", if self.var { "genes" } else { "cells" });
        if let Some(m) = self.min {
            let _ = write!(d, ", min={m}");
        }
        if let Some(m) = self.max {
            let _ = write!(d, ", max={m}");
        }
        d
    }

    fn reads(&self) -> Reads {
        Reads::Nothing
    }

    fn x_effect(&self) -> XEffect {
        XEffect::Keeps
    }
}
