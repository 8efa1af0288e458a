"""scanpy + dask on the blobs file, as ../shared/bench/seed000_dask.py runs it, except that PCA
uses svd_solver='covariance_eigh': the solver scanpy's docs recommend for dense dask arrays,
since its default (dask-ml's PCA) needs memory that grows with the data (dask/dask-ml#985).
The engine's pipeline uses the same solver.

Usage: blobs_dask_eigh.py SHARED_BENCH_DIR [seed000_dask.py arguments]
"""

import functools
import sys

shared = sys.argv.pop(1)
sys.path.insert(0, shared)

import scanpy as sc  # noqa: E402
import seed000_dask  # noqa: E402

sc.pp.pca = functools.partial(sc.pp.pca, svd_solver="covariance_eigh")
seed000_dask.main()
