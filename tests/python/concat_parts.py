"""Three small datasets for the concat and preshuffle tests, written by anndata into DIR:
a (h5ad, CSR, genes A B C MT1 D), b (zarr, CSR, genes in another order, a column only it
has, categories that natural-sort differently from text), c (h5ad, dense, a gene only it
has). Every file has obsm['X_pca'] and uns entries.

    python concat_parts.py DIR
"""

import sys

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp


def make(n, genes, cats, extra, sparse, seed):
    r = np.random.default_rng(seed)
    x = r.poisson(0.7, (n, len(genes))).astype(np.float32)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(r.choice(cats, n)),
            "n_counts": x.sum(1),
            "n_genes": (x > 0).sum(1).astype(np.int64),
            "ok": r.random(n) > 0.3,
        },
        index=[f"c{i}" for i in range(n)],
    )
    if extra:
        obs["donor"] = [f"d{seed}"] * n
    var = pd.DataFrame(
        {"gene_ids": [g.lower() for g in genes], "mt": [g.startswith("MT") for g in genes]},
        index=genes,
    )
    a = ad.AnnData(sp.csr_matrix(x) if sparse else x, obs=obs, var=var)
    a.obsm["X_pca"] = r.normal(size=(n, 3)).astype(np.float32)
    a.uns["info"] = {"seed": seed, "common": "x"}
    return a


d = sys.argv[1]
make(40, ["A", "B", "C", "MT1", "D"], ["T", "B cell"], False, True, 1).write_h5ad(f"{d}/a.h5ad")
make(30, ["D", "C", "E", "A"], ["NK", "T", "cell10", "cell9"], True, True, 2).write_zarr(f"{d}/b.zarr")
make(25, ["A", "C", "D", "F"], ["T"], False, False, 3).write_h5ad(f"{d}/c.h5ad")
