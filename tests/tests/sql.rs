//! `engine sql` against pandas on the same files: group-bys, NULLs from nullable encodings,
//! gene expression, several datasets, output formats, errors, and column pruning (a damaged
//! column is only noticed by queries that read it).

use engine_tests::{engine, engine_ok, fixtures, run_python, scratch};
use serde_json::Value;
use std::path::Path;

fn pandas(path: &Path, expr: &str) -> Value {
    let out = run_python("pandas_eval.py", &[path, Path::new(expr)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs a query into a JSON-lines file and returns its rows.
fn rows(args: &[&str], name: &str) -> Vec<serde_json::Map<String, Value>> {
    // One directory per query: tests run in parallel and `scratch` empties its directory.
    let out = scratch(&format!("sql-{name}")).join("result.json");
    let mut a = vec!["sql"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--output", out.to_str().unwrap(), "--overwrite"]);
    engine_ok(&a);
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap()
                .as_object()
                .unwrap()
                .clone()
        })
        .collect()
}

fn data(name: &str) -> String {
    fixtures().join(name).to_str().unwrap().to_string()
}

#[test]
fn group_by_over_categoricals_matches_pandas() {
    for file in [
        "full_nullable.h5ad",
        "full_plain.zarr2",
        "full_nullable.zarr3",
    ] {
        let path = data(file);
        let got = rows(
            &[
                "SELECT cell_type, count(*) AS n FROM obs GROUP BY cell_type",
                "--data",
                &path,
            ],
            &format!("groups-{file}"),
        );
        let got: serde_json::Map<String, Value> = got
            .iter()
            .map(|r| {
                let k = r
                    .get("cell_type")
                    .and_then(|v| v.as_str())
                    .unwrap_or("None");
                (k.to_string(), r["n"].clone())
            })
            .collect();
        let want = pandas(
            Path::new(&path),
            "{('None' if pd.isna(k) else k): int(v) for k, v in a.obs.groupby('cell_type', observed=True, dropna=False).size().items()}",
        );
        assert_eq!(Value::Object(got), want, "{file}");
    }
}

#[test]
fn nullable_columns_are_sql_nulls_and_filters_apply() {
    let path = data("full_nullable.h5ad");
    let got = rows(
        &[
            "SELECT count(maybe_int) AS c, sum(maybe_int) AS s, count(*) AS n, count(note) AS notes \
             FROM obs WHERE flag AND n_genes > 20 AND maybe_bool IS NOT NULL",
            "--data",
            &path,
        ],
        "nulls",
    );
    let want = pandas(
        Path::new(&path),
        "(lambda o: {'c': int(o.maybe_int.count()), 's': int(o.maybe_int.sum()), 'n': len(o), 'notes': int(o.note.count())})(a.obs[a.obs.flag & (a.obs.n_genes > 20) & a.obs.maybe_bool.notna()])",
    );
    assert_eq!(Value::Object(got[0].clone()), want);
}

#[test]
fn gene_expression_per_group_matches_numpy() {
    let path = data("full_nullable.h5ad");
    let got = rows(
        &[
            "SELECT cell_type, avg(gene('GENE3')) AS m, max(gene('GENE7')) AS x FROM obs \
             WHERE cell_type IS NOT NULL GROUP BY cell_type ORDER BY cell_type",
            "--data",
            &path,
        ],
        "genes",
    );
    let want = pandas(
        Path::new(&path),
        "[{'cell_type': k, 'm': float(np.asarray(a[g.index, 'GENE3'].X.todense()).mean()), 'x': float(np.asarray(a[g.index, 'GENE7'].X.todense()).max())} for k, g in sorted(a.obs.groupby('cell_type', observed=True))]",
    );
    let want = want.as_array().unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["cell_type"], w["cell_type"]);
        for k in ["m", "x"] {
            let (a, b) = (g[k].as_f64().unwrap(), w[k].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{k}: {a} vs {b}");
        }
    }
}

#[test]
fn several_datasets_are_schemas() {
    let (a, b) = (data("full_nullable.h5ad"), data("full_plain.zarr2"));
    let da = format!("first={a}");
    let db = format!("second={b}");
    let got = rows(
        &[
            "SELECT count(*) AS n, sum(CASE WHEN f.donor = s.donor THEN 1 ELSE 0 END) AS same \
             FROM first.obs f JOIN second.obs s ON f._index = s._index",
            "--data",
            &da,
            "--data",
            &db,
        ],
        "join",
    );
    let n = pandas(Path::new(&a), "a.n_obs");
    assert_eq!(got[0]["n"], n);
    assert_eq!(got[0]["same"], n);
}

#[test]
fn csv_and_parquet_outputs_open_in_pandas() {
    let path = data("full_nullable.h5ad");
    let dir = scratch("sql-formats");
    let sql = "SELECT _index, n_genes, frac, donor FROM obs WHERE n_genes < 50 ORDER BY n_genes";
    let want = pandas(
        Path::new(&path),
        "[{'_index': i, 'n_genes': int(r.n_genes), 'frac': float(r.frac), 'donor': r.donor} for i, r in a.obs[a.obs.n_genes < 50].sort_values('n_genes').iterrows()]",
    );
    for ext in ["csv", "parquet"] {
        let out = dir.join(format!("r.{ext}"));
        engine_ok(&[
            "sql",
            sql,
            "--data",
            &path,
            "--output",
            out.to_str().unwrap(),
            "--overwrite",
        ]);
        let t = run_python("pandas_eval.py", &[Path::new("--table"), &out]);
        assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
        let got: Value = serde_json::from_slice(&t.stdout).unwrap();
        assert_eq!(
            got.as_array().unwrap().len(),
            want.as_array().unwrap().len(),
            "{ext}"
        );
        for (g, w) in got.as_array().unwrap().iter().zip(want.as_array().unwrap()) {
            assert_eq!(g["_index"], w["_index"], "{ext}");
            assert_eq!(g["n_genes"], w["n_genes"], "{ext}");
            assert_eq!(g["donor"], w["donor"], "{ext}");
            assert!((g["frac"].as_f64().unwrap() - w["frac"].as_f64().unwrap()).abs() < 1e-6);
        }
        // An existing output is kept unless --overwrite is given.
        let res = engine(&[
            "sql",
            sql,
            "--data",
            &path,
            "--output",
            out.to_str().unwrap(),
        ]);
        assert_eq!(
            res.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
    }
    // The table printed to the terminal.
    let res = engine(&[
        "sql",
        "SELECT donor, count(*) AS n FROM obs GROUP BY donor ORDER BY donor LIMIT 2",
        "--data",
        &path,
    ]);
    let text = String::from_utf8(res.stdout).unwrap();
    assert!(
        text.contains("| donor   | n  |") || text.contains("| donor"),
        "{text}"
    );
    assert!(text.contains("donor_0"), "{text}");
}

#[test]
fn mistakes_are_usage_errors_pointing_into_the_query() {
    let path = data("full_nullable.h5ad");
    let err = |sql: &str| {
        let res = engine(&["sql", sql, "--data", &path]);
        assert_eq!(
            res.status.code(),
            Some(2),
            "{sql}: {}",
            String::from_utf8_lossy(&res.stderr)
        );
        let e = String::from_utf8_lossy(&res.stderr).to_string();
        assert!(!e.contains("panicked"), "{e}");
        e
    };
    let e = err("SELECT cell_type FROM obs WHERE");
    assert!(
        e.contains("<query>:1:32: error: Expected: an expression, found: EOF"),
        "{e}"
    );
    let e = err("SELECT cell_typ FROM obs");
    assert!(
        e.contains("<query>:1:8: error:") && e.contains("cell_typ"),
        "{e}"
    );
    assert!(e.contains("cell_type"), "valid names are listed: {e}");
    let e = err("SELECT avg(gene('GENE99x')) FROM obs");
    assert!(e.contains("no such gene"), "{e}");
    let e = err("SELECT gene(n_genes) FROM obs");
    assert!(e.contains("gene() takes a gene name"), "{e}");
    let res = engine(&["sql", "SELECT 1", "--data", "/nonexistent.h5ad"]);
    assert_ne!(res.status.code(), Some(0));
}

#[test]
fn only_the_columns_a_query_uses_are_read() {
    // A copy whose obs/cell_type codes are out of range: only queries reading it notice.
    let dir = scratch("sql-prune");
    let listing = run_python(
        "make_damaged.py",
        &[
            &fixtures().join("full_nullable.h5ad"),
            &fixtures().join("full_plain.zarr2"),
            &fixtures().join("full_plain.zarr3"),
            &dir,
        ],
    );
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    let bad = dir.join("codes_out_of_range.h5ad");
    engine_ok(&[
        "sql",
        "SELECT count(*) AS n, max(n_genes) AS m FROM obs WHERE flag",
        "--data",
        bad.to_str().unwrap(),
    ]);
    let res = engine(&[
        "sql",
        "SELECT cell_type FROM obs",
        "--data",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(res.status.code(), Some(1));
    let e = String::from_utf8_lossy(&res.stderr);
    assert!(
        e.contains("codes_out_of_range.h5ad") && e.contains("/obs/cell_type"),
        "{e}"
    );
}

/// `engine sql` runs queries only: COPY, CREATE EXTERNAL TABLE, DROP, SET and INSERT are
/// refused as usage errors and the queried file is untouched.
#[test]
fn sql_is_read_only() {
    let dir = scratch("sql-read-only");
    let victim = dir.join("victim.h5ad");
    std::fs::copy(fixtures().join("full_plain.h5ad"), &victim).unwrap();
    let before = std::fs::read(&victim).unwrap();
    let target = victim.display().to_string();
    for q in [
        format!("COPY (SELECT 'x') TO '{target}' STORED AS CSV"),
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'".to_string(),
        "DROP TABLE obs".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "INSERT INTO obs SELECT * FROM obs".to_string(),
    ] {
        let res = engine(&["sql", &q, "--data", &target]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{q}: {err}");
        assert!(!err.contains("panicked"), "{q}: {err}");
        assert_eq!(
            std::fs::read(&victim).unwrap(),
            before,
            "{q} changed the file"
        );
    }
    let res = engine(&["sql", "SELECT count(*) AS n FROM obs", "--data", &target]);
    assert!(res.status.success());
}

/// A `where` predicate is one expression: text that would change the query around it is
/// refused, naming the predicate.
#[test]
fn predicates_cannot_change_the_query() {
    let dir = scratch("sql-predicate");
    let out = dir.join("o.h5ad");
    for (i, pred) in [
        "true) IS TRUE AS keep FROM obs UNION ALL SELECT (true",
        "n_genes > 3; DROP TABLE obs",
    ]
    .iter()
    .enumerate()
    {
        let yaml = dir.join(format!("p{i}.yaml"));
        std::fs::write(
            &yaml,
            format!(
                "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\n  - {{id: s, op: select, input: data, where: \"{pred}\"}}\noutputs:\n  - {{step: s, path: '{}'}}\n",
                fixtures().join("full_plain.h5ad").display(),
                out.display()
            ),
        )
        .unwrap();
        let res = engine(&["check", yaml.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{pred}: {err}");
        assert!(
            err.contains("one expression") || err.contains("predicate"),
            "{pred}: {err}"
        );
    }
}
