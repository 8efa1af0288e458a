"""engine.Loader's minibatch throughput from Python, measured as ../shared/bench/
annbatch_preshuffle.py measures annbatch's Loader: N batches (epochs repeat), the batch's
cells and stored values counted, obs['cell_type'] carried; cells/s after the first batch and
peak RSS.

    python benches/python/loader_python.py --collection C [--n-batches 100] [--to numpy]
"""

import argparse
import json
import resource
import time

import numpy as np

import engine


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--collection", required=True)
    ap.add_argument("--n-batches", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--chunk-size", type=int, default=32)
    ap.add_argument("--preload-nchunks", type=int, default=256)
    ap.add_argument("--to", default="numpy")
    args = ap.parse_args()
    t0 = time.perf_counter()
    loader = engine.Loader(
        args.collection,
        batch_size=args.batch_size,
        chunk_size=args.chunk_size,
        preload_nchunks=args.preload_nchunks,
        seed=0,
        obs_keys=["cell_type"],
        to=args.to,
    )
    opened = time.perf_counter() - t0
    done = cells = nnz = 0
    t_first = None
    t1 = time.perf_counter()
    while done < args.n_batches:
        for batch in loader:
            x = batch["X"]
            if t_first is None:
                t_first = time.perf_counter()
                first_cells = x.shape[0]
            cells += x.shape[0]
            nnz += x.nnz if hasattr(x, "nnz") else int(np.count_nonzero(x))
            assert len(batch["obs"]) == x.shape[0]
            done += 1
            if done >= args.n_batches:
                break
    end = time.perf_counter()
    steady = (cells - first_cells) / (end - t_first) if end > t_first else float("nan")
    print(json.dumps({
        "open_s": round(opened, 3),
        "first_batch_s": round(t_first - t1, 3),
        "batches": done,
        "cells": cells,
        "nnz": nnz,
        "cells_per_s": round(cells / (end - t1)),
        "cells_per_s_after_first": round(steady),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }))


if __name__ == "__main__":
    main()
