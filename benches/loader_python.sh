#!/usr/bin/env bash
# Minibatches from Python: the package's engine.Loader (release build, installed into the
# bench venv with `pip install ./python`) against annbatch's Loader (zarrs codec pipeline) on
# the same preshuffled collections, with annbatch's README settings (batch_size 4096,
# chunk_size 32, preload_nchunks 256, obs['cell_type'] carried, 100 batches). `engine
# batches` (the CLI, no Python) is the ceiling. The collections are benches/preshuffle.sh's:
# PARTS h5ad cut from sparse_N counts, preshuffled by the engine and by annbatch.
#   benches/loader_python.sh [10k|100k|1m]      (default 100k)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh build
export CMAKE="$PWD/.venv/bin/cmake"
size="${1:-100k}"
parts="${PARTS:-4}"
shared="$(cd .. && pwd)/shared/bench"
[[ -x .bench/venv/bin/python ]] || VENV=.bench/venv bash "$shared/setup.sh" >/dev/null
bench_py="$PWD/.bench/venv/bin/python"
# The package, release build (reinstall after changing it: .bench/venv/bin/pip install ./python).
"$bench_py" -c "import engine" 2>/dev/null || "$bench_py" -m pip install --quiet ./python
# ENGINE=path uses that release binary instead of building one.
if [[ -z "${ENGINE:-}" ]]; then
    cargo build --release -q -p engine-cli
fi
engine="${ENGINE:-${CARGO_TARGET_DIR:-$PWD/target}/release/engine}"
data=.bench/data
counts="$data/sparse_${size}.h5ad"
[[ -f "$counts" ]] || "$bench_py" "$shared/make_data.py" --out "$data" --no-blobs --sparse "$size" --formats h5ad >/dev/null
dir=".bench/concat_${size}_${parts}"
source benches/measure.sh
split_counts "$counts" "$parts" "$dir"
files=()
for ((i = 0; i < parts; i++)); do files+=("$dir/part$i.h5ad"); done
ours=".bench/preshuffle_${size}_engine.zarr"
theirs=".bench/preshuffle_${size}_annbatch.zarr"
[[ -d "$ours" ]] || "$engine" preshuffle "${files[@]}" "$ours" --memory-limit 1G --seed 0 >/dev/null
[[ -d "$theirs" ]] || "$bench_py" "$shared/annbatch_preshuffle.py" preshuffle --inputs "${files[@]}" --collection "$theirs" >/dev/null 2>&1

echo "| minibatches (batch 4096, chunk 32, preload 256, cell_type) | collection | cells/s | peak RSS (MiB) |"
echo "|---|---|---|---|"
for coll in "$ours" "$theirs"; do
    name=$([[ $coll == "$ours" ]] && echo engine || echo annbatch)
    out=$("$bench_py" benches/python/loader_python.py --collection "$coll" --n-batches 100)
    echo "| engine.Loader from Python (100 batches) | $name | $("$bench_py" -c "import json,sys; print(json.loads(sys.argv[1])['cells_per_s'])" "$out") | $("$bench_py" -c "import json,sys; print(json.loads(sys.argv[1])['peak_rss_mib'])" "$out") |"
    json=$("$bench_py" "$shared/annbatch_preshuffle.py" load --collection "$coll" --n-batches 100 2>/dev/null | sed -n 's/^RESULT_JSON //p')
    rate=$("$bench_py" -c "import json, sys; m = json.loads(sys.argv[1])['metrics']; print(m['cells_per_s'])" "$json" || echo failed)
    echo "| annbatch Loader (100 batches, zarrs) | $name | $rate | - |"
    rate=$("$engine" batches "$coll" --batch-size 4096 --chunk-size 32 --preload-nchunks 256 | awk '/cells\/s/ {print $(NF-1)}')
    echo "| engine batches, CLI (one epoch) | $name | $rate | - |"
done
