"""scanpy's reference for benches/pca_all_genes.sh: the counts log-normalised in memory, then
sc.pp.pca over every gene with scanpy's default for sparse data.

Usage: pca_all_genes.py COUNTS.h5ad OUT.json
"""

import json
import sys
import time
import warnings

import anndata as ad
import numpy as np
import scanpy as sc

warnings.filterwarnings("ignore")
t = time.perf_counter()
a = ad.read_h5ad(sys.argv[1])
# As ../shared/bench/scanpy_standard.py: an int64 indptr with int32 indices is valid anndata,
# but scanpy's numba kernels (fast-array-utils) want one index dtype.
X = a.X
if hasattr(X, "indptr") and X.indptr.dtype != X.indices.dtype:
    dt = np.int32 if max(X.nnz, *X.shape) <= np.iinfo(np.int32).max else np.int64
    X.indptr = X.indptr.astype(dt)
    X.indices = X.indices.astype(dt)
sc.pp.normalize_total(a, target_sum=1e4)
sc.pp.log1p(a)
t_pca = time.perf_counter()
sc.pp.pca(a, n_comps=50)
done = time.perf_counter()
with open(sys.argv[2], "w") as f:
    json.dump(
        {
            "variance_ratio": a.uns["pca"]["variance_ratio"].tolist(),
            "seconds_pca": done - t_pca,
            "seconds_total": done - t,
        },
        f,
    )
