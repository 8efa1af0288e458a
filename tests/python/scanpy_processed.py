"""Makes and checks a file scanpy has already processed (PCA, neighbors, Leiden).

Usage:
  scanpy_processed.py make IN_RAW.h5ad OUT.h5ad
      log1p, PCA, neighbors and Leiden (key `scanpy_leiden`) by scanpy on IN_RAW; adds a
      float64 copy of X_pca (`X_f64`) and a sparse obsm entry (`X_sparse`).
  scanpy_processed.py check PROCESSED.h5ad OURS.h5ad
      prints JSON: whether every obsm/varm/obsp/uns element of PROCESSED is in OURS with the
      same values and dtype, and the ARI of our `leiden` against scanpy's on the same graph.
"""

import json
import sys
import warnings

import anndata as ad
import numpy as np
import scanpy as sc
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

warnings.filterwarnings("ignore")

if sys.argv[1] == "make":
    a = ad.read_h5ad(sys.argv[2])
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sc.pp.pca(a, n_comps=20)
    sc.pp.neighbors(a, n_neighbors=15)
    sc.tl.leiden(a, key_added="scanpy_leiden", flavor="igraph", n_iterations=2, directed=False, random_state=0)
    a.obsm["X_f64"] = a.obsm["X_pca"].astype(np.float64)
    # A numeric obs column with a missing value, for a continuous-colour plot.
    a.obs["score"] = np.where(np.arange(a.n_obs) == 0, np.nan, np.arange(a.n_obs, dtype=np.float64))
    a.obsm["X_sparse"] = sp.random(a.n_obs, 7, density=0.2, format="csr", random_state=0, dtype=np.float32)
    a.write_h5ad(sys.argv[3])
    sys.exit(0)

src = ad.read_h5ad(sys.argv[2])
ours = ad.read_h5ad(sys.argv[3])


def same(x, y):
    if sp.issparse(x) != sp.issparse(y) or x.dtype != y.dtype or x.shape != y.shape:
        return False
    if sp.issparse(x):
        return (x != y).nnz == 0
    return bool(np.array_equal(x, y))


report = {
    "obsm": {k: same(v, ours.obsm[k]) if k in ours.obsm else "missing" for k, v in src.obsm.items()},
    "varm": {k: same(v, ours.varm[k]) if k in ours.varm else "missing" for k, v in src.varm.items()},
    "obsp": {k: same(v, ours.obsp[k]) if k in ours.obsp else "missing" for k, v in src.obsp.items()},
    "uns": sorted(k for k in src.uns if k not in ours.uns),
    "variance_ratio": bool(np.array_equal(src.uns["pca"]["variance_ratio"], ours.uns["pca"]["variance_ratio"])),
    "umap_shape": list(ours.obsm["X_umap"].shape),
    "umap_finite": bool(np.isfinite(ours.obsm["X_umap"]).all()),
    "ari": adjusted_rand_score(src.obs["scanpy_leiden"], ours.obs["leiden"]),
}
print(json.dumps(report))
