//! `prune_elements`: a scan reads only the obs columns and the obsm/varm/obsp/uns elements
//! someone downstream uses, as each operator says (`Op::reads`): a written output uses
//! everything; a plot its colour column and its basis, highly_variable_genes its batch key,
//! neighbors its representation, leiden and umap the connectivities (umap also the
//! representation the graph was built on); a run-time `where` any obs column.
//!
//! ```text
//! before: Scan(file) -> … -> Plot(color=cell_type)
//! after:  Scan(file, obs=[cell_type], elements=[obsm/X_pca]) -> …
//! ```
//! Schemas are unchanged: they say what a node could offer, the scan says what is read.

use crate::plan::{LogicalPlan, NodeId, Op, Reads, Schema};

pub const NAME: &str = "prune_elements";

/// What the nodes downstream of a scan read from it.
#[derive(Debug, Default)]
struct Needs {
    obs: Vec<String>,
    /// Some consumer reads obs columns it cannot name (a run-time `where`).
    all_obs: bool,
    elements: Vec<String>,
}

/// Needs downstream of `id`, or `None` when everything is (an output writes it) or nothing
/// reads the scan at all (it is dead and left as it is).
fn needed(plan: &LogicalPlan, consumers: &[Vec<NodeId>], id: NodeId) -> Option<Needs> {
    if consumers[id.0].is_empty() {
        return None;
    }
    let mut want = Needs::default();
    let mut stack = vec![id];
    let mut seen = vec![false; plan.nodes.len()];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n.0], true) {
            continue;
        }
        match plan.node(n).op.reads() {
            Reads::Everything => return None,
            Reads::Some { obs, elements } => {
                want.obs.extend(obs);
                want.elements.extend(elements);
            }
            Reads::AllObs => want.all_obs = true,
            Reads::Nothing => {}
        }
        stack.extend(&consumers[n.0]);
    }
    Some(want)
}

/// Every element a scan's schema offers, as paths.
fn offered(s: &Schema) -> Vec<String> {
    let m = |g: &str, k: &String| format!("{g}/{k}");
    s.obsm
        .iter()
        .map(|(k, _)| m("obsm", k))
        .chain(s.varm.iter().map(|(k, _)| m("varm", k)))
        .chain(s.obsp.iter().map(|k| m("obsp", k)))
        .chain(s.uns.iter().map(|k| m("uns", k)))
        .collect()
}

pub fn apply(plan: &mut LogicalPlan) -> bool {
    let mut changed = false;
    let consumers = plan.consumer_lists();
    for i in 0..plan.nodes.len() {
        let Op::Scan(scan) = &plan.nodes[i].op else {
            continue;
        };
        if scan.obs_columns.is_some() || scan.elements.is_some() {
            continue;
        }
        let Some(want) = needed(plan, &consumers, NodeId(i)) else {
            continue;
        };
        let schema = &plan.nodes[i].schema;
        let keep = |all: Vec<String>, want: &[String]| {
            let n = all.len();
            let keep: Vec<String> = all.into_iter().filter(|c| want.contains(c)).collect();
            (keep.len() < n).then_some(keep)
        };
        let names = schema.obs.iter().map(|(n, _)| n.clone()).collect();
        let obs = if want.all_obs {
            None
        } else {
            keep(names, &want.obs)
        };
        let elements = keep(offered(schema), &want.elements);
        if obs.is_some() || elements.is_some() {
            if let Op::Scan(scan) = &mut plan.nodes[i].op {
                scan.obs_columns = obs;
                scan.elements = elements;
            }
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ColType, Leiden, Node, Plot, Scan, Schema, Source, Where, Write};
    use engine_matrix::DType;

    fn plan(write: bool) -> LogicalPlan {
        let schema = Schema {
            n_obs: 10,
            n_vars: 3,
            x_dtype: Some(DType::F32),
            obs: vec![
                ("blob".into(), ColType::Category),
                ("other".into(), ColType::Float),
            ],
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
                op: Op::Plot(Plot {
                    basis: "pca".into(),
                    components: (0, 1),
                    color: Some("blob".into()),
                    gene: false,
                    raw: None,
                    path: "p.png".into(),
                    title: None,
                    size: None,
                    legend_loc: "right margin".into(),
                    palette: None,
                    dpi: 150,
                }),
                inputs: vec![NodeId(0)],
                schema: schema.clone(),
            },
        ];
        if write {
            nodes.push(Node {
                step: "data:write".into(),
                op: Op::Write(Write {
                    path: "o.h5ad".into(),
                    format: None,
                    chunks: None,
                    compression: None,
                    storage: vec![],
                    slots: vec![],
                }),
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

    #[test]
    fn a_plot_of_a_file_embedding_reads_only_that_embedding() {
        let mut p = plan(false);
        let s = &mut p.nodes[0].schema;
        s.obsm.push(("X_umap".into(), 2));
        s.obsp = vec!["connectivities".into(), "distances".into()];
        s.uns = vec!["neighbors".into()];
        assert!(apply(&mut p));
        let Op::Scan(scan) = &p.nodes[0].op else {
            unreachable!()
        };
        assert_eq!(
            scan.elements.as_deref(),
            Some(&["obsm/X_pca".to_string()][..])
        );
        assert!(p.explain().starts_with(
            "#0 data = Scan(synthetic(n_obs=10, n_vars=3, centers=2, cluster_std=1, seed=1, dtype=float32), obs=[blob], elements=[obsm/X_pca])\n"
        ));
    }

    #[test]
    fn leiden_reads_only_the_connectivities() {
        let mut p = plan(false);
        p.nodes[0].schema.obsp = vec!["connectivities".into(), "distances".into()];
        p.nodes[1].op = Op::Leiden(Leiden {
            resolution: 1.0,
            random_state: 0,
            n_iterations: -1,
            key_added: "leiden".into(),
        });
        assert!(apply(&mut p));
        let Op::Scan(scan) = &p.nodes[0].op else {
            unreachable!()
        };
        assert_eq!(scan.obs_columns.as_deref(), Some(&[][..]));
        assert_eq!(
            scan.elements.as_deref(),
            Some(&["obsp/connectivities".to_string()][..])
        );
    }

    #[test]
    fn a_run_time_where_keeps_every_obs_column() {
        // data -> where (over computed and file columns alike) -> plot(color=blob)
        let mut p = plan(false);
        let mut view = p.nodes[1].clone();
        view.step = "kept".into();
        view.op = Op::Where(Where {
            rows: None,
            cols: None,
            obs: Some("other > 0 AND pct_counts_mt < 20".into()),
            var: None,
        });
        p.nodes.insert(1, view);
        p.nodes[2].inputs = vec![NodeId(1)];
        p.nodes[0].schema.obsm.push(("X_umap".into(), 2));
        assert!(apply(&mut p));
        let Op::Scan(scan) = &p.nodes[0].op else {
            unreachable!()
        };
        assert_eq!(
            scan.obs_columns, None,
            "the predicate may name any obs column"
        );
        assert_eq!(
            scan.elements.as_deref(),
            Some(&["obsm/X_pca".to_string()][..]),
            "and only the elements named downstream"
        );
    }
}
