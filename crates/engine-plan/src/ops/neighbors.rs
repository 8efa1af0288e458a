//! `neighbors`: the kNN graph on a representation and UMAP's connectivities
//! (`obsp['distances']`, `obsp['connectivities']`, `uns['neighbors']`).

use super::{Bind, LogicalOp, Reads};
use crate::plan::Op;
use crate::schema::Schema;
use engine_common::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Neighbors {
    pub n_neighbors: usize,
    pub n_pcs: Option<usize>,
    pub use_rep: String,
    pub random_state: i64,
}

impl Neighbors {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let mut s = b.input_schema();
        let use_rep = step.arg("use_rep").as_str().unwrap_or("X_pca").to_string();
        b.need(
            &format!("obsm['{use_rep}']"),
            s.obsm.iter().any(|(k, _)| *k == use_rep),
        )?;
        s.obsp
            .extend(["distances".to_string(), "connectivities".to_string()]);
        s.uns.push("neighbors".into());
        let op = Op::Neighbors(Neighbors {
            n_neighbors: b.positive("n_neighbors")?,
            n_pcs: step.arg("n_pcs").as_i64().map(|v| v as usize),
            use_rep,
            random_state: b.int("random_state"),
        });
        Ok((op, s))
    }
}

impl LogicalOp for Neighbors {
    fn describe(&self) -> String {
        format!(
            "n_neighbors={}, use_rep={}, n_pcs={}",
            self.n_neighbors,
            self.use_rep,
            self.n_pcs.map_or("all".into(), |v| v.to_string())
        )
    }

    fn reads(&self) -> Reads {
        Reads::elements(&[&format!("obsm/{}", self.use_rep)])
    }
}
