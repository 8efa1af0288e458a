#!/usr/bin/env bash
# 10x input and validation: a Cell Ranger 3 HDF5 (default 20,000 cells x 30,000 genes + 2
# antibody features, ~1,500 counts per cell, gzip) converted to h5ad by scanpy
# (read_10x_h5 + write_h5ad) and by `engine convert` (Gene Expression only, X streamed from
# the file); then the result read whole by anndata vs checked whole by `engine validate`.
# Same files, same run: wall time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
py="$PWD/.venv/bin/python"
cargo build --release -q -p engine-cli
engine="${CARGO_TARGET_DIR:-$PWD/target}/release/engine"
n_cells="${1:-20000}"
dir=.bench/tenx
mkdir -p "$dir"
src="$dir/cellranger_${n_cells}.h5"
[[ -f "$src" ]] || "$py" benches/python/make_tenx.py "$src" "$n_cells" 30000 1500

source benches/measure.sh

echo "| run | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
for _ in 1 2; do
    rm -f "$dir/scanpy.h5ad" "$dir/engine.h5ad"
    measure "scanpy read_10x_h5 + write_h5ad" "$py" benches/python/tenx_scanpy.py "$src" "$dir/scanpy.h5ad"
    measure "engine convert" "$engine" convert "$src" "$dir/engine.h5ad"
    measure "anndata read_h5ad (everything)" "$py" benches/python/read_everything.py "$dir/engine.h5ad"
    measure "engine validate" "$engine" validate "$dir/engine.h5ad"
done
"$py" tests/python/compare.py "$dir/scanpy.h5ad" "$dir/engine.h5ad"
