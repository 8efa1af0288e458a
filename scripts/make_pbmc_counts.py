"""Writes pipelines/data/pbmc68k_counts.h5ad: the counts behind scanpy's bundled
pbmc68k_reduced (700 cells x 765 genes), for the pbmc pipelines.

pbmc68k_reduced keeps no counts: its raw.X is log1p(counts / n_counts * 1e4) stored to three
decimals, with obs['n_counts'] the cells' totals. Inverting that gives the counts to within
0.09 of an integer, so they are rounded. The cell types (obs['bulk_labels']) and their
colours come along; nothing else of the processed file does.

Run with the project's venv: .venv/bin/python scripts/make_pbmc_counts.py
"""

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

src = sc.datasets.pbmc68k_reduced()
raw = src.raw.to_adata()
logged = raw.X.toarray().astype(np.float64)
counts = np.expm1(logged) * src.obs["n_counts"].to_numpy()[:, None] / 1e4
rounded = np.rint(counts)
assert np.abs(counts - rounded).max() < 0.1, np.abs(counts - rounded).max()
out = ad.AnnData(
    sp.csr_matrix(rounded.astype(np.float32)),
    obs=pd.DataFrame({"bulk_labels": src.obs["bulk_labels"]}, index=src.obs_names.copy()),
    var=pd.DataFrame(index=raw.var_names.copy()),
)
out.uns["bulk_labels_colors"] = np.asarray(src.uns["bulk_labels_colors"], dtype=object)
path = Path(__file__).resolve().parent.parent / "pipelines" / "data" / "pbmc68k_counts.h5ad"
out.write_h5ad(path, compression="gzip")
print(f"wrote {path}: {out.n_obs} x {out.n_vars}, {out.X.nnz} stored counts")
