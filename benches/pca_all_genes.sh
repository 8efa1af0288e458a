#!/usr/bin/env bash
# PCA over every gene (no HVG subset) of the 100k x 20,000 counts: log-normalised, 50
# components. The engine's `svd_solver: auto` takes the randomized solver above 5,000 genes
# (a Gram matrix would be 20,000² doubles per worker); scanpy in memory runs its default for
# sparse data (arpack with implicit centring) on the same file. Wall time, peak RSS, and the
# explained variance ratios side by side.
#   benches/pca_all_genes.sh     (needs .bench/data/sparse_100k.h5ad: benches/counts_workflow.sh 100k)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
shared="$(cd .. && pwd)/shared/bench"
[[ -x .bench/venv/bin/python ]] || VENV=.bench/venv bash "$shared/setup.sh" >/dev/null
bench_py="$PWD/.bench/venv/bin/python"
data=.bench/data/sparse_100k.h5ad
[[ -f "$data" ]] || "$bench_py" "$shared/make_data.py" --out .bench/data --no-blobs --sparse 100k --formats h5ad,zarr >/dev/null
cargo build --release -q -p engine-cli
engine="${CARGO_TARGET_DIR:-$PWD/target}/release/engine"
out=.bench/pca_all_genes
mkdir -p "$out"
source benches/measure.sh

cat >"$out/pipeline.yaml" <<YAML
version: 1
steps:
  - {id: data, op: read, path: $data}
  - {id: normalized, op: normalize_total, input: data, target_sum: 10000}
  - {id: logged, op: log1p, input: normalized}
  - {id: pcs, op: pca, input: logged, n_comps: 50}
outputs:
  - {step: pcs, path: $out/engine.h5ad}
YAML

echo "| run (100k x 20,000 genes, PCA 50) | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
measure "engine run (auto: randomized; also writes X)" "$engine" run "$out/pipeline.yaml" --metrics --overwrite
cp "$measure_out" "$out/engine_metrics.txt"
measure "scanpy in memory (arpack)" "$bench_py" benches/python/pca_all_genes.py "$data" "$out/scanpy.json"
echo
grep -A8 '^stage' "$out/engine_metrics.txt" || true
"$bench_py" - "$out/engine.h5ad" "$out/scanpy.json" "$out/engine_metrics.txt" <<'PY'
import json, sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "r") as f:
    ours = f["uns/pca/variance_ratio"][:]
ref = json.load(open(sys.argv[2]))
theirs = np.array(ref["variance_ratio"])
# The whole runs differ (the engine writes its result); PCA itself, side by side.
pca_s = sum(float(l.split()[-4]) for l in open(sys.argv[3]) if l.startswith("pcs:"))
print(f"PCA alone: engine {pca_s:.1f} s (its pcs: stages), scanpy {ref['seconds_pca']:.1f} s (sc.pp.pca)")
rel = np.abs(ours - theirs) / theirs
print(f"EVR[:5] engine {np.round(ours[:5], 6).tolist()}, scanpy {np.round(theirs[:5], 6).tolist()}")
print(f"EVR relative difference: first 10 max {rel[:10].max():.2e}, all 50 max {rel.max():.2e}; sums {ours.sum():.6f} vs {theirs.sum():.6f}")
PY
