//! Inputs from layers and raw (issue 17): `read` with `layer:` or `use_raw:` gives that matrix
//! as X, as anndata holds it; `gene('NAME', 'LAYER')` in SQL reads the layer; steps that
//! expect counts warn when X is not counts; mistakes are refused by `check` with the place.

use engine_tests::{engine, engine_code, python_ok, scratch};
use std::path::{Path, PathBuf};

/// A processed AnnData as scanpy leaves it: counts in `layers['counts']`, raw holding the
/// log-normalised values of all 50 genes, X the scaled 30 kept genes; as h5ad and zarr.
fn processed(dir: &Path) -> [PathBuf; 2] {
    let (h5, zarr) = (dir.join("p.h5ad"), dir.join("p.zarr"));
    python_ok(&format!(
        "import anndata as ad, numpy as np, pandas as pd, scanpy as sc, scipy.sparse as sp\n\
         rng = np.random.default_rng(0)\n\
         c = sp.random(300, 50, density=0.3, format='csr', random_state=0, data_rvs=lambda n: rng.integers(1, 20, n)).astype(np.float32)\n\
         a = ad.AnnData(c.copy(), obs=pd.DataFrame(index=[f'c{{i}}' for i in range(300)]), var=pd.DataFrame(index=[f'g{{i}}' for i in range(50)]))\n\
         a.layers['counts'] = c.copy()\n\
         sc.pp.normalize_total(a, target_sum=1e4)\n\
         sc.pp.log1p(a)\n\
         a.raw = a\n\
         a = a[:, 10:40].copy()\n\
         sc.pp.scale(a)\n\
         a.write_h5ad('{}')\n\
         a.write_zarr('{}')\n",
        h5.display(),
        zarr.display()
    ));
    [h5, zarr]
}

fn yaml(dir: &Path, name: &str, steps: &str, out: &Path) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "version: 1\nsteps:\n{steps}outputs:\n  - {{step: out, path: '{}'}}\n",
            out.display()
        ),
    )
    .unwrap();
    p
}

/// `layer: counts` and `use_raw: true` read those matrices as X (with raw's var), equal to
/// anndata's `layers['counts']` and `raw.X`, from h5ad and zarr alike.
#[test]
fn a_layer_or_raw_becomes_x() {
    let dir = scratch("inputs-layers");
    for src in processed(&dir) {
        for (arg, reference) in [
            ("layer: counts", "a.layers['counts'], a.var_names"),
            ("use_raw: true", "a.raw.X, a.raw.var_names"),
        ] {
            let out = dir.join("o.h5ad");
            let p = yaml(
                &dir,
                "p.yaml",
                &format!(
                    "  - {{id: out, op: read, path: '{}', {arg}}}\n",
                    src.display()
                ),
                &out,
            );
            let (c, err) = engine_code(&["run", p.to_str().unwrap(), "--overwrite"]);
            assert_eq!(c, Some(0), "{arg}: {err}");
            python_ok(&format!(
                "import anndata as ad, numpy as np, scipy.sparse as sp\n\
                 a = ad.read_h5ad('{}') if '{0}'.endswith('.h5ad') else ad.read_zarr('{0}')\n\
                 o = ad.read_h5ad('{}')\n\
                 x, names = {reference}\n\
                 d = lambda m: m.toarray() if sp.issparse(m) else np.asarray(m)\n\
                 assert o.shape == x.shape, (o.shape, x.shape)\n\
                 assert np.array_equal(d(o.X), d(x)), 'values'\n\
                 assert list(o.var_names) == list(names)\n\
                 assert list(o.obs_names) == list(a.obs_names)\n",
                src.display(),
                out.display()
            ));
        }
    }
}

/// normalize_total and QC on counts are quiet; on scaled X they warn, naming the step and a
/// value that is not a count, and still run (as scanpy would).
#[test]
fn steps_that_expect_counts_warn_on_other_input() {
    let dir = scratch("inputs-warn");
    let [src, _] = processed(&dir);
    let out = dir.join("o.h5ad");
    for (read, warns) in [("layer: counts", false), ("use_raw: false", true)] {
        let p = yaml(
            &dir,
            "p.yaml",
            &format!(
                "  - {{id: data, op: read, path: '{}', {read}}}\n  - {{id: qc, op: calculate_qc_metrics, input: data, percent_top: ''}}\n  - {{id: out, op: normalize_total, input: qc}}\n",
                src.display()
            ),
            &out,
        );
        let (c, err) = engine_code(&["run", p.to_str().unwrap(), "--overwrite"]);
        assert_eq!(c, Some(0), "{read}: {err}");
        for step in ["qc", "out"] {
            let warned = err.contains(&format!("warning: step `{step}`:"));
            assert_eq!(warned, warns, "{read}, {step}: {err}");
        }
        if warns {
            assert!(err.contains("normalize_total expects counts"), "{err}");
        } else {
            // On counts: every cell sums to the median total, as scanpy's normalize_total.
            python_ok(&format!(
                "import anndata as ad, numpy as np, scanpy as sc\n\
                 a = ad.read_h5ad('{}'); o = ad.read_h5ad('{}')\n\
                 a.X = a.layers['counts'].copy(); sc.pp.normalize_total(a)\n\
                 assert np.allclose(o.X.toarray(), a.X.toarray(), rtol=1e-5)\n",
                src.display(),
                out.display()
            ));
        }
    }
}

