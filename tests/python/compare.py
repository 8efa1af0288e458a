"""Asserts two AnnData files hold the same object as Python anndata sees it.

Usage: compare.py EXPECTED ACTUAL [--x-values-only] [--no-raw]

--x-values-only compares X by value whether stored sparse or dense (anndata 0.6 wrote zarr X
dense); --no-raw skips raw (for outputs that do not write it); --slots=obs,var,uns compares
only those of obs, var, X, layers, obsm, varm, obsp, varp, uns, raw.

Compares element keys, shapes, dtypes, values (exactly, NaN-aware), sparse formats, obs/var
column dtypes (categories, ordered flags, nullable dtypes) and uns recursively (but for
uns['engine'], the provenance engine records in its outputs). Prints every
difference and exits 1 if there is any.
"""

import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.filterwarnings("ignore")
try:
    import hdf5plugin  # noqa: F401  (Blosc-compressed h5ad)
except ImportError:
    pass

problems: list[str] = []


def read(p: str) -> ad.AnnData:
    path = Path(p)
    if path.suffix == ".h5ad":
        return ad.read_h5ad(path)
    if path.suffix == ".zip":
        import zarr

        return ad.read_zarr(zarr.storage.ZipStore(path, mode="r"))
    return ad.read_zarr(path)


def eq_array(where, a, b):
    if sp.issparse(a) or sp.issparse(b):
        if not (sp.issparse(a) and sp.issparse(b)):
            problems.append(f"{where}: sparse vs dense ({type(a).__name__} / {type(b).__name__})")
            return
        if a.format != b.format:
            problems.append(f"{where}: format {a.format} != {b.format}")
        if a.shape != b.shape or a.dtype != b.dtype:
            problems.append(f"{where}: shape/dtype {a.shape} {a.dtype} != {b.shape} {b.dtype}")
            return
        if (a != b).nnz:
            problems.append(f"{where}: values differ")
        return
    if isinstance(a, pd.DataFrame):
        eq_frame(where, a, b)
        return
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.names is not None or b.dtype.names is not None:
        # Record arrays (rec-array): the same fields in order, each equal.
        if a.dtype.names != b.dtype.names:
            problems.append(f"{where}: record fields {a.dtype.names} != {b.dtype.names}")
            return
        for name in a.dtype.names:
            eq_array(f"{where}.{name}", a[name], b[name])
        return
    if a.shape != b.shape:
        problems.append(f"{where}: shape {a.shape} != {b.shape}")
        return
    if a.dtype != b.dtype and not (a.dtype.kind in "OUT" and b.dtype.kind in "OUT"):
        problems.append(f"{where}: dtype {a.dtype} != {b.dtype}")
        return
    if a.dtype.kind == "f":
        ok = np.array_equal(a, b, equal_nan=True)
    else:
        ok = np.array_equal(a, b)
    if not ok:
        problems.append(f"{where}: values differ: {a.ravel()[:5]} vs {b.ravel()[:5]}")


def eq_frame(where, a: pd.DataFrame, b: pd.DataFrame):
    if list(a.columns) != list(b.columns):
        problems.append(f"{where}: columns {list(a.columns)} != {list(b.columns)}")
        return
    if not a.index.equals(b.index):
        problems.append(f"{where}: index differs: {list(a.index[:3])} vs {list(b.index[:3])}")
    if a.index.name != b.index.name:
        problems.append(f"{where}: index name {a.index.name!r} != {b.index.name!r}")
    for c in a.columns:
        x, y = a[c], b[c]
        plain = {"object", "str"}
        if str(x.dtype) != str(y.dtype) and not ({str(x.dtype), str(y.dtype)} <= plain and x.map(type).eq(str).all()):
            problems.append(f"{where}.{c}: dtype {x.dtype} != {y.dtype}")
            continue
        if isinstance(x.dtype, pd.CategoricalDtype):
            if list(x.cat.categories) != list(y.cat.categories) or x.cat.ordered != y.cat.ordered:
                problems.append(f"{where}.{c}: categories differ")
            if x.cat.categories.dtype != y.cat.categories.dtype:
                problems.append(f"{where}.{c}: category dtype {x.cat.categories.dtype} != {y.cat.categories.dtype}")
        if str(x.dtype) != str(y.dtype):
            same = list(x) == list(y)
        else:
            same = x.equals(y)
        if not same:
            problems.append(f"{where}.{c}: values differ")


def eq_mapping(where, a, b):
    ka, kb = sorted(a.keys()), sorted(b.keys())
    if ka != kb:
        problems.append(f"{where}: keys {ka} != {kb}")
    for k in set(ka) & set(kb):
        eq_value(f"{where}/{k}", a[k], b[k])


def eq_value(where, a, b):
    if a is None or b is None:
        if a is not b:
            problems.append(f"{where}: {a!r} != {b!r}")
    elif isinstance(a, dict):
        if not isinstance(b, dict):
            problems.append(f"{where}: dict vs {type(b).__name__}")
            return
        eq_mapping(where, a, b)
    elif isinstance(a, str) or isinstance(b, str):
        if a != b:
            problems.append(f"{where}: {a!r} != {b!r}")
    elif np.isscalar(a) or isinstance(a, np.generic):
        if type(a) is not type(b) or a != b:
            problems.append(f"{where}: {a!r} ({type(a).__name__}) != {b!r} ({type(b).__name__})")
    elif type(a).__module__.startswith("awkward"):
        import awkward as ak

        if ak.to_list(a) != ak.to_list(b) or str(a.type) != str(b.type):
            problems.append(f"{where}: awkward arrays differ: {a.type} vs {b.type}")
    else:
        eq_array(where, a, b)


def main(exp_path, act_path, flags=()):
    e, a = read(exp_path), read(act_path)
    slots = {"obs", "var", "X", "layers", "obsm", "varm", "obsp", "varp", "uns", "raw"}
    for f in flags:
        if f.startswith("--slots="):
            slots = set(f.removeprefix("--slots=").split(","))
    if "--no-raw" in flags:
        slots.discard("raw")
    if "--x-values-only" in flags:
        for obj in (e, a):
            if sp.issparse(obj.X):
                obj.X = obj.X.toarray()
    if e.shape != a.shape:
        problems.append(f"shape {e.shape} != {a.shape}")
    if "obs" in slots:
        eq_frame("obs", e.obs, a.obs)
    if "var" in slots:
        eq_frame("var", e.var, a.var)
    if "X" not in slots:
        pass
    elif (e.X is None) != (a.X is None):
        problems.append("X present in one only")
    elif e.X is not None:
        eq_array("X", e.X, a.X)
    for slot in ["layers", "obsm", "varm", "obsp", "varp"]:
        if slot not in slots:
            continue
        me, ma = getattr(e, slot), getattr(a, slot)
        eq_mapping(slot, {k: me[k] for k in me.keys() if k is not None}, {k: ma[k] for k in ma.keys() if k is not None})
    if "uns" in slots:
        # uns['engine'] records what made a file (version, pipeline hash), not its data.
        strip = lambda u: {k: v for k, v in u.items() if k != "engine"}
        eq_mapping("uns", strip(e.uns), strip(a.uns))
    if "raw" not in slots:
        pass
    elif (e.raw is None) != (a.raw is None):
        problems.append("raw present in one only")
    elif e.raw is not None:
        eq_array("raw/X", e.raw.X, a.raw.X)
        eq_frame("raw/var", e.raw.var, a.raw.var)
    if problems:
        print(f"{act_path} differs from {exp_path}:")
        for p in problems:
            print("  " + p)
        sys.exit(1)
    print(f"{act_path}: identical to {exp_path}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
