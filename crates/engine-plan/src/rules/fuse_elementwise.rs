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

use crate::plan::{LogicalPlan, NodeId, XEffect};

pub const NAME: &str = "fuse_elementwise";

/// Applies the rule; returns whether the plan changed.
pub fn apply(plan: &mut LogicalPlan) -> bool {
    let mut changed = false;
    for i in 0..plan.nodes.len() {
        if plan.nodes[i].op.x_effect() != XEffect::Map {
            continue;
        }
        // The nearest ancestor that changes X's values: fuse when it is a map too.
        let mut up: Option<NodeId> = plan.nodes[i].inputs.first().copied();
        while let Some(u) = up {
            if plan.nodes[u.0].op.x_effect() != XEffect::Keeps {
                break;
            }
            up = plan.nodes[u.0].inputs.first().copied();
        }
        if !up.is_some_and(|u| plan.nodes[u.0].op.x_effect() == XEffect::Map) {
            continue;
        }
        if let Some(fused) = plan.nodes[i].op.fused_mut() {
            changed |= !*fused;
            *fused = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{
        HvgParams, Log1p, Node, NormalizeTotal, Op, Scale, ScaleParams, Scan, Schema, Source,
    };

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

    fn op_lines(p: &LogicalPlan) -> Vec<String> {
        p.explain()
            .lines()
            .filter(|l| l.starts_with('#'))
            .map(String::from)
            .collect()
    }

    #[test]
    fn maps_after_a_map_join_its_kernel_across_value_keeping_steps() {
        let mut p = plan();
        let before = op_lines(&p);
        assert!(apply(&mut p));
        // normalize_total reads the scan: it starts the kernel; log1p and scale (past the HVG
        // step) join it. Only their two lines change.
        let after = op_lines(&p);
        let changed: Vec<(&String, &String)> =
            before.iter().zip(&after).filter(|(b, a)| b != a).collect();
        assert_eq!(
            changed,
            [
                (
                    &"#2 logged = Log1p() <- #1".to_string(),
                    &"#2 logged = Log1p(fused into the previous map's kernel) <- #1".to_string()
                ),
                (
                    &"#4 scaled = Scale(zero_center=true, max_value=10) <- #3".to_string(),
                    &"#4 scaled = Scale(zero_center=true, max_value=10, fused into the previous map's kernel) <- #3".to_string()
                ),
            ]
        );
        assert_eq!(fused(&p), vec![false, false, true, false, true]);
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