/// A missing layer, a file without raw, and both options at once are mistakes `check`
/// reports at the step, before anything runs.
#[test]
fn missing_layers_and_raw_are_refused_by_check() {
    let dir = scratch("inputs-mistakes");
    let [src, _] = processed(&dir);
    let plain = dir.join("plain.h5ad");
    python_ok(&format!(
        "import anndata as ad, numpy as np\nad.AnnData(np.ones((5, 3), dtype=np.float32)).write_h5ad('{}')\n",
        plain.display()
    ));
    let out = dir.join("o.h5ad");
    for (path, arg, want) in [
        (
            &src,
            "layer: count",
            "no layer 'count' (its layers are counts)",
        ),
        (
            &plain,
            "layer: counts",
            "no layer 'counts' (it has no layers)",
        ),
        (&plain, "use_raw: true", "the dataset has no raw"),
        (
            &src,
            "layer: counts, use_raw: true",
            "`layer` and `use_raw` cannot both be set",
        ),
    ] {
        let p = yaml(
            &dir,
            "p.yaml",
            &format!(
                "  - {{id: out, op: read, path: '{}', {arg}}}\n",
                path.display()
            ),
            &out,
        );
        for cmd in ["check", "run"] {
            let (c, err) = engine_code(&[cmd, p.to_str().unwrap()]);
            assert_eq!(c, Some(2), "{cmd} {arg}: {err}");
            assert!(err.contains(want), "{cmd} {arg}: {err}");
            assert!(err.contains("p.yaml:3:"), "{cmd} {arg}: no place in {err}");
        }
        assert!(!out.exists());
    }
}

