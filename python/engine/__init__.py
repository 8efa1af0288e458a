"""engine: a streaming query engine for AnnData, from Python.

>>> import engine
>>> adata = engine.run("pipelines/counts.yaml", params={"out": "results"})  # doctest: +SKIP
>>> engine.sql("SELECT cell_type, count(*) FROM obs GROUP BY 1", data="pbmc.h5ad")  # doctest: +SKIP
>>> view = engine.read("pbmc.h5ad")[lambda obs: obs.cell_type == "B", :]  # doctest: +SKIP

Every call runs in Rust with the GIL released. Pipelines are the YAML or SQL-like text
`engine run` takes (a path, the text itself, or a dict built in Python); results come back
as ``anndata.AnnData``, tables as ``pyarrow.Table``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

from . import _engine
from .errors import (
    DataError,
    EngineError,
    FormatError,
    InternalError,
    PipelineError,
    ResourceError,
    StorageError,
    UnsupportedError,
    UsageError,
)
from ._lazy import Dataset, View, read
from .loader import Loader

__version__: str = _engine.__version__

PipelineLike = Union[str, "os.PathLike[str]", Mapping[str, Any]]

__all__ = [
    "run",
    "explain",
    "check",
    "sql",
    "read",
    "Dataset",
    "View",
    "Loader",
    "EngineError",
    "PipelineError",
    "UsageError",
    "FormatError",
    "UnsupportedError",
    "StorageError",
    "DataError",
    "ResourceError",
    "InternalError",
]

_SQL_START = re.compile(r"^\s*(PARAM|FROM|WITH|WRITE)\b", re.IGNORECASE)


class _Text:
    """A pipeline as the engine takes it: a name for messages, the text, its form, and the
    outputs Python asked to get back in memory (written under ``tmp``, removed after)."""

    def __init__(self, file: str, text: str, sql: bool, tmp: str | None = None):
        self.file, self.text, self.sql, self.tmp = file, text, sql, tmp

    def cleanup(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _looks_like_sql(text: str) -> bool:
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("--"):
            continue
        return bool(_SQL_START.match(s))
    return False


def _pipeline(pipeline: PipelineLike, sql: bool | None, in_memory: bool) -> _Text:
    if isinstance(pipeline, Mapping):
        spec = json.loads(json.dumps(pipeline, default=_json_value))  # a copy; JSON is YAML
        spec.setdefault("version", 1)
        steps = spec.get("steps") or []
        tmp = None
        if in_memory:
            outputs = spec.get("outputs")
            if outputs is None and steps:
                outputs = [{"step": steps[-1].get("id")}]
            for o in outputs or []:
                if isinstance(o, dict) and "path" not in o:
                    tmp = tmp or tempfile.mkdtemp(prefix="engine-")
                    o["path"] = os.path.join(tmp, f"{o.get('step')}.h5ad")
            if outputs is not None:
                spec["outputs"] = outputs
        return _Text("<pipeline dict>", json.dumps(spec, indent=2), False, tmp)
    if isinstance(pipeline, os.PathLike) or (
        isinstance(pipeline, str) and "\n" not in pipeline and os.path.isfile(pipeline)
    ):
        path = Path(pipeline)
        text = path.read_text()
        return _Text(str(path), text, path.suffix == ".sql" if sql is None else sql)
    if isinstance(pipeline, str):
        return _Text("<pipeline>", pipeline, _looks_like_sql(pipeline) if sql is None else sql)
    raise TypeError(
        f"a pipeline is a path, YAML or SQL-like text, or a dict; got {type(pipeline).__name__}"
    )


def _json_value(v):
    """Paths and NumPy scalars in a pipeline built in Python, as JSON."""
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(f"a pipeline value cannot be {type(v).__name__}: {v!r}")


def _params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    out = []
    for k, v in (params or {}).items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        out.append((str(k), os.fspath(v) if isinstance(v, os.PathLike) else str(v)))
    return out


def _limit(memory_limit: int | str | None) -> str | None:
    return None if memory_limit is None else str(memory_limit)


def check(
    pipeline: PipelineLike,
    params: Mapping[str, Any] | None = None,
    *,
    memory_limit: int | str | None = None,
    overwrite: bool = False,
    sql: bool | None = None,
) -> None:
    """Raises what ``run`` would reject, without running: every problem of the pipeline at
    once (:class:`PipelineError` with ``diagnostics``), unknown columns, outputs that would
    replace existing files without ``overwrite``."""
    p = _pipeline(pipeline, sql, in_memory=True)
    try:
        _engine.check(p.file, p.text, p.sql, _params(params), _limit(memory_limit), overwrite)
    finally:
        p.cleanup()


def explain(
    pipeline: PipelineLike,
    params: Mapping[str, Any] | None = None,
    *,
    memory_limit: int | str | None = None,
    disabled_rules: Sequence[str] = (),
    sql: bool | None = None,
) -> str:
    """The logical, optimized and physical plans, as ``engine explain`` prints them."""
    p = _pipeline(pipeline, sql, in_memory=True)
    try:
        return _engine.explain(
            p.file, p.text, p.sql, _params(params), _limit(memory_limit), list(disabled_rules)
        )
    finally:
        p.cleanup()


def _read_output(path: str, fmt: str | None):
    import anndata

    if fmt == "h5ad" or (fmt is None and not path.rstrip("/").endswith(".zarr")):
        return anndata.read_h5ad(path)
    return anndata.read_zarr(path)


def run(
    pipeline: PipelineLike,
    params: Mapping[str, Any] | None = None,
    *,
    memory_limit: int | str | None = None,
    overwrite: bool = False,
    lazy: bool = False,
    sql: bool | None = None,
    client=None,
):
    """Runs a pipeline and returns its outputs as ``anndata.AnnData``.

    ``pipeline`` is a path (``.yaml``/``.yml``, or ``.sql`` for the SQL-like form), pipeline
    text, or a dict with the YAML form's keys. In a dict, an output without ``path`` (or, with
    no ``outputs`` at all, the last step) is returned in memory and leaves no file behind.

    Returns the single output, or a dict by step id (by path when a step is written twice).
    With ``lazy=True`` outputs written to files come back as :class:`Dataset` handles.
    ``memory_limit`` takes bytes or a size like ``"2G"``; ``overwrite`` replaces existing
    outputs (files and zarr stores only), as ``engine run --overwrite``.

    With ``client`` (a ``dask.distributed.Client``), the passes over X that can leave the
    process run on its workers, each reading its own rows of the input (see
    ``engine._dask``); the rest runs here. The result equals the in-process run's.
    """
    distributor = None
    if client is not None:
        from ._dask import DaskDistributor

        d = DaskDistributor(client)
        distributor = (d, d.tasks)
    p = _pipeline(pipeline, sql, in_memory=True)
    try:
        report = _engine.run(
            p.file,
            p.text,
            p.sql,
            _params(params),
            _limit(memory_limit),
            overwrite,
            [],
            distributor,
        )
        results: dict[str, Any] = {}
        for o in report["outputs"]:
            temporary = p.tmp is not None and o["path"].startswith(p.tmp)
            if lazy and not temporary:
                value = read(o["path"])
            else:
                # Read whole into memory: a temporary is removed below.
                value = _read_output(o["path"], o["format"])
            key = o["step"] if o["step"] not in results else o["path"]
            results[key] = value
    finally:
        p.cleanup()
    if len(results) == 1:
        return next(iter(results.values()))
    return results


def sql(query: str, data: str | os.PathLike | Sequence[Any] | Mapping[str, Any]):
    """Runs a read-only SQL query over obs/var tables and returns a ``pyarrow.Table``.

    ``data`` names the datasets: a path (the table prefix is the file stem), a list of paths,
    or ``{name: path}``; a glob is one dataset of all its files. Each dataset gives tables
    ``<name>.obs`` and ``<name>.var`` (and ``obs``/``var`` when there is only one).
    """
    import pyarrow as pa

    if isinstance(data, Mapping):
        pairs = [(str(k), os.fspath(v)) for k, v in data.items()]
    elif isinstance(data, (str, os.PathLike)):
        pairs = [(None, os.fspath(data))]
    else:
        pairs = [(None, os.fspath(d)) for d in data]
    stream = _engine.sql(query, pairs)
    return pa.RecordBatchReader.from_stream(stream).read_all()
