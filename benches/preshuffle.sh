#!/usr/bin/env bash
# Preshuffling for model training, in one run on the same inputs: PARTS h5ad files (default 4)
# cut from ../shared/bench/make_data.py's sparse counts (N cells x 20,000 genes) preshuffled by
# `engine preshuffle` (at $MEMORY_LIMIT, default 1G: datasets as large as that holds) and by
# annbatch's `DatasetCollection.add_adatas` with its defaults (../shared/bench/
# annbatch_preshuffle.py; one 20GB dataset, so everything in memory at once). Wall time and
# peak RSS. Then minibatch throughput on both collections: annbatch's `Loader` (zarrs codec
# pipeline, the README's batch_size 4096, chunk_size 32, preload_nchunks 256; 100 batches) and
# `engine batches` (four epochs, the same 400k cells, same settings), in cells/s.
# FORMAT=zarr cuts the counts into zarr parts (blosc-lz4) with the engine instead.
#   benches/preshuffle.sh [10k|100k|1m]      (default 100k)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
size="${1:-100k}"
parts="${PARTS:-4}"
memory="${MEMORY_LIMIT:-1G}"
shared="$(cd .. && pwd)/shared/bench"
[[ -x .bench/venv/bin/python ]] || VENV=.bench/venv bash "$shared/setup.sh" >/dev/null
bench_py="$PWD/.bench/venv/bin/python"
cargo build --release -q -p engine-cli
engine="${CARGO_TARGET_DIR:-$PWD/target}/release/engine"
data=.bench/data
format="${FORMAT:-h5ad}"
counts="$data/sparse_${size}.h5ad"
source benches/measure.sh
files=()
if [[ $format == zarr ]]; then
    dir=".bench/preshuffle_${size}_${parts}_zarr"
    if [[ ! -d "$dir/part$((parts - 1)).zarr" ]]; then
        [[ -f "$counts" ]] || "$bench_py" "$shared/make_data.py" --out "$data" --no-blobs --sparse "$size" --formats h5ad >/dev/null
        split_counts_zarr "$counts" "$parts" "$dir"
    fi
    for ((i = 0; i < parts; i++)); do files+=("$dir/part$i.zarr"); done
else
    [[ -f "$counts" ]] || "$bench_py" "$shared/make_data.py" --out "$data" --no-blobs --sparse "$size" --formats h5ad >/dev/null
    dir=".bench/concat_${size}_${parts}"
    split_counts "$counts" "$parts" "$dir"
    for ((i = 0; i < parts; i++)); do files+=("$dir/part$i.h5ad"); done
fi
ours=".bench/preshuffle_${size}_engine.zarr"
theirs=".bench/preshuffle_${size}_annbatch.zarr"


echo "| preshuffle of $parts $format (sparse_$size counts, 20,000 genes) | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
measure "engine preshuffle --memory-limit $memory" "$engine" preshuffle "${files[@]}" "$ours" --memory-limit "$memory" --seed 0 --overwrite
measure_or_report "annbatch add_adatas (defaults, zarrs)" "$bench_py" "$shared/annbatch_preshuffle.py" preshuffle --inputs "${files[@]}" --collection "$theirs"
echo
echo "| minibatches (batch 4096, chunk 32, preload 256) | collection | cells/s |"
echo "|---|---|---|"
for coll in "$ours" "$theirs"; do
    # A reference that failed (killed for memory) leaves no whole collection.
    grep -qs annbatch-preshuffled "$coll/zarr.json" || continue
    name=$([[ $coll == "$ours" ]] && echo engine || echo annbatch)
    # Four epochs: the 400k cells annbatch's 100 batches draw, the first epoch's start included.
    rate=$("$engine" batches "$coll" --batch-size 4096 --chunk-size 32 --preload-nchunks 256 --epochs 4 |
        awk '/cells\/s/ {cells += $5; secs += $8} END {printf "%.0f", cells / secs}')
    echo "| engine batches (4 epochs) | $name | $rate |"
    rate=$("$bench_py" "$shared/annbatch_preshuffle.py" load --collection "$coll" --n-batches 100 2>/dev/null |
        sed -n 's/^RESULT_JSON //p' | "$bench_py" -c "import json, sys; print(json.load(sys.stdin)['metrics']['cells_per_s'])" || echo failed)
    echo "| annbatch Loader (100 batches, zarrs) | $name | $rate |"
done
