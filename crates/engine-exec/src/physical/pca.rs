//! `pca`: the components from one Gram pass (covariance or, with a fused `scale`, correlation)
//! or from randomized subspace iteration (one pass per iteration), then a pass projecting
//! every block onto them. Which solver runs is decided in lowering, from the gene count when
//! the plan knows it, else by the same rule at run time.

use super::{Data, ExecNode, single};
use crate::annotations::{
    Annotations, bool_column, dict, f32_block, f64_array, float_column, scalar_bool, set_column,
};
use crate::block::XBlock;
use crate::context::RunContext;
use crate::distribute::{Kernel, project_block};
use crate::lineage::{Lineage, LineageStep};
use crate::maps::XMap;
use crate::pass::{distribute, fold_kernel};
use engine_common::{Error, Result};
use engine_matrix::{AxisSelection, Block, DynArray};
use engine_ops::pca;
use engine_ops::randomized::{self, Randomized};
use engine_ops::stats::Moments;
use engine_plan::{ScaleParams, SvdSolver};
use engine_store::Value;
use ndarray::{Array2, Axis};
use rayon::prelude::*;
use std::borrow::Cow;
use std::sync::Arc;

/// Variables up to which `auto` builds the Gram matrix: each worker holds `n_vars²` doubles,
/// 200 MB at 5,000.
pub(crate) const GRAM_MAX_VARS: usize = 5000;

/// How the components are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PcaSolver {
    /// One pass builds the `n_vars²` Gram matrix; exact.
    Gram,
    /// Subspace iteration, one pass per iteration.
    Randomized,
    /// `auto` when the plan only bounds the gene count (a mask, a filter upstream): the Gram
    /// up to [`GRAM_MAX_VARS`] genes, randomized above, decided once the count is known.
    ByGenes,
}

#[derive(Debug)]
pub(crate) struct PcaNode {
    pub n_comps: usize,
    /// The default `n_comps`: lowered to the data's min(n_obs, n_vars) - 1 at run time; a given
    /// one that the data cannot support is an error.
    pub n_comps_auto: bool,
    pub zero_center: bool,
    /// A `scale` folded in by `merge_passes`: the Gram of the unscaled data yields the
    /// correlation matrix, and the output's X is the scaled X.
    pub standardize: Option<ScaleParams>,
    pub mask_var: Option<String>,
    pub solver: PcaSolver,
    pub random_state: i64,
    /// The plan's cell and gene counts (upper bounds when `bounded`), for EXPLAIN.
    pub n_obs: usize,
    pub n_vars: usize,
    pub bounded: bool,
}

impl PcaSolver {
    /// The solver for the user's `svd_solver` over `n_vars` genes, an upper bound when
    /// `bounded`: the one place the rule is written, for lowering and for the run.
    pub fn choose(svd_solver: SvdSolver, n_vars: usize, bounded: bool) -> PcaSolver {
        match svd_solver {
            SvdSolver::CovarianceEigh => PcaSolver::Gram,
            SvdSolver::Randomized => PcaSolver::Randomized,
            SvdSolver::Auto if n_vars <= GRAM_MAX_VARS => PcaSolver::Gram,
            SvdSolver::Auto if bounded => PcaSolver::ByGenes,
            SvdSolver::Auto => PcaSolver::Randomized,
        }
    }

    /// Whether the run over the real `n_vars` genes is randomized.
    fn randomized(self, n_vars: usize) -> bool {
        let solver = match self {
            PcaSolver::ByGenes => PcaSolver::choose(SvdSolver::Auto, n_vars, false),
            s => s,
        };
        solver == PcaSolver::Randomized
    }
}

