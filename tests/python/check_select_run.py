"""Checks an `engine run` of a view -> scale -> PCA pipeline against anndata + scanpy.

Usage: check_select_run.py INPUT.h5ad OUTPUT.h5ad ROWS COLS MAX_VALUE N_COMPS
ROWS and COLS are Python slice lists like "1000:2500,3000:3200"; ROWS may instead be
"@<pandas expression over obs>". anndata takes the same view
of INPUT, scanpy scales and runs PCA; prints JSON with the differences.
"""

import json
import sys
import warnings

import anndata as ad
import numpy as np
import scanpy as sc

warnings.filterwarnings("ignore")


def positions(text, n):
    out = []
    for part in text.split(","):
        f = [int(x) if x.strip() else None for x in part.split(":")]
        out.extend(range(n)[slice(*f)] if len(f) > 1 else [range(n)[f[0]]])
    return sorted(set(out))


src = ad.read_h5ad(sys.argv[1])
ours = ad.read_h5ad(sys.argv[2])
# "@<pandas query>" selects rows by a predicate over obs, as a `where` step does.
if sys.argv[3].startswith("@"):
    rows = [int(i) for i in np.flatnonzero(src.obs.eval(sys.argv[3][1:]).to_numpy())]
else:
    rows = positions(sys.argv[3], src.n_obs)
cols = positions(sys.argv[4], src.n_vars)
max_value = float(sys.argv[5])
n_comps = int(sys.argv[6])
ref = src[rows, cols].copy()
ref.X = np.asarray(ref.X, dtype=np.float64)
sc.pp.scale(ref, max_value=max_value)
sc.pp.pca(ref, n_comps=n_comps, svd_solver="covariance_eigh")
ratio = ref.uns["pca"]["variance_ratio"]
print(json.dumps({
    "shape": list(ours.shape),
    "ref_shape": list(ref.shape),
    "x_max_abs_err": float(np.max(np.abs(np.asarray(ours.X, dtype=np.float64) - ref.X))),
    "variance_ratio_rel_err": float(np.max(np.abs(ours.uns["pca"]["variance_ratio"] - ratio) / ratio)),
    "blob_equal": bool((ours.obs["blob"].astype(str).values == ref.obs["blob"].astype(str).values).all()),
}))
