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
        let width = s.obsm.iter().find(|(k, _)| *k == use_rep).map(|(_, c)| *c);
        b.need(&format!("obsm['{use_rep}']"), width.is_some())?;
        let n_pcs = match step.arg("n_pcs").is_null() {
            true => None,
            false => Some(b.positive("n_pcs")?),
        };
        if let (Some(n), Some(w)) = (n_pcs, width)
            && n > w
        {
            return Err(b.error(format!(
                "`n_pcs` must be at most the {w} columns of obsm['{use_rep}'], got {n}"
            )));
        }
        s.obsp
            .extend(["distances".to_string(), "connectivities".to_string()]);
        s.uns.push("neighbors".into());
        // scanpy counts the cell itself among its neighbours, so at most every cell.
        let n_neighbors = b.positive("n_neighbors")?;
        if n_neighbors > s.n_obs {
            return Err(b.error(format!(
                "`n_neighbors` must be at most the number of cells, {}{}, got {n_neighbors}",
                if s.obs_bound { "at most " } else { "" },
                s.n_obs
            )));
        }
        let op = Op::Neighbors(Neighbors {
            n_neighbors,
            n_pcs,
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