impl ExecNode for PcaNode {
    fn name(&self) -> &'static str {
        match self.solver {
            PcaSolver::Gram => "PcaGram",
            PcaSolver::Randomized => "PcaRandomized",
            PcaSolver::ByGenes => "PcaAuto",
        }
    }

    fn stages(&self) -> Vec<String> {
        let fused = if self.standardize.is_some() {
            " (correlation, fused scale)"
        } else {
            ""
        };
        let (n_obs, n_vars, n_comps) = (self.n_obs, self.n_vars, self.n_comps);
        let r = Randomized::new(n_comps, n_obs, n_vars, 0);
        let passes = |over: &str| {
            format!(
                "{}{} passes{over}: randomized subspace iteration, covariance times {} vectors + column moments{fused}",
                if self.bounded { "up to " } else { "" },
                r.passes(),
                (n_comps + r.oversamples).min(n_vars),
            )
        };
        let gram = format!("pass over X: Gram matrix + column sums{fused}");
        let first = match self.solver {
            PcaSolver::ByGenes => {
                format!("{gram}, or above {GRAM_MAX_VARS} genes {}", passes(""))
            }
            PcaSolver::Randomized => passes(" over X"),
            PcaSolver::Gram => gram,
        };
        vec![
            first,
            "pass over X: project onto components -> obsm['X_pca']".into(),
        ]
    }

    fn execute(&self, inputs: Vec<Cow<'_, Data>>, cx: &mut RunContext<'_>) -> Result<Option<Data>> {
        let Data {
            x: full,
            ann: mut a,
        } = single(inputs, self.name())?.into_owned();
        let step = cx.step().to_string();
        let mask = match &self.mask_var {
            Some(m) => Some(AxisSelection::from_mask(&bool_column(&a.var, m)?)),
            None => None,
        };
        let lin = match &mask {
            Some(m) => full.select(None, Some(m)),
            None => full.clone(),
        };
        if lin.n_vars() < 2 || lin.n_obs() < 2 {
            return Err(Error::step(
                &step,
                format!(
                    "PCA needs at least 2 cells and 2 genes, got {} x {}",
                    lin.n_obs(),
                    lin.n_vars()
                ),
            ));
        }
        let limit = lin.n_obs().min(lin.n_vars()) - 1;
        let n_comps = if self.n_comps_auto {
            self.n_comps.min(limit)
        } else if self.n_comps > limit {
            return Err(Error::step(
                &step,
                format!(
                    "`n_comps` must be at most min(n_obs, n_vars) - 1 = {limit}: {} x {} reach PCA{}, got {}",
                    lin.n_obs(),
                    lin.n_vars(),
                    if self.mask_var.is_some() {
                        " (after mask_var)"
                    } else {
                        ""
                    },
                    self.n_comps
                ),
            ));
        } else {
            self.n_comps
        };
        // The Gram's shift: a sparse block's fill (absent entries then cost nothing), else
        // the mean of a first block, which keeps the Gram free of cancellation.
        let first = lin.block(0..lin.n_obs().min(256))?;
        let shift = match &first {
            XBlock::Dense(d) => Moments::of_block(d.view()).mean,
            XBlock::Sparse { fill: Some(f), .. } => f.to_vec(),
            XBlock::Sparse { fill: None, .. } => vec![0.0; lin.n_vars()],
        };
        drop(first);
        let found = if self.solver.randomized(lin.n_vars()) {
            self.randomized_components(&lin, n_comps, shift, cx)?
        } else {
            self.gram_components(&lin, n_comps, shift, cx)?
        };
        let (p, gram_mean, scale) = found;
        let mean = if self.zero_center {
            gram_mean.clone()
        } else {
            vec![0.0; lin.n_vars()]
        };
        // Output X is the scaled X when a scale was fused in.
        let mut out_lin = full.clone();
        if let (
            Some(ScaleParams {
                zero_center: zc,
                max_value,
            }),
            Some(sd),
        ) = (self.standardize, &scale)
        {
            // What the folded scale would have recorded.
            set_column(&mut a.var, "mean", float_column(&gram_mean, false));
            set_column(&mut a.var, "std", float_column(sd, false));
            out_lin.moments = None;
            out_lin.steps.push(LineageStep::Map(XMap::Standardize {
                mean: Arc::new(gram_mean),
                sd: Arc::new(sd.clone()),
                zero_center: zc,
                max_value,
            }));
        }
        let (x_pca, nblocks) = project(&lin, &mean, scale.as_deref(), &p.components, cx)?;
        cx.stage("project", nblocks);
        self.record(&mut a, &full, mask.as_ref(), &p, x_pca);
        Ok(Some(Data { x: out_lin, ann: a }))
    }
}

/// The components, the data's column means and, with a fused scale, its standard deviations.
type Components = (pca::Pca, Vec<f64>, Option<Vec<f64>>);

impl PcaNode {
    fn randomized_components(
        &self,
        lin: &Lineage,
        n_comps: usize,
        shift: Vec<f64>,
        cx: &mut RunContext<'_>,
    ) -> Result<Components> {
        let r = Randomized::new(n_comps, lin.n_obs(), lin.n_vars(), self.random_state as u64);
        let (mut pass, mut blocks) = (0, 0);
        let found = randomized::pca(
            lin.n_vars(),
            shift,
            self.standardize.is_some(),
            &r,
            |shift, w| {
                pass += 1;
                let label = format!("pass {pass}/{}", r.passes());
                let kernel = Kernel::CovProduct {
                    shift: shift.clone(),
                    w: w.clone(),
                };
                let bar = cx.progress(&label, lin.blocks().len());
                let (partial, n) = fold_kernel(lin, cx, &bar, &kernel)?;
                blocks += n;
                partial.cov_product()
            },
        )
        .map_err(|e| e.in_step(cx.step()))?;
        cx.stage(&format!("randomized, {} passes", r.passes()), blocks);
        Ok((found.pca, found.mean, found.scale))
    }

