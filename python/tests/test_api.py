"""engine.run / explain / check / sql against the CLI, scanpy and pandas on the same data."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import engine
from conftest import ROOT, engine_bin


def dense(x):
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def test_a_yaml_file_runs_as_the_cli_runs_it(tmp_path):
    """The same pipeline file through Python and through `engine run` writes equal files."""
    pipeline = ROOT / "pipelines" / "counts.yaml"
    params = {"n_obs": 1500, "n_vars": 800, "out": tmp_path / "py"}
    results = engine.run(pipeline, params=params)
    subprocess.run(
        [engine_bin(), "run", pipeline, "--param", "n_obs=1500", "--param", "n_vars=800",
         "--param", f"out={tmp_path / 'cli'}"],
        check=True,
        capture_output=True,
    )
    assert sorted(results) == ["embedding", "logged"]
    for step, file in (("embedding", "counts.h5ad"), ("logged", "counts_normalized.h5ad")):
        cli, py = ad.read_h5ad(tmp_path / "cli" / file), results[step]
        assert py.shape == cli.shape
        np.testing.assert_array_equal(dense(py.X), dense(cli.X))
        pd.testing.assert_frame_equal(py.obs, cli.obs)
        for key in cli.obsm:
            np.testing.assert_array_equal(py.obsm[key], cli.obsm[key])
    # Both runs wrote their plots too.
    assert sorted(os.listdir(tmp_path / "py")) == sorted(os.listdir(tmp_path / "cli"))


def test_a_pipeline_built_in_python_comes_back_in_memory(counts, tmp_path, monkeypatch):
    """A dict pipeline without outputs returns its last step, equal to scanpy's, and leaves
    no file behind."""
    import scanpy as sc

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    got = engine.run(
        {
            "steps": [
                {"id": "data", "op": "read", "path": str(counts)},
                {"id": "norm", "op": "normalize_total", "input": "data", "target_sum": 1e4},
                {"id": "logged", "op": "log1p", "input": "norm"},
            ]
        }
    )
    want = ad.read_h5ad(counts)
    sc.pp.normalize_total(want, target_sum=1e4)
    sc.pp.log1p(want)
    assert got.shape == want.shape
    np.testing.assert_allclose(dense(got.X), dense(want.X), rtol=1e-6, atol=1e-6)
    pd.testing.assert_frame_equal(got.obs, want.obs)
    assert os.listdir(tmp_path) == []


def test_sql_like_text_and_params(counts, tmp_path):
    out = tmp_path / "b.h5ad"
    text = (
        "PARAM input PATH;\n"
        "FROM ${input} AS data\n"
        "  |> WHERE cell_type = 'B' AS b;\n"
        f"WRITE b TO '{out}';\n"
    )
    got = engine.run(text, params={"input": counts})
    want = ad.read_h5ad(counts)
    want = want[want.obs.cell_type == "B"]
    assert got.n_obs == want.n_obs
    assert list(got.obs_names) == list(want.obs_names)
    np.testing.assert_array_equal(dense(got.X), dense(want.X))
    assert out.exists()


def test_explain_prints_the_three_plans(counts):
    text = engine.explain(
        {"steps": [{"id": "data", "op": "read", "path": str(counts)},
                   {"id": "l", "op": "log1p", "input": "data"}]}
    )
    for part in ("== logical plan ==", "== optimized plan", "== physical plan =="):
        assert part in text


def test_check_raises_every_problem_with_its_place(counts):
    text = (
        "version: 1\n"
        "steps:\n"
        f"  - {{id: data, op: read, path: '{counts}'}}\n"
        "  - {id: pcs, op: pca, input: data, n_comp: 30}\n"
        "  - {id: x, op: log1p, input: nowhere}\n"
    )
    with pytest.raises(engine.PipelineError) as e:
        engine.check(text)
    places = {(d["line"], d["message"].split("`")[1]) for d in e.value.diagnostics}
    assert (4, "n_comp") in places
    assert any(line == 5 for line, _ in places)
    assert "did you mean `n_comps`?" in str(e.value)
    assert isinstance(e.value, ValueError)  # a pipeline mistake is a ValueError too


def test_check_refuses_what_run_would(counts, tmp_path):
    """An existing output without overwrite, and an unknown column in a predicate."""
    out = tmp_path / "exists.h5ad"
    out.write_bytes(b"mine")
    p = {"steps": [{"id": "data", "op": "read", "path": str(counts)}],
         "outputs": [{"step": "data", "path": str(out)}]}
    with pytest.raises(engine.PipelineError, match="exists"):
        engine.check(p)
    assert out.read_bytes() == b"mine"
    # A batch_key that is not categorical: refused before the passes, at its step.
    with pytest.raises(engine.PipelineError, match="batches need a categorical column"):
        engine.check({"steps": [{"id": "data", "op": "read", "path": str(counts)},
                                {"id": "h", "op": "highly_variable_genes", "input": "data",
                                 "batch_key": "batch"}]})
    with pytest.raises(engine.EngineError, match="no_such_column"):
        engine.check({"steps": [{"id": "data", "op": "read", "path": str(counts)},
                                {"id": "s", "op": "select", "input": "data",
                                 "where": "no_such_column > 1"}]})


def test_errors_are_python_exceptions_by_fault(tmp_path):
    with pytest.raises(engine.StorageError) as e:
        engine.read(tmp_path / "missing.h5ad")
    assert "missing.h5ad" in str(e.value) and isinstance(e.value, OSError)
    bad = tmp_path / "truncated.h5ad"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(engine.EngineError) as e:
        engine.read(bad)
    assert "truncated.h5ad" in str(e.value)
    with pytest.raises(engine.UsageError, match="memory_limit"):
        engine.explain({"steps": [{"id": "d", "op": "synthetic", "n_obs": 10, "n_vars": 5}]},
                       memory_limit="lots")


def test_sql_returns_an_arrow_table(pbmc):
    table = engine.sql(
        "SELECT bulk_labels, count(*) AS n, avg(n_genes) AS genes FROM obs "
        "GROUP BY bulk_labels ORDER BY bulk_labels",
        data=pbmc,
    )
    import pyarrow as pa

    assert isinstance(table, pa.Table)
    got = table.to_pandas().set_index("bulk_labels")
    obs = ad.read_h5ad(pbmc).obs
    want = obs.groupby("bulk_labels", observed=True).agg(n=("n_genes", "size"),
                                                         genes=("n_genes", "mean"))
    # SQL orders the labels as text; pandas by category.
    want = want.set_axis(want.index.astype(str)).sort_index()
    assert list(got.index.astype(str)) == list(want.index.astype(str))
    np.testing.assert_array_equal(got["n"].to_numpy(), want["n"].to_numpy())
    np.testing.assert_allclose(got["genes"].to_numpy(), want["genes"].to_numpy())


def test_sql_over_named_datasets(counts, pbmc):
    t = engine.sql(
        "SELECT (SELECT count(*) FROM a.obs) AS a, (SELECT count(*) FROM b.var) AS b",
        data={"a": counts, "b": pbmc},
    )
    assert t.to_pylist() == [{"a": 1200, "b": 765}]


def test_the_gil_is_released_while_the_engine_works(tmp_path):
    """A Python thread keeps running while another is inside a long engine call: with the
    GIL held, it would stall for the whole call. Only the compiled call is timed."""
    text = (
        "version: 1\nsteps:\n"
        "  - {id: data, op: synthetic_counts, n_obs: 60000, n_vars: 2000, seed: 0}\n"
        "  - {id: qc, op: calculate_qc_metrics, input: data}\n"
        "  - {id: hvg, op: highly_variable_genes, input: qc, flavor: seurat_v3, n_top_genes: 500}\n"
        f"outputs:\n  - {{step: hvg, path: '{tmp_path / 'hvg.h5ad'}'}}\n"
    )
    span = {}

    def work():
        span["start"] = time.perf_counter()
        engine._engine.run("<test>", text, False, [])
        span["end"] = time.perf_counter()

    t = threading.Thread(target=work)
    ticks = []
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
        sum(range(2000))
    t.join()
    duration = span["end"] - span["start"]
    inside = np.array([x for x in ticks if span["start"] <= x <= span["end"]])
    assert duration > 0.5, f"the call took only {duration:.2f} s; the test needs a longer one"
    longest_gap = np.diff(np.concatenate([[span["start"]], inside, [span["end"]]])).max()
    assert longest_gap < duration / 4, f"the main thread stalled {longest_gap:.2f} s of {duration:.2f} s"
