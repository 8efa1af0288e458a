//! `Where`: a view by SQL predicates over columns the pipeline computed, evaluated at run time;
//! the kept rows (genes) become the scan's selection.

use super::{Data, ExecNode, single};
use crate::context::RunContext;
use engine_common::{Error, Result};
use engine_matrix::AxisSelection;
use engine_plan::Selection;
use engine_store::Frame;
use std::borrow::Cow;

#[derive(Debug)]
pub(crate) struct WhereNode {
    /// Positional selections applied before the predicates.
    pub rows: Option<Selection>,
    pub cols: Option<Selection>,
    pub obs: Option<String>,
    pub var: Option<String>,
}

impl ExecNode for WhereNode {
    fn name(&self) -> &'static str {
        "WhereView"
    }

    fn stages(&self) -> Vec<String> {
        vec!["in memory: predicates over obs/var; the kept rows become the scan's selection".into()]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data { x: lin, mut ann } = single(inputs, "WhereView")?.into_owned();
        let (rows, cols) = (
            self.rows.as_ref().map(|r| &r.sel),
            self.cols.as_ref().map(|c| &c.sel),
        );
        ann.select(rows, cols);
        let lin = lin.select(rows, cols);
        let step = cx.step().to_string();
        let eval = |frame: &Frame, var: bool, p: &str| -> Result<AxisSelection> {
            let mask = cx
                .opts
                .predicates
                .mask_frame(frame, var, p)
                .map_err(|e| Error::step(&step, format!("{e}")))?;
            Ok(AxisSelection::from_mask(&mask))
        };
        let r = self
            .obs
            .as_deref()
            .map(|p| eval(&ann.obs, false, p))
            .transpose()?;
        let c = self
            .var
            .as_deref()
            .map(|p| eval(&ann.var, true, p))
            .transpose()?;
        ann.select(r.as_ref(), c.as_ref());
        let x = lin.select(r.as_ref(), c.as_ref());
        cx.stage(&format!("where, kept {} x {}", x.n_obs(), x.n_vars()), 0);
        Ok(Some(Data { x, ann }))
    }
}
