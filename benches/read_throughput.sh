#!/usr/bin/env bash
# Read throughput of X by row blocks: engine vs Python anndata / h5py / zarr on the same files,
# in the same run. Prints a markdown table (GB/s of decoded data, peak RSS).
#
#   benches/read_throughput.sh [N_OBS] [N_VARS] [BLOCK_ROWS]     (default 131072 2048 4096: 1 GiB float32)
#
# Data goes to .bench/read/ (reused across runs when the shape matches).
set -euo pipefail
cd "$(dirname "$0")/.."
n_obs="${1:-131072}"
n_vars="${2:-2048}"
block="${3:-4096}"
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
py="$PWD/.venv/bin/python"
cargo build --release -q -p engine-cli -p engine-benches
target="${CARGO_TARGET_DIR:-$PWD/target}/release"
data=".bench/read/${n_obs}x${n_vars}"
mkdir -p "$data"

[[ -f "$data/plain.h5ad" ]] || "$py" benches/python/make_dense.py "$data/plain.h5ad" "$n_obs" "$n_vars"
conv() { [[ -e "$data/$1" ]] || "$target/engine" convert "$data/plain.h5ad" "$data/$1" "${@:2}" >/dev/null; }
conv gzip.h5ad --format h5ad --chunks 1024,all --compression gzip:4
conv blosc-lz4.zarr --format zarr2 --chunks 1024,all --compression lz4:5
conv sharded-zstd.zarr --format zarr3 --chunks 1024,all --shards 16384,all --compression zstd:3

# run LABEL FILE CMD...: runs the reader $REPEAT times (default 3) and prints one table row:
# the median time and throughput, and the largest peak RSS (/usr/bin/time).
run() {
    local label="$1" file="$2"
    shift 2
    local results=()
    for _ in $(seq "${REPEAT:-3}"); do
        local out rss
        out=$( { /usr/bin/time -v "$@" 2>/tmp/rt_time.$$; } )
        rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' /tmp/rt_time.$$)
        results+=("$(echo "$out" | tr -d '\n') $rss")
    done
    printf '%s\n' "${results[@]}" | "$py" -c "
import json, statistics, sys
rows = [l.rsplit(' ', 1) for l in sys.stdin.read().splitlines() if l.strip()]
runs = [(json.loads(j), int(r)) for j, r in rows]
secs = statistics.median(r['seconds'] for r, _ in runs)
gbps = runs[0][0]['bytes'] / secs / 1e9
rss = max(r for _, r in runs)
print(f'| {sys.argv[1]} | {sys.argv[2]} | {secs:.2f} | {gbps:.2f} | {rss / 1024:.0f} |')
" "$file" "$label"
}

echo "X: ${n_obs} x ${n_vars} float32 ($(( n_obs * n_vars * 4 / 1048576 )) MiB decoded), blocks of ${block} rows, $(nproc) cores"
echo
echo "| file | reader | seconds (median of ${REPEAT:-3}) | GB/s | peak RSS (MiB) |"
echo "|---|---|---|---|---|"
for f in plain.h5ad gzip.h5ad; do
    run engine "$f" "$target/read-throughput" "$data/$f" X "$block"
    run "h5py" "$f" "$py" benches/python/read_throughput.py h5py "$data/$f" "$block"
    run "anndata (backed)" "$f" "$py" benches/python/read_throughput.py anndata "$data/$f" "$block"
done
for f in blosc-lz4.zarr sharded-zstd.zarr; do
    run engine "$f" "$target/read-throughput" "$data/$f" X "$block"
    run "zarr-python" "$f" "$py" benches/python/read_throughput.py zarr "$data/$f" "$block"
done
rm -f /tmp/rt_time.$$
