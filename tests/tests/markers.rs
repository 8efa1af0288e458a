//! `rank_genes_groups` against scanpy on the same log-normalised data: every method and
//! reference, scores, log fold changes, p-values and adjusted p-values per gene within 1e-5
//! relative, the same names in the same order.

use engine_tests::{engine, engine_code, python_ok, scratch};
use std::path::Path;

/// 600 cells × 80 genes of log-normalised counts in 4 groups with their own marker genes.
fn data(dir: &Path) -> std::path::PathBuf {
    sized(
        dir,
        "lognorm.h5ad",
        600,
        80,
        "rng.gamma(0.5, 1.0, size=(4, 80))",
    )
}

/// `cells` × `genes` log-normalised counts in 4 groups, each with marker genes on top of
/// Poisson rates drawn by the Python expression `rates`.
fn sized(dir: &Path, name: &str, cells: usize, genes: usize, rates: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    python_ok(&format!(
        "import anndata as ad, numpy as np, pandas as pd, scanpy as sc, scipy.sparse as sp\n\
         rng = np.random.default_rng(3)\n\
         g = rng.integers(0, 4, {cells})\n\
         rate = {rates}; rate[np.arange(4), np.arange(4) * 5] += 4\n\
         x = rng.poisson(rate[g]).astype(np.float32)\n\
         a = ad.AnnData(sp.csr_matrix(x), obs=pd.DataFrame({{'group': pd.Categorical([f'g{{i}}' for i in g])}}, index=[f'c{{i}}' for i in range({cells})]), var=pd.DataFrame(index=[f'G{{i}}' for i in range({genes})]))\n\
         sc.pp.normalize_total(a, target_sum=1e4); sc.pp.log1p(a)\n\
         a.write_h5ad('{}')\n",
        p.display()
    ));
    p
}

#[test]
fn rank_genes_groups_matches_scanpy() {
    let dir = scratch("markers");
    let src = data(&dir);
    same_as_scanpy(
        &dir,
        &src,
        &[
            "",
            "method: t-test_overestim_var, reference: g1, n_genes: 10, corr_method: bonferroni",
            "groups: 'g0,g2', n_genes: 25, pts: true",
            "reference: g3, groups: 'g1,g2', pts: true",
            "method: wilcoxon",
            "method: wilcoxon, reference: g1, tie_correct: true, n_genes: 15",
            "method: wilcoxon, groups: 'g0,g2', tie_correct: true, pts: true",
        ],
    );
}

/// Wilcoxon's test on 20,000 cells × 160 genes with 2.5 million nonzeros, at the tightest
/// memory limit `check` allows: more than its 64 MiB working set holds at once, so the genes
/// are ranked in two blocks, two passes. With room to spare (the default limit), one.
#[test]
fn wilcoxon_in_gene_blocks_matches_scanpy() {
    let dir = scratch("markers-blocks");
    let src = sized(
        &dir,
        "dense.h5ad",
        20_000,
        160,
        "rng.gamma(6.0, 0.4, size=(4, 160))",
    );
    let configs = [
        "method: wilcoxon, tie_correct: true",
        "method: wilcoxon, reference: g2, n_genes: 30",
    ];
    let out = same_as_scanpy_after(&dir, &src, &configs, ("", "data"), "", true);
    assert!(out.contains("rank sums (2 gene blocks)"), "{out}");
    let out = same_as_scanpy(&dir, &src, &configs[..1]);
    assert!(out.contains("rank sums (1 gene blocks)"), "{out}");
}

/// Marker genes of scaled data ranked on the log-normalised values kept before scaling:
/// `raw: data` in the pipeline, `adata.raw = adata` before `sc.pp.scale` in scanpy (whose
/// `use_raw` defaults to ranking raw).
#[test]
fn rank_genes_groups_on_raw_matches_scanpys_use_raw() {
    let dir = scratch("markers-raw");
    let src = data(&dir);
    same_as_scanpy_after(
        &dir,
        &src,
        &["raw: data", "raw: data, method: wilcoxon, reference: g2"],
        ("  - {id: scaled, op: scale, input: data}\n", "scaled"),
        "a.raw = a; sc.pp.scale(a)\n",
        false,
    );
}

