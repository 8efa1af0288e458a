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


def test_edge_keys_select_as_anndata_does(counts):
    ds = engine.read(counts)
    full = ad.read_h5ad(counts)
    obs = full.obs
    cases = [
        ("an empty slice", np.s_[0:0], np.s_[0:0]),
        ("repeated positions", [5, 5, 2], [5, 5, 2]),
        ("a pandas boolean Series", obs.cell_type == "NK", obs.cell_type == "NK"),
        ("a pandas Index of names", obs.index[[9, 3]], obs.index[[9, 3]]),
        ("whole floats", np.array([4.0, 1.0]), [4, 1]),
    ]
    for name, key, want_key in cases:
        got = ds[key].to_memory()
        want = full[want_key]
        assert got.shape == want.shape, name
        assert list(got.obs_names) == list(want.obs_names), name
        np.testing.assert_array_equal(dense(got.X), dense(want.X), err_msg=name)
        np.testing.assert_array_equal(got.obsm["X_emb"], want.obsm["X_emb"], err_msg=name)
    with pytest.raises(IndexError):
        ds[True]


def test_an_element_takes_numpy_keys(dense_zarr):
    e = engine.read(dense_zarr).element("X")
    want = ad.read_zarr(dense_zarr).X
    np.testing.assert_array_equal(e[[9, 2, 2], 5:8], want[[9, 2, 2], 5:8])
    np.testing.assert_array_equal(e[7, ::-3], want[7, ::-3])
    np.testing.assert_array_equal(e[-1, [3, 0]], want[-1, [3, 0]])


def test_to_dask_of_csc_reads_column_blocks(tmp_path):
    rng = np.random.default_rng(2)
    x = sp.random(300, 90, density=0.2, format="csc", dtype=np.float32, random_state=rng)
    path = tmp_path / "csc.h5ad"
    ad.AnnData(x).write_h5ad(path)
    d = engine.read(path).to_dask(target_bytes=8 * 60 * 10)
    assert len(d.chunks[1]) > 1 and d.chunks[0] == (300,)
    np.testing.assert_array_equal(d.compute().toarray(), x.toarray())


def test_to_dask_runs_on_a_distributed_cluster(counts, dense_zarr):
    """Chunks are read by worker processes, each opening the file itself."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        d = engine.read(dense_zarr).to_dask(target_bytes=100 * 40 * 4)
        got = client.compute(d.astype(np.float64).sum(axis=0)).result()
        want = ad.read_zarr(dense_zarr).X.astype(np.float64).sum(axis=0)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
        s = engine.read(counts).to_dask(target_bytes=8 * 30 * 100)
        # Each sparse chunk is densified on its worker (dask's sum does not take scipy's).
        dense = s.map_blocks(lambda b: b.toarray(), meta=np.empty((0, 0), dtype=s.dtype))
        total = client.compute(dense.astype(np.float64).sum()).result()
        np.testing.assert_allclose(total, ad.read_h5ad(counts).X.sum(), rtol=1e-6)
        workers = client.run(lambda: __import__("os").getpid())
        assert len(set(workers.values())) == 2
