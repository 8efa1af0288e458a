"""The counts workflow (QC, filters, normalize_total, log1p, HVG, scale, PCA; with --full
also neighbors, Leiden and UMAP on the client) on one h5ad, on a dask LocalCluster of N
worker processes and in process, in one run: wall time and peak RSS per mode, and the
results compared (X_pca up to sign, obs/var columns, clusters).

    python benches/python/dask_passes.py COUNTS.h5ad [--workers 2] [--memory-limit 1G] [--full]

The dask run goes first, so a cold page cache costs it and not the in-process run, and the
client's peak RSS after it is the dask run's own.
"""

import argparse
import gc
import json
import resource
import time

import numpy as np

import engine


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def pipeline(path, full):
    tail = [
        {"id": "graph", "op": "neighbors", "input": "pcs", "n_neighbors": 15},
        {"id": "clusters", "op": "leiden", "input": "graph"},
        {"id": "embedding", "op": "umap", "input": "clusters"},
    ] if full else []
    last = "embedding" if full else "pcs"
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
            *tail,
        ],
        # X stored sparse (the log-normalised HVGs): the comparison is of the passes.
        "outputs": [{"step": last, "x": "logged"}],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("counts")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="1G")
    ap.add_argument("--full", action="store_true", help="also neighbors, Leiden and UMAP")
    args = ap.parse_args()
    p = pipeline(args.counts, args.full)

    from dask.distributed import Client, LocalCluster

    t = time.perf_counter()
    with LocalCluster(n_workers=args.workers, processes=True, threads_per_worker=1,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        t_start = time.perf_counter() - t
        t = time.perf_counter()
        dist = engine.run(p, memory_limit=args.memory_limit, client=client)
        t_dist = time.perf_counter() - t
        workers_peak = client.run(peak_mib)
    client_peak = peak_mib()
    # Only what is compared stays: the in-process run's peak is its own.
    kept = {"X_pca": dist.obsm["X_pca"], "hvg": dist.var["highly_variable"].to_numpy(),
            "total_counts": dist.obs["total_counts"].to_numpy(),
            "leiden": dist.obs["leiden"].to_numpy() if args.full else None}
    del dist
    gc.collect()
    t = time.perf_counter()
    local = engine.run(p, memory_limit=args.memory_limit)
    t_local = time.perf_counter() - t
    a, b = kept["X_pca"], local.obsm["X_pca"]
    signs = np.sign((a * b).sum(axis=0))
    clusters = {}
    if args.full:
        from sklearn.metrics import adjusted_rand_score

        clusters = {
            "leiden_ari_dask_vs_local": adjusted_rand_score(local.obs["leiden"], kept["leiden"]),
            "clusters": int(local.obs["leiden"].nunique()),
        }
    print(json.dumps({
        "cells": local.n_obs,
        "genes": local.n_vars,
        "in_process_s": round(t_local, 2),
        "in_process_peak_mib": peak_mib(),
        "cluster_start_s": round(t_start, 2),
        "dask_s": round(t_dist, 2),
        "dask_client_peak_mib": client_peak,
        "dask_workers_peak_mib": sorted(workers_peak.values()),
        **clusters,
        "x_pca_max_abs_diff": float(np.abs(a * signs - b).max()),
        "hvg_equal": bool((kept["hvg"] == local.var["highly_variable"].to_numpy()).all()),
        "obs_equal": bool(np.allclose(kept["total_counts"], local.obs["total_counts"])),
    }))


if __name__ == "__main__":
    main()
