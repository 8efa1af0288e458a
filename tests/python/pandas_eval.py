"""The oracle for `engine sql` tests: evaluates a Python expression over a dataset read by
anndata and prints the result as JSON.

Usage: pandas_eval.py PATH EXPR     (EXPR sees `a` (AnnData), `pd`, `np`)
       pandas_eval.py --table FILE  (prints a .csv/.json/.parquet result as JSON records)
"""

import json
import sys
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

if sys.argv[1] == "--table":
    f = sys.argv[2]
    if f.endswith(".csv"):
        df = pd.read_csv(f)
    elif f.endswith(".json"):
        df = pd.read_json(f, lines=True)
    else:
        df = pd.read_parquet(f)
    print(df.to_json(orient="records"))
else:
    import anndata as ad

    path = sys.argv[1]
    a = ad.read_zarr(path) if ".zarr" in path else ad.read_h5ad(path)
    value = eval(sys.argv[2])
    print(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
