"""Writes a Cell Ranger 3 style HDF5 (/matrix, features/, int32 counts, CSC genes x cells) of
N_CELLS cells x N_GENES genes plus 2 antibody features, about NNZ_PER_CELL counts per cell.

Usage: make_tenx.py OUT.h5 N_CELLS N_GENES NNZ_PER_CELL
"""

import sys

import h5py
import numpy as np

out, n_cells, n_genes, per_cell = sys.argv[1], *map(int, sys.argv[2:5])
rng = np.random.default_rng(0)
n_features = n_genes + 2
counts = rng.poisson(per_cell, n_cells).clip(1, n_features)
indptr = np.zeros(n_cells + 1, dtype=np.int64)
np.cumsum(counts, out=indptr[1:])
indices = np.empty(indptr[-1], dtype=np.int64)
for c in range(n_cells):
    indices[indptr[c] : indptr[c + 1]] = np.sort(rng.choice(n_features, counts[c], replace=False))
data = rng.geometric(0.4, indptr[-1]).astype(np.int32)
with h5py.File(out, "w") as f:
    g = f.create_group("matrix")
    g["barcodes"] = np.array([f"{i:016d}-1".encode() for i in range(n_cells)])
    g.create_dataset("data", data=data, chunks=(1 << 16,), compression="gzip", compression_opts=4)
    g.create_dataset("indices", data=indices, chunks=(1 << 16,), compression="gzip", compression_opts=4)
    g.create_dataset("indptr", data=indptr, chunks=(min(1 << 16, n_cells + 1),), compression="gzip", compression_opts=4)
    g["shape"] = np.array([n_features, n_cells], dtype=np.int32)
    ft = g.create_group("features")
    ft["_all_tag_keys"] = np.array([b"genome"])
    ft["id"] = np.array([f"ENSG{j:011d}".encode() for j in range(n_genes)] + [b"CD3", b"CD19"])
    ft["name"] = np.array([f"GENE{j}".encode() for j in range(n_genes)] + [b"CD3", b"CD19"])
    ft["feature_type"] = np.array([b"Gene Expression"] * n_genes + [b"Antibody Capture"] * 2)
    ft["genome"] = np.array([b"GRCh38"] * n_genes + [b""] * 2)
