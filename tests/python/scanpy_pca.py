"""scanpy's scale + PCA on a file, as the oracle for the engine's PCA.

Usage: scanpy_pca.py IN.h5ad N_COMPS OUT.json
Runs sc.pp.scale (zero_center, no clipping) then sc.pp.pca(svd_solver="covariance_eigh")
and writes variance, variance_ratio, PCs and the first rows of X_pca as JSON.
"""

import json
import sys
import warnings

import anndata as ad
import numpy as np
import scanpy as sc

warnings.filterwarnings("ignore")
a = ad.read_h5ad(sys.argv[1])
n_comps = int(sys.argv[2])
a.X = np.asarray(a.X, dtype=np.float64)
sc.pp.scale(a)
sc.pp.pca(a, n_comps=n_comps, svd_solver="covariance_eigh")
out = {
    "variance": a.uns["pca"]["variance"].tolist(),
    "variance_ratio": a.uns["pca"]["variance_ratio"].tolist(),
    "PCs": a.varm["PCs"].tolist(),
    "X_pca_head": a.obsm["X_pca"][:50].tolist(),
}
json.dump(out, open(sys.argv[3], "w"))
