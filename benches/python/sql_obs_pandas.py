"""The pandas reference for benches/sql_obs.sh: open the dataset with anndata (obs only, X
left on disk) and answer the same question as the engine's SQL query.

Usage: sql_obs_pandas.py DATA.h5ad
"""

import sys
import time

import anndata as ad

t = time.perf_counter()
a = ad.read_h5ad(sys.argv[1], backed="r")
o = a.obs
sel = o[(o.n_genes_by_counts > 500) & (o.pct_counts_mt < 10)]
r = sel.groupby("cell_type", observed=True).agg(
    n=("total_counts", "size"), mean_counts=("total_counts", "mean")
).sort_index()
print(r.head(3))
print(f"{len(r)} groups in {time.perf_counter() - t:.2f}s", file=sys.stderr)
