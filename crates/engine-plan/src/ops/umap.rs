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
        // The layout keeps n_obs x n_components coordinates; a plot needs two.
        let n_components = b.bounded("n_components", 100)?;
        let maxiter = match step.arg("maxiter").is_null() {
            true => None,
            false => Some(b.bounded("maxiter", 100_000)?),
        };
        let spread = b.finite("spread", 1.0, true)?;
        let min_dist = b.finite("min_dist", 0.5, false)?;
        if min_dist > spread {
            return Err(b.error(format!(
                "`min_dist` must be at most `spread` ({spread}), got {min_dist}"
            )));
        }
        let optional = |name: &str| -> Result<Option<f64>> {
            match step.arg(name).is_null() {
                true => Ok(None),
                false => b.finite(name, 1.0, true).map(Some),
            }
        };
        s.obsm.push(("X_umap".into(), n_components));
        s.uns.push("umap".into());
        let op = Op::Umap(Umap {
            min_dist,
            spread,
            n_components,
            maxiter,
            alpha: b.finite("alpha", 1.0, true)?,
            gamma: b.finite("gamma", 1.0, true)?,
            negative_sample_rate: b.bounded("negative_sample_rate", 1000)?,
            spectral: step.arg("init_pos").as_str() != Some("random"),
            random_state: b.int("random_state"),
            a: optional("a")?,
            b: optional("b")?,
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
