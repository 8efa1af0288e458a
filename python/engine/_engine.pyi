"""Types of the compiled module; the public API is in ``engine``."""

from typing import Any, Callable, Optional, Sequence

import numpy as np

__version__: str

SparseParts = tuple[str, np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]

def check(
    file: str,
    text: str,
    sql: bool,
    params: Sequence[tuple[str, str]],
    memory_limit: Optional[str] = None,
    overwrite: bool = False,
) -> None: ...
def explain(
    file: str,
    text: str,
    sql: bool,
    params: Sequence[tuple[str, str]],
    memory_limit: Optional[str] = None,
    disabled_rules: Sequence[str] = ...,
) -> str: ...
def run(
    file: str,
    text: str,
    sql: bool,
    params: Sequence[tuple[str, str]],
    memory_limit: Optional[str] = None,
    overwrite: bool = False,
    disabled_rules: Sequence[str] = ...,
    distributor: Optional[tuple[Callable[[bytes, list[bytes]], list[bytes]], int]] = None,
) -> dict[str, Any]: ...
def run_task(lineage: bytes, task: bytes) -> bytes: ...
def merge_results(a: bytes, b: bytes) -> bytes: ...
def sql(query: str, data: Sequence[tuple[Optional[str], str]]) -> ArrowStream: ...

class ArrowStream:
    def __arrow_c_stream__(self, requested_schema: object = None) -> object: ...

class Dataset:
    def __init__(self, path: str) -> None: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    def keys(self, group: str) -> list[str]: ...
    def has(self, element: str) -> bool: ...
    def frame(self, axis: str, columns: Optional[Sequence[str]] = None) -> ArrowStream: ...
    def matrix_info(self, element: str) -> dict[str, Any]: ...
    def read(
        self,
        element: str,
        rows: Optional[Sequence[tuple[int, int]]] = None,
        cols: Optional[Sequence[tuple[int, int]]] = None,
    ) -> np.ndarray | SparseParts: ...

class Batches:
    n_obs: int
    n_vars: int
    def __init__(
        self,
        path: str,
        batch_size: int,
        chunk_size: int,
        preload_nchunks: int,
        shuffle: bool,
        drop_last: bool,
        seed: int,
    ) -> None: ...
    def __iter__(self) -> "Batches": ...
    def __next__(self) -> tuple[np.ndarray | SparseParts, np.ndarray]: ...
