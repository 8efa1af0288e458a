"""The passes of the counts workflow (QC, filters, normalize_total, log1p, HVG, scale, PCA)
on one h5ad, in process and on a dask LocalCluster of N worker processes, in one run:
wall time per mode, and the results compared (X_pca up to sign, obs/var columns).

    python benches/python/dask_passes.py COUNTS.h5ad [--workers 2] [--memory-limit 1G]
"""

import argparse
import json
import time

import numpy as np

import engine


def pipeline(path):
    return {
        "steps": [
            {"id": "data", "op": "read", "path": path},
            {"id": "qc", "op": "calculate_qc_metrics", "input": "data", "qc_vars": "mt=MT-"},
            {"id": "cells", "op": "filter_cells", "input": "qc", "min_genes": 100},
            {"id": "genes", "op": "filter_genes", "input": "cells", "min_cells": 3},
            {"id": "norm", "op": "normalize_total", "input": "genes", "target_sum": 1e4},
            {"id": "logged", "op": "log1p", "input": "norm"},
            {"id": "hvg", "op": "highly_variable_genes", "input": "logged", "n_top_genes": 2000,
             "subset": True},
            {"id": "scaled", "op": "scale", "input": "hvg", "max_value": 10},
            {"id": "pcs", "op": "pca", "input": "scaled", "n_comps": 50},
        ],
        # X stored sparse (the log-normalised HVGs): the comparison is of the passes.
        "outputs": [{"step": "pcs", "x": "logged"}],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("counts")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="1G")
    args = ap.parse_args()
    p = pipeline(args.counts)
    t = time.perf_counter()
    local = engine.run(p, memory_limit=args.memory_limit)
    t_local = time.perf_counter() - t

    from dask.distributed import Client, LocalCluster

    t = time.perf_counter()
    with LocalCluster(n_workers=args.workers, processes=True, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        t_start = time.perf_counter() - t
        t = time.perf_counter()
        dist = engine.run(p, memory_limit=args.memory_limit, client=client)
        t_dist = time.perf_counter() - t
    a, b = dist.obsm["X_pca"], local.obsm["X_pca"]
    signs = np.sign((a * b).sum(axis=0))
    print(json.dumps({
        "cells": local.n_obs,
        "genes": local.n_vars,
        "in_process_s": round(t_local, 2),
        "cluster_start_s": round(t_start, 2),
        "dask_s": round(t_dist, 2),
        "x_pca_max_abs_diff": float(np.abs(a * signs - b).max()),
        "hvg_equal": bool((dist.var["highly_variable"] == local.var["highly_variable"]).all()),
        "obs_equal": bool(np.allclose(dist.obs["total_counts"], local.obs["total_counts"])),
    }))


if __name__ == "__main__":
    main()
