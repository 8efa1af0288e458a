"""scanpy's neighbors + Leiden (igraph flavour) on obsm['X_pca'].

Usage: scanpy_leiden.py IN.h5ad N_NEIGHBORS RESOLUTION OUT.json
"""

import json
import sys
import warnings

import anndata as ad
import scanpy as sc

warnings.filterwarnings("ignore")
a = ad.read_h5ad(sys.argv[1])
sc.pp.neighbors(a, n_neighbors=int(sys.argv[2]), use_rep="X_pca")
sc.tl.leiden(a, resolution=float(sys.argv[3]), flavor="igraph", n_iterations=2, directed=False, random_state=0)
json.dump({"labels": [int(x) for x in a.obs["leiden"]]}, open(sys.argv[4], "w"))
