"""Writes a dense count-like float32 matrix as .h5ad with Python anndata.

Usage: make_dense.py OUT.h5ad N_OBS N_VARS
Values are Poisson(0.7) counts (about half zeros), so compressors see realistic data.
"""

import sys
import warnings

import anndata as ad
import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
out, n_obs, n_vars = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(42)
X = rng.poisson(0.7, size=(n_obs, n_vars)).astype(np.float32)
a = ad.AnnData(
    X=X,
    obs=pd.DataFrame(index=[f"c{i}" for i in range(n_obs)]),
    var=pd.DataFrame(index=[f"g{j}" for j in range(n_vars)]),
)
a.write_h5ad(out)
