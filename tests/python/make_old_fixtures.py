"""Writes small .h5ad files with OLD anndata releases (0.6.x, 0.7.x), committed under
tests/data/old/ so CI needs no old Python. Both hold uns['rank_genes_groups'] as old scanpy
left it: record arrays (structured arrays without encoding attributes in 0.6). Regenerate with scripts/make-old-fixtures.sh.

Usage (under the old anndata's Python): make_old_fixtures.py OUT.h5ad
Content is the same closed form the tests check: X[i, j] = 100 i + j if (i + j) % 3 == 0.
"""

import sys

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

n_obs, n_vars = 40, 12
dense = np.zeros((n_obs, n_vars), dtype=np.float32)
for i in range(n_obs):
    for j in range(n_vars):
        if (i + j) % 3 == 0:
            dense[i, j] = i * 100 + j
obs = pd.DataFrame(
    {
        "cell_type": pd.Categorical([["T", "B", "NK"][i % 3] for i in range(n_obs)]),
        "n_genes": np.arange(n_obs, dtype=np.int64) * 7,
        "frac": (np.arange(n_obs) / 8).astype(np.float32),
    },
    index=["cell_%03d" % i for i in range(n_obs)],
)
var = pd.DataFrame({"gene_ids": ["ENSG%05d" % j for j in range(n_vars)]}, index=["GENE%d" % j for j in range(n_vars)])
a = ad.AnnData(X=sp.csr_matrix(dense), obs=obs, var=var)
a.obsm["X_pca"] = (np.arange(n_obs * 2, dtype=np.float32).reshape(n_obs, 2) / 10).astype(np.float32)
a.varm["PCs"] = np.arange(n_vars * 2, dtype=np.float64).reshape(n_vars, 2)
a.layers["dense"] = dense * 2
a.uns["title"] = "old"
a.uns["vec"] = np.array([1.0, 2.0])
# What sc.tl.rank_genes_groups leaves in uns: record arrays, one field per group
# (names[k][g] = "GENE{(k + g) % n_vars}", scores[k][g] = k + g / 10).
groups = ["B", "NK", "T"]
names = np.rec.fromarrays([np.array(["GENE%d" % ((k + g) % n_vars) for k in range(4)]) for g in range(3)], names=groups)
scores = np.rec.fromarrays([np.array([k + g / 10 for k in range(4)], dtype=np.float32) for g in range(3)], names=groups)
a.uns["rank_genes_groups"] = {"names": names, "scores": scores}
out = sys.argv[1]
if out.endswith(".zarr"):
    a.write_zarr(out, chunks=None)
else:
    a.write(out)
print(ad.__version__)
