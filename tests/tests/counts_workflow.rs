//! The standard single-cell workflow on sparse counts (QC, filters, normalize_total, log1p,
//! highly variable genes, scale, PCA, neighbors, Leiden) against scanpy on the same file:
//! QC columns and gene statistics within 1e-5, the same highly variable genes, PCA variance
//! ratios within 1e-4, components up to sign, Leiden ARI >= 0.9.

use engine_tests::{engine_ok, root, run_python, scratch};

/// These runs need more than the default 256M: PCA over a few thousand genes (their Gram and
/// its eigendecomposition) and UMAP's dense spectral start below 4,096 cells.
const MEMORY: &str = "1G";
use serde_json::json;
use std::path::{Path, PathBuf};

/// Raw counts from the embedded source, written by `engine run` (so anndata reading them is
/// part of what is checked).
fn raw_counts(dir: &Path, name: &str) -> PathBuf {
    let pipeline = dir.join("raw.yaml");
    let path = dir.join(name);
    std::fs::write(
        &pipeline,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: synthetic_counts, n_obs: 3000, n_vars: 3000, n_types: 5, library_size: 2500, seed: 3}}\noutputs:\n  - {{step: data, path: \"{}\"}}\n",
            path.display()
        ),
    )
    .unwrap();
    engine_ok(&["run", pipeline.to_str().unwrap(), "--memory-limit", MEMORY]);
    path
}

/// Runs scanpy's workflow on `raw` with `cfg` and compares it with `ours`.
fn compare(dir: &Path, raw: &Path, ours: &Path, cfg: serde_json::Value) -> serde_json::Value {
    let cfg_path = dir.join("cfg.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let out = run_python("scanpy_counts_workflow.py", &[raw, ours, &cfg_path]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("{report}");
    report
}

#[test]
fn seurat_top_genes_pipeline_matches_scanpy() {
    let dir = scratch("counts-seurat");
    let raw = raw_counts(&dir, "raw.h5ad");
    let pipeline = root().join("pipelines/counts_file.yaml");
    engine_ok(&[
        "run",
        "--memory-limit",
        MEMORY,
        pipeline.to_str().unwrap(),
        "--param",
        &format!("input={}", raw.display()),
        "--param",
        &format!("out={}", dir.display()),
        "--param",
        "min_genes=600",
        "--param",
        "n_top_genes=500",
        "--param",
        "n_comps=30",
    ]);
    assert!(dir.join("pca_leiden.png").exists());
    assert!(dir.join("umap_leiden.png").exists());
    let report = compare(
        &dir,
        &raw,
        &dir.join("result.h5ad"),
        json!({"min_genes": 600, "min_cells": 3, "max_pct_mt": 20.0, "target_sum": 10000.0, "n_top_genes": 500,
               "flavor": "seurat", "batch_key": null, "subset": false, "max_value": 10.0,
               "n_comps": 30, "n_neighbors": 15}),
    );
    // The filter did remove cells, so the comparison covers it.
    assert!(report["n_obs"][0].as_u64().unwrap() < 3000, "{report}");
    // The pipeline ends in UMAP, so its layout was compared too.
    assert!(report["umap_silhouette"].is_array(), "{report}");
}

#[test]
fn cell_ranger_with_batches_and_subset_on_zarr_matches_scanpy() {
    let dir = scratch("counts-cell-ranger");
    let raw = raw_counts(&dir, "raw.h5ad");
    // The same counts as zarr: our reader of our own zarr feeds the pipeline.
    let zarr = dir.join("raw.zarr");
    engine_ok(&["convert", raw.to_str().unwrap(), zarr.to_str().unwrap()]);
    let pipeline = dir.join("batch.yaml");
    std::fs::write(
        &pipeline,
        r#"version: 1
params:
  input: {type: path, default: x}
  out: {type: path, default: out}
steps:
  - {id: data, op: read, path: "${input}"}
  - {id: qc, op: calculate_qc_metrics, input: data, qc_vars: "mt=MT-"}
  - {id: cells, op: filter_cells, input: qc, min_genes: 600}
  - {id: genes, op: filter_genes, input: cells, min_cells: 3}
  - {id: normalized, op: normalize_total, input: genes, target_sum: 10000}
  - {id: logged, op: log1p, input: normalized}
  - {id: hvg, op: highly_variable_genes, input: logged, n_top_genes: 400, flavor: cell_ranger, batch_key: batch, subset: true}
  - {id: scaled, op: scale, input: hvg, max_value: 10}
  - {id: pcs, op: pca, input: scaled, n_comps: 30}
  - {id: graph, op: neighbors, input: pcs}
  - {id: clusters, op: leiden, input: graph}
outputs:
  - {step: clusters, path: "${out}/batch.h5ad"}
"#,
    )
    .unwrap();
    engine_ok(&[
        "run",
        "--memory-limit",
        MEMORY,
        pipeline.to_str().unwrap(),
        "--param",
        &format!("input={}", zarr.display()),
        "--param",
        &format!("out={}", dir.display()),
    ]);
    let report = compare(
        &dir,
        &raw,
        &dir.join("batch.h5ad"),
        json!({"min_genes": 600, "min_cells": 3, "target_sum": 10000.0, "n_top_genes": 400,
               "flavor": "cell_ranger", "batch_key": "batch", "subset": true, "max_value": 10.0,
               "n_comps": 30, "n_neighbors": 15}),
    );
    assert_eq!(report["n_vars"][1], 400, "{report}");
}

#[test]
fn seurat_cutoffs_with_median_target_match_scanpy() {
    let dir = scratch("counts-seurat-cutoffs");
    let raw = raw_counts(&dir, "raw.h5ad");
    let pipeline = dir.join("cutoffs.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"version: 1
steps:
  - {{id: data, op: read, path: "{raw}"}}
  - {{id: qc, op: calculate_qc_metrics, input: data, qc_vars: "mt=MT-"}}
  - {{id: cells, op: filter_cells, input: qc, min_genes: 300}}
  - {{id: genes, op: filter_genes, input: cells, min_cells: 10}}
  - {{id: normalized, op: normalize_total, input: genes}}
  - {{id: logged, op: log1p, input: normalized}}
  - {{id: hvg, op: highly_variable_genes, input: logged}}
  - {{id: scaled, op: scale, input: hvg}}
  - {{id: pcs, op: pca, input: scaled, n_comps: 20}}
  - {{id: graph, op: neighbors, input: pcs, n_neighbors: 10}}
  - {{id: clusters, op: leiden, input: graph}}
outputs:
  - {{step: clusters, path: "{out}"}}
"#,
            raw = raw.display(),
            out = dir.join("cutoffs.h5ad").display()
        ),
    )
    .unwrap();
    engine_ok(&["run", pipeline.to_str().unwrap(), "--memory-limit", MEMORY]);
    compare(
        &dir,
        &raw,
        &dir.join("cutoffs.h5ad"),
        json!({"min_genes": 300, "min_cells": 10, "target_sum": null, "n_top_genes": null,
               "flavor": "seurat", "batch_key": null, "subset": false, "max_value": null,
               "n_comps": 20, "n_neighbors": 10}),
    );
}