    fn gram_components(
        &self,
        lin: &Lineage,
        n_comps: usize,
        shift: Vec<f64>,
        cx: &mut RunContext<'_>,
    ) -> Result<Components> {
        let bar = cx.progress("Gram", lin.blocks().len());
        let (partial, blocks) = fold_kernel(lin, cx, &bar, &Kernel::Gram { shift })?;
        let gram = partial.gram()?;
        // The eigensolve counts in the projection's stage.
        cx.stage("Gram", blocks);
        let (cov, scale) = match self.standardize {
            Some(_) => {
                let (c, sd) = gram.correlation();
                (c, Some(sd))
            }
            None => (gram.covariance(), None),
        };
        let gram_mean = gram.mean();
        // The n_vars² Gram and covariance are freed before the eigensolver allocates.
        drop(gram);
        let p = pca::from_covariance(cov, n_comps).map_err(|e| e.in_step(cx.step()))?;
        Ok((p, gram_mean, scale))
    }

    /// obsm['X_pca'], varm['PCs'] over all genes and uns['pca'], as scanpy stores them.
    fn record(
        &self,
        a: &mut Annotations,
        full: &Lineage,
        mask: Option<&AxisSelection>,
        p: &pca::Pca,
        x_pca: Array2<f32>,
    ) {
        // PCs over all genes: zero rows for genes outside the mask, as scanpy.
        let pcs = match mask {
            Some(m) => {
                let mut full_pcs = Array2::zeros((full.n_vars(), p.components.ncols()));
                for (row, j) in m.indices().enumerate() {
                    full_pcs.row_mut(j).assign(&p.components.row(row));
                }
                full_pcs
            }
            None => p.components.clone(),
        };
        a.obsm.insert("X_pca".into(), f32_block(x_pca));
        a.varm.insert(
            "PCs".into(),
            Arc::new(Block::Dense(DynArray::F64(pcs.into_dyn()))),
        );
        let mask_var = self.mask_var.as_deref();
        let mut params = vec![
            ("zero_center", scalar_bool(self.zero_center)),
            (
                "use_highly_variable",
                scalar_bool(mask_var == Some("highly_variable")),
            ),
        ];
        match mask_var {
            Some(m) => params.push(("mask_var", Value::String(m.to_string()))),
            None => params.push(("mask_var", scalar_bool(false))),
        }
        a.uns.insert(
            "pca".into(),
            dict(vec![
                ("variance", f64_array(&p.variance)),
                ("variance_ratio", f64_array(&p.variance_ratio)),
                ("params", dict(params)),
            ]),
        );
    }
}

/// Projects every block onto the components, each straight into its rows of X_pca (or on
/// the run's distributor, whose tasks return their rows).
fn project(
    lin: &Lineage,
    mean: &[f64],
    scale: Option<&[f64]>,
    components: &Array2<f64>,
    cx: &RunContext<'_>,
) -> Result<(Array2<f32>, usize)> {
    let ranges = lin.blocks();
    let nblocks = ranges.len();
    let bar = cx.progress("project", nblocks);
    let kernel = Kernel::Project {
        mean: mean.to_vec(),
        scale: scale.map(<[f64]>::to_vec),
        components: Arc::new(components.clone()),
    };
    if let Some((partial, n)) = distribute(lin, cx, &bar, &kernel)? {
        return Ok((partial.rows(lin.n_obs())?, n));
    }
    let mut x_pca = Array2::<f32>::zeros((lin.n_obs(), components.ncols()));
    // Blocks may differ in size (aligned to chunks): split X_pca at their ends.
    let mut outs = Vec::with_capacity(nblocks);
    let mut rest = x_pca.view_mut();
    for r in &ranges {
        let (head, tail) = rest.split_at(Axis(0), r.len());
        outs.push(head);
        rest = tail;
    }
    outs.into_par_iter()
        .zip(ranges.into_par_iter())
        .try_for_each(|(mut out, r)| -> Result<()> {
            let scores = project_block(&lin.block(r)?, mean, scale, components);
            out.zip_mut_with(&scores, |o, &v| *o = v as f32);
            bar.inc(1);
            Ok(())
        })?;
    bar.finish_and_clear();
    Ok((x_pca, nblocks))
}