/// Runs `rank_genes_groups` with each set of YAML arguments on `src` and compares every
/// field with scanpy's on the same file; returns the last run's metrics.
fn same_as_scanpy(dir: &Path, src: &Path, configs: &[&str]) -> String {
    same_as_scanpy_after(dir, src, configs, ("", "data"), "", false)
}

/// As [`same_as_scanpy`], with the YAML steps `steps` run first (the ranking's input is
/// `input`) and their scanpy equivalent `python`, on `a`; `tight` runs at the smallest
/// memory limit `check` accepts.
fn same_as_scanpy_after(
    dir: &Path,
    src: &Path,
    configs: &[&str],
    (steps, input): (&str, &str),
    python: &str,
    tight: bool,
) -> String {
    let mut report = String::new();
    for (i, args) in configs.iter().enumerate() {
        let out = dir.join(format!("o{i}.h5ad"));
        let yaml = dir.join(format!("p{i}.yaml"));
        let sep = if args.is_empty() { "" } else { ", " };
        std::fs::write(
            &yaml,
            format!(
                "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\n{steps}  - {{id: markers, op: rank_genes_groups, input: {input}, groupby: group{sep}{args}}}\noutputs:\n  - {{step: markers, path: '{}'}}\n",
                src.display(),
                out.display()
            ),
        )
        .unwrap();
        let mut run_args = vec!["run", yaml.to_str().unwrap(), "--overwrite", "--metrics"];
        let limit;
        if tight {
            let (code, err) =
                engine_code(&["check", yaml.to_str().unwrap(), "--memory-limit", "1M"]);
            assert_eq!(code, Some(2), "{err}");
            let mib = err
                .split("raise it to at least ")
                .nth(1)
                .and_then(|t| t.split(' ').next())
                .unwrap_or_else(|| panic!("no limit in {err}"));
            limit = format!("{mib}M");
            run_args.extend(["--memory-limit", limit.as_str()]);
        }
        let run = engine(&run_args);
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{args}: {err}");
        report = String::from_utf8_lossy(&run.stdout).into_owned();
        // The same call in scanpy, with the YAML's arguments as Python keywords.
        let kwargs: String = args
            .split(", ")
            .filter(|a| !a.is_empty() && !a.starts_with("raw: "))
            .map(|a| {
                let (k, v) = a.split_once(": ").unwrap();
                let v = v.trim_matches('\'');
                let v = if k == "groups" {
                    format!("{:?}", v.split(',').collect::<Vec<_>>())
                } else if v == "true" {
                    "True".to_string()
                } else if v.parse::<i64>().is_ok() {
                    v.to_string()
                } else {
                    format!("'{v}'")
                };
                format!(", {k}={v}")
            })
            .collect();
        python_ok(&format!(
            "import anndata as ad, numpy as np, scanpy as sc\n\
             a = ad.read_h5ad('{}'); o = ad.read_h5ad('{}')\n\
             {python}\
             sc.tl.rank_genes_groups(a, 'group'{kwargs})\n\
             e, g = a.uns['rank_genes_groups'], o.uns['rank_genes_groups']\n\
             assert list(e['names'].dtype.names) == list(g['names'].dtype.names), (e['names'].dtype.names, g['names'].dtype.names)\n\
             for grp in e['names'].dtype.names:\n\
             \x20   assert len(e['names'][grp]) == len(g['names'][grp])\n\
             \x20   s = np.asarray(e['scores'][grp], dtype=float)\n\
             \x20   distinct = np.r_[True, np.abs(np.diff(s)) > 1e-4 * np.abs(s[1:])] & np.r_[np.abs(np.diff(s)) > 1e-4 * np.abs(s[:-1]), True]\n\
             \x20   assert all(a == b for a, b, d in zip(e['names'][grp], g['names'][grp], distinct) if d), (grp, e['names'][grp][:8], g['names'][grp][:8])\n\
             \x20   by_e = {{n: i for i, n in enumerate(e['names'][grp])}}\n\
             \x20   idx = [by_e[n] for n in g['names'][grp]]\n\
             \x20   for k, tol in [('scores', 1e-5), ('logfoldchanges', 1e-4), ('pvals', 1e-5), ('pvals_adj', 1e-5)]:\n\
             \x20       want = np.asarray(e[k][grp], dtype=float)[idx]; got = np.asarray(g[k][grp], dtype=float)\n\
             \x20       assert np.allclose(got, want, rtol=tol, atol=1e-300), (grp, k, got[:5], want[:5])\n\
             assert g['params']['method'] == e['params']['method'] and g['params']['reference'] == e['params']['reference']\n\
             for k in ['pts', 'pts_rest']:\n\
             \x20   assert (k in e) == (k in g), (k, list(e), list(g))\n\
             \x20   if k in e:\n\
             \x20       assert list(g[k].columns) == list(e[k].columns) and list(g[k].index) == list(e[k].index), (k, g[k].columns, e[k].columns)\n\
             \x20       assert np.allclose(g[k].to_numpy(), e[k].to_numpy(), rtol=1e-12, atol=0), k\n",
            src.display(),
            out.display()
        ));
    }
    report
}

