"""Stores for the remote-read tests, written as the dask + zarr tutorial writes them, from
scanpy's bundled pbmc68k_reduced (700 x 765, dense float32 X):

- pbmc_5.zarr: zarr v2, X chunked (n_obs, 5), consolidated metadata (anndata's default);
- pbmc_25.zarr: the same with X chunked (n_obs, 25);
- pbmc_bare.zarr: pbmc_5.zarr without consolidated metadata;
- pbmc_sharded.zarr: zarr v3, X in shards of (n_obs, 100) holding chunks of (n_obs, 5);
- pbmc_scanpy.h5ad: scanpy's bundled file itself (old anndata, X gzip in (44, 96) chunks);
- pbmc_tall.h5ad: 7,000 cells of noise over pbmc's genes, X stored in the tutorial's layout
  by h5py: gzip in (n_obs, 5) chunks;
- expected.json: n_cells per gene (cells with a count, from raw), so tests can pick the
  tutorial's "genes with n_cells > t" independently.

    remote_fixtures.py DIR
"""

import json
import os
import shutil
import sys

import anndata as ad
import h5py
import numpy as np
import scanpy as sc
import zarr

out = sys.argv[1]
a = sc.datasets.pbmc68k_reduced()
a.var["n_cells"] = np.asarray((a.raw[:, a.var_names].X > 0).sum(0)).ravel().astype("int64")

ad.settings.zarr_write_format = 2
a.write_zarr(os.path.join(out, "pbmc_5.zarr"), chunks=(a.n_obs, 5))
a.write_zarr(os.path.join(out, "pbmc_25.zarr"), chunks=(a.n_obs, 25))
assert os.path.exists(os.path.join(out, "pbmc_5.zarr", ".zmetadata"))
shutil.copytree(os.path.join(out, "pbmc_5.zarr"), os.path.join(out, "pbmc_bare.zarr"))
os.remove(os.path.join(out, "pbmc_bare.zarr", ".zmetadata"))

# v3 with X in shards of (n_obs, 100) holding chunks of (n_obs, 5), then consolidated.
ad.settings.zarr_write_format = 3
path = os.path.join(out, "pbmc_sharded.zarr")
a.write_zarr(path)
g = zarr.open_group(path, mode="a")
del g["X"]
x = g.create_array("X", shape=a.X.shape, dtype=a.X.dtype, chunks=(a.n_obs, 5), shards=(a.n_obs, 100))
x[:] = a.X
x.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
zarr.consolidate_metadata(path)

bundled = os.path.join(os.path.dirname(sc.__file__), "datasets", "10x_pbmc68k_reduced.h5ad")
shutil.copyfile(bundled, os.path.join(out, "pbmc_scanpy.h5ad"))

# Noise, so gzip leaves the file large (~20 MB) and a read of one gene is a small part of it.
x = np.random.default_rng(0).standard_normal((10 * a.n_obs, a.n_vars)).astype(np.float32)
tall = ad.AnnData(
    obs={"cell": [f"c{i}" for i in range(10 * a.n_obs)], "bulk_labels": np.tile(a.obs["bulk_labels"].astype(str), 10)},
    var=a.var[["n_cells"]],
)
tall.obs_names = tall.obs["cell"]
path = os.path.join(out, "pbmc_tall.h5ad")
tall.write_h5ad(path)
with h5py.File(path, "a") as f:
    f.create_dataset("X", data=x, chunks=(tall.n_obs, 5), compression="gzip")
    f["X"].attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump({"n_cells": a.var["n_cells"].tolist(), "var_names": a.var_names.tolist()}, f)
