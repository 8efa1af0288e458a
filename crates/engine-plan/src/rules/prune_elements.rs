//! `prune_elements`: a scan reads only the obs columns someone downstream uses. A written
//! output uses every column; a plot uses its colour column, highly_variable_genes its batch
//! key; nothing else reads obs.
//!
//! ```text
//! before: Scan(file) -> … -> Plot(color=cell_type)     after: Scan(file, obs=[cell_type]) -> …
//! ```
//! Schemas are unchanged: they say what a node could offer, the scan says what is read.

use crate::plan::{LogicalPlan, NodeId, Op};

pub const NAME: &str = "prune_elements";

/// Obs columns needed downstream of `id`, or `None` when all are (an output writes them) or
/// nothing reads the scan at all (it is dead and left as it is).
fn needed(plan: &LogicalPlan, id: NodeId) -> Option<Vec<String>> {
    if plan.consumers(id).is_empty() {
        return None;
    }
    let mut want = Vec::new();
    let mut stack = vec![id];
    let mut seen = vec![false; plan.nodes.len()];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n.0], true) {
            continue;
        }
        match &plan.node(n).op {
            Op::Write { .. } => return None,
            Op::Plot { color: Some(c), .. } => want.push(c.clone()),
            Op::Hvg(h) => want.extend(h.batch_key.clone()),
            _ => {}
        }
        stack.extend(plan.consumers(n));
    }
    Some(want)
}

pub fn apply(plan: &mut LogicalPlan) -> bool {
    let mut changed = false;
    for i in 0..plan.nodes.len() {
        let Op::Scan(scan) = &plan.nodes[i].op else {
            continue;
        };
        if scan.obs_columns.is_some() {
            continue;
        }
        let Some(want) = needed(plan, NodeId(i)) else {
            continue;
        };
        let all = &plan.nodes[i].schema.obs;
        let keep: Vec<String> = all.iter().filter(|c| want.contains(c)).cloned().collect();
        if keep.len() < all.len() {
            if let Op::Scan(scan) = &mut plan.nodes[i].op {
                scan.obs_columns = Some(keep);
            }
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Node, Scan, Schema, Source};
    use engine_matrix::DType;

    fn plan(write: bool) -> LogicalPlan {
        let schema = Schema {
            n_obs: 10,
            n_vars: 3,
            x_dtype: Some(DType::F32),
            obs: vec!["blob".into(), "other".into()],
            obsm: vec![("X_pca".into(), 2)],
            ..Default::default()
        };
        let mut nodes = vec![
            Node {
                step: "data".into(),
                op: Op::Scan(Scan::new(Source::Synthetic {
                    n_obs: 10,
                    n_vars: 3,
                    centers: 2,
                    cluster_std: 1.0,
                    seed: 1,
                    dtype: DType::F32,
                })),
                inputs: vec![],
                schema: schema.clone(),
            },
            Node {
                step: "fig".into(),
                op: Op::Plot {
                    basis: "pca".into(),
                    components: (0, 1),
                    color: Some("blob".into()),
                    path: "p.png".into(),
                },
                inputs: vec![NodeId(0)],
                schema: schema.clone(),
            },
        ];
        if write {
            nodes.push(Node {
                step: "data:write".into(),
                op: Op::Write {
                    path: "o.h5ad".into(),
                    format: None,
                    chunks: None,
                    compression: None,
                },
                inputs: vec![NodeId(0)],
                schema,
            });
        }
        LogicalPlan { nodes }
    }

    #[test]
    fn reads_only_the_plotted_column() {
        let mut p = plan(false);
        assert!(p.explain().starts_with(
            "#0 data = Scan(synthetic(n_obs=10, n_vars=3, centers=2, cluster_std=1, seed=1, dtype=float32))\n"
        ));
        assert!(apply(&mut p));
        assert!(p.explain().starts_with(
            "#0 data = Scan(synthetic(n_obs=10, n_vars=3, centers=2, cluster_std=1, seed=1, dtype=float32), obs=[blob])\n"
        ));
        assert!(!apply(&mut p));
    }

    #[test]
    fn an_output_needs_every_column() {
        let mut p = plan(true);
        assert!(!apply(&mut p));
    }
}
