"""Python reference readers for the read-throughput benchmark.

Usage: read_throughput.py READER FILE [BLOCK_ROWS]
READER: anndata (backed h5ad), h5py (h5ad), zarr (zarr-python, for zarr stores).
Reads X by row blocks and prints JSON like the engine's reader.
"""

import json
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")
reader, path = sys.argv[1], sys.argv[2]
block = int(sys.argv[3]) if len(sys.argv) > 3 else 4096
t0 = time.perf_counter()
nbytes, blocks, checksum = 0, 0, 0.0

if reader == "h5py":
    import h5py

    x = h5py.File(path, "r")["X"]
    get = lambda a, b: x[a:b]
    n = x.shape[0]
elif reader == "zarr":
    import zarr

    x = zarr.open(path, mode="r")["X"]
    get = lambda a, b: x[a:b]
    n = x.shape[0]
elif reader == "anndata":
    import anndata as ad

    a = ad.read_h5ad(path, backed="r")
    get = lambda s, e: a.X[s:e]
    n = a.shape[0]
else:
    sys.exit(f"unknown reader {reader}")

for s in range(0, n, block):
    v = np.asarray(get(s, min(s + block, n)))
    nbytes += v.nbytes
    checksum += float(v[:, 0].sum())
    blocks += 1
secs = time.perf_counter() - t0
print(json.dumps({"reader": reader, "seconds": secs, "bytes": nbytes, "gb_per_s": nbytes / secs / 1e9, "blocks": blocks, "checksum": checksum}))
