"""scanpy's way: read_10x_h5 (Gene Expression only), then write_h5ad. Usage: IN.h5 OUT.h5ad"""

import sys
import warnings

import scanpy as sc

warnings.filterwarnings("ignore")
# Strings stay strings, as in scanpy's object: the comparison is with what it read.
sc.read_10x_h5(sys.argv[1]).write_h5ad(sys.argv[2], convert_strings_to_categoricals=False)
