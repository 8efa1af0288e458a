//! `Select` that stayed a view (not pushed into the scan): later passes read the rows it
//! spans and keep the selected ones.

use super::{Data, ExecNode, single};
use crate::context::RunContext;
use crate::lineage::LineageStep;
use engine_common::Result;
use engine_plan::Selection;
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct ViewNode {
    pub rows: Option<Selection>,
    pub cols: Option<Selection>,
}

impl ExecNode for ViewNode {
    fn name(&self) -> &'static str {
        "View"
    }

    fn stages(&self) -> Vec<String> {
        vec![]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, _: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data { x: mut l, mut ann } = single(inputs, "View")?.into_owned();
        let rows = self.rows.as_ref().map(|r| Arc::new(r.sel.clone()));
        let cols = self.cols.as_ref().map(|c| Arc::new(c.sel.clone()));
        if let Some(r) = &rows {
            l.n_obs = r.len();
        }
        if let Some(c) = &cols {
            l.n_vars = c.len();
        }
        l.restrict_moments(rows.as_deref(), cols.as_deref());
        ann.select(rows.as_deref(), cols.as_deref());
        l.steps.push(LineageStep::View { rows, cols });
        Ok(Some(Data { x: l, ann }))
    }
}
