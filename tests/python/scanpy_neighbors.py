"""scanpy's neighbors on obsm['X_pca'], as the oracle for the engine's kNN graph.

Usage: scanpy_neighbors.py IN.h5ad N_NEIGHBORS OUT.json
Writes obsp['distances'] and obsp['connectivities'] as CSR arrays.
"""

import json
import sys
import warnings

import anndata as ad
import scanpy as sc

warnings.filterwarnings("ignore")
a = ad.read_h5ad(sys.argv[1])
sc.pp.neighbors(a, n_neighbors=int(sys.argv[2]), use_rep="X_pca")
out = {}
for key in ["distances", "connectivities"]:
    m = a.obsp[key].tocsr()
    m.sort_indices()
    out[key] = {"indptr": m.indptr.tolist(), "indices": m.indices.tolist(), "data": m.data.astype(float).tolist()}
json.dump(out, open(sys.argv[3], "w"))
