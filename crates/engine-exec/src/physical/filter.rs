//! `filter_cells` / `filter_genes`: one pass counts per cell (gene); the kept ones become the
//! scan's selection.

use super::{Data, ExecNode, single};
use crate::annotations::{float_column, set_column};
use crate::context::RunContext;
use crate::distribute::Kernel;
use crate::pass::fold_kernel;
use engine_common::Result;
use engine_matrix::{AxisSelection, DynArray};
use engine_plan::FilterBy;
use engine_store::Column;
use ndarray::Array1;
use std::borrow::Cow;

#[derive(Debug)]
pub(crate) struct FilterNode {
    /// Genes (`true`) or cells.
    pub var: bool,
    pub by: FilterBy,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub f32_out: bool,
}

impl ExecNode for FilterNode {
    fn name(&self) -> &'static str {
        if self.var {
            "FilterGenes"
        } else {
            "FilterCells"
        }
    }

    fn stages(&self) -> Vec<String> {
        vec![
            if self.var {
                "pass over X: per-gene counts; the kept genes become the scan's selection"
            } else {
                "pass over X: per-cell counts; the kept cells become the scan's selection"
            }
            .into(),
        ]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data { x: lin, ann: mut a } = single(inputs, self.name())?.into_owned();
        let var = self.var;
        let label = format!("filter {}", if var { "genes" } else { "cells" });
        let bar = cx.progress(&label, lin.blocks().len());
        let detected = self.by == FilterBy::Detected;
        let (values, blocks) = if var {
            let (partial, blocks) = fold_kernel(&lin, cx, &bar, &Kernel::ColumnSums)?;
            let c = partial.column_sums()?;
            let v: Vec<f64> = if detected {
                c.nnz.iter().map(|&n| n as f64).collect()
            } else {
                c.sum
            };
            (v, blocks)
        } else {
            let kernel = Kernel::RowSums {
                check_counts: false,
            };
            let (partial, blocks) = fold_kernel(&lin, cx, &bar, &kernel)?;
            let (sums, nnz, _) = partial.row_sums()?;
            let v: Vec<f64> = if detected {
                nnz.into_iter().map(|n| n as f64).collect()
            } else {
                sums
            };
            (v, blocks)
        };
        let (min, max) = (self.min, self.max);
        let keep: Vec<usize> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| min.is_none_or(|m| **v >= m) && max.is_none_or(|m| **v <= m))
            .map(|(i, _)| i)
            .collect();
        let key = match (var, detected) {
            (_, false) => "n_counts",
            (false, true) => "n_genes",
            (true, true) => "n_cells",
        };
        let col = if detected {
            Column::Plain(DynArray::I64(
                Array1::from_iter(values.iter().map(|v| *v as i64)).into_dyn(),
            ))
        } else {
            float_column(&values, self.f32_out)
        };
        let sel = AxisSelection::from_indices(&keep);
        let out = if var {
            set_column(&mut a.var, key, col);
            a.select(None, Some(&sel));
            lin.select(None, Some(&sel))
        } else {
            set_column(&mut a.obs, key, col);
            a.select(Some(&sel), None);
            lin.select(Some(&sel), None)
        };
        cx.stage(
            &format!("{label}: kept {} of {}", keep.len(), values.len()),
            blocks,
        );
        Ok(Some(Data { x: out, ann: a }))
    }
}
