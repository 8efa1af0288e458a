"""Minibatches of a preshuffled collection for training, as annbatch's ``Loader`` draws them."""

from __future__ import annotations

import os
import re
from typing import Iterator, Sequence

import numpy as np

from . import _engine
from ._lazy import _sparse


def _convert(x, to: str):
    if to == "numpy":
        return x
    if to == "torch":
        import torch

        if isinstance(x, np.ndarray):
            return torch.from_numpy(x)
        x = x.tocsr()
        return torch.sparse_csr_tensor(
            torch.from_numpy(x.indptr.astype(np.int64)),
            torch.from_numpy(x.indices.astype(np.int64)),
            torch.from_numpy(x.data),
            size=x.shape,
        )
    if to == "jax":
        import jax.numpy as jnp

        if isinstance(x, np.ndarray):
            return jnp.asarray(x)
        from jax.experimental import sparse as jsparse

        x = x.tocsr()
        return jsparse.BCSR((x.data, x.indices, x.indptr), shape=x.shape)
    raise ValueError(f"to= is 'numpy', 'torch' or 'jax', not {to!r}")


class Loader:
    """Random minibatches of a collection ``engine.run`` preshuffled (or annbatch wrote).

    Chunk-then-shuffle, as annbatch: the rows are cut into slices of ``chunk_size``
    contiguous cells whose order is shuffled; ``preload_nchunks`` slices at a time are read
    with large sequential reads (the datasets in parallel, off the GIL), their cells permuted
    in memory and cut into batches of ``batch_size``. Every cell comes once per epoch; each
    ``iter()`` is a new epoch, seeded by ``seed`` and the epoch number.

    Each batch is a dict: ``X`` (NumPy, scipy CSR, or the ``to=`` framework's tensor),
    ``obs`` (the batch's rows of ``obs_keys``, or ``None``) and ``index`` (positions in the
    collection).
    """

    def __init__(
        self,
        collection: str | os.PathLike,
        batch_size: int = 1,
        chunk_size: int = 512,
        preload_nchunks: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        to: str = "numpy",
        obs_keys: Sequence[str] | None = None,
        drop_last: bool = False,
    ):
        if to not in ("numpy", "torch", "jax"):
            raise ValueError(f"to= is 'numpy', 'torch' or 'jax', not {to!r}")
        self.collection = os.fspath(collection)
        self.batch_size, self.chunk_size = batch_size, chunk_size
        self.preload_nchunks, self.shuffle, self.seed = preload_nchunks, shuffle, seed
        self.to, self.drop_last = to, drop_last
        self.obs_keys = list(obs_keys) if obs_keys else None
        self._epoch = 0
        # Opening checks the collection and the arguments now (metadata only, nothing read).
        first = self._batches(0)
        self.n_obs, self.n_vars = first.n_obs, first.n_vars
        self._next = first
        self._obs = None

    def _batches(self, epoch: int):
        # Each epoch's seed is drawn from (seed, epoch), so no two (seed, epoch) share one.
        seed = int(np.random.SeedSequence([self.seed, epoch]).generate_state(1, np.uint64)[0])
        return _engine.Batches(
            self.collection,
            self.batch_size,
            self.chunk_size,
            self.preload_nchunks,
            self.shuffle,
            self.drop_last,
            seed,
        )

    def _collection_obs(self):
        if self._obs is None:
            import pandas as pd

            from ._lazy import Dataset

            names = sorted(
                (n for n in os.listdir(self.collection) if re.fullmatch(r"dataset_\d+", n)),
                key=lambda n: int(n.split("_")[1]),
            )
            frames = [
                Dataset(os.path.join(self.collection, n)).obs[self.obs_keys] for n in names
            ]
            self._obs = pd.concat(frames) if frames else None
        return self._obs

    def __len__(self) -> int:
        full, rest = divmod(self.n_obs, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[dict]:
        epoch = self._epoch
        self._epoch += 1
        batches = self._next if self._next is not None else self._batches(epoch)
        self._next = None
        obs = self._collection_obs() if self.obs_keys else None
        for x, index in batches:
            x = _sparse(x) if isinstance(x, tuple) else x
            yield {
                "X": _convert(x, self.to),
                "obs": None if obs is None else obs.iloc[index],
                "index": index,
            }
