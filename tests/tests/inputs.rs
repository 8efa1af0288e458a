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
