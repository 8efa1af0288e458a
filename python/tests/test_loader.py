"""engine.Loader over a collection the engine preshuffled, against anndata's reading of it."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import engine


@pytest.fixture(scope="module")
def collection(counts, tmp_path_factory):
    path = tmp_path_factory.mktemp("coll") / "coll.zarr"
    engine.run(
        {
            "steps": [
                {"id": "data", "op": "read", "path": str(counts)},
                {"id": "shuffled", "op": "preshuffle", "input": "data", "path": str(path),
                 "dataset_size": "500", "shuffle_chunk_size": 50, "n_obs_per_chunk": 32,
                 "seed": 3},
            ],
            "outputs": [],
        }
    )
    return path


def collection_x(path):
    """The collection's rows in order, as anndata reads its datasets."""
    names = sorted((p for p in path.iterdir() if p.name.startswith("dataset_")),
                   key=lambda p: int(p.name.split("_")[1]))
    parts = [ad.read_zarr(p) for p in names]
    return sp.vstack([p.X for p in parts]).tocsr(), np.concatenate(
        [p.obs["cell_type"].astype(str).to_numpy() for p in parts])


def test_every_cell_once_per_epoch_with_its_row(collection):
    x, cell_type = collection_x(collection)
    loader = engine.Loader(collection, batch_size=64, chunk_size=32, preload_nchunks=4,
                           seed=7, obs_keys=["cell_type"])
    assert (loader.n_obs, loader.n_vars) == x.shape
    seen = []
    batches = list(loader)
    assert len(batches) == len(loader) == -(-x.shape[0] // 64)
    for b in batches:
        assert sp.issparse(b["X"]) and b["X"].shape[0] == len(b["index"])
        np.testing.assert_array_equal(b["X"].toarray(), x[b["index"]].toarray())
        assert list(b["obs"]["cell_type"].astype(str)) == list(cell_type[b["index"]])
        seen.extend(b["index"].tolist())
    assert sorted(seen) == list(range(x.shape[0]))
    assert seen != sorted(seen)  # shuffled


def test_batches_as_jax_arrays_equal_the_numpy_batches(collection):
    kw = dict(batch_size=64, chunk_size=32, preload_nchunks=4, seed=2)
    pairs = list(zip(engine.Loader(collection, **kw), engine.Loader(collection, to="jax", **kw)))
    assert len(pairs) == 19
    for a, b in pairs:
        assert type(b["X"]).__name__ == "BCSR" and b["X"].shape == a["X"].shape
        np.testing.assert_array_equal(np.asarray(b["X"].todense()), a["X"].toarray())
        np.testing.assert_array_equal(b["index"], a["index"])


def test_same_seed_same_batches_next_epoch_differs(collection):
    first = [b["index"] for b in engine.Loader(collection, batch_size=32, chunk_size=16,
                                               preload_nchunks=2, seed=1)]
    again_loader = engine.Loader(collection, batch_size=32, chunk_size=16, preload_nchunks=2,
                                 seed=1)
    again = [b["index"] for b in again_loader]
    assert len(first) == len(again)
    assert all((a == b).all() for a, b in zip(first, again))
    epoch_two = np.concatenate([b["index"] for b in again_loader])
    assert not (epoch_two == np.concatenate(again)).all()
    unshuffled = engine.Loader(collection, batch_size=100, chunk_size=50, preload_nchunks=2,
                               shuffle=False)
    assert np.concatenate([b["index"] for b in unshuffled]).tolist() == list(range(1200))


def test_bad_arguments_are_refused_at_once(collection, tmp_path):
    with pytest.raises(engine.UsageError, match="multiple of batch_size"):
        engine.Loader(collection, batch_size=3, chunk_size=4, preload_nchunks=1)
    with pytest.raises(engine.UsageError, match="not a preshuffled collection"):
        engine.Loader(tmp_path)
    with pytest.raises(ValueError, match="to="):
        engine.Loader(collection, to="tensorflow")
