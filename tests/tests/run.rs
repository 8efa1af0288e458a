//! `engine run` end to end: the bundled blobs workflow, checked against scanpy, with every
//! optimizer rule on and off giving the same results.

use engine_store::Dataset;
use engine_tests::{engine, engine_ok, read_matrix, root, run_python, scratch};

/// `engine COMMAND PIPELINE` on 3000 x 100 blobs writing into `out`, then `extra`.
fn blobs_command(
    command: &str,
    pipeline: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let out_param = format!("out={}", out.display());
    let mut args = vec![
        command,
        pipeline.to_str().unwrap(),
        "--param",
        "n_obs=3000",
        "--param",
        "n_vars=100",
        "--param",
        &out_param,
    ];
    args.extend_from_slice(extra);
    engine_ok(&args)
}

fn run_blobs(out: &std::path::Path, extra: &[&str]) {
    blobs_command("run", &root().join("pipelines/blobs.yaml"), out, extra);
}

/// scanpy's PCA (covariance_eigh), neighbors and Leiden on the output's scaled X: the issue's
/// comparisons, with the variance ratios of the first `compared` components within 1e-4.
fn check_against_scanpy(h5ad: &std::path::Path, compared: usize) -> serde_json::Value {
    let compared = compared.to_string();
    let out = run_python(
        "check_blobs_run.py",
        &[
            h5ad,
            std::path::Path::new("50"),
            std::path::Path::new(&compared),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["variance_ratio_rel_err"].as_f64().unwrap() < 1e-4, "{r}");
    assert!(r["pc_abs_err_first3"].as_f64().unwrap() < 1e-4, "{r}");
    assert!(r["ari_vs_scanpy"].as_f64().unwrap() >= 0.95, "{r}");
    assert_eq!(r["ari_vs_truth"].as_f64().unwrap(), 1.0, "{r}");
    r
}

#[test]
fn blobs_workflow_matches_scanpy() {
    let dir = scratch("run-blobs");
    run_blobs(&dir, &[]);
    assert!(dir.join("blobs_pca.png").exists());
    let r = check_against_scanpy(&dir.join("blobs.h5ad"), 50);
    assert_eq!(r["n_clusters"], 4, "{r}");
    assert_eq!(
        r["uns_keys"],
        serde_json::json!(["engine", "leiden", "neighbors", "pca"])
    );
    assert_eq!(
        r["obsp_keys"],
        serde_json::json!(["connectivities", "distances"])
    );
}

/// The same workflow with `svd_solver: randomized`: the signal components (the blobs span
/// three) match scanpy's exact PCA, and so do the graph and clusters built on them.
#[test]
fn randomized_pca_finds_the_exact_components() {
    let dir = scratch("run-blobs-randomized");
    let text = std::fs::read_to_string(root().join("pipelines/blobs.yaml"))
        .unwrap()
        .replace("svd_solver: covariance_eigh", "svd_solver: randomized");
    assert!(text.contains("svd_solver: randomized"));
    let pipeline = dir.join("blobs_randomized.yaml");
    std::fs::write(&pipeline, text).unwrap();
    // 50 components of 100 variables: scikit-learn's 4 power iterations after the first pass.
    let explain = blobs_command("explain", &pipeline, &dir, &[]);
    let explain = String::from_utf8(explain.stdout).unwrap();
    assert!(
        explain.contains("5 passes over X: randomized subspace iteration"),
        "{explain}"
    );
    blobs_command("run", &pipeline, &dir, &[]);
    check_against_scanpy(&dir.join("blobs.h5ad"), 3);
}

#[test]
fn rules_on_and_off_agree() {
    let on = scratch("run-rules-on");
    let off = scratch("run-rules-off");
    run_blobs(&on, &[]);
    run_blobs(&off, &["--disable-rule", "merge_passes"]);
    let read = |d: &std::path::Path, el: &str| read_matrix(&d.join("blobs.h5ad"), el);
    for el in ["X", "varm/PCs"] {
        let worst = max_abs_diff(&read(&on, el), &read(&off, el));
        assert!(worst < 1e-5, "{el}: rules on/off differ by {worst}");
    }
    let labels = |d: &std::path::Path| {
        let obs = Dataset::open(d.join("blobs.h5ad"))
            .unwrap()
            .obs(None)
            .unwrap();
        match obs.column("leiden").unwrap() {
            engine_store::Column::Categorical { codes, .. } => codes.to_i64_vec().unwrap(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(labels(&on), labels(&off));
    // EXPLAIN shows the difference: one pass fewer with the rule on.
    let pipeline = root().join("pipelines/blobs.yaml");
    let e_on = String::from_utf8(engine(&["explain", pipeline.to_str().unwrap()]).stdout).unwrap();
    let e_off = String::from_utf8(
        engine(&[
            "explain",
            pipeline.to_str().unwrap(),
            "--disable-rule",
            "merge_passes",
        ])
        .stdout,
    )
    .unwrap();
    let passes = |s: &str| s.lines().filter(|l| l.contains("pass over X")).count();
    assert_eq!(passes(&e_on) + 1, passes(&e_off), "{e_on}\n{e_off}");
    assert!(e_on.contains("rules applied: merge_passes"));
}

/// `pipelines/counts_file.yaml` and its `input=` parameter for the bundled demo counts.
fn counts_pipeline() -> (String, String) {
    let pipeline = root().join("pipelines/counts_file.yaml");
    let input = root().join("pipelines/data/counts_demo.h5ad");
    (
        pipeline.display().to_string(),
        format!("input={}", input.display()),
    )
}

/// Runs the counts pipeline on the demo counts into `out`.
fn run_counts(out: &std::path::Path, extra: &[&str]) {
    let (pipeline, input) = counts_pipeline();
    let out = format!("out={}", out.display());
    let mut args = vec!["run", &pipeline, "--param", &out, "--param", &input];
    args.extend_from_slice(extra);
    engine_ok(&args);
}

/// `engine explain` of the counts pipeline.
fn explain_counts(extra: &[&str]) -> String {
    let (pipeline, input) = counts_pipeline();
    let mut args = vec!["explain", &pipeline, "--param", &input];
    args.extend_from_slice(extra);
    String::from_utf8(engine_ok(&args).stdout).unwrap()
}

/// The largest absolute difference between two equally long arrays.
fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn fused_maps_give_the_values_of_separate_maps() {
    // The counts workflow's normalize_total -> log1p -> (HVG) -> scale chain, as one kernel
    // per block and as one sweep per map.
    let (on, off) = (scratch("fuse-on"), scratch("fuse-off"));
    run_counts(&on, &[]);
    run_counts(&off, &["--disable-rule", "fuse_elementwise"]);
    for el in ["X", "obsm/X_pca", "obsm/X_umap"] {
        let (a, b) = (
            read_matrix(&on.join("result.h5ad"), el),
            read_matrix(&off.join("result.h5ad"), el),
        );
        assert_eq!(a, b, "{el} differs with fuse_elementwise off");
    }
    let (e_on, e_off) = (
        explain_counts(&[]),
        explain_counts(&["--disable-rule", "fuse_elementwise"]),
    );
    assert!(
        e_on.contains("Log1p(fused into the previous map's kernel)")
            && e_on.contains("max_value=10, fused into the previous map's kernel"),
        "{e_on}"
    );
    assert!(!e_off.contains("fused into"), "{e_off}");
}

#[test]
fn scale_moments_from_the_hvg_pass_equal_their_own_pass() {
    // merge_passes gives scale the column moments the HVG pass summed (sum and sum of squares)
    // instead of a pass of its own (per-block moments merged): equal to rounding.
    let (on, off) = (scratch("moments-merged"), scratch("moments-own-pass"));
    run_counts(&on, &[]);
    run_counts(&off, &["--disable-rule", "merge_passes"]);
    let var = |d: &std::path::Path, key: &str| {
        let var = Dataset::open(d.join("result.h5ad"))
            .unwrap()
            .var(None)
            .unwrap();
        match var.column(key).unwrap() {
            engine_store::Column::Plain(a) => a.to_f64_vec().unwrap(),
            other => panic!("{other:?}"),
        }
    };
    for key in ["mean", "std"] {
        let (a, b) = (var(&on, key), var(&off, key));
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                "var['{key}']: {x} vs {y}"
            );
        }
    }
    let read = |d: &std::path::Path, el: &str| read_matrix(&d.join("result.h5ad"), el);
    for el in ["X", "obsm/X_pca"] {
        let worst = max_abs_diff(&read(&on, el), &read(&off, el));
        assert!(worst < 1e-4, "{el}: merged moments differ by {worst}");
    }
    let (e_on, e_off) = (
        explain_counts(&[]),
        explain_counts(&["--disable-rule", "merge_passes"]),
    );
    let passes = |s: &str| s.lines().filter(|l| l.contains("pass over X")).count();
    assert_eq!(passes(&e_on) + 1, passes(&e_off), "{e_on}\n{e_off}");
    assert!(e_on.contains("+ scale's column moments"), "{e_on}");
}

/// Each optimizer rule off, and all of them off together, on the counts workflow from a file
/// (where the selection, pruning, fusion, merged passes and chunk alignment all apply): the
/// same cells, genes, embeddings and clusters as with every rule on.
#[test]
fn every_rule_off_and_all_off_give_the_same_results() {
    const RULES: [&str; 5] = [
        "push_down_selection",
        "prune_elements",
        "fuse_elementwise",
        "merge_passes",
        "align_chunks",
    ];
    let on = scratch("rules-all-on");
    run_counts(&on, &[]);
    let read = |d: &std::path::Path, el: &str| read_matrix(&d.join("result.h5ad"), el);
    let labels = |d: &std::path::Path| {
        let obs = Dataset::open(d.join("result.h5ad"))
            .unwrap()
            .obs(None)
            .unwrap();
        let leiden = match obs.column("leiden").unwrap() {
            engine_store::Column::Categorical { codes, .. } => codes.to_i64_vec().unwrap(),
            other => panic!("{other:?}"),
        };
        (format!("{:?}", obs.index), leiden)
    };
    let want = labels(&on);
    let mut cases: Vec<(String, Vec<&str>)> = RULES
        .iter()
        .map(|r| (r.to_string(), vec!["--disable-rule", r]))
        .collect();
    cases.push((
        "all".into(),
        RULES.iter().flat_map(|r| ["--disable-rule", r]).collect(),
    ));
    for (name, args) in &cases {
        let off = scratch(&format!("rules-off-{name}"));
        run_counts(&off, args);
        for el in ["X", "obsm/X_pca", "varm/PCs"] {
            let worst = max_abs_diff(&read(&on, el), &read(&off, el));
            assert!(worst < 1e-4, "{el} with {name} off differs by {worst}");
        }
        assert_eq!(
            labels(&off),
            want,
            "cells or clusters differ with {name} off"
        );
    }
}

/// A NaN in X reaches PCA's covariance: the run fails as bad data (exit 1, not a bug, not a
/// usage mistake), names the step, and writes no output.
#[test]
fn nan_in_pca_input_is_a_data_error_at_its_step() {
    let dir = scratch("nan_pca");
    let input = dir.join("nan.h5ad");
    let made = std::process::Command::new(engine_tests::python())
        .env("HDF5_USE_FILE_LOCKING", "FALSE")
        .arg("-c")
        .arg(
            "import sys, numpy as np, anndata as ad\n\
             x = np.random.default_rng(0).normal(size=(60, 8)).astype(np.float32)\n\
             x[17, 3] = np.nan\n\
             ad.AnnData(x).write_h5ad(sys.argv[1])",
        )
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pipeline = dir.join("p.yaml");
    let out = dir.join("out.h5ad");
    std::fs::write(
        &pipeline,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: \"{}\"}}\n  - {{id: pcs, op: pca, input: data, n_comps: 3}}\noutputs:\n  - {{step: pcs, path: \"{}\"}}\n",
            input.display(),
            out.display()
        ),
    )
    .unwrap();
    let r = engine(&["run", pipeline.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("step `pcs`") && stderr.contains("NaN"),
        "{stderr}"
    );
    assert!(!stderr.contains("bug"), "{stderr}");
    assert!(!out.exists(), "no output from a failed run");
}

/// Two `scale` steps reading one `highly_variable_genes` step both take its merged column
/// moments (the moments travel with the HVG step's X to each consumer), and both equal the
/// moments of their own pass with merge_passes off.
#[test]
fn two_scales_of_one_hvg_both_take_its_moments() {
    let dir = scratch("two_scales");
    let pipeline = dir.join("p.yaml");
    std::fs::write(
        &pipeline,
        "version: 1\n\
         params:\n  out: {type: path, default: out}\n\
         steps:\n\
         \x20 - {id: data, op: synthetic_counts, n_obs: 1500, n_vars: 400, n_types: 3, seed: 1}\n\
         \x20 - {id: normalized, op: normalize_total, input: data, target_sum: 10000}\n\
         \x20 - {id: logged, op: log1p, input: normalized}\n\
         \x20 - {id: hvg, op: highly_variable_genes, input: logged, n_top_genes: 100, subset: true}\n\
         \x20 - {id: plain, op: scale, input: hvg}\n\
         \x20 - {id: clipped, op: scale, input: hvg, max_value: 2}\n\
         outputs:\n\
         \x20 - {step: plain, path: \"${out}/plain.h5ad\"}\n\
         \x20 - {step: clipped, path: \"${out}/clipped.h5ad\"}\n",
    )
    .unwrap();
    let p = pipeline.to_str().unwrap();
    let explain = String::from_utf8_lossy(&engine_ok(&["explain", p]).stdout).to_string();
    assert_eq!(
        explain.matches("moments from the input's pass").count(),
        2,
        "{explain}"
    );
    let (on, off) = (dir.join("on"), dir.join("off"));
    engine_ok(&["run", p, "--param", &format!("out={}", on.display())]);
    engine_ok(&[
        "run",
        p,
        "--disable-rule",
        "merge_passes",
        "--param",
        &format!("out={}", off.display()),
    ]);
    let var = |d: &std::path::Path, file: &str, key: &str| {
        let var = Dataset::open(d.join(file)).unwrap().var(None).unwrap();
        match var.column(key).unwrap() {
            engine_store::Column::Plain(a) => a.to_f64_vec().unwrap(),
            other => panic!("{other:?}"),
        }
    };
    for file in ["plain.h5ad", "clipped.h5ad"] {
        for key in ["mean", "std"] {
            let (a, b) = (var(&on, file, key), var(&off, file, key));
            assert_eq!(a.len(), 100);
            assert!(max_abs_diff(&a, &b) <= 1e-12, "{file} var['{key}']");
        }
        let worst = max_abs_diff(
            &read_matrix(&on.join(file), "X"),
            &read_matrix(&off.join(file), "X"),
        );
        assert!(worst < 1e-4, "{file}: X differs by {worst}");
    }
}
