//! `leiden`: clusters of obsp['connectivities'], in memory.

use super::{Data, ExecNode, single};
use crate::annotations::{categorical, dict, scalar_f64, scalar_i64, set_column};
use crate::context::RunContext;
use engine_common::{Error, Result};
use engine_ops::leiden::{self, LeidenParams};
use std::borrow::Cow;

#[derive(Debug)]
pub(crate) struct LeidenNode {
    pub params: LeidenParams,
    /// The seed as the pipeline gave it, for uns.
    pub random_state: i64,
    pub key_added: String,
}

impl ExecNode for LeidenNode {
    fn name(&self) -> &'static str {
        "Leiden"
    }

    fn stages(&self) -> Vec<String> {
        vec!["in memory: Leiden on obsp['connectivities']".into()]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data { x, ann: mut a } = single(inputs, "Leiden")?.into_owned();
        let conn = a
            .obsp
            .get("connectivities")
            .ok_or_else(|| Error::step(cx.step(), "no obsp['connectivities']"))?;
        let labels = leiden::leiden(conn, &self.params);
        let k = labels.iter().max().map_or(0, |m| *m as usize + 1);
        set_column(&mut a.obs, &self.key_added, categorical(&labels, k));
        a.uns.insert(
            self.key_added.clone(),
            dict(vec![(
                "params",
                dict(vec![
                    ("resolution", scalar_f64(self.params.resolution)),
                    ("random_state", scalar_i64(self.random_state)),
                    ("n_iterations", scalar_i64(self.params.n_iterations)),
                ]),
            )]),
        );
        cx.stage("Leiden", 0);
        Ok(Some(Data { x, ann: a }))
    }
}
