"""Writes a dataset whose obs has 1,000,000 cells of typical QC metadata (X is an empty
sparse 1M x 100 matrix): the input of benches/sql_obs.sh.

Usage: make_obs_1m.py OUT.h5ad
"""

import sys

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

n = 1_000_000
rng = np.random.default_rng(0)
obs = pd.DataFrame(
    {
        "cell_type": pd.Categorical(rng.choice([f"type_{i}" for i in range(20)], n)),
        "batch": pd.Categorical(rng.choice([f"b{i}" for i in range(8)], n)),
        "donor": [f"donor_{i}" for i in rng.integers(0, 50, n)],
        "n_genes_by_counts": rng.integers(100, 5000, n),
        "total_counts": rng.gamma(2.0, 2000.0, n).astype(np.float32),
        "pct_counts_mt": (rng.beta(2, 30, n) * 100).astype(np.float32),
        "doublet": pd.array(np.where(rng.random(n) < 0.05, None, rng.random(n) < 0.1), dtype="boolean"),
    },
    index=[f"cell_{i:07d}" for i in range(n)],
)
a = ad.AnnData(X=sp.csr_matrix((n, 100), dtype=np.float32), obs=obs)
a.write_h5ad(sys.argv[1])
