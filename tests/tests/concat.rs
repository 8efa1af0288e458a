//! Many files as one (issue 19): `concat` equals `anndata.concat` of the same files with the
//! same arguments, across h5ad and zarr, sparse and dense X, genes in different orders and
//! categoricals with different categories; views and steps over a concatenation equal those
//! over anndata's; mistakes are refused by `check` at the step.

use engine_tests::{concat_parts as parts, engine_code, engine_ok, python_ok, scratch};

/// The Python that compares an output of ours with `anndata.concat(parts, **kw)`, then `f`.
const COMPARE: &str = "import numpy as np, pandas as pd, anndata as ad, scipy.sparse as sp\n\
    def parts(d):\n\
    \x20   return [ad.read_h5ad(d + '/a.h5ad'), ad.read_zarr(d + '/b.zarr'), ad.read_h5ad(d + '/c.h5ad')]\n\
    def dense(x):\n\
    \x20   return x.toarray() if sp.issparse(x) else np.asarray(x)\n\
    def same(got, want, what):\n\
    \x20   assert list(got.obs_names) == list(want.obs_names), what\n\
    \x20   assert list(got.var_names) == list(want.var_names), (what, list(got.var_names), list(want.var_names))\n\
    \x20   assert sp.issparse(got.X) == sp.issparse(want.X) and got.X.dtype == want.X.dtype, (what, type(got.X), got.X.dtype)\n\
    \x20   np.testing.assert_allclose(dense(got.X), dense(want.X), rtol=1e-6, err_msg=what)\n\
    \x20   assert list(got.obs.columns) == list(want.obs.columns), (what, list(got.obs.columns), list(want.obs.columns))\n\
    \x20   for c in want.obs:\n\
    \x20       g, w = got.obs[c], want.obs[c]\n\
    \x20       if isinstance(w.dtype, pd.CategoricalDtype):\n\
    \x20           assert list(g.cat.categories) == list(w.cat.categories), (what, c, list(g.cat.categories), list(w.cat.categories))\n\
    \x20       assert g.dtype.kind == w.dtype.kind or str(g.dtype) == str(w.dtype), (what, c, g.dtype, w.dtype)\n\
    \x20   pd.testing.assert_frame_equal(got.obs, want.obs, check_dtype=False, check_categorical=False, obj=what)\n\
    \x20   pd.testing.assert_frame_equal(got.var, want.var, check_dtype=False, obj=what)\n\
    \x20   assert sorted(got.obsm) == sorted(want.obsm), what\n\
    \x20   for k in want.obsm:\n\
    \x20       np.testing.assert_array_equal(got.obsm[k], want.obsm[k], err_msg=what)\n\
    \x20   uns = {k: v for k, v in got.uns.items() if k != 'engine'}\n\
    \x20   assert repr(uns) == repr(dict(want.uns)), (what, uns, dict(want.uns))\n";

/// Each argument combination anndata documents, one output each, against `anndata.concat`.
#[test]
fn concat_equals_anndata_concat() {
    let dir = scratch("concat-anndata");
    parts(&dir);
    let cases: &[(&str, &str)] = &[
        ("join: inner", "dict(join='inner')"),
        (
            "join: outer, label: batch, keys: [a, b, c], index_unique: '-'",
            "dict(join='outer', label='batch', keys=['a', 'b', 'c'], index_unique='-')",
        ),
        (
            "join: inner, merge: same",
            "dict(join='inner', merge='same')",
        ),
        (
            "join: outer, merge: first",
            "dict(join='outer', merge='first')",
        ),
        (
            "join: outer, merge: unique",
            "dict(join='outer', merge='unique')",
        ),
        (
            "join: inner, merge: only, uns_merge: unique",
            "dict(join='inner', merge='only', uns_merge='unique')",
        ),
        (
            "join: outer, fill_value: 7, uns_merge: first, label: src",
            "dict(join='outer', fill_value=7, uns_merge='first', label='src')",
        ),
        (
            "join: outer, uns_merge: same",
            "dict(join='outer', uns_merge='same')",
        ),
    ];
    let mut steps = format!(
        "version: 1\nsteps:\n  - {{id: a, op: read, path: '{0}/a.h5ad'}}\n  - {{id: b, op: read, path: '{0}/b.zarr'}}\n  - {{id: c, op: read, path: '{0}/c.h5ad'}}\n",
        dir.display()
    );
    let mut outputs = String::from("outputs:\n");
    let mut check = String::from(COMPARE);
    for (i, (args, kw)) in cases.iter().enumerate() {
        steps += &format!("  - {{id: c{i}, op: concat, inputs: [a, b, c], {args}}}\n");
        // Every other output as zarr: the concatenation is written either way.
        let ext = if i % 2 == 0 { "h5ad" } else { "zarr" };
        outputs += &format!("  - {{step: c{i}, path: '{}/c{i}.{ext}'}}\n", dir.display());
        check += &format!(
            "same(ad.read_{}('{}/c{i}.{ext}'), ad.concat(parts('{}'), **{kw}), {args:?})\n",
            if ext == "h5ad" { "h5ad" } else { "zarr" },
            dir.display(),
            dir.display()
        );
    }
    let p = dir.join("concat.yaml");
    std::fs::write(&p, steps + &outputs).unwrap();
    engine_ok(&["run", p.to_str().unwrap()]);
    python_ok(&check);
}

