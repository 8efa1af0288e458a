//! `fuse_elementwise`: a chain of per-element, per-row and per-column maps on X
//! (`normalize_total`'s row scale, `log1p`, `scale`'s standardisation) becomes one kernel that
//! takes each block through every map in a single sweep, instead of one sweep per map. Steps
//! that keep X's values (QC, filters, views, HVG) may sit between the maps: selections are
//! pushed into the scan, so the maps stay adjacent.
//!
//! ```text
//! before: NormalizeTotal -> Log1p -> Hvg -> Scale      (three sweeps per block)
//! after:  NormalizeTotal -> Log1p(fused) -> Hvg -> Scale(fused)   (one sweep)
//! ```
//! Each step still makes the statistics pass it needs (totals, moments); only how its map is
//! applied changes, so every schema and every value is unchanged.

use crate::plan::{Log1p, LogicalPlan, NodeId, NormalizeTotal, Op, Scale};

pub const NAME: &str = "fuse_elementwise";

/// Whether a node applies a map to X.
fn is_map(op: &Op) -> bool {
    matches!(op, Op::NormalizeTotal(_) | Op::Log1p(_) | Op::Scale(_))
}

/// Whether a node passes X's values through unchanged (possibly selecting rows or columns).
fn keeps_values(op: &Op) -> bool {
    matches!(
        op,
        Op::Qc(_) | Op::Filter(_) | Op::Hvg(_) | Op::Select(_) | Op::Where(_)
    )
}

/// Applies the rule; returns whether the plan changed.
pub fn apply(plan: &mut LogicalPlan) -> bool {
    let mut changed = false;
    for i in 0..plan.nodes.len() {
        if !is_map(&plan.nodes[i].op) {
            continue;
        }
        // The nearest ancestor that changes X's values: fuse when it is a map too.
        let mut up: Option<NodeId> = plan.nodes[i].inputs.first().copied();
        while let Some(u) = up {
            if !keeps_values(&plan.nodes[u.0].op) {
                break;
            }
            up = plan.nodes[u.0].inputs.first().copied();
        }
        if !up.is_some_and(|u| is_map(&plan.nodes[u.0].op)) {
            continue;
        }
        match &mut plan.nodes[i].op {
            Op::NormalizeTotal(NormalizeTotal { fused, .. })
            | Op::Log1p(Log1p { fused })
            | Op::Scale(Scale { fused, .. }) => {
                changed |= !*fused;
                *fused = true;
            }
            _ => unreachable!("checked by is_map"),
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{HvgParams, Node, ScaleParams, Scan, Schema, Source};

    fn node(step: &str, op: Op, input: Option<usize>) -> Node {
        Node {
            step: step.into(),
            op,
            inputs: input.map(NodeId).into_iter().collect(),
            schema: Schema::default(),
        }
    }

    fn plan() -> LogicalPlan {
        let scan = Source::Counts {
            n_obs: 100,
            n_vars: 50,
            n_types: 3,
            n_batches: 1,
            library_size: 1000.0,
            seed: 0,
        };
        LogicalPlan {
            nodes: vec![
                node("data", Op::Scan(Scan::new(scan)), None),
                node(
                    "normalized",
                    Op::NormalizeTotal(NormalizeTotal {
                        target_sum: Some(1e4),
                        fused: false,
                    }),
                    Some(0),
                ),
                node("logged", Op::Log1p(Log1p { fused: false }), Some(1)),
                node(
                    "hvg",
                    Op::Hvg(HvgParams {
                        n_top_genes: Some(20),
                        subset: true,
                        ..Default::default()
                    }),
                    Some(2),
                ),
                node(
                    "scaled",
                    Op::Scale(Scale {
                        params: ScaleParams {
                            zero_center: true,
                            max_value: Some(10.0),
                        },
                        fused: false,
                        moments_merged: false,
                    }),
                    Some(3),
                ),
            ],
        }
    }

    fn fused(p: &LogicalPlan) -> Vec<bool> {
        p.nodes
            .iter()
            .map(|n| match n.op {
                Op::NormalizeTotal(NormalizeTotal { fused, .. })
                | Op::Log1p(Log1p { fused })
                | Op::Scale(Scale { fused, .. }) => fused,
                _ => false,
            })
            .collect()
    }

    #[test]
    fn maps_after_a_map_join_its_kernel_across_value_keeping_steps() {
        let mut p = plan();
        assert_eq!(fused(&p), vec![false; 5]);
        assert!(apply(&mut p));
        // normalize_total reads the scan: it starts the kernel; log1p and scale (past the HVG
        // step) join it.
        assert_eq!(fused(&p), vec![false, false, true, false, true]);
        assert!(p.nodes[2].op.describe().contains("fused"));
        assert!(!apply(&mut p), "a second run changes nothing");
    }

    #[test]
    fn a_map_straight_after_the_scan_is_not_fused() {
        let mut p = plan();
        p.nodes.truncate(2);
        assert!(!apply(&mut p));
        assert_eq!(fused(&p), vec![false, false]);
    }
}