/// `gene('NAME', 'LAYER')` reads the layer, `gene('NAME')` X; an unknown layer is named.
#[test]
fn gene_takes_a_layer_in_sql() {
    let dir = scratch("inputs-sql");
    let [src, zarr] = processed(&dir);
    for data in [&src, &zarr] {
        let res = dir.join("r.csv");
        let out = engine(&[
            "sql",
            "SELECT gene('g12', 'counts') AS c, gene('g12') AS x FROM obs",
            "--data",
            data.to_str().unwrap(),
            "--output",
            res.to_str().unwrap(),
            "--overwrite",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        python_ok(&format!(
            "import anndata as ad, numpy as np, pandas as pd\n\
             a = ad.read_h5ad('{}'); r = pd.read_csv('{}')\n\
             assert np.allclose(r['c'], a[:, 'g12'].layers['counts'].toarray().ravel())\n\
             assert np.allclose(r['x'], np.asarray(a[:, 'g12'].X).ravel(), rtol=1e-6)\n\
             assert r['c'].sum() > 0\n",
            src.display(),
            res.display()
        ));
    }
    let out = engine(&[
        "sql",
        "SELECT gene('g12', 'count') FROM obs",
        "--data",
        src.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("gene('g12', 'count'): no layer 'count'") && err.contains("counts"),
        "{err}"
    );
}

/// Counts with names: 200 cells × 60 genes, some cells nearly empty so `filter_cells`
/// drops them.
fn counts(dir: &Path) -> PathBuf {
    let p = dir.join("counts.h5ad");
    python_ok(&format!(
        "import anndata as ad, numpy as np, pandas as pd, scipy.sparse as sp\n\
         rng = np.random.default_rng(1)\n\
         x = rng.poisson(rng.gamma(0.6, 2.0, size=(200, 60))).astype(np.float32)\n\
         x[::7, 5:] = 0\n\
         a = ad.AnnData(sp.csr_matrix(x), obs=pd.DataFrame(index=[f'cell{{i}}' for i in range(200)]), var=pd.DataFrame(index=[f'G{{i}}' for i in range(60)]))\n\
         a.write_h5ad('{}')\n",
        p.display()
    ));
    p
}

/// An output assembles what a scanpy user keeps: X from the log-normalised step (sparse,
/// float32), the raw counts as a layer and the log-normalised values as another, both for
/// the output's cells and genes, and raw with all genes; obsm from the PCA. Checked against
/// the counts file with numpy, for the YAML and the SQL form alike.
#[test]
fn outputs_keep_raw_and_layers() {
    let dir = scratch("inputs-assemble");
    let src = counts(&dir);
    let steps = format!(
        "  - {{id: data, op: read, path: '{}'}}\n  - {{id: cells, op: filter_cells, input: data, min_genes: '${{min_genes}}'}}\n  - {{id: normalized, op: normalize_total, input: cells, target_sum: 10000}}\n  - {{id: logged, op: log1p, input: normalized}}\n  - {{id: hvg, op: highly_variable_genes, input: logged, n_top_genes: 20, subset: true}}\n  - {{id: scaled, op: scale, input: hvg, max_value: 10}}\n  - {{id: pcs, op: pca, input: scaled, n_comps: 5}}\n",
        src.display()
    );
    let out_yaml = dir.join("y.h5ad");
    let p = dir.join("p.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nparams:\n  min_genes: 5\nsteps:\n{steps}outputs:\n  - {{step: pcs, path: '{}', x: logged, raw: logged, layers: {{counts: data, lognorm: logged}}}}\n",
            out_yaml.display()
        ),
    )
    .unwrap();
    let (c, err) = engine_code(&["run", p.to_str().unwrap(), "--overwrite"]);
    assert_eq!(c, Some(0), "{err}");
    python_ok(&format!(
        "import anndata as ad, numpy as np, scipy.sparse as sp\n\
         c = ad.read_h5ad('{}'); o = ad.read_h5ad('{}')\n\
         x = c.X.toarray().astype(np.float64)\n\
         keep = (x > 0).sum(1) >= 5\n\
         assert list(o.obs_names) == list(c.obs_names[keep]), 'cells'\n\
         assert o.n_vars == 20 and o.raw.n_vars == 60\n\
         genes = [list(c.var_names).index(g) for g in o.var_names]\n\
         assert genes == sorted(genes), 'genes keep their order'\n\
         logn = np.log1p(x[keep] / x[keep].sum(1, keepdims=True) * 1e4)\n\
         assert sp.issparse(o.X) and o.X.dtype == np.float32, (type(o.X), o.X.dtype)\n\
         assert np.allclose(o.X.toarray(), logn[:, genes], rtol=1e-5)\n\
         assert np.allclose(o.layers['lognorm'].toarray(), logn[:, genes], rtol=1e-5)\n\
         assert np.array_equal(o.layers['counts'].toarray(), x[keep][:, genes])\n\
         assert np.allclose(o.raw.X.toarray(), logn, rtol=1e-5)\n\
         assert list(o.raw.var_names) == list(c.var_names)\n\
         assert o.obsm['X_pca'].shape == (keep.sum(), 5)\n\
         import hashlib\n\
         e = o.uns['engine']\n\
         assert e['pipeline_sha256'] == hashlib.sha256(open('{}', 'rb').read()).hexdigest()\n\
         assert e['params']['min_genes'] == 5 and e['version'].count('.') == 2, e\n",
        src.display(),
        out_yaml.display(),
        p.display()
    ));
    // The SQL form writes the same file.
    let out_sql = dir.join("s.h5ad");
    let q = dir.join("p.sql");
    std::fs::write(
        &q,
        format!(
            "PARAM min_genes INT = 5;\nFROM '{}' AS data\n  |> CALL filter_cells(min_genes => ${{min_genes}}) AS cells\n  |> CALL normalize_total(target_sum => 10000) AS normalized\n  |> CALL log1p() AS logged\n  |> CALL highly_variable_genes(n_top_genes => 20, subset => TRUE) AS hvg\n  |> CALL scale(max_value => 10) AS scaled\n  |> CALL pca(n_comps => 5) AS pcs;\nWRITE pcs TO '{}' WITH (x => logged, raw => logged, layers => (counts => data, lognorm => logged));\n",
            src.display(),
            out_sql.display()
        ),
    )
    .unwrap();
    let (c, err) = engine_code(&["run", q.to_str().unwrap(), "--overwrite"]);
    assert_eq!(c, Some(0), "{err}");
    engine_tests::assert_anndata_equal(&out_yaml, &out_sql);
}

/// A layer from a step that is not upstream of the output cannot be matched to its cells;
/// `check` says so at the place.
#[test]
fn layers_come_from_upstream_steps() {
    let dir = scratch("inputs-upstream");
    let src = counts(&dir);
    let p = dir.join("p.yaml");
    std::fs::write(
        &p,
        format!(
            "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\n  - {{id: a, op: log1p, input: data}}\n  - {{id: b, op: normalize_total, input: data}}\noutputs:\n  - {{step: a, path: '{}', layers: {{other: b}}}}\n",
            src.display(),
            dir.join("o.h5ad").display()
        ),
    )
    .unwrap();
    let (c, err) = engine_code(&["check", p.to_str().unwrap()]);
    assert_eq!(c, Some(2), "{err}");
    assert!(
        err.contains("p.yaml:7:") && err.contains("step `b` is not `a` or a step before it"),
        "{err}"
    );
}
