"""The dask + zarr tutorial's store at scale: the first GENES genes of a sparse counts h5ad as
a dense float32 X chunked (n_obs, 5), zarr v2 with consolidated metadata (anndata's
write_zarr), with var['n_cells'] (cells with a count) for the tutorial's gene filter; and the
same data as an .h5ad (OUT with .h5ad for .zarr), X gzip in the same chunks (h5py).

    make_remote_store.py COUNTS.h5ad OUT.zarr [GENES]
"""

import sys

import anndata as ad
import h5py
import numpy as np

src, out = sys.argv[1], sys.argv[2]
genes = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
a = ad.read_h5ad(src, backed="r")
sub = a[:, :genes].to_memory()
x = sub.X.toarray().astype("float32") if hasattr(sub.X, "toarray") else np.asarray(sub.X, dtype="float32")
b = ad.AnnData(X=x, obs=sub.obs[["cell_type"]].copy(), var=sub.var[[]].copy())
b.var["n_cells"] = (x > 0).sum(0).astype("int64")
ad.settings.zarr_write_format = 2
b.write_zarr(out, chunks=(b.n_obs, 5))
h5 = out[: -len(".zarr")] + ".h5ad"
ad.AnnData(obs=b.obs, var=b.var).write_h5ad(h5)
with h5py.File(h5, "a") as f:
    f.create_dataset("X", data=x, chunks=(b.n_obs, 5), compression="gzip")
    f["X"].attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