/// A groupby that is missing or not categorical is refused by `check`, at the step.
#[test]
fn rank_genes_groups_needs_a_categorical_groupby() {
    let dir = scratch("markers-check");
    let src = data(&dir);
    for (by, want) in [
        ("nope", "the input has no obs['nope']"),
        ("n_counts", "groups need a categorical column"),
    ] {
        let yaml = dir.join("p.yaml");
        std::fs::write(
            &yaml,
            format!(
                "version: 1\nsteps:\n  - {{id: data, op: read, path: '{}'}}\n  - {{id: q, op: calculate_qc_metrics, input: data, percent_top: ''}}\n  - {{id: n, op: filter_cells, input: q, min_counts: 0}}\n  - {{id: m, op: rank_genes_groups, input: n, groupby: {by}}}\noutputs:\n  - {{step: m, path: '{}'}}\n",
                src.display(),
                dir.join("o.h5ad").display()
            ),
        )
        .unwrap();
        let (c, err) = engine_code(&["check", yaml.to_str().unwrap()]);
        assert_eq!(c, Some(2), "{err}");
        assert!(err.contains(want) && err.contains("p.yaml:6:"), "{err}");
    }
}

/// scanpy's `layer=`: marker genes ranked on a layer of the file (here its counts beside the
/// log-normalised X), with `layer: counts` in the step; `uns` records the layer and
/// `use_raw: False`, as scanpy does.
#[test]
fn rank_genes_groups_on_a_layer_matches_scanpys() {
    let dir = scratch("markers-layer");
    let src = data(&dir);
    let layered = dir.join("layered.h5ad");
    python_ok(&format!(
        "import anndata as ad, numpy as np\n\
         a = ad.read_h5ad('{}')\n\
         a.layers['counts'] = np.round(np.expm1(a.X.toarray()) / 10).astype(np.float32)\n\
         a.write_h5ad('{}')\n",
        src.display(),
        layered.display()
    ));
    same_as_scanpy(
        &dir,
        &layered,
        &["layer: counts", "layer: counts, method: wilcoxon"],
    );
    python_ok(&format!(
        "import anndata as ad\n\
         p = ad.read_h5ad('{}').uns['rank_genes_groups']['params']\n\
         assert p['layer'] == 'counts' and not p['use_raw'], p\n",
        dir.join("o1.h5ad").display()
    ));
}
