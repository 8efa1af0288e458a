#!/usr/bin/env bash
# Remote reads over loopback HTTP, the dask + zarr tutorial's cases at scale: the first 2,000
# genes of ../shared/bench/make_data.py's sparse counts (N cells) as a dense float32 zarr v2
# store chunked (n_obs, 5) with consolidated metadata, served by tests/python/range_server.py
# (it honours Range and logs every request). Per case, in one run: the engine (`engine run`:
# a read of the URL, a selection, written to a local h5ad), zarr-python + dask as the
# tutorial reads it (zarr.open_consolidated over fsspec, dask.array.from_zarr), and anndata's
# read_lazy on an obstore HTTPStore; then the same data as an .h5ad (X gzip in the same
# chunks), read by the engine and by h5py over fsspec's HTTP file. Requests and bytes from
# the server's log; wall time of the whole process (and, for Python, after its imports);
# peak RSS.
#   benches/remote.sh [10k|100k|1m]      (default 100k)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
size="${1:-100k}"
shared="$(cd .. && pwd)/shared/bench"
[[ -x .bench/venv/bin/python ]] || VENV=.bench/venv bash "$shared/setup.sh" >/dev/null
bench_py="$PWD/.bench/venv/bin/python"
"$bench_py" -c 'import obstore' 2>/dev/null || .bench/venv/bin/pip install -q obstore==0.12.1
cargo build --release -q -p engine-cli
engine="${CARGO_TARGET_DIR:-$PWD/target}/release/engine"
data=.bench/data
counts="$data/sparse_${size}.h5ad"
[[ -f "$counts" ]] || "$bench_py" "$shared/make_data.py" --out "$data" --no-blobs --sparse "$size" --formats h5ad >/dev/null
dir=".bench/remote_${size}"
mkdir -p "$dir/served"
store="$dir/served/tutorial.zarr"
[[ -d "$store" && -f "${store%.zarr}.h5ad" ]] || { rm -rf "$store"; "$bench_py" benches/python/make_remote_store.py "$counts" "$store" 2000 2>/dev/null; }
source benches/measure.sh

log="$dir/requests.jsonl"
rm -f "$dir/port"
"$bench_py" tests/python/range_server.py "$dir/served" "$log" >"$dir/port" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$measure_out" "$measure_err"' EXIT
while [[ ! -s "$dir/port" ]]; do sleep 0.1; done
url="http://127.0.0.1:$(head -1 "$dir/port")/tutorial.zarr"
url_h5="${url%.zarr}.h5ad"

gene=$("$bench_py" -c "import anndata as ad, zarr; print(ad.io.read_elem(zarr.open_consolidated('$store')['var']).index[17])" 2>/dev/null)
threshold=$("$bench_py" -c "
import anndata as ad, numpy as np, zarr
n = ad.io.read_elem(zarr.open_consolidated('$store')['var'])['n_cells'].to_numpy()
print(int(np.sort(n)[-60]))" 2>/dev/null)
celltype=$("$bench_py" -c "import anndata as ad, zarr; print(ad.io.read_elem(zarr.open_consolidated('$store')['obs'])['cell_type'].cat.categories[0])" 2>/dev/null)

# `traffic`: requests and MB the server logged since the last call.
traffic() {
    if [[ -f "$log" ]]; then
        python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$log')]
print(f'{len(rows)} | {sum(r[\"bytes\"] for r in rows) / 1e6:.1f}')"
        rm -f "$log"
    else
        echo "0 | 0"
    fi
}

pipeline() { # CASE WHERE-KIND PREDICATE [URL]
    printf "version: 1\nsteps:\n  - {id: data, op: read, path: '%s'}\n  - {id: sel, op: select, input: data, %s: \"%s\"}\noutputs:\n  - {step: sel, path: '%s/%s.h5ad'}\n" \
        "${4:-$url}" "$2" "$3" "$dir" "$1" >"$dir/$1.yaml"
}
pipeline gene var_where "_index = '$gene'"
pipeline genes var_where "n_cells > $threshold"
pipeline celltype where "cell_type = '$celltype'"
pipeline gene_h5 var_where "_index = '$gene'" "$url_h5"
pipeline genes_h5 var_where "n_cells > $threshold" "$url_h5"
pipeline celltype_h5 where "cell_type = '$celltype'" "$url_h5"

echo "| $size cells × 2,000 genes, dense, chunks (n_obs, 5), loopback HTTP | requests | MB fetched | wall (m:ss) | after imports (s) | peak RSS (MiB) |"
echo "|---|---|---|---|---|---|"
for case in gene genes celltype; do
    case $case in
        gene) arg="$gene" ;;
        genes) arg="$threshold" ;;
        celltype) arg="$celltype" ;;
    esac
    rm -f "$log"
    row=$(measure "engine run: $case" "$engine" run "$dir/$case.yaml" --overwrite)
    t=$(traffic)
    echo "$row" | awk -v t="$t" -F' \\| ' '{printf "%s | %s | %s | - | %s\n", $1, t, $2, $3}'
    python_ref() { # MODE URL
        rm -f "$log"
        row=$(measure_or_report "$1: $case" "$bench_py" benches/python/remote_reads.py "$1" "$2" "$case" "$arg")
        t=$(traffic)
        inner=$(cut -d' ' -f1 "$measure_out" 2>/dev/null || echo "?")
        echo "$row" | awk -v t="$t" -v i="$inner" -F' \\| ' '{printf "%s | %s | %s | %s | %s\n", $1, t, $2, i, $3}'
    }
    python_ref dask "$url"
    python_ref lazy "$url"
    rm -f "$log"
    row=$(measure "engine run (h5ad): $case" "$engine" run "$dir/${case}_h5.yaml" --overwrite)
    t=$(traffic)
    echo "$row" | awk -v t="$t" -F' \\| ' '{printf "%s | %s | %s | - | %s\n", $1, t, $2, $3}'
    python_ref h5py "$url_h5"
done
echo "(case gene: var_names[17] = $gene; genes: n_cells > $threshold, 60 genes; celltype: cell_type = $celltype, all genes)"
