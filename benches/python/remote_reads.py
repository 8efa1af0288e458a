"""Remote reads of the tutorial's store by the Python references, as the tutorial does them.

    remote_reads.py dask|lazy|h5py URL gene NAME | genes THRESHOLD | celltype TYPE

dask: zarr.open_consolidated over HTTP (fsspec) and dask.array.from_zarr, as the tutorial's
read_dispatched does; lazy: anndata.experimental.read_lazy on an obstore HTTPStore; h5py: the
.h5ad over fsspec's HTTP file (1 MiB blocks) opened by h5py, obs/var by anndata's read_elem,
X sliced by h5py (a cell type: X read whole, then subset). Prints the seconds after imports
and the result's shape.
"""

import sys
import time

import anndata as ad
import dask.array as da
import numpy as np
import zarr

mode, url, case, arg = sys.argv[1:5]
t = time.perf_counter()
if mode == "dask":
    g = zarr.open_consolidated(url, mode="r")
    var = ad.io.read_elem(g["var"])
    X = da.from_zarr(g["X"])
    if case == "gene":
        out = X[:, np.flatnonzero(var.index == arg)].compute()
    elif case == "genes":
        out = X[:, np.flatnonzero(var["n_cells"].to_numpy() > int(arg))].compute()
    else:
        obs = ad.io.read_elem(g["obs"])
        out = X[np.flatnonzero(obs["cell_type"].to_numpy() == arg), :].compute()
elif mode == "h5py":
    import fsspec
    import h5py

    f = h5py.File(fsspec.open(url, "rb", block_size=1 << 20).open(), "r")
    var = ad.io.read_elem(f["var"])
    X = f["X"]
    if case == "gene":
        out = X[:, np.flatnonzero(var.index == arg)]
    elif case == "genes":
        out = X[:, np.flatnonzero(var["n_cells"].to_numpy() > int(arg))]
    else:
        obs = ad.io.read_elem(f["obs"])
        out = X[:][np.flatnonzero(obs["cell_type"].to_numpy() == arg)]
else:
    from obstore.store import HTTPStore
    from zarr.storage import ObjectStore

    store = ObjectStore(HTTPStore.from_url(url, client_options={"allow_http": True}), read_only=True)
    a = ad.experimental.read_lazy(store)
    if case == "gene":
        v = a[:, [arg]]
    elif case == "genes":
        v = a[:, (a.var["n_cells"] > int(arg)).to_numpy()]
    else:
        v = a[(a.obs["cell_type"] == arg).to_numpy()]
    out = v.X.compute() if hasattr(v.X, "compute") else v.X
print(f"{time.perf_counter() - t:.3f} {out.shape}")
