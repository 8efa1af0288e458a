"""Fixtures written by Python anndata (and scanpy's bundled file), never by the engine: the
engine's results are checked against what anndata itself reads from them."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[2]


def engine_bin() -> Path:
    """The CLI built next to the package (``./dev.sh test`` sets ``ENGINE_BIN``)."""
    if "ENGINE_BIN" in os.environ:
        return Path(os.environ["ENGINE_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "debug" / "engine"


@pytest.fixture(scope="session")
def pbmc() -> Path:
    """scanpy's bundled pbmc68k_reduced: old anndata, written by scanpy, not by us."""
    import scanpy

    return Path(scanpy.__file__).parent / "datasets" / "10x_pbmc68k_reduced.h5ad"


def _counts(n_obs: int, n_vars: int, seed: int) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    x = sp.random(
        n_obs,
        n_vars,
        density=0.1,
        format="csr",
        dtype=np.float32,
        random_state=rng,
        data_rvs=lambda k: rng.integers(1, 20, k),
    )
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(["B", "T", "NK", "Mono"], n_obs)),
            "batch": rng.integers(0, 3, n_obs),
            "score": rng.normal(size=n_obs),
        },
        index=[f"cell{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(
        {"gene_ids": [f"ENSG{i:05d}" for i in range(n_vars)]},
        index=[f"MT-{i}" if i < 5 else f"gene{i}" for i in range(n_vars)],
    )
    a = ad.AnnData(x, obs=obs, var=var)
    a.obsm["X_emb"] = rng.normal(size=(n_obs, 3))
    a.layers["counts"] = x.copy()
    a.uns["note"] = "written by anndata"
    return a


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def counts(data_dir) -> Path:
    """Sparse integer counts (CSR) with categorical obs, an obsm and a layer, as h5ad."""
    path = data_dir / "counts.h5ad"
    _counts(1200, 300, 0).write_h5ad(path)
    return path


@pytest.fixture(scope="session")
def dense_zarr(data_dir) -> Path:
    """Dense float32 X in (100, 40) chunks, zarr v2 with consolidated metadata."""
    rng = np.random.default_rng(1)
    a = ad.AnnData(
        rng.normal(size=(500, 120)).astype(np.float32),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(500)]),
        var=pd.DataFrame(index=[f"g{i}" for i in range(120)]),
    )
    a.obs["group"] = pd.Categorical(np.where(np.arange(500) % 3 == 0, "a", "b"))
    path = data_dir / "dense.zarr"
    with ad.settings.override(zarr_write_format=2):
        a.write_zarr(path, chunks=(100, 40))
    return path
