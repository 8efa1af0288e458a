//! `merge_passes`: a `scale` (zero-centred, unclipped) whose data flows into `pca` is folded
//! into the PCA, so scale's statistics and PCA's Gram matrix come from one pass over the
//! unscaled data instead of two: the covariance of standardised data is the correlation matrix
//! of the raw data, and the Gram matrix carries the means and variances scale needs.
//!
//! ```text
//! before: Scan -> Scale -> Pca -> …        after: Scan -> Pca(standardize) -> …
//! ```
//! The Pca node's schema is unchanged (its X is still the scaled X); only where it reads from
//! changes. Clipping (`max_value`) breaks the algebra, so clipped scales are left alone.
//!
//! A `scale` (clipped or not) straight after `highly_variable_genes` takes its column moments
//! from the gene-statistics pass, which reads the same values (the HVG step only selects
//! genes) and then also sums them and their squares:
//!
//! ```text
//! before: … -> Hvg -> Scale (moments pass) -> …
//! after:  … -> Hvg(with scale's column moments) -> Scale(moments from the input's pass) -> …
//! ```
//! `seurat_v3` reads counts through passes of its own and is left alone.

use crate::plan::{HvgFlavor, LogicalPlan, Op, Pca, Scale};

pub const NAME: &str = "merge_passes";

/// Applies the rule; returns whether the plan changed.
pub fn apply(plan: &mut LogicalPlan) -> bool {
    let folded = fold_scale_into_pca(plan);
    let merged = scale_moments_from_hvg(plan);
    folded || merged
}

/// Marks each `scale` that reads a `highly_variable_genes` step (not `seurat_v3`) to take its
/// moments from that step's pass.
fn scale_moments_from_hvg(plan: &mut LogicalPlan) -> bool {
    let mut changed = false;
    for i in 0..plan.nodes.len() {
        let Op::Scale(Scale {
            moments_merged: false,
            ..
        }) = plan.nodes[i].op
        else {
            continue;
        };
        let Some(&input) = plan.nodes[i].inputs.first() else {
            continue;
        };
        let Op::Hvg(h) = &mut plan.nodes[input.0].op else {
            continue;
        };
        if h.flavor == HvgFlavor::SeuratV3 {
            continue;
        }
        h.column_moments = true;
        if let Op::Scale(Scale { moments_merged, .. }) = &mut plan.nodes[i].op {
            *moments_merged = true;
        }
        changed = true;
    }
    changed
}

