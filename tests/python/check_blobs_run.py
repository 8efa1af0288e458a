"""Checks an `engine run` output of the blobs workflow against scanpy on the same data.

Usage: check_blobs_run.py OUT.h5ad N_COMPS [COMPARED]
The file's X is the scaled matrix; scanpy recomputes PCA (covariance_eigh), neighbors and
Leiden (igraph flavour) from it. Prints JSON with the comparisons; the variance ratios are
compared for the first COMPARED components (default: all).
"""

import json
import sys
import warnings

import anndata as ad
import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

warnings.filterwarnings("ignore")
a = ad.read_h5ad(sys.argv[1])
n_comps = int(sys.argv[2])
compared = int(sys.argv[3]) if len(sys.argv) > 3 else n_comps
b = a.copy()
b.X = np.asarray(b.X, dtype=np.float64)
sc.pp.pca(b, n_comps=n_comps, svd_solver="covariance_eigh")
sc.pp.neighbors(b, n_neighbors=15)
sc.tl.leiden(b, flavor="igraph", n_iterations=2, directed=False, random_state=0)
ours, theirs = a.uns["pca"]["variance_ratio"][:compared], b.uns["pca"]["variance_ratio"][:compared]
ratio_err = float(np.max(np.abs(ours - theirs) / np.abs(theirs)))
pc_err = max(
    float(min(np.abs(a.varm["PCs"][:, c] - b.varm["PCs"][:, c]).max(), np.abs(a.varm["PCs"][:, c] + b.varm["PCs"][:, c]).max()))
    for c in range(3)
)
print(json.dumps({
    "n_clusters": int(a.obs["leiden"].nunique()),
    "variance_ratio_rel_err": ratio_err,
    "pc_abs_err_first3": pc_err,
    "ari_vs_scanpy": float(adjusted_rand_score(a.obs["leiden"], b.obs["leiden"])),
    "ari_vs_truth": float(adjusted_rand_score(a.obs["leiden"], a.obs["blob"])),
    "uns_keys": sorted(a.uns.keys()),
    "obsp_keys": sorted(a.obsp.keys()),
}))
