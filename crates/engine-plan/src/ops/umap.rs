//! `umap`: a 2-D (or n-D) layout of the connectivities (`obsm['X_umap']`, `uns['umap']`).

use super::{Bind, LogicalOp, Reads};
use crate::plan::Op;
use crate::schema::Schema;
use engine_common::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Umap {
    pub min_dist: f64,
    pub spread: f64,
    pub n_components: usize,
    pub maxiter: Option<usize>,
    pub alpha: f64,
    pub gamma: f64,
    pub negative_sample_rate: usize,
    pub spectral: bool,
    pub random_state: i64,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

impl Umap {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let mut s = b.input_schema();
        b.need(
            "obsp['connectivities'] (run `neighbors` first)",
            s.obsp.iter().any(|k| k == "connectivities"),
        )?;
        let n_components = b.positive("n_components")?;
        s.obsm.push(("X_umap".into(), n_components));
        s.uns.push("umap".into());
        let op = Op::Umap(Umap {
            min_dist: step.arg("min_dist").as_f64().unwrap_or(0.5),
            spread: step.arg("spread").as_f64().unwrap_or(1.0),
            n_components,
            maxiter: step.arg("maxiter").as_i64().map(|v| v.max(0) as usize),
            alpha: step.arg("alpha").as_f64().unwrap_or(1.0),
            gamma: step.arg("gamma").as_f64().unwrap_or(1.0),
            negative_sample_rate: b.positive("negative_sample_rate")?,
            spectral: step.arg("init_pos").as_str() != Some("random"),
            random_state: b.int("random_state"),
            a: step.arg("a").as_f64(),
            b: step.arg("b").as_f64(),
        });
        Ok((op, s))
    }
}

impl LogicalOp for Umap {
    fn describe(&self) -> String {
        format!(
            "min_dist={}, spread={}, n_components={}, maxiter={}, negative_sample_rate={}, init_pos={}, random_state={}",
            self.min_dist,
            self.spread,
            self.n_components,
            self.maxiter.map_or("auto".into(), |v| v.to_string()),
            self.negative_sample_rate,
            if self.spectral { "spectral" } else { "random" },
            self.random_state
        )
    }

    /// The graph, and the representation it was built on (which places disconnected
    /// components).
    fn reads(&self) -> Reads {
        Reads::elements(&["obsp/connectivities", "uns/neighbors", "obsm/X_pca"])
    }
}
