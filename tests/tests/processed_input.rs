//! A file scanpy has already taken through PCA, neighbors and Leiden: our graph steps run on
//! its stored `obsp['connectivities']`, and every obsm/varm/obsp/uns element it had comes out
//! unchanged (same values, dtypes and sparsity), as anndata would keep it.

use engine_tests::{engine_ok, run_python, scratch};

#[test]
fn leiden_and_umap_on_a_scanpy_graph_keep_the_rest_of_the_file() {
    let dir = scratch("processed-input");
    let raw_pipeline = dir.join("raw.yaml");
    let raw = dir.join("raw.h5ad");
    std::fs::write(
        &raw_pipeline,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: synthetic_counts, n_obs: 1500, n_vars: 800, n_types: 4, library_size: 2000, seed: 5}}\noutputs:\n  - {{step: data, path: \"{}\"}}\n",
            raw.display()
        ),
    )
    .unwrap();
    engine_ok(&["run", raw_pipeline.to_str().unwrap()]);
    let processed = dir.join("processed.h5ad");
    let out = run_python(
        "scanpy_processed.py",
        &[std::path::Path::new("make"), &raw, &processed],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let pipeline = dir.join("graph.yaml");
    let ours = dir.join("ours.h5ad");
    std::fs::write(
        &pipeline,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: \"{}\"}}\n  - {{id: clusters, op: leiden, input: data}}\n  - {{id: embedding, op: umap, input: clusters}}\n  - {{id: fig, op: plot, input: embedding, basis: umap, color: scanpy_leiden, path: \"{}\"}}\n  - {{id: score, op: plot, input: embedding, basis: pca, color: score, path: \"{}\"}}\noutputs:\n  - {{step: embedding, path: \"{}\"}}\n",
            processed.display(),
            dir.join("umap.png").display(),
            dir.join("pca_score.png").display(),
            ours.display()
        ),
    )
    .unwrap();
    engine_ok(&["run", pipeline.to_str().unwrap()]);
    assert!(dir.join("umap.png").exists());
    // A numeric column (with a NaN) colours on a continuous scale instead of failing.
    assert!(dir.join("pca_score.png").exists());

    let out = run_python(
        "scanpy_processed.py",
        &[std::path::Path::new("check"), &processed, &ours],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{r}");
    for group in ["obsm", "varm", "obsp"] {
        let m = r[group].as_object().unwrap();
        assert!(!m.is_empty(), "{r}");
        assert!(m.values().all(|v| v == true), "{group}: {r}");
    }
    assert!(
        r["obsm"]["X_f64"] == true && r["obsm"]["X_sparse"] == true,
        "{r}"
    );
    assert_eq!(r["uns"], serde_json::json!([]), "{r}");
    assert_eq!(r["variance_ratio"], true, "{r}");
    assert_eq!(r["umap_shape"], serde_json::json!([1500, 2]), "{r}");
    assert_eq!(r["umap_finite"], true, "{r}");
    // The same graph, the same algorithm and seed: the partitions agree.
    assert!(r["ari"].as_f64().unwrap() >= 0.95, "{r}");
}