fn fold_scale_into_pca(plan: &mut LogicalPlan) -> bool {
    let mut changed = false;
    for i in 0..plan.nodes.len() {
        // With a gene mask the Gram covers only the masked genes, but scale's statistics
        // (var['mean'], var['std']) are wanted for all of them: not merged.
        let Op::Pca(Pca {
            standardize: None,
            mask_var: None,
            ..
        }) = plan.nodes[i].op
        else {
            continue;
        };
        let Some(&input) = plan.nodes[i].inputs.first() else {
            continue;
        };
        let Op::Scale(Scale { params: p, .. }) = plan.nodes[input.0].op else {
            continue;
        };
        if !p.zero_center || p.max_value.is_some() {
            continue;
        }
        let source = plan.nodes[input.0].inputs.clone();
        if let Op::Pca(Pca { standardize, .. }) = &mut plan.nodes[i].op {
            *standardize = Some(p);
        }
        plan.nodes[i].inputs = source;
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{HvgParams, Node, NodeId, ScaleParams, Scan, Schema, Source, SvdSolver};
    use engine_matrix::DType;

    fn plan(max_value: Option<f64>) -> LogicalPlan {
        let schema = Schema {
            n_obs: 10,
            n_vars: 3,
            x_dtype: Some(DType::F32),
            ..Default::default()
        };
        let scan = Source::Synthetic {
            n_obs: 10,
            n_vars: 3,
            centers: 2,
            cluster_std: 1.0,
            seed: 1,
            dtype: DType::F32,
        };
        LogicalPlan {
            nodes: vec![
                Node {
                    step: "data".into(),
                    op: Op::Scan(Scan::new(scan)),
                    inputs: vec![],
                    schema: schema.clone(),
                },
                Node {
                    step: "scaled".into(),
                    op: Op::Scale(Scale {
                        params: ScaleParams {
                            zero_center: true,
                            max_value,
                        },
                        fused: false,
                        moments_merged: false,
                    }),
                    inputs: vec![NodeId(0)],
                    schema: schema.clone(),
                },
                Node {
                    step: "pcs".into(),
                    op: Op::Pca(Pca {
                        mask_var: None,
                        n_comps: 2,
                        n_comps_auto: false,
                        zero_center: true,
                        standardize: None,
                        svd_solver: SvdSolver::Auto,
                        random_state: 0,
                    }),
                    inputs: vec![NodeId(1)],
                    schema,
                },
            ],
        }
    }

    #[test]
    fn folds_scale_into_pca() {
        let mut p = plan(None);
        let before = p.explain();
        assert!(apply(&mut p));
        let after = p.explain();
        assert_eq!(
            before
                .lines()
                .filter(|l| l.starts_with('#'))
                .collect::<Vec<_>>(),
            [
                "#0 data = Scan(synthetic(n_obs=10, n_vars=3, centers=2, cluster_std=1, seed=1, dtype=float32))",
                "#1 scaled = Scale(zero_center=true, max_value=none) <- #0",
                "#2 pcs = Pca(n_comps=2, zero_center=true) <- #1",
            ]
        );
        assert_eq!(
            after
                .lines()
                .filter(|l| l.starts_with('#'))
                .collect::<Vec<_>>(),
            [
                "#0 data = Scan(synthetic(n_obs=10, n_vars=3, centers=2, cluster_std=1, seed=1, dtype=float32))",
                "#1 scaled = Scale(zero_center=true, max_value=none) <- #0",
                "#2 pcs = Pca(n_comps=2, zero_center=true, standardize(zero_center=true)) <- #0",
            ]
        );
        assert!(!apply(&mut p), "a second application changes nothing");
    }

    #[test]
    fn leaves_clipped_scales_alone() {
        let mut p = plan(Some(10.0));
        assert!(!apply(&mut p));
    }

    /// `data -> hvg(flavor) -> scaled(max_value=10)`.
    fn hvg_plan(flavor: HvgFlavor) -> LogicalPlan {
        let mut p = plan(Some(10.0));
        p.nodes.truncate(2);
        p.nodes.insert(
            1,
            Node {
                step: "hvg".into(),
                op: Op::Hvg(HvgParams {
                    flavor,
                    n_top_genes: Some(2),
                    subset: true,
                    ..Default::default()
                }),
                inputs: vec![NodeId(0)],
                schema: p.nodes[0].schema.clone(),
            },
        );
        p.nodes[2].inputs = vec![NodeId(1)];
        p
    }

    #[test]
    fn scale_after_hvg_takes_its_moments_from_the_hvg_pass() {
        let mut p = hvg_plan(HvgFlavor::Seurat);
        let steps = |p: &LogicalPlan| {
            p.explain()
                .lines()
                .filter(|l| l.starts_with("#1") || l.starts_with("#2"))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            steps(&p),
            [
                "#1 hvg = Hvg(flavor=seurat, n_top_genes=2, n_bins=20, subset=true) <- #0",
                "#2 scaled = Scale(zero_center=true, max_value=10) <- #1",
            ]
        );
        assert!(apply(&mut p));
        assert_eq!(
            steps(&p),
            [
                "#1 hvg = Hvg(flavor=seurat, n_top_genes=2, n_bins=20, subset=true, with scale's column moments) <- #0",
                "#2 scaled = Scale(zero_center=true, max_value=10, moments from the input's pass) <- #1",
            ]
        );
        assert!(!apply(&mut p), "a second application changes nothing");
    }

    #[test]
    fn seurat_v3_keeps_scale_pass() {
        let mut p = hvg_plan(HvgFlavor::SeuratV3);
        assert!(!apply(&mut p));
    }
}
