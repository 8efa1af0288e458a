"""engine.run(..., client=...) on a LocalCluster of two worker processes equals the
in-process run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import engine


@pytest.fixture(scope="module")
def client():
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def dense(x):
    return x.toarray() if sp.issparse(x) else np.asarray(x)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """6,000 cells × 4,000 genes of counts, written by anndata: wide enough that a small
    memory limit cuts X into several blocks, so each pass is several tasks."""
    from conftest import _counts

    path = tmp_path_factory.mktemp("dask") / "wide.h5ad"
    _counts(6000, 4000, 5).write_h5ad(path)
    return path


def test_passes_run_on_the_workers_and_equal_the_local_run(wide, client):
    pipeline = {
        "steps": [
            {"id": "data", "op": "read", "path": str(wide)},
            {"id": "qc", "op": "calculate_qc_metrics", "input": "data", "qc_vars": "mt=MT-"},
            {"id": "cells", "op": "filter_cells", "input": "qc", "min_genes": 395},
            {"id": "genes", "op": "filter_genes", "input": "cells", "min_cells": 362},
            {"id": "norm", "op": "normalize_total", "input": "genes"},
            {"id": "logged", "op": "log1p", "input": "norm"},
            {"id": "hvg", "op": "highly_variable_genes", "input": "logged",
             "n_top_genes": 500, "batch_key": "cell_type"},
            {"id": "scaled", "op": "scale", "input": "hvg", "max_value": 10},
            {"id": "pcs", "op": "pca", "input": "scaled", "n_comps": 10},
        ],
    }
    # A small memory limit makes many blocks, so each worker gets several tasks.
    local = engine.run(pipeline, memory_limit="128M")
    from dask.distributed import get_task_stream

    with get_task_stream(client) as ts:
        distributed = engine.run(pipeline, memory_limit="128M", client=client)
    tasks = [t for t in ts.data if t["key"].startswith("_run_task")]
    # QC, filter_cells, filter_genes, normalize_total, the genes' statistics (with scale's
    # moments) and PCA's Gram matrix each ran as tasks on both workers.
    assert len(tasks) >= 6 * 2
    assert len({t["worker"] for t in tasks}) == 2
    # Something was filtered: the test exercises the selections it pushes.
    assert 0 < local.n_obs < 6000 and 0 < local.n_vars < 4000
    assert distributed.shape == local.shape
    assert list(distributed.obs_names) == list(local.obs_names)
    assert list(distributed.var_names) == list(local.var_names)
    # Sums merge in another grouping: equal up to rounding.
    np.testing.assert_allclose(dense(distributed.X), dense(local.X), rtol=1e-10, atol=1e-12)
    assert "pct_counts_mt" in local.obs and "mean" in local.var
    assert local.var["highly_variable"].sum() == 500
    np.testing.assert_array_equal(distributed.var["highly_variable"], local.var["highly_variable"])
    # PCA of the merged Gram matrix: equal up to each component's sign.
    a, b = distributed.obsm["X_pca"], local.obsm["X_pca"]
    signs = np.sign((a * b).sum(axis=0))
    np.testing.assert_allclose(a * signs, b, rtol=1e-8, atol=1e-9)
    pd.testing.assert_frame_equal(distributed.obs, local.obs, check_exact=False, rtol=1e-10)
    pd.testing.assert_frame_equal(distributed.var, local.var, check_exact=False, rtol=1e-10)


def test_seurat_v3_markers_and_randomized_pca_run_on_the_workers(wide, client):
    # The other passes that leave the process: seurat_v3's two sums per batch (and its
    # counts check), the marker genes' group sums, randomized PCA's passes and the
    # projection onto the components.
    pipeline = {
        "steps": [
            {"id": "data", "op": "read", "path": str(wide)},
            {"id": "hvg", "op": "highly_variable_genes", "input": "data", "flavor": "seurat_v3",
             "n_top_genes": 300, "batch_key": "cell_type", "subset": True},
            {"id": "norm", "op": "normalize_total", "input": "hvg"},
            {"id": "logged", "op": "log1p", "input": "norm"},
            {"id": "markers", "op": "rank_genes_groups", "input": "logged",
             "groupby": "cell_type", "method": "t-test"},
            {"id": "pcs", "op": "pca", "input": "markers", "n_comps": 8,
             "svd_solver": "randomized"},
        ],
    }
    local = engine.run(pipeline, memory_limit="128M")
    from dask.distributed import get_task_stream

    with get_task_stream(client) as ts:
        distributed = engine.run(pipeline, memory_limit="128M", client=client)
    keys = [t["key"] for t in ts.data]
    runs = [k for k in keys if k.startswith("_run_task")]
    merges = [k for k in keys if k.startswith("_merge")]
    # seurat_v3 (2 passes), normalize_total, the group sums, randomized PCA (at least 3
    # passes) and the projection: each a pass of several tasks whose results merge pairwise
    # on the workers into one (a pass of n tasks makes n - 1 merges).
    passes = 2 + 1 + 1 + 3 + 1
    assert len(runs) >= 2 * passes
    assert len(runs) - len(merges) >= passes
    assert len(merges) >= len(runs) // 2
    assert local.n_vars == 300
    np.testing.assert_array_equal(distributed.var_names, local.var_names)
    pd.testing.assert_frame_equal(distributed.var, local.var, check_exact=False, rtol=1e-10)
    np.testing.assert_allclose(dense(distributed.X), dense(local.X), rtol=1e-10, atol=1e-12)
    names = local.uns["rank_genes_groups"]["names"]
    assert names.dtype.names == ("B", "Mono", "NK", "T")
    for group in names.dtype.names:
        np.testing.assert_array_equal(distributed.uns["rank_genes_groups"]["names"][group],
                                      names[group])
        np.testing.assert_allclose(distributed.uns["rank_genes_groups"]["scores"][group],
                                   local.uns["rank_genes_groups"]["scores"][group], rtol=1e-6)
    a, b = distributed.obsm["X_pca"], local.obsm["X_pca"]
    signs = np.sign((a * b).sum(axis=0))
    np.testing.assert_allclose(a * signs, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(distributed.uns["pca"]["variance"], local.uns["pca"]["variance"],
                               rtol=1e-10)


def test_marker_ranks_and_plot_gathers_run_on_the_workers(wide, client, tmp_path):
    # Wilcoxon's value gathers, the dot plot's group expression and the gene values a
    # violin and a scatter colour by.
    def pipeline(out):
        return {
            "steps": [
                {"id": "data", "op": "read", "path": str(wide)},
                {"id": "norm", "op": "normalize_total", "input": "data"},
                {"id": "logged", "op": "log1p", "input": "norm"},
                {"id": "markers", "op": "rank_genes_groups", "input": "logged",
                 "groupby": "cell_type", "method": "wilcoxon", "n_genes": 20},
                {"id": "dots", "op": "dotplot", "input": "markers", "n_genes": 3,
                 "path": str(out / "dots.png")},
                {"id": "violins", "op": "violin", "input": "markers",
                 "keys": ["gene10", "gene11"], "groupby": "cell_type",
                 "path": str(out / "violins.png")},
                {"id": "pcs", "op": "pca", "input": "markers", "n_comps": 5},
                {"id": "scatter", "op": "plot", "input": "pcs", "basis": "pca",
                 "color": "gene12", "path": str(out / "scatter.png")},
            ],
            "outputs": [{"step": "pcs"}],
        }

    (tmp_path / "local").mkdir()
    (tmp_path / "dask").mkdir()
    local = engine.run(pipeline(tmp_path / "local"), memory_limit="128M")
    from dask.distributed import get_task_stream

    with get_task_stream(client) as ts:
        distributed = engine.run(pipeline(tmp_path / "dask"), memory_limit="128M",
                                 client=client)
    assert sum(str(t["key"]).startswith("_run_task") for t in ts.data) >= 2 * 7
    ours, theirs = distributed.uns["rank_genes_groups"], local.uns["rank_genes_groups"]
    for group in theirs["names"].dtype.names:
        np.testing.assert_array_equal(ours["names"][group], theirs["names"][group])
        np.testing.assert_allclose(ours["scores"][group], theirs["scores"][group], rtol=1e-10)
        np.testing.assert_allclose(ours["pvals"][group], theirs["pvals"][group], rtol=1e-8)
    # The plots drew the same values: the same pixels.
    for name in ["dots.png", "violins.png", "scatter.png"]:
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()


def test_a_failing_cluster_fails_the_run_with_its_cause(counts, tmp_path):
    def broken(lineage, tasks):
        raise ConnectionError("the scheduler went away")

    text = (
        f"version: 1\nsteps:\n  - {{id: data, op: read, path: '{counts}'}}\n"
        "  - {id: norm, op: normalize_total, input: data}\n"
        f"outputs:\n  - {{step: norm, path: '{tmp_path / 'o.h5ad'}'}}\n"
    )
    with pytest.raises(engine.ResourceError, match="the scheduler went away"):
        engine._engine.run("<test>", text, False, [], None, False, [], (broken, 4))
    assert not (tmp_path / "o.h5ad").exists()


def test_a_task_from_another_version_is_refused():
    with pytest.raises(engine.UsageError, match="same version"):
        engine._engine.run_task(b"\xff\xff", b"\xff")
