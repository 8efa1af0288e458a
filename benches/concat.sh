#!/usr/bin/env bash
# Concatenation of PARTS files (default 8) cut from ../shared/bench/make_data.py's sparse
# counts (N cells x 20,000 genes, CSR) into one h5ad with a `batch` label, in one run:
# `engine run` (a `concat` step streamed into the writer) against `anndata.concat` in memory
# and `anndata.experimental.concat_on_disk`. Wall time and peak RSS; then whether the three
# outputs hold the same X and obs.
#   benches/concat.sh [10k|100k|1m]      (default 100k)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
size="${1:-100k}"
parts="${PARTS:-8}"
shared="$(cd .. && pwd)/shared/bench"
[[ -x .bench/venv/bin/python ]] || VENV=.bench/venv bash "$shared/setup.sh" >/dev/null
bench_py="$PWD/.bench/venv/bin/python"
cargo build --release -q -p engine-cli
engine="${CARGO_TARGET_DIR:-$PWD/target}/release/engine"
data=.bench/data
counts="$data/sparse_${size}.h5ad"
[[ -f "$counts" ]] || "$bench_py" "$shared/make_data.py" --out "$data" --no-blobs --sparse "$size" --formats h5ad >/dev/null
dir=".bench/concat_${size}_${parts}"
source benches/measure.sh
split_counts "$counts" "$parts" "$dir"
files=()
for ((i = 0; i < parts; i++)); do files+=("$dir/part$i.h5ad"); done
{
    echo "version: 1"
    echo "steps:"
    for ((i = 0; i < parts; i++)); do echo "  - {id: p$i, op: read, path: '$dir/part$i.h5ad'}"; done
    echo "  - {id: all, op: concat, inputs: [$(seq -s ', ' -f 'p%g' 0 $((parts - 1)))], label: batch}"
    echo "outputs:"
    echo "  - {step: all, path: '$dir/engine.h5ad'}"
} >"$dir/concat.yaml"
py_files=$(printf "'%s'," "${files[@]}")


echo "| concat of $parts h5ad (sparse_$size counts cut in $parts, 20,000 genes) | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
measure "engine run (concat step, label)" "$engine" run "$dir/concat.yaml" --overwrite
measure_or_report "anndata.concat in memory, write_h5ad" "$bench_py" -c "
import anndata as ad
ad.concat([ad.read_h5ad(f) for f in [$py_files]], label='batch').write_h5ad('$dir/anndata.h5ad')
"
rm -f "$dir/on_disk.h5ad"
measure_or_report "anndata.experimental.concat_on_disk" "$bench_py" -c "
import anndata as ad
ad.experimental.concat_on_disk([$py_files], '$dir/on_disk.h5ad', label='batch')
"
"$bench_py" -c "
import anndata as ad, numpy as np
e = ad.read_h5ad('$dir/engine.h5ad', backed='r')
for name in ['anndata.h5ad', 'on_disk.h5ad']:
    try:
        r = ad.read_h5ad('$dir/' + name, backed='r')
    except FileNotFoundError:
        continue
    assert e.shape == r.shape and list(e.obs_names) == list(r.obs_names)
    assert (e.obs['batch'].astype(str) == r.obs['batch'].astype(str)).all()
    step = 10000
    for s in range(0, e.n_obs, step):
        a, b = e.X[s:s + step], r.X[s:s + step]
        assert (a != b).nnz == 0, (name, s)
    print(f'{name}: the same X and obs as the engine\'s')
"
