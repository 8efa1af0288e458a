//! Bounded inputs: nesting, chain length and sizes that crashed or hung the engine get a
//! diagnostic at the place (exit 2) or run in bounded time and memory; parameters out of range
//! are refused with the reason, and `check` refuses what `run` would only find after compute.

use engine_tests::{engine, engine_code as code, fixtures, scratch};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn check(p: &Path) -> (Option<i32>, String) {
    code(&["check", p.to_str().unwrap()])
}

#[test]
fn deep_yaml_is_a_diagnostic_not_a_crash() {
    let dir = scratch("bounded-deep-yaml");
    let mut text = String::from("version: 1\nsteps:\n");
    for i in 0..2000 {
        text.push_str(&" ".repeat(2 + i));
        text.push_str("x:\n");
    }
    let p = write(&dir, "deep.yaml", &text);
    let (status, err) = check(&p);
    assert_eq!(status, Some(2), "{err}");
    // Depth 1 is the document's mapping, 2 the first `x:` (line 3); the 65th opens on line 66.
    assert!(
        err.contains("deep.yaml:66:66:") && err.contains("nest more than 64 levels"),
        "{err}"
    );
    let flow = format!(
        "version: 1\nsteps: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (status, err) = check(&write(&dir, "flow.yaml", &flow));
    assert_eq!(status, Some(2), "{err}");
}

/// A chain of `n` log1p steps listed last-first (the step sort was recursive).
fn chain(n: usize) -> String {
    let mut text =
        String::from("version: 1\nsteps:\n  - {id: s0, op: synthetic, n_obs: 10, n_vars: 4}\n");
    for i in (1..n).rev() {
        text.push_str(&format!("  - {{id: s{i}, op: log1p, input: s{}}}\n", i - 1));
    }
    text.push_str(&format!(
        "outputs:\n  - {{step: s{}, path: out.h5ad}}\n",
        n - 1
    ));
    text
}

#[test]
fn long_chains_check_in_linear_time_and_memory() {
    let dir = scratch("bounded-chain");
    let p = write(&dir, "chain.yaml", &chain(20_000));
    let t = std::time::Instant::now();
    let (status, err) = check(&p);
    assert_eq!(status, Some(0), "{err}");
    // 20k steps took minutes and gigabytes when every node carried its chain as text.
    assert!(t.elapsed().as_secs() < 60, "{:?}", t.elapsed());
    let out = engine(&["explain", p.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text
        .lines()
        .filter(|l| l.contains("X="))
        .map(str::len)
        .max()
        .unwrap();
    assert!(
        last < 200,
        "an EXPLAIN line grows with the chain: {last} bytes"
    );
    assert!(
        text.contains("X=(19995 more)∘log1p∘log1p∘log1p∘log1p"),
        "{}",
        &text[..500]
    );
}

#[test]
fn deep_sql_is_refused_with_a_message() {
    let terms = vec!["1"; 10_000].join(" + ");
    let (status, err) = code(&[
        "sql",
        &format!("SELECT {terms} AS x FROM obs"),
        "--data",
        fixtures().join("full_plain.h5ad").to_str().unwrap(),
    ]);
    assert_eq!(status, Some(2), "{err}");
    assert!(err.contains("more than 1000 operators"), "{err}");
    // A long but reasonable expression still runs.
    let terms = vec!["1"; 200].join(" + ");
    let (status, err) = code(&[
        "sql",
        &format!("SELECT {terms} AS x FROM obs LIMIT 1"),
        "--data",
        fixtures().join("full_plain.h5ad").to_str().unwrap(),
    ]);
    assert_eq!(status, Some(0), "{err}");
}

fn synthetic_with(dir: &Path, name: &str, source: &str, rest: &str) -> PathBuf {
    write(
        dir,
        name,
        &format!(
            "version: 1\nsteps:\n  - {{id: data, {source}}}\n{rest}outputs:\n  - {{step: data, path: out.h5ad}}\n"
        ),
    )
}

#[test]
fn huge_shapes_are_refused_before_allocating() {
    let dir = scratch("bounded-shapes");
    for (name, src) in [
        ("obs.yaml", "op: synthetic, n_obs: 1000000000000000000"),
        ("vars.yaml", "op: synthetic, n_vars: 1000000000000000"),
        (
            "counts.yaml",
            "op: synthetic_counts, n_obs: 1000000000000, n_vars: 1000000000000",
        ),
    ] {
        let p = synthetic_with(&dir, name, src, "");
        let (status, err) = check(&p);
        assert_eq!(status, Some(2), "{name}: {err}");
        assert!(err.contains("at most"), "{name}: {err}");
    }
}

#[test]
fn out_of_range_parameters_name_the_range() {
    let dir = scratch("bounded-params");
    let base = "op: synthetic, n_obs: 200, n_vars: 20";
    let cases = [
        (
            "pca.yaml",
            "  - {id: p, op: pca, input: data, n_comps: 100000}\n",
            "`n_comps` must be at most min(n_obs, n_vars) - 1 = 19",
        ),
        (
            "nn.yaml",
            "  - {id: p, op: pca, input: data, n_comps: 5}\n  - {id: g, op: neighbors, input: p, n_neighbors: 100000}\n",
            "`n_neighbors` must be at most the number of cells, 200",
        ),
        (
            "npcs.yaml",
            "  - {id: p, op: pca, input: data, n_comps: 5}\n  - {id: g, op: neighbors, input: p, n_pcs: 9}\n",
            "`n_pcs` must be at most the 5 columns of obsm['X_pca']",
        ),
        (
            "dup.yaml",
            "  - {id: p, op: pca, input: data, n_comps: 5, n_comps: 6}\n",
            "dup.yaml:4:47: error: invalid YAML: duplicated key",
        ),
        (
            "rawref.yaml",
            "  - {id: p, op: pca, input: data, n_comps: 5}\n  - {id: m, op: rank_genes_groups, input: data, groupby: blob, raw: p}\n",
            "rawref.yaml:5:69: error: step `p` is not `data`, a step before it or a `read` of the file one reads",
        ),
        (
            "plot.yaml",
            "  - {id: p, op: pca, input: data, n_comps: 5}\n  - {id: pl, op: plot, input: p, path: pcs.jpg}\n",
            "`path` must end in .png, .svg or .pdf",
        ),
    ];
    for (name, steps, want) in cases {
        let p = synthetic_with(&dir, name, base, steps);
        let (status, err) = check(&p);
        assert_eq!(status, Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
    // Left out, n_comps follows scanpy: min(n_obs, n_vars) - 1 for small data.
    let p = synthetic_with(
        &dir,
        "auto.yaml",
        base,
        "  - {id: p, op: pca, input: data}\n",
    );
    let out = engine(&["explain", p.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Pca(n_comps=19"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn sql_form_duplicate_arguments_are_refused() {
    let dir = scratch("bounded-sqlform-dup");
    let p = write(
        &dir,
        "p.sql",
        "FROM synthetic(n_obs => 100, n_obs => 200) AS data;\nWRITE data TO 'o.h5ad';\n",
    );
    let (status, err) = check(&p);
    assert_eq!(status, Some(2), "{err}");
    assert!(
        err.contains("p.sql:1:30") && err.contains("given twice"),
        "{err}"
    );
}

/// What `run` would refuse after all the compute, `check` refuses first.
#[test]
fn check_refuses_what_run_would() {
    let dir = scratch("bounded-check-run");
    let qc = "  - {id: qc, op: calculate_qc_metrics, input: data}\n";
    let cases = [
        (
            "where.yaml",
            format!("{qc}  - {{id: w, op: select, input: qc, where: 'n_genez > 3'}}\n"),
            "n_genez",
        ),
        (
            "where_type.yaml",
            format!(
                "{qc}  - {{id: w, op: select, input: qc, where: \"total_counts LIKE 'a%'\"}}\n"
            ),
            "LIKE",
        ),
    ];
    for (name, steps, want) in cases {
        let p = synthetic_with(
            &dir,
            name,
            "op: synthetic_counts, n_obs: 100, n_vars: 600",
            &steps,
        );
        let (status, err) = check(&p);
        assert_eq!(status, Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
    // A good run-time predicate still checks and runs.
    let p = synthetic_with(
        &dir,
        "good.yaml",
        "op: synthetic_counts, n_obs: 100, n_vars: 600",
        &format!(
            "{qc}  - {{id: w, op: select, input: qc, where: 'n_genes_by_counts > 3 AND batch = ''batch_0'''}}\n"
        ),
    );
    let (status, err) = check(&p);
    assert_eq!(status, Some(0), "{err}");
    for (name, output, want) in [
        (
            "zstd.yaml",
            "{step: data, path: o.h5ad, compression: 'zstd:15'}",
            "levels are 0 to 9",
        ),
        (
            "chunks.yaml",
            "{step: data, path: o.zarr, chunks: [10, 10, 10]}",
            "rows and columns",
        ),
    ] {
        let p = write(
            &dir,
            name,
            &format!(
                "version: 1\nsteps:\n  - {{id: data, op: synthetic, n_obs: 20, n_vars: 5}}\noutputs:\n  - {output}\n"
            ),
        );
        let (status, err) = check(&p);
        assert_eq!(status, Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
    }
}

/// The memory limit bounds the whole run. A limit too small is refused before anything runs,
/// by `check` and `run` alike, with the size the run needs; one MiB less than that size is
/// still refused, and at exactly that size the counts workflow runs and peaks within the
/// limit plus the documented runtime overhead (the tightest case the estimate allows).
#[test]
fn memory_limit_bounds_the_whole_run() {
    let dir = scratch("bounded-memory");
    let pipeline = engine_tests::root().join("pipelines/counts.yaml");
    let p = pipeline.to_str().unwrap();
    let out = format!("out={}", dir.display());
    let params = [
        "--param",
        "n_obs=10000",
        "--param",
        "n_vars=2000",
        "--param",
        &out,
        "--overwrite",
    ];
    // `engine CMD counts.yaml --memory-limit LIMIT params…`
    let with = |cmd: &str, limit: &str| -> Vec<String> {
        [cmd, p, "--memory-limit", limit]
            .into_iter()
            .chain(params)
            .map(String::from)
            .collect()
    };
    let code = |args: Vec<String>| code(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let (status, err) = code(with("check", "16M"));
    assert_eq!(status, Some(2), "{err}");
    let needs = needs_from(&err);
    let (status, run_err) = code(with("run", "16M"));
    assert_eq!(
        status,
        Some(2),
        "run did not refuse what check refused: {run_err}"
    );
    assert!(
        run_err.contains(&format!("at least {needs} MiB")),
        "{run_err}"
    );
    let (status, err) = code(with("check", &format!("{}M", needs - 1)));
    assert_eq!(status, Some(2), "{}M: {err}", needs - 1);
    peak_within(&with("run", &format!("{needs}M")), needs);
    for bad in ["0", "1.5Q", "-1M"] {
        let (status, err) = code(with("check", bad));
        assert_eq!(status, Some(2), "{bad}: {err}");
    }
}

/// The MiB a refusal says the run needs ("raise it to at least N MiB").
fn needs_from(err: &str) -> usize {
    err.split("raise it to at least ")
        .nth(1)
        .and_then(|r| r.split(" MiB").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no size in: {err}"))
}

/// Runs `args` (an `engine run … --memory-limit {limit}M`) with `--metrics` and checks its
/// peak RSS is within the limit plus the documented runtime overhead.
fn peak_within(args: &[String], limit: usize) {
    let mut args = args.to_vec();
    args.push("--metrics".into());
    let run = engine(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        run.status.success(),
        "{limit}M: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    let peak: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("peak memory: "))
        .and_then(|v| v.trim_end_matches(" MiB").parse().ok())
        .expect("--metrics prints the peak");
    let overhead = engine_exec::memory::RUNTIME_OVERHEAD >> 20;
    assert!(
        peak <= (limit + overhead) as f64,
        "{limit}M: peak {peak} MiB is over the limit plus {overhead} MiB"
    );
}

/// The 100,000-cell counts workflow (20,000 genes: QC, filters, normalisation, HVG, scale,
/// PCA, NN-descent kNN, Leiden, UMAP, three plots, two outputs) at the tightest limit `check`
/// accepts and at the default: each run's peak RSS within its limit plus the overhead. The
/// second output stores the sparse log-normalised X (`x: logged`) rather than 7.7 GB of dense
/// scaled values, so the test writes about 1 GB.
#[test]
fn memory_limit_bounds_the_100k_workflow() {
    let dir = scratch("bounded-memory-100k");
    let pipeline = engine_tests::root().join("pipelines/counts.yaml");
    let out = format!("out={}", dir.display());
    let with = |cmd: &str, limit: &str| -> Vec<String> {
        [
            cmd,
            pipeline.to_str().unwrap(),
            "--memory-limit",
            limit,
            "--param",
            "n_obs=100000",
            "--param",
            "x=logged",
            "--param",
            &out,
            "--overwrite",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    };
    let (status, err) = code(
        &with("check", "16M")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(status, Some(2), "{err}");
    let needs = needs_from(&err);
    for limit in [needs, 256] {
        peak_within(&with("run", &format!("{limit}M")), limit);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