#[test]
fn seurat_v3_on_counts_with_batches_matches_scanpy() {
    // seurat_v3 ranks genes on the raw counts through a LOESS trend (scikit-misc's in
    // scanpy), per batch, before normalisation; PCA then uses the chosen genes.
    let dir = scratch("counts-seurat-v3");
    let raw = raw_counts(&dir, "raw.h5ad");
    let pipeline = dir.join("v3.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"version: 1
steps:
  - {{id: data, op: read, path: "{raw}"}}
  - {{id: qc, op: calculate_qc_metrics, input: data, qc_vars: "mt=MT-"}}
  - {{id: cells, op: filter_cells, input: qc, min_genes: 600}}
  - {{id: genes, op: filter_genes, input: cells, min_cells: 3}}
  - {{id: hvg, op: highly_variable_genes, input: genes, flavor: seurat_v3, n_top_genes: 500, batch_key: batch}}
  - {{id: normalized, op: normalize_total, input: hvg, target_sum: 10000}}
  - {{id: logged, op: log1p, input: normalized}}
  - {{id: scaled, op: scale, input: logged, max_value: 10}}
  - {{id: pcs, op: pca, input: scaled, n_comps: 30}}
  - {{id: graph, op: neighbors, input: pcs}}
  - {{id: clusters, op: leiden, input: graph}}
outputs:
  - {{step: clusters, path: "{out}"}}
"#,
            raw = raw.display(),
            out = dir.join("v3.h5ad").display()
        ),
    )
    .unwrap();
    engine_ok(&["run", pipeline.to_str().unwrap(), "--memory-limit", MEMORY]);
    let report = compare(
        &dir,
        &raw,
        &dir.join("v3.h5ad"),
        json!({"min_genes": 600, "min_cells": 3, "target_sum": 10000.0, "n_top_genes": 500,
               "flavor": "seurat_v3", "batch_key": "batch", "subset": false, "max_value": 10.0,
               "n_comps": 30, "n_neighbors": 15}),
    );
    assert_eq!(report["hvg"][0], 500, "{report}");
}
