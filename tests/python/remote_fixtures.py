"""Stores for the remote-read tests, written as the dask + zarr tutorial writes them, from
scanpy's bundled pbmc68k_reduced (700 x 765, dense float32 X):

- pbmc_5.zarr: zarr v2, X chunked (n_obs, 5), consolidated metadata (anndata's default);
- pbmc_25.zarr: the same with X chunked (n_obs, 25);
- pbmc_bare.zarr: pbmc_5.zarr without consolidated metadata;
- pbmc_sharded.zarr: zarr v3, X in shards of (n_obs, 100) holding chunks of (n_obs, 5);
- expected.json: n_cells per gene (cells with a count, from raw), so tests can pick the
  tutorial's "genes with n_cells > t" independently.

    remote_fixtures.py DIR
"""

import json
import os
import shutil
import sys

import anndata as ad
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

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump({"n_cells": a.var["n_cells"].tolist(), "var_names": a.var_names.tolist()}, f)
