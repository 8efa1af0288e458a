//! `push_down_selection`: a view (`select`) of a scan becomes the scan's own row and column
//! selection, so the reader touches only the selected rows' storage and chunks holding no
//! selected row are never read. Views of views compose first.
//!
//! ```text
//! before: Scan(file) -> Select(rows=0:1000) -> …     after: Scan(file, rows=0:1000) -> …
//! ```
//! Only views directly on a scan move: a view after `scale` must not, because scale's
//! statistics are taken over all rows.

use crate::plan::{LogicalPlan, Op, Select, Selection};

pub const NAME: &str = "push_down_selection";

/// `outer` applied after `inner` (both positions), as one selection of `inner`'s input.
fn compose(inner: &Option<Selection>, outer: &Option<Selection>) -> Option<Selection> {
    match (inner, outer) {
        (None, o) => o.clone(),
        (i, None) => i.clone(),
        (Some(i), Some(o)) => Some(Selection {
            sel: i.sel.compose(&o.sel),
            text: format!("{} then {}", i.text, o.text),
        }),
    }
}

pub fn apply(plan: &mut LogicalPlan) -> bool {
    let mut changed = false;
    for i in 0..plan.nodes.len() {
        let Op::Select(Select { rows, cols }) = &plan.nodes[i].op else {
            continue;
        };
        let Some(&input) = plan.nodes[i].inputs.first() else {
            continue;
        };
        let merged = match &plan.nodes[input.0].op {
            Op::Scan(scan) => {
                let mut s = scan.clone();
                s.rows = compose(&scan.rows, rows);
                s.cols = compose(&scan.cols, cols);
                Op::Scan(s)
            }
            Op::Select(Select { rows: r0, cols: c0 }) => Op::Select(Select {
                rows: compose(r0, rows),
                cols: compose(c0, cols),
            }),
            _ => continue,
        };
        let inputs = plan.nodes[input.0].inputs.clone();
        plan.nodes[i].op = merged;
        plan.nodes[i].inputs = inputs;
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Node, NodeId, Scan, Schema, Source};
    use engine_matrix::{AxisSelection, DType};

    fn sel(runs: Vec<std::ops::Range<usize>>, text: &str) -> Option<Selection> {
        Some(Selection {
            sel: AxisSelection::from_runs(runs),
            text: text.into(),
        })
    }

    #[test]
    fn views_of_a_scan_become_its_selection() {
        let schema = |n: usize| Schema {
            n_obs: n,
            n_vars: 4,
            x_dtype: Some(DType::F32),
            ..Default::default()
        };
        let scan = Scan::new(Source::Synthetic {
            n_obs: 100,
            n_vars: 4,
            centers: 2,
            cluster_std: 1.0,
            seed: 1,
            dtype: DType::F32,
        });
        let mut p = LogicalPlan {
            nodes: vec![
                Node {
                    step: "data".into(),
                    op: Op::Scan(scan),
                    inputs: vec![],
                    schema: schema(100),
                },
                Node {
                    step: "first".into(),
                    op: Op::Select(Select {
                        rows: sel(vec![10..60], "10:60"),
                        cols: None,
                    }),
                    inputs: vec![NodeId(0)],
                    schema: schema(50),
                },
                Node {
                    step: "some".into(),
                    op: Op::Select(Select {
                        rows: sel(vec![0..5, 40..50], ":5,40:"),
                        cols: sel(vec![1..3], "1:3"),
                    }),
                    inputs: vec![NodeId(1)],
                    schema: schema(15),
                },
            ],
        };
        let before: Vec<String> = p
            .explain()
            .lines()
            .filter(|l| l.starts_with('#'))
            .map(String::from)
            .collect();
        assert_eq!(before[2], "#2 some = Select(rows=:5,40:, cols=1:3) <- #1");
        assert!(apply(&mut p));
        let after: Vec<String> = p
            .explain()
            .lines()
            .filter(|l| l.starts_with('#'))
            .map(String::from)
            .collect();
        assert_eq!(
            after,
            [
                "#0 data = Scan(synthetic(n_obs=100, n_vars=4, centers=2, cluster_std=1, seed=1, dtype=float32))",
                "#1 first = Scan(synthetic(n_obs=100, n_vars=4, centers=2, cluster_std=1, seed=1, dtype=float32), rows=10:60 (50 of 100 in 1 run))",
                "#2 some = Scan(synthetic(n_obs=100, n_vars=4, centers=2, cluster_std=1, seed=1, dtype=float32), rows=10:60 then :5,40: (15 of 100 in 2 runs), cols=1:3 (2 of 4 in 1 run))",
            ]
        );
        let Op::Scan(s) = &p.nodes[2].op else {
            panic!()
        };
        assert_eq!(s.rows.as_ref().unwrap().sel.runs(), &[10..15, 50..60]);
        assert!(!apply(&mut p), "nothing left to push");
    }
}
