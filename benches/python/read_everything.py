"""Reads every element of an AnnData file into memory with anndata (what `engine validate`
reads, for comparison). Usage: FILE"""

import sys
import warnings

import anndata as ad

warnings.filterwarnings("ignore")
a = ad.read_h5ad(sys.argv[1]) if sys.argv[1].endswith(".h5ad") else ad.read_zarr(sys.argv[1])
print(a.shape)