/// A view of a concatenation (a slice, an obs predicate over a column only one file has
/// filled and a gene predicate) and steps over it (normalize_total, log1p) equal the same on
/// anndata's concatenation; EXPLAIN shows the files the scan reads.
#[test]
fn views_and_steps_over_a_concatenation_equal_anndatas() {
    let dir = scratch("concat-views");
    parts(&dir);
    let p = dir.join("views.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nsteps:\n\
             \x20 - {{id: a, op: read, path: '{0}/a.h5ad'}}\n\
             \x20 - {{id: b, op: read, path: '{0}/b.zarr'}}\n\
             \x20 - {{id: c, op: read, path: '{0}/c.h5ad'}}\n\
             \x20 - {{id: all, op: concat, inputs: [a, b, c], join: outer, label: batch}}\n\
             \x20 - {{id: v, op: select, input: all, obs: '5:', where: \"cell_type = 'T' AND n_counts > 2\", var_where: \"_index <> 'B'\"}}\n\
             \x20 - {{id: norm, op: normalize_total, input: v, target_sum: 100}}\n\
             \x20 - {{id: logged, op: log1p, input: norm}}\n\
             outputs:\n\
             \x20 - {{step: v, path: '{0}/v.h5ad'}}\n\
             \x20 - {{step: logged, path: '{0}/logged.h5ad'}}\n",
            dir.display()
        ),
    )
    .unwrap();
    let explain = String::from_utf8(engine_ok(&["explain", p.to_str().unwrap()]).stdout).unwrap();
    assert!(
        explain.contains("Scan(concat(") && explain.contains("b.zarr (csr float32)"),
        "{explain}"
    );
    engine_ok(&["run", p.to_str().unwrap()]);
    python_ok(&format!(
        "{COMPARE}\
         import scanpy as sc\n\
         d = '{0}'\n\
         w = ad.concat(parts(d), join='outer', label='batch')[5:]\n\
         w = w[(w.obs.cell_type == 'T') & (w.obs.n_counts > 2), w.var_names != 'B'].copy()\n\
         w.uns = {{}}\n\
         same(ad.read_h5ad(d + '/v.h5ad'), w, 'view')\n\
         sc.pp.normalize_total(w, target_sum=100)\n\
         sc.pp.log1p(w)\n\
         got = ad.read_h5ad(d + '/logged.h5ad')\n\
         np.testing.assert_allclose(dense(got.X), dense(w.X), rtol=1e-5)\n",
        dir.display()
    ));
}

/// What `check` refuses at the step, before any data is read.
#[test]
fn check_refuses_what_concat_cannot_do() {
    let dir = scratch("concat-check");
    parts(&dir);
    for (step, want) in [
        (
            "{id: all, op: concat, inputs: [a, b], keys: [x]}",
            "`keys` names 1 parts, and concat has 2 inputs",
        ),
        (
            "{id: all, op: concat, inputs: [a, b], fill_value: 1}",
            "with `join: inner` there are none",
        ),
        (
            "{id: all, op: concat, inputs: [a, b], axis: var}",
            "`axis: var`",
        ),
        (
            "{id: all, op: concat, inputs: [a, l]}",
            "input `l` is a Log1p step",
        ),
        ("{id: all, op: concat, inputs: [a]}", "two or more"),
        (
            "{id: all, op: concat, input: a, inputs: [a, b]}",
            "give `input` or `inputs`, not both",
        ),
    ] {
        let p = dir.join("bad.yaml");
        std::fs::write(
            &p,
            format!(
                "version: 1\nsteps:\n  - {{id: a, op: read, path: '{0}/a.h5ad'}}\n  - {{id: b, op: read, path: '{0}/b.zarr'}}\n  - {{id: l, op: log1p, input: a}}\n  - {step}\noutputs:\n  - {{step: all, path: '{0}/o.h5ad'}}\n",
                dir.display()
            ),
        )
        .unwrap();
        let (code, err) = engine_code(&["check", p.to_str().unwrap()]);
        assert_eq!(code, Some(2), "{step}: {err}");
        assert!(
            err.contains(want) && err.contains("bad.yaml:6:"),
            "{step}: {err}"
        );
    }
}

