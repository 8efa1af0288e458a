//! The `engine` binary's user-facing output.

use engine_tests::{engine, fixtures};
use serde_json::Value;

#[test]
fn inspect_json_reports_elements_storage_and_columns() {
    let path = fixtures().join("full_nullable.zarr3");
    let out = engine(&["inspect", path.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "zarr3");
    assert_eq!(
        (v["n_obs"].as_u64(), v["n_vars"].as_u64()),
        (Some(40), Some(12))
    );
    let el = |p: &str| {
        v["elements"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == p)
            .cloned()
            .unwrap_or_else(|| panic!("{p}"))
    };
    let x = el("X");
    assert_eq!(x["encoding"], "csr_matrix");
    assert_eq!(x["dtype"], "float32");
    // 159 = #{(i, j) : (i + j) % 3 == 0} over 40 × 12, see make_fixtures.py.
    assert_eq!(x["nnz"], 159);
    let data = x["storage"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["array"] == "X/data")
        .unwrap();
    assert!(
        data["chunks"].is_array() && data["shards"].is_array(),
        "anndata writes zarr v3 sharded: {data}"
    );
    assert_eq!(el("obs")["shape"], serde_json::json!([40, 11]));
    assert_eq!(el("uns/title")["encoding"], "string");
    let cols = v["obs"]["Ok"].as_array().unwrap();
    let ct = cols.iter().find(|c| c["name"] == "cell_type").unwrap();
    assert_eq!(ct["encoding"], "categorical");
    assert_eq!(ct["head"], serde_json::json!(["T", "B", "NK"]));
    let mi = cols.iter().find(|c| c["name"] == "maybe_int").unwrap();
    assert_eq!(mi["head"], serde_json::json!(["NA", "1", "2"]));
}

#[test]
fn inspect_text_shows_shape_and_storage() {
    let path = fixtures().join("full_plain.h5ad");
    let out = engine(&["inspect", path.to_str().unwrap()]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("n_obs × n_vars = 40 × 12"), "{text}");
    assert!(
        text.contains("layers/counts_csc") && text.contains("csc_matrix"),
        "{text}"
    );
    assert!(text.contains("var: 12 rows, 3 columns"), "{text}");
}

#[test]
fn metrics_count_the_bytes_each_pass_decodes() {
    // A dense 300 x 20 float32 file: projecting onto the components reads X once, so that
    // row shows exactly 300 * 20 * 4 bytes; the in-memory steps read nothing.
    let root = engine_tests::root();
    let dir = engine_tests::scratch("metrics-bytes");
    let input = dir.join("dense.h5ad");
    let make = dir.join("make.yaml");
    std::fs::write(
        &make,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: synthetic, n_obs: 300, n_vars: 20, centers: 3, seed: 1, dtype: float32}}\noutputs:\n  - {{step: data, path: \"{}\"}}\n",
            input.display()
        ),
    )
    .unwrap();
    engine_tests::engine_ok(&["run", make.to_str().unwrap()]);
    let out = engine_tests::engine_ok(&[
        "run",
        root.join("pipelines/blobs_file.yaml").to_str().unwrap(),
        "--param",
        &format!("input={}", input.display()),
        "--param",
        &format!("out={}", dir.display()),
        "--param",
        "n_comps=5",
        "--metrics",
    ]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let bytes = |stage: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(stage))
            .unwrap_or_else(|| panic!("no `{stage}` row in\n{text}"));
        line.split_whitespace()
            .rev()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(bytes("pcs: project"), 300 * 20 * 4, "{text}");
    assert_eq!(bytes("clusters: Leiden"), 0, "{text}");
}

