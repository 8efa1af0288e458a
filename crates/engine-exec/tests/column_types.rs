//! The obs/var column types the plan states before any data is read are the types of the
//! columns the run writes: every step that adds a column, on the bundled demo counts.

use engine_plan::{ColType, Op};
use std::path::Path;

#[test]
fn planned_column_types_are_the_written_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let input = root.join("pipelines/data/counts_demo.h5ad");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("result.h5ad");
    let yaml = format!(
        r#"version: 1
steps:
  - {{id: data, op: read, path: "{}"}}
  - {{id: qc, op: calculate_qc_metrics, input: data, qc_vars: "mt=MT-"}}
  - {{id: cells, op: filter_cells, input: qc, min_genes: 20}}
  - {{id: genes, op: filter_genes, input: cells, min_cells: 3}}
  - {{id: counted, op: filter_cells, input: genes, min_counts: 10}}
  - {{id: normalized, op: normalize_total, input: counted, target_sum: 10000}}
  - {{id: logged, op: log1p, input: normalized}}
  - {{id: hvg, op: highly_variable_genes, input: logged, n_top_genes: 200, batch_key: batch}}
  - {{id: scaled, op: scale, input: hvg, max_value: 10}}
  - {{id: pcs, op: pca, input: scaled, n_comps: 10}}
  - {{id: graph, op: neighbors, input: pcs}}
  - {{id: clusters, op: leiden, input: graph}}
outputs:
  - {{step: clusters, path: "{}"}}
"#,
        input.display(),
        out.display()
    );
    let spec = engine_spec::parse_yaml("types.yaml", &yaml, &[]).unwrap();
    let plan = engine_plan::plan(&spec, &engine_plan::NoPredicates).unwrap();
    let write = plan
        .nodes
        .iter()
        .find(|n| matches!(n.op, Op::Write(_)))
        .expect("the output's write node");
    let planned = (write.schema.obs.clone(), write.schema.var.clone());
    engine_exec::run(
        &plan,
        engine_exec::DEFAULT_MEMORY_LIMIT,
        &engine_exec::ExecOptions::default(),
    )
    .unwrap();

    let ds = engine_store::Dataset::open(&out).unwrap();
    let sorted = |mut v: Vec<(String, ColType)>| {
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let written = (
        ColType::columns(&ds.obs(None).unwrap()),
        ColType::columns(&ds.var(None).unwrap()),
    );
    // Every kind occurs, so a wrong kind anywhere would show.
    for kind in [
        ColType::Int,
        ColType::Float,
        ColType::Bool,
        ColType::Category,
    ] {
        assert!(
            written.0.iter().chain(&written.1).any(|(_, t)| *t == kind),
            "{kind:?}"
        );
    }
    assert_eq!(sorted(planned.0), sorted(written.0), "obs");
    assert_eq!(sorted(planned.1), sorted(written.1), "var");
}
