"""Prints the sparse matrices of an AnnData file whose indices scipy finds unsorted within a
row (CSR) or column (CSC), one element path per line (`X`, `layers/counts`, `raw/X`).

Usage: unsorted_indices.py FILE
"""

import sys
import warnings

import scipy.sparse as sp

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from compare import read  # noqa: E402

warnings.filterwarnings("ignore")
a = read(sys.argv[1])
found = {"X": a.X}
for slot in ["layers", "obsm", "obsp", "varm", "varp"]:
    for k, v in getattr(a, slot).items():
        found[f"{slot}/{k}"] = v
if a.raw is not None:
    found["raw/X"] = a.raw.X
for path, m in sorted(found.items()):
    # has_sorted_indices is computed from the data (strictly increasing within each row).
    if sp.issparse(m) and not m.has_sorted_indices:
        print(path)
