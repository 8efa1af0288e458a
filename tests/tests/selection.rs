//! Views (`select`) pushed into scans: the same results as anndata's view + scanpy, with every
//! optimizer rule on or off, and EXPLAIN showing which storage chunks are skipped.

use engine_tests::{engine, engine_ok, read_matrix, run_python, scratch};
use std::path::{Path, PathBuf};

const ROWS: &str = "1000:2500, 3000:3200";
const COLS: &str = "0:30";

/// A 4000 x 40 blobs file stored in gzip chunks of 500 rows.
fn chunked_input(dir: &Path) -> PathBuf {
    let pipeline = engine_tests::root().join("pipelines/blobs.yaml");
    let out = format!("out={}", dir.join("gen").display());
    engine_ok(&[
        "run",
        pipeline.to_str().unwrap(),
        "--param",
        "n_obs=4000",
        "--param",
        "n_vars=40",
        "--param",
        &out,
    ]);
    let chunked = dir.join("chunked.h5ad");
    engine_ok(&[
        "convert",
        dir.join("gen/blobs.h5ad").to_str().unwrap(),
        chunked.to_str().unwrap(),
        "--chunks",
        "500,40",
        "--compression",
        "gzip",
        "--overwrite",
    ]);
    chunked
}

/// read -> select (`rows`: the step's obs line) -> scale -> pca -> plot, with or without an
/// output, written to `dir/name`.
fn pipeline(dir: &Path, name: &str, rows: &str, with_output: bool) -> PathBuf {
    let mut text = format!(
        "version: 1
params:
  input: {{type: path}}
  out: {{type: path}}
steps:
  - id: data
    op: read
    path: ${{input}}
  - id: subset
    op: select
    input: data
    {rows}
    var: \"{COLS}\"
  - id: scaled
    op: scale
    input: subset
    max_value: 10
  - id: pcs
    op: pca
    input: scaled
    n_comps: 10
  - id: fig
    op: plot
    input: pcs
    color: blob
    path: ${{out}}/fig.png
"
    );
    if with_output {
        text += "outputs:\n  - step: pcs\n    path: ${out}/sub.h5ad\n";
    }
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run(pipeline: &Path, input: &Path, out: &Path, extra: &[&str]) {
    let (i, o) = (
        format!("input={}", input.display()),
        format!("out={}", out.display()),
    );
    let mut args = vec![
        "run",
        pipeline.to_str().unwrap(),
        "--param",
        &i,
        "--param",
        &o,
    ];
    args.extend_from_slice(extra);
    engine_ok(&args);
}

fn explain(pipeline: &Path, input: &Path, extra: &[&str]) -> String {
    let i = format!("input={}", input.display());
    let mut args = vec![
        "explain",
        pipeline.to_str().unwrap(),
        "--param",
        &i,
        "--param",
        "out=o",
    ];
    args.extend_from_slice(extra);
    String::from_utf8(engine_ok(&args).stdout).unwrap()
}

#[test]
fn views_match_anndata_with_every_rule_on_or_off() {
    let dir = scratch("select-run");
    let input = chunked_input(&dir);
    let p = pipeline(&dir, "sub.yaml", &format!("obs: \"{ROWS}\""), true);
    let on = dir.join("on");
    run(&p, &input, &on, &[]);
    let out = run_python(
        "check_select_run.py",
        &[
            &input,
            &on.join("sub.h5ad"),
            Path::new(ROWS),
            Path::new(COLS),
            Path::new("10"),
            Path::new("10"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["shape"], serde_json::json!([1700, 30]), "{r}");
    assert_eq!(r["shape"], r["ref_shape"], "{r}");
    assert!(r["x_max_abs_err"].as_f64().unwrap() < 1e-5, "{r}");
    assert!(r["variance_ratio_rel_err"].as_f64().unwrap() < 1e-4, "{r}");
    assert_eq!(r["blob_equal"], true, "{r}");

    for rule in [
        "push_down_selection",
        "prune_elements",
        "merge_passes",
        "align_chunks",
    ] {
        let off = dir.join(format!("off-{rule}"));
        run(&p, &input, &off, &["--disable-rule", rule]);
        for el in ["X", "obsm/X_pca", "varm/PCs"] {
            let (a, b) = (
                read_matrix(&on.join("sub.h5ad"), el),
                read_matrix(&off.join("sub.h5ad"), el),
            );
            assert_eq!(a.len(), b.len(), "{rule}: {el}");
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-6, "{rule} off: {el} differs by {worst}");
        }
        assert_eq!(
            std::fs::read(on.join("fig.png")).unwrap().len() > 1000,
            std::fs::read(off.join("fig.png")).unwrap().len() > 1000
        );
    }
}

#[test]
fn explain_shows_pushed_selection_and_skipped_chunks() {
    let dir = scratch("select-explain");
    let input = chunked_input(&dir);
    let p = pipeline(&dir, "sub.yaml", &format!("obs: \"{ROWS}\""), true);
    let on = explain(&p, &input, &[]);
    // Rows 1000..2500 and 3000..3200 of 500-row chunks: chunks 2, 3, 4 and 6 of 8.
    assert!(
        on.contains(
            "rows=1000:2500, 3000:3200 (1700 of 4000 in 2 runs), cols=0:30 (30 of 40 in 1 run)"
        ),
        "{on}"
    );
    assert!(on.contains("4 of 8 chunks (4 skipped)"), "{on}");
    assert!(on.contains("blocks aligned to 8 chunk boundaries"), "{on}");
    let off = explain(&p, &input, &["--disable-rule", "push_down_selection"]);
    assert!(
        off.contains("subset = Select(rows=1000:2500, 3000:3200, cols=0:30) <- #0"),
        "{off}"
    );
    assert!(off.contains("8 of 8 chunks (0 skipped)"), "{off}");
    assert!(
        off.contains("through a view not pushed into the scan"),
        "{off}"
    );

    // With only a plot downstream, the scan reads one obs column.
    let plot_only = pipeline(&dir, "plot_only.yaml", &format!("obs: \"{ROWS}\""), false);
    let e = explain(&plot_only, &input, &[]);
    assert!(e.contains("obs=[blob]"), "{e}");
    let out = dir.join("plot-only");
    run(&plot_only, &input, &out, &[]);
    assert!(std::fs::metadata(out.join("fig.png")).unwrap().len() > 1000);
}

#[test]
fn sql_predicates_select_rows_like_pandas() {
    let dir = scratch("select-where");
    let input = chunked_input(&dir);
    let p = pipeline(
        &dir,
        "where.yaml",
        "where: \"blob IN ('1', '3') AND leiden <> '0'\"",
        true,
    );
    let out = dir.join("out");
    run(&p, &input, &out, &[]);
    let r = run_python(
        "check_select_run.py",
        &[
            &input,
            &out.join("sub.h5ad"),
            Path::new("@blob.isin(['1', '3']) & (leiden != '0')"),
            Path::new(COLS),
            Path::new("10"),
            Path::new("10"),
        ],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let r: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(r["shape"], r["ref_shape"], "{r}");
    assert!(r["shape"][0].as_u64().unwrap() > 100, "{r}");
    assert!(r["x_max_abs_err"].as_f64().unwrap() < 1e-5, "{r}");
    assert!(r["variance_ratio_rel_err"].as_f64().unwrap() < 1e-4, "{r}");
    assert_eq!(r["blob_equal"], true, "{r}");
    // A bad predicate is a usage error naming the step and the place in the predicate.
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("leiden <> '0'", "leidn <> '0'");
    std::fs::write(&p, text).unwrap();
    // `check` plans too (reading the input's metadata), so it finds the mistake as well.
    let i = format!("input={}", input.display());
    for command in ["check", "explain"] {
        let res = engine(&[
            command,
            p.to_str().unwrap(),
            "--param",
            &i,
            "--param",
            "out=o",
        ]);
        assert_eq!(res.status.code(), Some(2), "{command}");
        let e = String::from_utf8_lossy(&res.stderr);
        assert!(
            e.contains("step `subset`: `where`:") && e.contains("leidn"),
            "{command}: {e}"
        );
    }
}