/// `engine concat IN... OUT` and the SQL-like form's `FROM 'a', 'b' CONCAT (…)` give what
/// `anndata.concat` gives; EXPLAIN lists what each file's read costs.
#[test]
fn the_cli_and_the_sql_form_concatenate_as_anndata() {
    let dir = scratch("concat-cli");
    parts(&dir);
    let d = dir.display();
    engine_ok(&[
        "concat",
        &format!("{d}/a.h5ad"),
        &format!("{d}/b.zarr"),
        &format!("{d}/c.h5ad"),
        &format!("{d}/cli.zarr"),
        "--join",
        "outer",
        "--label",
        "batch",
        "--keys",
        "a,b,c",
        "--index-unique",
        "-",
    ]);
    let sql = dir.join("concat.sql");
    std::fs::write(
        &sql,
        format!(
            "FROM '{d}/a.h5ad', '{d}/b.zarr', '{d}/c.h5ad' CONCAT (join => 'outer', merge => 'first', uns_merge => 'same') AS all\n\
             \x20 |> WHERE n_genes >= 2 AS kept;\n\
             WRITE kept TO '{d}/sql.h5ad';\n"
        ),
    )
    .unwrap();
    let explain = String::from_utf8(engine_ok(&["explain", sql.to_str().unwrap()]).stdout).unwrap();
    for part in ["read:", "read_2:", "read_3:"] {
        assert!(
            explain.contains(&format!("\n  {part} reads ")),
            "{part}: {explain}"
        );
    }
    engine_ok(&["run", sql.to_str().unwrap()]);
    python_ok(&format!(
        "{COMPARE}\
         d = '{d}'\n\
         same(ad.read_zarr(d + '/cli.zarr'), ad.concat(parts(d), join='outer', label='batch', keys=['a', 'b', 'c'], index_unique='-'), 'cli')\n\
         w = ad.concat(parts(d), join='outer', merge='first', uns_merge='same')\n\
         w = w[w.obs.n_genes >= 2].copy()\n\
         same(ad.read_h5ad(d + '/sql.h5ad'), w, 'sql')\n"
    ));
    // The output is never one of the inputs, and is not replaced without --overwrite.
    let (code, err) = engine_code(&[
        "concat",
        &format!("{d}/a.h5ad"),
        &format!("{d}/b.zarr"),
        &format!("{d}/cli.zarr"),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("already exists"), "{err}");
}

/// `engine sql` over a glob: the files' obs (and var) are one table each, with the file in
/// `src_path`; a grouped count and sum equal pandas' over `anndata.concat(join='outer')`.
#[test]
fn sql_over_a_glob_is_one_table() {
    let dir = scratch("concat-sql-glob");
    let files = dir.join("parts");
    std::fs::create_dir_all(&files).unwrap();
    parts(&files);
    let out = dir.join("counts.csv");
    engine_ok(&[
        "sql",
        "SELECT cell_type, count(*) AS n, sum(n_counts) AS total, count(DISTINCT src_path) AS files FROM obs GROUP BY 1 ORDER BY 1",
        "--data",
        &format!("{}/*", files.display()),
        "--output",
        out.to_str().unwrap(),
    ]);
    python_ok(&format!(
        "{COMPARE}\
         got = pd.read_csv('{}').set_index('cell_type')\n\
         obs = ad.concat(parts('{}'), join='outer').obs\n\
         want = obs.groupby('cell_type', observed=True).agg(n=('n_counts', 'size'), total=('n_counts', 'sum'))\n\
         assert list(got.index) == sorted(want.index), (list(got.index), list(want.index))\n\
         for c in want.index:\n\
         \x20   assert got.loc[c, 'n'] == want.loc[c, 'n'], c\n\
         \x20   assert abs(got.loc[c, 'total'] - want.loc[c, 'total']) < 1e-3, c\n\
         assert got.loc['T', 'files'] == 3\n",
        out.display(),
        files.display()
    ));
    let (code, err) = engine_code(&[
        "sql",
        "SELECT count(*) FROM obs",
        "--data",
        &format!("{}/*.nothing", files.display()),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no dataset matches"), "{err}");
}

/// A `read` of a glob is its files' concatenation (inner join, as `anndata.concat` by
/// default); an output that is one of the files is refused, and a glob matching nothing is
/// a mistake at the step.
#[test]
fn a_read_of_a_glob_is_the_files_concatenation() {
    let dir = scratch("concat-read-glob");
    let files = dir.join("parts");
    std::fs::create_dir_all(&files).unwrap();
    parts(&files);
    let p = dir.join("glob.yaml");
    let yaml = |pattern: &str, out: &str| {
        format!(
            "version: 1\nsteps:\n  - {{id: all, op: read, path: '{}/{pattern}'}}\noutputs:\n  - {{step: all, path: '{out}'}}\n",
            files.display()
        )
    };
    std::fs::write(&p, yaml("*", &format!("{}/all.h5ad", dir.display()))).unwrap();
    engine_ok(&["run", p.to_str().unwrap()]);
    python_ok(&format!(
        "{COMPARE}\
         w = ad.concat(parts('{}'))\n\
         w.uns = {{}}\n\
         same(ad.read_h5ad('{}/all.h5ad'), w, 'glob')\n",
        files.display(),
        dir.display()
    ));
    for (pattern, out, want) in [
        ("*.none", "o.h5ad".to_string(), "no dataset matches"),
        (
            "*",
            format!("{}/a.h5ad", files.display()),
            "is the pipeline's input",
        ),
    ] {
        std::fs::write(&p, yaml(pattern, &out)).unwrap();
        let (code, err) = engine_code(&["check", p.to_str().unwrap(), "--overwrite"]);
        assert_eq!(code, Some(2), "{pattern}: {err}");
        assert!(
            err.contains(want) && err.contains("glob.yaml:"),
            "{pattern}: {err}"
        );
    }
}
