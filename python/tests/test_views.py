"""engine.read views against anndata's views of the same file."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import engine


def dense(x):
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def assert_same(got: ad.AnnData, want: ad.AnnData):
    """X, obs, var, obsm, varm, obsp and layers equal; names in the same order."""
    want = want.copy() if want.is_view else want  # plain frames, as a read gives
    assert got.shape == want.shape
    assert list(got.obs_names) == list(want.obs_names)
    assert list(got.var_names) == list(want.var_names)
    assert sp.issparse(got.X) == sp.issparse(want.X)
    np.testing.assert_array_equal(dense(got.X), dense(want.X))
    pd.testing.assert_frame_equal(got.obs, want.obs, check_index_type=False)
    pd.testing.assert_frame_equal(got.var, want.var, check_index_type=False)
    assert (got.raw is None) == (want.raw is None)
    if want.raw is not None:
        np.testing.assert_array_equal(dense(got.raw.X), dense(want.raw.X))
        pd.testing.assert_frame_equal(got.raw.var, want.raw.var, check_index_type=False)
    for attr in ("obsm", "varm", "obsp", "layers"):
        g, w = getattr(got, attr), getattr(want, attr)
        assert sorted(k for k in g if k is not None) == sorted(k for k in w if k is not None), attr
        for k in w:
            if k is not None:
                np.testing.assert_array_equal(dense(g[k]), dense(w[k]), err_msg=f"{attr}[{k}]")


def views(a):
    """(description, engine key, anndata key) pairs covering what anndata's views take."""
    n, m = a.shape
    rng = np.random.default_rng(0)
    mask = rng.random(n) < 0.3
    first = a.obs.columns[0]
    label = a.obs[first].cat.categories[1] if hasattr(a.obs[first], "cat") else None
    out = [
        ("rows by slice", np.s_[10:200], np.s_[10:200]),
        ("rows and genes by slices", np.s_[5:50, 3:40], np.s_[5:50, 3:40]),
        ("a stepped slice", np.s_[::7, ::3], np.s_[::7, ::3]),
        ("a boolean mask", mask, mask),
        ("unsorted positions", [40, 3, 17, 3 + 1, 100], [40, 3, 17, 4, 100]),
        ("negative positions", np.s_[[-1, -5], :], np.s_[[-1, -5], :]),
        ("genes by name", np.s_[:, list(a.var_names[[9, 2, 30]])], np.s_[:, list(a.var_names[[9, 2, 30]])]),
        ("cells by name", list(a.obs_names[[7, 1]]), list(a.obs_names[[7, 1]])),
    ]
    if label is not None:
        out.append(
            (
                "a category of obs",
                lambda obs: obs[first] == label,
                (a.obs[first] == label).to_numpy(),
            )
        )
    return out


@pytest.mark.parametrize("which", ["pbmc", "counts", "dense_zarr"])
def test_views_equal_anndata_views(which, request):
    path = request.getfixturevalue(which)
    ds = engine.read(path)
    full = ad.read_zarr(path) if str(path).endswith(".zarr") else ad.read_h5ad(path)
    assert ds.shape == full.shape
    pd.testing.assert_frame_equal(ds.obs, full.obs, check_index_type=False)
    for name, key, want_key in views(full):
        got = ds[key].to_memory()
        assert_same(got, full[want_key])
        assert ds[key].shape == full[want_key].shape, name


def test_a_view_of_a_view_composes(counts):
    ds = engine.read(counts)
    full = ad.read_h5ad(counts)
    got = ds[100:900, 10:200][lambda obs: obs.cell_type == "T", ["gene50", "gene20"]].to_memory()
    inner = full[100:900, 10:200]
    assert_same(got, inner[inner.obs.cell_type == "T", ["gene50", "gene20"]])


def test_the_whole_dataset_to_memory(pbmc):
    got = engine.read(pbmc).to_memory()
    want = ad.read_h5ad(pbmc)
    assert_same(got, want)
    assert sorted(got.uns) == sorted(want.uns)


def test_bad_keys_raise_as_anndata_does(counts):
    ds = engine.read(counts)
    with pytest.raises(KeyError):
        ds[:, ["no-such-gene"]]
    with pytest.raises(IndexError):
        ds[[5000]]
    with pytest.raises(IndexError):
        ds[np.ones(3, dtype=bool)]


def test_to_dask_chunks_follow_storage(dense_zarr):
    ds = engine.read(dense_zarr)
    x = ds.to_dask()
    want = ad.read_zarr(dense_zarr).X
    # Whole storage chunks: every dask chunk boundary is a storage chunk boundary.
    assert all(c % 100 == 0 for c in x.chunks[0][:-1])
    assert all(c % 40 == 0 for c in x.chunks[1][:-1])
    np.testing.assert_array_equal(x.compute(), want)
    small = ds.to_dask(target_bytes=100 * 40 * 4)
    assert small.chunks == ((100,) * 5, (40,) * 3)
    np.testing.assert_array_equal(small[37:411, 5:99].compute(), want[37:411, 5:99])
    view = ds[lambda obs: obs.group == "a", 3:50]
    full = ad.read_zarr(dense_zarr)
    np.testing.assert_array_equal(
        view.to_dask().compute(), full[full.obs.group == "a", 3:50].X
    )


def test_to_dask_of_sparse_x_gives_scipy_chunks(counts):
    ds = engine.read(counts)
    x = ds.to_dask(target_bytes=8 * 30 * 100)
    assert len(x.chunks[0]) > 1
    got = x.compute()
    assert sp.issparse(got)
    np.testing.assert_array_equal(got.toarray(), ad.read_h5ad(counts).X.toarray())
    layer = ds.to_dask("layers/counts").compute()
    np.testing.assert_array_equal(layer.toarray(), ad.read_h5ad(counts).layers["counts"].toarray())


def test_an_element_reads_by_slices(counts):
    e = engine.read(counts).element("obsm/X_emb")
    want = ad.read_h5ad(counts).obsm["X_emb"]
    assert e.shape == want.shape and e.dtype == want.dtype
    np.testing.assert_array_equal(e[3:17, 1:3], want[3:17, 1:3])
