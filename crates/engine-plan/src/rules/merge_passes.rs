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

use crate::plan::{LogicalPlan, Op};

pub const NAME: &str = "merge_passes";

/// Applies the rule; returns whether the plan changed.
pub fn apply(plan: &mut LogicalPlan) -> bool {
    let mut changed = false;
    for i in 0..plan.nodes.len() {
        // With a gene mask the Gram covers only the masked genes, but scale's statistics
        // (var['mean'], var['std']) are wanted for all of them: not merged.
        let Op::Pca {
            standardize: None,
            mask_var: None,
            ..
        } = plan.nodes[i].op
        else {
            continue;
        };
        let Some(&input) = plan.nodes[i].inputs.first() else {
            continue;
        };
        let Op::Scale { params: p, .. } = plan.nodes[input.0].op else {
            continue;
        };
        if !p.zero_center || p.max_value.is_some() {
            continue;
        }
        let source = plan.nodes[input.0].inputs.clone();
        if let Op::Pca { standardize, .. } = &mut plan.nodes[i].op {
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
    use crate::plan::{Node, NodeId, ScaleParams, Scan, Schema, Source};
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
                    op: Op::Scale {
                        params: ScaleParams {
                            zero_center: true,
                            max_value,
                        },
                        fused: false,
                    },
                    inputs: vec![NodeId(0)],
                    schema: schema.clone(),
                },
                Node {
                    step: "pcs".into(),
                    op: Op::Pca {
                        mask_var: None,
                        n_comps: 2,
                        zero_center: true,
                        standardize: None,
                    },
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
}
