#!/usr/bin/env bash
# The EHR tutorial workflow (scale, PCA, neighbors, Leiden, PCA plots) at a size Python scanpy
# cannot hold in memory. Usage: benches/blobs_large.sh [N_OBS] [synthetic|file]
#
# synthetic (default): `pipelines/blobs.yaml`'s streaming source with N_OBS rows (default
#   5,000,000) x 1,000 float32 under a 256 MiB X budget; no h5ad is written (its X alone would
#   be 20 GB), the PCA plots coloured by cluster and by true blob are.
# file: the same blobs written to an h5ad first (N_OBS x 1,000 x 4 bytes of disk, checked),
#   then on that file in the same run: the engine, scanpy in memory
#   (../shared/bench/seed000_inmemory.py), scanpy + dask as the tutorial runs it (X read
#   lazily, ../shared/bench/seed000_dask.py: dask-ml's PCA) and scanpy + dask with the
#   covariance_eigh PCA the engine also uses (benches/python/blobs_dask_eigh.py). A reference
#   that fails, e.g. out of memory, is a row, not an abort.
# Prints wall time and peak RSS, and the engine's per-stage metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
n_obs="${1:-5000000}"
mode="${2:-synthetic}"
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
py="$PWD/.venv/bin/python"
shared="$(cd .. && pwd)/shared/bench"
cargo build --release -q -p engine-cli
engine="${CARGO_TARGET_DIR:-$PWD/target}/release/engine"
out=.bench/large
mkdir -p "$out"

source benches/measure.sh

# Like `measure`, but a failing command (e.g. killed for want of memory) is a table row too.
measure_may_fail() {
    local label="$1"
    shift
    local status=0
    /usr/bin/time -v "$@" >"$measure_out" 2>"$measure_err" || status=$?
    # Kept for a look at the steps afterwards: .bench/large/<label>.log.
    cat "$measure_out" "$measure_err" >"$out/$(tr -c 'a-zA-Z0-9\n' '_' <<<"$label").log"
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$measure_err")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$measure_err")
    if ((status == 0)); then
        printf '| %s | %s | %d |\n' "$label" "$wall" "$((rss / 1024))"
    else
        # The shared scripts print `[name] step ...` as each step starts.
        local step
        step=$(cat "$measure_out" "$measure_err" | sed -n 's/^\[[^]]*\] \([A-Za-z0-9_]*\) \.\.\.$/\1/p' | tail -1)
        printf '| %s | failed (exit %d) after %s, in %s | %d |\n' "$label" "$status" "$wall" "${step:-?}" "$((rss / 1024))"
    fi
}

analysis='  - {id: scaled, op: scale, input: data}
  - {id: pcs, op: pca, input: scaled, n_comps: 50, svd_solver: covariance_eigh}
  - {id: graph, op: neighbors, input: pcs, n_neighbors: 15}
  - {id: clusters, op: leiden, input: graph}'
source_step="  - {id: data, op: synthetic, n_obs: $n_obs, n_vars: 1000, centers: 4, seed: 42, dtype: float32}"

echo "| run ($n_obs x 1,000 float32, $mode) | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
if [[ "$mode" == synthetic ]]; then
    pipeline="$out/blobs_synthetic.yaml"
    cat >"$pipeline" <<YAML
version: 1
steps:
$source_step
$analysis
  - {id: by_cluster, op: plot, input: clusters, basis: pca, color: leiden, path: $out/pca_leiden.png}
  - {id: by_group, op: plot, input: clusters, basis: pca, color: blob, path: $out/pca_blob.png}
YAML
    measure "engine run (synthetic, --memory-limit 6G)" "$engine" run "$pipeline" --memory-limit 6G --metrics --overwrite
    echo "| scanpy in memory | X alone is $((n_obs * 1000 * 4 / 1024 / 1024)) MiB float32 | |"
elif [[ "$mode" == file ]]; then
    [[ -x .bench/venv/bin/python ]] || VENV=.bench/venv bash "$shared/setup.sh" >/dev/null
    bench_py="$PWD/.bench/venv/bin/python"
    # The name the shared scripts open under --data (they were written for 50k rows; the
    # row count comes from the file).
    file="$out/blobs_50k_f32.h5ad"
    need=$((n_obs * 1000 * 4 + (1 << 30)))
    # A previous run's file is replaced, so its space counts as free.
    avail=$(($(df -B1 --output=avail "$out" | tail -1) + $(stat -c %s "$file" 2>/dev/null || echo 0)))
    if ((avail < need)); then
        echo "error: $file needs about $((need >> 30)) GiB free; $out has $((avail >> 30)) GiB" >&2
        exit 1
    fi
    cat >"$out/blobs_gen.yaml" <<YAML
version: 1
steps:
$source_step
outputs:
  - {step: data, path: $file}
YAML
    rm -f "$file"
    "$engine" run "$out/blobs_gen.yaml" --memory-limit 6G --overwrite >/dev/null 2>"$out/gen.err" || {
        cat "$out/gen.err" >&2
        exit 1
    }
    # The shared scripts score clusters against obs['label'].
    "$py" - "$file" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r+") as f:
    f.copy(f["obs/blob"], f["obs"], "label")
    f["obs"].attrs["column-order"] = list(f["obs"].attrs["column-order"]) + ["label"]
PY
    pipeline="$out/blobs_file.yaml"
    cat >"$pipeline" <<YAML
version: 1
steps:
  - {id: data, op: read, path: $file}
$analysis
  - {id: by_cluster, op: plot, input: clusters, basis: pca, color: leiden, path: $out/file_pca_leiden.png}
YAML
    measure "engine run (h5ad, --memory-limit 6G)" "$engine" run "$pipeline" --memory-limit 6G --metrics --overwrite
    cp "$measure_out" "$out/engine_file_metrics.txt"
    measure_may_fail "scanpy in memory (h5ad)" "$py" "$shared/seed000_inmemory.py" --source h5ad --dtype f32 --data "$out" --figdir "$out/inmemory" --result "$out/inmemory.json"
    measure_may_fail "scanpy + dask as the tutorial (dask-ml PCA)" "$bench_py" "$shared/seed000_dask.py" --source h5ad --dtype f32 --data "$out" --figdir "$out/dask" --result "$out/dask.json"
    measure_may_fail "scanpy + dask, covariance_eigh PCA" "$bench_py" benches/python/blobs_dask_eigh.py "$shared" --source h5ad --dtype f32 --data "$out" --figdir "$out/dask_eigh" --result "$out/dask_eigh.json"
    cat "$out/engine_file_metrics.txt" >"$measure_out"
    : >"$measure_err"
else
    echo "error: mode is synthetic or file, not $mode" >&2
    exit 2
fi
echo
cat "$measure_out" "$measure_err" | grep -A20 '^stage' | grep -v -E '^\s' || true
