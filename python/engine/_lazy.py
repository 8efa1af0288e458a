"""Lazy datasets and views: ``engine.read(path)[rows, cols]`` reads nothing until
``.to_memory()`` (which streams the selection through the engine, pushing it into the
reads) or until dask computes ``.to_dask()``'s chunks."""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import numpy as np

from . import _engine


def _sparse(parts):
    """A scipy sparse matrix from the parts ``_engine`` returns, without copying them."""
    import scipy.sparse as sp

    fmt, data, indices, indptr, shape = parts
    cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
    return cls((data, indices, indptr), shape=shape, copy=False)


def _block(result):
    return _sparse(result) if isinstance(result, tuple) else result


def _frame(handle, axis: str):
    import pyarrow as pa

    table = pa.RecordBatchReader.from_stream(handle.frame(axis)).read_all()
    df = table.to_pandas()
    index = table.schema.names[0]
    df = df.set_index(index)
    # anndata stores an unnamed index as `_index`.
    df.index.name = None if index == "_index" else index
    for field in table.schema:
        meta = field.metadata or {}
        if meta.get(b"ordered") == b"true" and hasattr(df[field.name], "cat"):
            df[field.name] = df[field.name].cat.as_ordered()
    return df


def _positions(key: Any, n: int, frame: Callable[[], Any]) -> np.ndarray | None:
    """Positions an anndata-style index selects on an axis of length ``n`` (``None``: all)."""
    import pandas as pd

    if key is None or (isinstance(key, slice) and key == slice(None)):
        return None
    if callable(key):
        key = key(frame())
    if isinstance(key, slice):
        return np.arange(n)[key]
    if isinstance(key, (bool, np.bool_)):
        raise IndexError("a single boolean is not an index; use a mask of one per row")
    if isinstance(key, (int, np.integer)):
        if not -n <= int(key) < n:
            raise IndexError(f"position {key} is out of range for {n}")
        return np.array([int(key) % n])
    if isinstance(key, str):
        key = [key]
    if isinstance(key, (pd.Series, pd.Index)):
        if pd.api.types.is_bool_dtype(key.dtype):
            if key.isna().any():
                raise IndexError("a boolean mask with missing values selects nothing definite")
            key = key.to_numpy(dtype=bool)
        else:
            key = key.to_numpy()
    arr = np.asarray(key)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise IndexError(f"a boolean mask needs {n} values, got {arr.shape[0]}")
        return np.flatnonzero(arr)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.mod(arr, 1) == 0):
            raise IndexError("positions must be whole numbers")
        arr = arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.int64).ravel()
        bad = (arr < -n) | (arr >= n)
        if bad.any():
            raise IndexError(f"position {arr[bad][0]} is out of range for {n}")
        return arr % n
    index = frame().index
    if not index.is_unique:
        raise KeyError("names are not unique on this axis; select by position or mask")
    found = index.get_indexer(arr.ravel())
    if (found < 0).any():
        missing = arr.ravel()[found < 0]
        raise KeyError(f"not found: {list(missing[:5])}")
    return found.astype(np.int64)


def _runs(positions: np.ndarray) -> list[tuple[int, int]]:
    """Sorted unique positions as ``(start, stop)`` runs."""
    if positions.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = np.concatenate([[positions[0]], positions[breaks]])
    stops = np.concatenate([positions[breaks - 1], [positions[-1]]]) + 1
    return list(zip(starts.tolist(), stops.tolist()))


def _index_expr(positions: np.ndarray) -> str:
    """Sorted unique positions as the engine's index expression (``"0:10, 12, 20:30"``)."""
    return ", ".join(f"{a}" if b == a + 1 else f"{a}:{b}" for a, b in _runs(positions))


