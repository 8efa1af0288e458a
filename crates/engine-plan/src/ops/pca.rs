//! `pca`: principal components of X (scanpy's `sc.pp.pca`), `obsm['X_pca']`,
//! `varm['PCs']`, `uns['pca']`.

use super::{Bind, LogicalOp, Reads};
use crate::ops::scale::ScaleParams;
use crate::plan::Op;
use crate::schema::Schema;
use engine_common::Result;

/// How PCA finds its components (scanpy's `svd_solver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SvdSolver {
    /// The Gram matrix while variables are few, randomized above (lowering chooses).
    Auto,
    /// One pass builds the `n_vars²` Gram (covariance) matrix; exact.
    CovarianceEigh,
    /// Subspace iteration, one pass per iteration; each worker holds `n_vars × (n_comps +
    /// 10)` numbers instead of `n_vars²`.
    Randomized,
}

impl SvdSolver {
    pub fn parse(name: &str) -> Option<SvdSolver> {
        match name {
            "auto" => Some(SvdSolver::Auto),
            "covariance_eigh" => Some(SvdSolver::CovarianceEigh),
            "randomized" => Some(SvdSolver::Randomized),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SvdSolver::Auto => "auto",
            SvdSolver::CovarianceEigh => "covariance_eigh",
            SvdSolver::Randomized => "randomized",
        }
    }
}

/// PCA of its input's X. `standardize` is set by `merge_passes` when a `scale` was folded in:
/// the Gram of the unscaled data then yields the correlation matrix directly, and the
/// output's X is the scaled X.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    pub n_comps: usize,
    /// `n_comps` was left out: scanpy's default, 50 or fewer when the data has fewer cells or
    /// genes (known only at run time after a filter); a given `n_comps` is never changed.
    pub n_comps_auto: bool,
    pub zero_center: bool,
    pub standardize: Option<ScaleParams>,
    /// A boolean var column restricting the genes (scanpy's `mask_var`).
    pub mask_var: Option<String>,
    pub svd_solver: SvdSolver,
    /// Seeds the randomized solver's start.
    pub random_state: i64,
}

/// scanpy's `settings.N_PCS`.
pub const DEFAULT_N_COMPS: usize = 50;

impl Pca {
    pub(crate) fn bind(b: &Bind<'_>) -> Result<(Op, Schema)> {
        let step = b.step;
        let mut s = b.input_schema();
        b.need("at least 2 cells (the selection left fewer)", s.n_obs >= 2)?;
        b.need("at least 2 genes", s.n_vars >= 2)?;
        // Past min(n_obs, n_vars) - 1 the components are not defined (sklearn refuses); the
        // plan's counts are upper bounds after a filter, so the run checks again.
        let limit = s.n_obs.min(s.n_vars) - 1;
        let n_comps_auto = step.arg("n_comps").is_null();
        let n_comps = if n_comps_auto {
            DEFAULT_N_COMPS.min(limit)
        } else {
            let v = b.positive("n_comps")?;
            if v > limit {
                return Err(b.error(format!(
                    "`n_comps` must be at most min(n_obs, n_vars) - 1 = {limit} for {} x {} data, got {v}",
                    s.n_obs, s.n_vars
                )));
            }
            v
        };
        // scanpy's default: the highly variable genes when they are annotated.
        let mask_var = match step.arg("mask_var").as_str() {
            Some(m) => {
                b.need(&format!("var['{m}'] (the mask_var)"), s.has_var(m))?;
                Some(m.to_string())
            }
            None => s
                .has_var("highly_variable")
                .then(|| "highly_variable".to_string()),
        };
        s.obsm.retain(|(k, _)| k != "X_pca");
        s.obsm.push(("X_pca".into(), n_comps));
        s.varm.push(("PCs".into(), n_comps));
        s.uns.push("pca".into());
        Ok((
            Op::Pca(Pca {
                n_comps,
                n_comps_auto,
                zero_center: step.arg("zero_center").as_bool().unwrap_or(true),
                standardize: None,
                mask_var,
                // The spec allows only the solvers this knows.
                svd_solver: step
                    .arg("svd_solver")
                    .as_str()
                    .and_then(SvdSolver::parse)
                    .unwrap_or(SvdSolver::Auto),
                random_state: b.int("random_state"),
            }),
            s,
        ))
    }
}

impl LogicalOp for Pca {
    fn describe(&self) -> String {
        format!(
            "n_comps={}, zero_center={}{}{}{}",
            self.n_comps,
            self.zero_center,
            self.standardize.map_or(String::new(), |s| format!(
                ", standardize(zero_center={})",
                s.zero_center
            )),
            self.mask_var
                .as_ref()
                .map_or(String::new(), |m| format!(", mask_var={m}")),
            match self.svd_solver {
                SvdSolver::Auto => String::new(),
                SvdSolver::CovarianceEigh => ", svd_solver=covariance_eigh".into(),
                SvdSolver::Randomized => format!(
                    ", svd_solver=randomized, random_state={}",
                    self.random_state
                ),
            }
        )
    }

    /// The mask is a var column, which scans always read.
    fn reads(&self) -> Reads {
        Reads::Nothing
    }
}