#[test]
fn bad_arguments_exit_with_usage_errors() {
    let path = fixtures().join("full_plain.h5ad");
    let out = engine(&[
        "convert",
        path.to_str().unwrap(),
        "/tmp/x.zarr",
        "--chunks",
        "ten,all",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad chunk size `ten`"));
    let out = engine(&["convert", path.to_str().unwrap(), "/tmp/x.unknown"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"));
}

#[test]
fn every_bundled_pipeline_checks() {
    let dir = engine_tests::root().join("pipelines");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml" || x == "sql") {
            // From the repository root, where the defaults' relative input paths point;
            // `--overwrite` because `./dev.sh demo` leaves its outputs in `out/`.
            let out = std::process::Command::new(engine_tests::engine_bin())
                .current_dir(engine_tests::root())
                .args(["check", p.to_str().unwrap(), "--overwrite"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            n += 1;
        }
    }
    assert!(n >= 1, "pipelines/ holds at least one pipeline");
}

#[test]
fn check_reports_all_problems_with_positions() {
    let dir = engine_tests::scratch("check");
    let p = dir.join("pipeline.yaml");
    std::fs::write(&p, "version: 1\nsteps:\n  - id: a\n    op: synthetic\n    n_obs: lots\n  - id: b\n    op: scale\n    input: c\n").unwrap();
    let out = engine(&["check", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pipeline.yaml:5:12: error: `n_obs` of op `synthetic` must be an integer"),
        "{err}"
    );
    assert!(
        err.contains("pipeline.yaml:8:12: error: no step with id `c`"),
        "{err}"
    );
    assert!(err.contains("2 problems"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn check_plans_and_points_at_the_step_planning_rejects() {
    let dir = engine_tests::scratch("check-plan");
    let p = dir.join("pipeline.yaml");
    // Well formed, but neighbors has no PCA to build on.
    std::fs::write(
        &p,
        "version: 1\nsteps:\n  - id: a\n    op: synthetic\n    n_obs: 100\n    n_vars: 5\n  - id: g\n    op: neighbors\n    input: a\n",
    )
    .unwrap();
    let out = engine(&["check", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "pipeline.yaml:7:5: error: step `g`: `neighbors` needs obsm['X_pca'] from its input\n  |\n7 |   - id: g"
        ),
        "{err}"
    );
    assert!(err.contains("1 problem in"), "{err}");
}

#[test]
fn bad_views_point_at_the_index_or_name_the_step() {
    let dir = engine_tests::scratch("check-select");
    let p = dir.join("pipeline.yaml");
    std::fs::write(
        &p,
        "version: 1\nsteps:\n  - id: a\n    op: synthetic\n    n_obs: 100\n    n_vars: 5\n  - id: b\n    op: select\n    input: a\n    obs: \"0:10, x\"\n    var: [0, 1, 2]\n",
    )
    .unwrap();
    let out = engine(&["check", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // Column 10 is the opening quote; the bad item `x` starts 6 characters later.
    assert!(
        err.contains("pipeline.yaml:10:17: error: `obs` of op `select`: `x` is not an integer"),
        "{err}"
    );
    assert!(err.contains("1 problem"), "{err}");
    // Syntactically fine but out of range: a usage error naming the step.
    std::fs::write(
        &p,
        "version: 1\nsteps:\n  - id: a\n    op: synthetic\n    n_obs: 100\n    n_vars: 5\n  - id: b\n    op: select\n    input: a\n    obs: \"0:10, 100\"\n",
    )
    .unwrap();
    let out = engine(&["explain", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("step `b`: `obs`: index 100 is out of range for 100 entries"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn explain_output_is_stable() {
    let pipeline = engine_tests::root().join("pipelines/blobs.yaml");
    // The memory estimate counts per-worker scratch: fix the workers.
    let out = std::process::Command::new(engine_tests::engine_bin())
        .args(["explain", pipeline.to_str().unwrap()])
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let snap = engine_tests::root().join("tests/snapshots/blobs_explain.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(snap.parent().unwrap()).unwrap();
        std::fs::write(&snap, &text).unwrap();
    }
    let want = std::fs::read_to_string(&snap).expect("snapshot (UPDATE_SNAPSHOTS=1 writes it)");
    assert_eq!(
        text, want,
        "EXPLAIN changed; review and rerun with UPDATE_SNAPSHOTS=1"
    );
}

#[test]
fn sql_and_yaml_forms_give_identical_plans_and_outputs() {
    let root = engine_tests::root();
    let input = format!("input={}", root.join("pipelines/data/demo.h5ad").display());
    let counts = format!(
        "input={}",
        root.join("pipelines/data/counts_demo.h5ad").display()
    );
    for (yaml, sql, params) in [
        (
            "pipelines/blobs.yaml",
            "pipelines/blobs.sql",
            vec!["n_obs=2000", "n_vars=30"],
        ),
        (
            "pipelines/blobs_file.yaml",
            "pipelines/blobs_file.sql",
            vec!["n_comps=3", input.as_str()],
        ),
        (
            "pipelines/counts.yaml",
            "pipelines/counts.sql",
            vec!["n_obs=1500", "n_vars=1500"],
        ),
        (
            "pipelines/counts_file.yaml",
            "pipelines/counts_file.sql",
            vec!["n_top_genes=500", "n_comps=20", counts.as_str()],
        ),
    ] {
        let explain = |p: &str| {
            let path = root.join(p);
            let mut args = vec!["explain", path.to_str().unwrap()];
            for kv in &params {
                args.extend(["--param", kv]);
            }
            let out = engine(&args);
            assert!(
                out.status.success(),
                "{p}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(explain(yaml), explain(sql), "{yaml} vs {sql}");
        let run = |p: &str, out: &std::path::Path| {
            let path = root.join(p);
            let o = format!("out={}", out.display());
            let mut args = vec!["run", path.to_str().unwrap(), "--param", &o];
            for kv in &params {
                args.extend(["--param", kv]);
            }
            let res = engine(&args);
            assert!(
                res.status.success(),
                "{p}: {}",
                String::from_utf8_lossy(&res.stderr)
            );
        };
        let dir = engine_tests::scratch("forms");
        let (a, b) = (dir.join("yaml"), dir.join("sql"));
        run(yaml, &a);
        run(sql, &b);
        let name = if yaml.contains("file") {
            "result.h5ad"
        } else if yaml.contains("counts") {
            "counts.h5ad"
        } else {
            "blobs.h5ad"
        };
        let mut elements = vec!["X", "obsm/X_pca", "obsp/connectivities"];
        if yaml.contains("counts") {
            elements.push("obsm/X_umap");
        }
        for el in elements {
            assert_eq!(
                engine_tests::read_matrix(&a.join(name), el),
                engine_tests::read_matrix(&b.join(name), el),
                "{yaml}: {el}"
            );
        }
    }
}

#[test]
fn sql_form_errors_point_into_the_file() {
    let dir = engine_tests::scratch("check-sql");
    let p = dir.join("pipeline.sql");
    std::fs::write(&p, "FROM synthetic(n_obs => 100)\n  |> CALL pca(n_comps => 'x') AS pcs;\nWRITE pca TO 'o.h5ad';\n").unwrap();
    let out = engine(&["check", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pipeline.sql:2:26: error: `n_comps` of op `pca` must be an integer"),
        "{err}"
    );
    assert!(
        err.contains("pipeline.sql:3:7: error: no step with id `pca`"),
        "{err}"
    );
    assert!(err.contains("2 problems"), "{err}");
}

#[test]
fn a_bad_predicate_over_computed_columns_fails_cleanly_without_output() {
    let dir = engine_tests::scratch("where-runtime");
    let demo = engine_tests::root().join("pipelines/data/counts_demo.h5ad");
    let p = dir.join("p.sql");
    let out = dir.join("x.h5ad");
    std::fs::write(
        &p,
        format!(
            "FROM '{}' AS data\n  |> CALL calculate_qc_metrics(qc_vars => 'mt=MT-') AS qc\n  |> WHERE pct_count_mt < 5 AS healthy;\nWRITE healthy TO '{}';\n",
            demo.display(),
            out.display()
        ),
    )
    .unwrap();
    let res = engine(&["run", p.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(
        err.contains("step `healthy`") && err.contains("Did you mean 'obs.pct_counts_mt'"),
        "{err}"
    );
    assert!(!out.exists());
}

/// Values that used to be changed silently are refused with the accepted range: compression
/// levels, a chunk of 0, sizes of zero or past 1 PiB; sizes take the usual spellings.
#[test]
fn out_of_range_options_are_refused_not_changed() {
    let path = fixtures().join("full_plain.h5ad");
    let out = engine_tests::scratch("cli-ranges").join("x.zarr");
    let src = path.to_str().unwrap();
    let dst = out.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--compression", "gzip:99"],
            "gzip levels are 0 to 9, not 99",
        ),
        (
            vec!["--compression", "gzip:-1"],
            "gzip levels are 0 to 9, not -1",
        ),
        (
            vec!["--compression", "zstd:999"],
            "zstd levels are -7 to 22, not 999",
        ),
        (
            vec!["--compression", "brotli"],
            "unknown compression `brotli`",
        ),
        (vec!["--chunks", "0,all"], "chunk size 0"),
        (vec!["--block-size", "0"], "is zero"),
        (vec!["--block-size", "64Q"], "bad size `64Q`"),
        (vec!["--block-size", "99999T"], "past 1 PiB"),
    ] {
        let mut a = vec!["convert", src, dst, "--format", "zarr3"];
        a.extend(args.iter());
        let res = engine(&a);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !err.contains("internal error") && !err.contains("Some("),
            "{args:?}: {err}"
        );
        assert!(!out.exists());
    }
    for ok in ["64MiB", "1.5G", "512k", "2GB"] {
        let res = engine(&[
            "convert",
            src,
            dst,
            "--format",
            "zarr3",
            "--block-size",
            ok,
            "--overwrite",
        ]);
        assert!(
            res.status.success(),
            "{ok}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
    }
}

/// Leiden's resolution must be a positive number: NaN gave every cell its own cluster.
#[test]
fn leiden_resolution_must_be_positive() {
    let dir = engine_tests::scratch("cli-resolution");
    for bad in [".nan", "-1", "0"] {
        let yaml = dir.join("p.yaml");
        std::fs::write(
            &yaml,
            format!(
                "version: 1\nsteps:\n  - {{id: data, op: synthetic, n_obs: 200, n_vars: 20}}\n  - {{id: pcs, op: pca, input: data, n_comps: 5}}\n  - {{id: g, op: neighbors, input: pcs}}\n  - {{id: cl, op: leiden, input: g, resolution: {bad}}}\noutputs:\n  - {{step: cl, path: '{}'}}\n",
                dir.join("o.h5ad").display()
            ),
        )
        .unwrap();
        let res = engine(&["check", yaml.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{bad}: {err}");
        assert!(
            err.contains("`resolution` must be a positive number") && err.contains("p.yaml:"),
            "{bad}: {err}"
        );
    }
}

/// `engine ops` lists every operator the pipeline validator knows; `engine ops NAME` shows
/// each parameter with its default, what it writes and an example step that `check` accepts;
/// a misspelt name is a usage error with a suggestion.
#[test]
fn ops_describe_every_operator() {
    let list = engine(&["ops"]);
    assert!(list.status.success());
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    let names: Vec<&str> = list
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.len() >= 16 && names.contains(&"pca"), "{list}");
    for name in names {
        let out = engine(&["ops", name]);
        assert!(out.status.success(), "{name}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with(&format!("{name}: ")), "{text}");
        assert!(text.contains("\nwrites: "), "{text}");
        assert!(text.contains(&format!("op: {name}")), "{text}");
    }
    let pca = engine(&["ops", "pca"]);
    let pca = String::from_utf8_lossy(&pca.stdout);
    for want in [
        "  n_comps       an integer, default None",
        "svd_solver    one of `auto`, `covariance_eigh`, `randomized`, default \"auto\"",
        "writes: obsm['X_pca'], varm['PCs'], uns['pca']",
    ] {
        assert!(pca.contains(want), "{want}: {pca}");
    }
    let bad = engine(&["ops", "pcaa"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("did you mean `pca`?"));
}

/// The subcommands `engine --help` lists (without `help`).
fn subcommands() -> Vec<String> {
    let out = engine(&["--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

/// Splits an example line as a shell would (double quotes group, `\"` is a quote).
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut chars) =
        (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'"') => word.push(chars.next().unwrap()),
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            _ => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Every argument and flag of every subcommand has help text, and every subcommand shows
/// examples that work: they run here on scanpy's pbmc68k_reduced and a 10x file, `run`
/// examples checked with `engine check` (the bundled workflows take minutes).
#[test]
fn every_subcommand_documents_its_flags_and_has_working_examples() {
    let commands = subcommands();
    for c in [
        "run", "explain", "check", "ops", "inspect", "validate", "sql", "convert",
    ] {
        assert!(commands.iter().any(|x| x == c), "{commands:?}");
    }
    let mut examples = Vec::new();
    for c in &commands {
        let out = engine(&[c, "--help"]);
        let text = String::from_utf8(out.stdout).unwrap();
        let mut section = "";
        for line in text.lines() {
            if !line.starts_with(' ') {
                section = line;
                continue;
            }
            // clap appends defaults and choices: they are not help text.
            let item = line.trim_start();
            let item = item.split(" [default:").next().unwrap_or(item);
            let item = item.split(" [possible values:").next().unwrap_or(item);
            if matches!(section, "Arguments:" | "Options:")
                && (item.starts_with('<') || item.starts_with('-'))
            {
                assert!(
                    item.contains("  ") && !item.trim_end().ends_with('>'),
                    "`engine {c}`: no help for `{item}`"
                );
            }
            if section == "Examples:" {
                let words = shell_words(item);
                assert_eq!(words[..2], ["engine", c.as_str()], "{item}");
                examples.push(words[1..].to_vec());
            }
        }
        assert!(
            examples.iter().any(|e| &e[0] == c),
            "`engine {c} --help` has no examples"
        );
    }
    let dir = engine_tests::scratch("cli-examples");
    std::fs::copy(
        fixtures().join("pbmc68k_reduced.h5ad"),
        dir.join("pbmc.h5ad"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("tenx_v3_barnyard.h5"),
        dir.join("filtered_feature_bc_matrix.h5"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        engine_tests::root().join("pipelines"),
        dir.join("pipelines"),
    )
    .unwrap();
    // Conversions first: the other examples read the stores they write.
    examples.sort_by_key(|e| e[0] != "convert");
    for mut args in examples {
        if args[0] == "run" {
            args[0] = "check".into();
            args.retain(|a| a != "--metrics");
        }
        let out = std::process::Command::new(engine_tests::engine_bin())
            .args(&args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "engine {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(dir.join("pbmc_v3.zarr/zarr.json").is_file());
    assert!(dir.join("hvg.csv").is_file());
}

/// The README's operator reference lists every operator `engine ops` knows, and nothing else.
#[test]
fn the_readme_lists_every_operator() {
    let out = engine(&["ops"]);
    let listed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    assert!(listed.len() >= 17, "{listed:?}");
    let readme = std::fs::read_to_string(engine_tests::root().join("README.md")).unwrap();
    let table: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| Operator |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    assert_eq!(table, listed);
}