class _Element:
    """A matrix element as an array-like dask can chunk: ``shape``, ``dtype``, ``ndim`` and
    ``__getitem__`` by slices, each read through the engine."""

    def __init__(self, path: str, element: str, handle=None):
        handle = handle if handle is not None else _engine.Dataset(path)
        info = handle.matrix_info(element)
        self._handle, self.path, self.element = handle, path, element
        self.shape = tuple(info["shape"])
        self.ndim = len(self.shape)
        self.dtype = np.dtype(info["dtype"])
        self.format = info["format"]
        self.nnz = info["nnz"]
        self.storage_chunks = tuple(info["chunks"]) if info["chunks"] else None

    def __reduce__(self):
        # Workers of a dask.distributed cluster open the file themselves.
        return (_Element, (self.path, self.element))

    @staticmethod
    def _axis(key, n):
        """Sorted runs to read, and how to reorder what they give (``None``: as read), or
        the position of a single index (the axis dropped)."""
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                return [(start, max(start, stop))], None, False
            key = np.arange(start, stop, step)
        scalar = np.ndim(key) == 0
        pos = np.atleast_1d(np.asarray(key, dtype=np.int64))
        if ((pos < -n) | (pos >= n)).any():
            raise IndexError(f"index out of range for {n}")
        pos = pos % n
        uniq, inverse = np.unique(pos, return_inverse=True)
        same = len(uniq) == len(pos) and (uniq == pos).all()
        return _runs(uniq), (None if same else inverse), scalar

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            key = (key, slice(None))
        rows, cols = key
        row_runs, row_order, row_scalar = self._axis(rows, self.shape[0])
        col_runs, col_order, col_scalar = self._axis(cols, self.shape[1])
        out = _block(self._handle.read(self.element, row_runs, col_runs))
        if row_order is not None:
            out = out[row_order]
        if col_order is not None:
            out = out[:, col_order]
        if row_scalar or col_scalar:
            # A single index drops its axis, as NumPy's does.
            out = out.toarray() if hasattr(out, "toarray") else np.asarray(out)
            out = out[0 if row_scalar else slice(None), 0 if col_scalar else slice(None)]
        return out

    def dask_chunks(self, target_bytes: int = 64 << 20):
        """Chunks for dask: whole storage chunks (dense), or row blocks of about
        ``target_bytes`` of values and indices (sparse)."""
        from dask.array.core import normalize_chunks

        if self.format is None:
            return normalize_chunks(
                "auto",
                self.shape,
                dtype=self.dtype,
                previous_chunks=self.storage_chunks,
                limit=target_bytes,
            )
        # Blocks along the compressed axis: a CSC matrix is read by columns.
        major = 0 if self.format == "csr" else 1
        n = self.shape[major]
        per_line = max(1.0, (self.nnz or 0) / max(1, n)) * (self.dtype.itemsize + 4)
        lines = max(1, min(n, int(target_bytes // per_line)))
        block = (lines, self.shape[1]) if major == 0 else (self.shape[0], lines)
        return normalize_chunks(block, self.shape)


class Dataset:
    """A dataset opened lazily (``.h5ad``, ``.zarr``, 10x output, or a URL).

    ``obs`` and ``var`` are read on first use; ``ds[rows, cols]`` is a :class:`View` taking
    what anndata's views take: slices, positions, boolean masks, names, or a function of
    ``obs`` (``ds[lambda obs: obs.cell_type == "B"]``).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._handle = _engine.Dataset(self.path)

    @property
    def shape(self) -> tuple[int, int]:
        return self._handle.shape

    @property
    def n_obs(self) -> int:
        return self.shape[0]

    @property
    def n_vars(self) -> int:
        return self.shape[1]

    @functools.cached_property
    def obs(self):
        """obs as a ``pandas.DataFrame`` (categoricals kept)."""
        return _frame(self._handle, "obs")

    @functools.cached_property
    def var(self):
        """var as a ``pandas.DataFrame``."""
        return _frame(self._handle, "var")

    @property
    def obs_names(self):
        return self.obs.index

    @property
    def var_names(self):
        return self.var.index

    def keys(self, group: str) -> list[str]:
        """Element names under ``group`` (``"obsm"``, ``"layers"``, ``"uns"``, …)."""
        return self._handle.keys(group) if self._handle.has(group) else []

    def __getitem__(self, key) -> "View":
        return View(self, None, None)[key]

    def __len__(self) -> int:
        return self.n_obs

    def __repr__(self) -> str:
        return f"engine.Dataset({self.path!r}) with n_obs × n_vars = {self.n_obs} × {self.n_vars}"

    def element(self, element: str = "X") -> _Element:
        """A matrix element (``X``, ``layers/counts``, ``obsm/X_pca``, ``raw/X``) as an
        array-like read through the engine."""
        return _Element(self.path, element, self._handle)

    def to_dask(self, element: str = "X", target_bytes: int = 64 << 20):
        """The element as a dask array whose chunks are whole storage chunks."""
        import dask.array as da
        import scipy.sparse as sp
        from dask.base import tokenize

        e = self.element(element)
        chunks = e.dask_chunks(target_bytes)
        meta = None
        if e.format is not None:
            cls = sp.csr_matrix if e.format == "csr" else sp.csc_matrix
            meta = cls((0, 0), dtype=e.dtype)
        try:
            stamp = os.stat(self.path).st_mtime_ns
        except OSError:  # a URL
            stamp = None
        return da.from_array(
            e,
            chunks=chunks,
            asarray=False,
            fancy=False,
            meta=meta,
            name="engine-" + tokenize(self.path, stamp, element, chunks),
        )

    def to_memory(self):
        """The whole dataset as ``anndata.AnnData``."""
        return View(self, None, None).to_memory()


class View:
    """``dataset[rows, cols]``: positions on each axis (``None``: all), nothing read yet."""

    def __init__(self, dataset: Dataset, rows: np.ndarray | None, cols: np.ndarray | None):
        self.dataset, self._rows, self._cols = dataset, rows, cols

    @property
    def shape(self) -> tuple[int, int]:
        n, m = self.dataset.shape
        return (n if self._rows is None else len(self._rows), m if self._cols is None else len(self._cols))

    @property
    def obs(self):
        obs = self.dataset.obs
        return obs if self._rows is None else obs.iloc[self._rows]

    @property
    def var(self):
        var = self.dataset.var
        return var if self._cols is None else var.iloc[self._cols]

    @property
    def obs_names(self):
        return self.obs.index

    @property
    def var_names(self):
        return self.var.index

    def __getitem__(self, key) -> "View":
        if not isinstance(key, tuple):
            key = (key, slice(None))
        if len(key) != 2:
            raise IndexError("a view takes [rows] or [rows, cols]")
        rk, ck = key
        n, m = self.shape
        rows = _positions(rk, n, lambda: self.obs)
        cols = _positions(ck, m, lambda: self.var)
        new_rows = self._rows if rows is None else (rows if self._rows is None else self._rows[rows])
        new_cols = self._cols if cols is None else (cols if self._cols is None else self._cols[cols])
        return View(self.dataset, new_rows, new_cols)

    def __repr__(self) -> str:
        return f"View of {self.dataset!r}: {self.shape[0]} × {self.shape[1]}"

    def to_dask(self, element: str = "X"):
        """The view's cells of the element as a dask array, and its genes too where the
        element has one column per gene (X, layers); obsm and raw keep their columns."""
        x = self.dataset.to_dask(element)
        if self._rows is not None:
            x = x[self._rows]
        per_gene = element == "X" or element.startswith("layers/")
        if self._cols is not None and per_gene:
            x = x[:, self._cols]
        return x

    def to_memory(self):
        """The view as ``anndata.AnnData``: every element's selected cells and genes, read by
        the engine with the selection pushed into the reads. Equal to
        ``anndata.read_h5ad(path)[rows, cols]``, in the order the view asked for, layers and
        ``raw`` (its rows only, all of its genes) included."""
        import anndata

        select: dict[str, str] = {}
        orders = []
        for axis, pos in (("obs", self._rows), ("var", self._cols)):
            if pos is None:
                orders.append(None)
                continue
            uniq, inverse = np.unique(pos, return_inverse=True)
            select[axis] = _index_expr(uniq)
            identity = len(uniq) == len(pos) and (inverse == np.arange(len(pos))).all()
            orders.append(None if identity else inverse)
        adata = self._run({}, select)
        # A layer or raw.X is X of its own read: one run each, the same cells selected.
        for name in self.dataset.keys("layers"):
            adata.layers[name] = self._run({"layer": name}, select).X
        if self.dataset._handle.has("raw/X"):
            raw = self._run({"use_raw": True}, {k: v for k, v in select.items() if k == "obs"})
            adata.raw = anndata.AnnData(raw.X, obs=adata.obs[[]], var=raw.var)
        rows, cols = orders
        if rows is not None or cols is not None:
            adata = adata[
                slice(None) if rows is None else rows, slice(None) if cols is None else cols
            ].copy()
        return adata

    def _run(self, read: dict[str, Any], select: dict[str, str]):
        """Reads (``read``'s extra parameters: a layer, raw) and selects, in memory."""
        from . import run

        steps: list[dict] = [{"id": "data", "op": "read", "path": self.dataset.path, **read}]
        if select:
            steps.append({"id": "view", "op": "select", "input": "data", **select})
        adata = run({"version": 1, "steps": steps, "outputs": [{"step": steps[-1]["id"]}]})
        # The run's provenance is not part of the data a view holds.
        if "engine" not in self.dataset.keys("uns"):
            adata.uns.pop("engine", None)
        return adata


def read(path: str | os.PathLike) -> Dataset:
    """Opens a dataset lazily; see :class:`Dataset`."""
    return Dataset(path)
