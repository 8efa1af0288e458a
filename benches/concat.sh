#!/usr/bin/env bash
# Concatenation of PARTS files (default 8) cut from ../shared/bench/make_data.py's sparse
# counts (N cells x 20,000 genes, CSR) into one h5ad with a `batch` label, in one run:
# `engine run` (a `concat` step streamed into the writer) against `anndata.concat` in memory
# and `anndata.experimental.concat_on_disk`. Wall time and peak RSS; then whether the three
# outputs hold the same X and obs.
# FORMAT=zarr: zarr parts cut by the engine, zarr outputs (1M fits a smaller disk so).
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
format="${FORMAT:-h5ad}"
source benches/measure.sh
files=()
if [[ $format == zarr ]]; then
    # zarr parts and outputs: at 1M the h5ad form needs 40 GB of disk (the counts, their
    # parts and three outputs), this a third of it.
    dir=".bench/concat_${size}_${parts}_zarr"
    if [[ ! -d "$dir/part$((parts - 1)).zarr" ]]; then
        [[ -f "$counts" ]] || "$bench_py" "$shared/make_data.py" --out "$data" --no-blobs --sparse "$size" --formats h5ad >/dev/null
        split_counts_zarr "$counts" "$parts" "$dir"
    fi
    for ((i = 0; i < parts; i++)); do files+=("$PWD/$dir/part$i.zarr"); done
    out="$PWD/$dir"
    read_py="ad.read_zarr"
    write_py="write_zarr"
    ext=zarr
else
    [[ -f "$counts" ]] || "$bench_py" "$shared/make_data.py" --out "$data" --no-blobs --sparse "$size" --formats h5ad >/dev/null
    dir=".bench/concat_${size}_${parts}"
    split_counts "$counts" "$parts" "$dir"
    for ((i = 0; i < parts; i++)); do files+=("$dir/part$i.h5ad"); done
    out="$dir"
    read_py="ad.read_h5ad"
    write_py="write_h5ad"
    ext=h5ad
fi
{
    echo "version: 1"
    echo "steps:"
    for ((i = 0; i < parts; i++)); do echo "  - {id: p$i, op: read, path: '${files[i]}'}"; done
    echo "  - {id: all, op: concat, inputs: [$(seq -s ', ' -f 'p%g' 0 $((parts - 1)))], label: batch}"
    echo "outputs:"
    if [[ $format == zarr ]]; then
        echo "  - {step: all, path: '$out/engine.zarr', compression: 'blosc-lz4:5'}"
    else
        echo "  - {step: all, path: '$out/engine.h5ad'}"
    fi
} >"$dir/concat.yaml"
py_files=$(printf "'%s'," "${files[@]}")


echo "| concat of $parts $format (sparse_$size counts cut in $parts, 20,000 genes) | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
measure "engine run (concat step, label)" "$engine" run "$dir/concat.yaml" --overwrite
rm -rf "$out/anndata.$ext"
measure_or_report "anndata.concat in memory, $write_py" "$bench_py" -c "
import anndata as ad
ad.concat([$read_py(f) for f in [$py_files]], label='batch').$write_py('$out/anndata.$ext')
"
rm -rf "$out/on_disk.$ext"
measure_or_report "anndata.experimental.concat_on_disk" "$bench_py" -c "
import anndata as ad
ad.experimental.concat_on_disk([$py_files], '$out/on_disk.$ext', label='batch')
"
# X's arrays compared in slices (the outputs need not fit in memory), obs names and labels.
"$bench_py" -c "
import anndata as ad, numpy as np, h5py, zarr, os
def open_(p):
    return zarr.open_group(p, mode='r') if p.endswith('.zarr') else h5py.File(p, 'r')
e = open_('$out/engine.$ext')
for name in ['anndata.$ext', 'on_disk.$ext']:
    if not os.path.exists('$out/' + name):
        continue
    r = open_('$out/' + name)
    for k in ['indptr', 'indices', 'data']:
        a, b = e['X'][k], r['X'][k]
        assert a.shape == b.shape, (name, k, a.shape, b.shape)
        for s in range(0, a.shape[0], 50_000_000):
            x, y = a[s:s + 50_000_000], b[s:s + 50_000_000]
            if k != 'data':
                x, y = x.astype(np.int64), y.astype(np.int64)
            assert np.array_equal(x, y), (name, k, s)
    oe, orr = ad.io.read_elem(e['obs']), ad.io.read_elem(r['obs'])
    assert list(oe.index) == list(orr.index)
    assert (oe['batch'].astype(str).values == orr['batch'].astype(str).values).all()
    print(f'{name}: the same X and obs as the engine\'s')
"
