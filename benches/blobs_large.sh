#!/usr/bin/env bash
# The EHR tutorial workflow (scale, PCA, neighbors, Leiden, PCA plots) at a size Python scanpy
# cannot hold: `pipelines/blobs.yaml`'s streaming synthetic source with N_OBS rows (default
# 5,000,000) x 1,000, float32, under a 256 MiB X budget. No h5ad is written (its X alone would
# be 20 GB); the PCA plots coloured by cluster and by true blob are. Prints wall time and peak RSS
# next to the memory scanpy would need for X alone.
set -euo pipefail
cd "$(dirname "$0")/.."
n_obs="${1:-5000000}"
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
cargo build --release -q -p engine-cli
engine="${CARGO_TARGET_DIR:-$PWD/target}/release/engine"
out=.bench/large
mkdir -p "$out"
pipeline="$out/blobs_synthetic.yaml"
cat >"$pipeline" <<YAML
version: 1
steps:
  - {id: data, op: synthetic, n_obs: $n_obs, n_vars: 1000, centers: 4, seed: 42, dtype: float32}
  - {id: scaled, op: scale, input: data}
  - {id: pcs, op: pca, input: scaled, n_comps: 50, svd_solver: covariance_eigh}
  - {id: graph, op: neighbors, input: pcs, n_neighbors: 15}
  - {id: clusters, op: leiden, input: graph}
  - {id: by_cluster, op: plot, input: clusters, basis: pca, color: leiden, path: $out/pca_leiden.png}
  - {id: by_group, op: plot, input: clusters, basis: pca, color: blob, path: $out/pca_blob.png}
YAML

source benches/measure.sh

echo "| run ($n_obs x 1,000 float32) | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
measure "engine run (synthetic, --memory-limit 256M)" "$engine" run "$pipeline" --memory-limit 256M --metrics
echo "| scanpy in memory | X alone is $((n_obs * 1000 * 4 / 1024 / 1024)) MiB float32 | |"
echo
cat "$measure_out" "$measure_err" | grep -A20 '^stage' | grep -v -E '^\s' || true
