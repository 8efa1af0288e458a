#!/usr/bin/env bash
# Marker genes (`rank_genes_groups` by cell type, t-test and wilcoxon) on the same
# log-normalised counts, N cells x 20,000 genes (../shared/bench/make_data.py, log-normalised
# once by the engine), in one run: scanpy in memory against `engine run` on the h5ad. Wall time
# and peak RSS; then how many of each cell type's top 100 genes the two share.
#   benches/rank_genes_groups.sh [10k|100k|1m]      (default 100k)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
size="${1:-100k}"
shared="$(cd .. && pwd)/shared/bench"
[[ -x .bench/venv/bin/python ]] || VENV=.bench/venv bash "$shared/setup.sh" >/dev/null
bench_py="$PWD/.bench/venv/bin/python"
cargo build --release -q -p engine-cli
engine="${CARGO_TARGET_DIR:-$PWD/target}/release/engine"
data=.bench/data
[[ -f "$data/sparse_${size}.h5ad" ]] || "$bench_py" "$shared/make_data.py" --out "$data" --no-blobs --sparse "$size" --formats h5ad >/dev/null
lognorm="$data/lognorm_${size}.h5ad"
if [[ ! -f "$lognorm" ]]; then
    cat >.bench/lognorm.yaml <<'YAML'
version: 1
params:
  input: {type: path, default: x.h5ad}
  out: {type: path, default: out.h5ad}
steps:
  - {id: data, op: read, path: "${input}"}
  - {id: normalized, op: normalize_total, input: data, target_sum: 10000}
  - {id: logged, op: log1p, input: normalized}
outputs:
  - {step: logged, path: "${out}"}
YAML
    "$engine" run .bench/lognorm.yaml --param input="$data/sparse_${size}.h5ad" --param out="$lognorm" >/dev/null
fi

source benches/measure.sh

echo "| rank_genes_groups (lognorm_$size, 20,000 genes) | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
for method in t-test wilcoxon; do
    cat >".bench/rank_${method}.yaml" <<YAML
version: 1
params:
  input: {type: path, default: x.h5ad}
  out: {type: path, default: out.h5ad}
steps:
  - {id: data, op: read, path: "\${input}"}
  - {id: markers, op: rank_genes_groups, input: data, groupby: cell_type, method: $method, n_genes: 100}
outputs:
  - {step: markers, path: "\${out}"}
YAML
    measure "engine run, $method (writes the file back)" "$engine" run ".bench/rank_${method}.yaml" --param input="$lognorm" --param out=".bench/rank_engine_${method}.h5ad" --metrics --overwrite
    cp "$measure_out" ".bench/rank_${size}_engine_${method}.txt"
    measure "scanpy in memory, $method" "$bench_py" -c "
import anndata as ad, scanpy as sc
a = ad.read_h5ad('$lognorm')
sc.tl.rank_genes_groups(a, 'cell_type', method='$method', n_genes=100)
ad.AnnData(obs=a.obs[[]], uns={'rank_genes_groups': a.uns['rank_genes_groups']}).write_h5ad('.bench/rank_scanpy_${method}.h5ad')
"
done
for method in t-test wilcoxon; do
    "$bench_py" -c "
import anndata as ad
e = ad.read_h5ad('.bench/rank_scanpy_${method}.h5ad').uns['rank_genes_groups']['names']
g = ad.read_h5ad('.bench/rank_engine_${method}.h5ad', backed='r').uns['rank_genes_groups']['names']
shared = [len(set(e[c]) & set(g[c])) for c in e.dtype.names]
print(f'$method: top-100 genes shared per cell type: {min(shared)}..{max(shared)} of 100')
"
done
