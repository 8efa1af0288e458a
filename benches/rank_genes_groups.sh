#!/usr/bin/env bash
# Marker genes (`rank_genes_groups` by cell type, t-test and wilcoxon) on the same counts,
# N cells x 20,000 genes (../shared/bench/make_data.py), normalised to 10,000 per cell and
# log-transformed in the same run, in one run: scanpy in memory against `engine run` on the
# h5ad. Both write the marker genes back (the engine's output keeps one cell of X, which costs
# one row's read; one gene would cost a read of every row). Wall time and peak RSS; then how
# many of each cell type's top 100 genes the two share.
#   benches/rank_genes_groups.sh [10k|100k|1m]      (default 100k)
# The engine runs t-test at its default memory limit and wilcoxon at $WILCOXON_MEMORY (4G),
# whose spare room holds the genes' gathered values (fewer passes over X).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
size="${1:-100k}"
wilcoxon_memory="${WILCOXON_MEMORY:-4G}"
shared="$(cd .. && pwd)/shared/bench"
[[ -x .bench/venv/bin/python ]] || VENV=.bench/venv bash "$shared/setup.sh" >/dev/null
bench_py="$PWD/.bench/venv/bin/python"
cargo build --release -q -p engine-cli
engine="${CARGO_TARGET_DIR:-$PWD/target}/release/engine"
data=.bench/data
counts="$data/sparse_${size}.h5ad"
[[ -f "$counts" ]] || "$bench_py" "$shared/make_data.py" --out "$data" --no-blobs --sparse "$size" --formats h5ad >/dev/null

source benches/measure.sh

echo "| rank_genes_groups (sparse_$size counts, normalised and log1p in the run, 20,000 genes) | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
# The engine's runs first; scanpy's may not fit in memory at 1M cells (a row says so).
for method in t-test wilcoxon; do
    limit=()
    [[ $method == wilcoxon ]] && limit=(--memory-limit "$wilcoxon_memory")
    cat >".bench/rank_${method}.yaml" <<YAML
version: 1
params:
  input: {type: path, default: x.h5ad}
  out: {type: path, default: out.h5ad}
steps:
  - {id: data, op: read, path: "\${input}"}
  - {id: normalized, op: normalize_total, input: data, target_sum: 10000}
  - {id: logged, op: log1p, input: normalized}
  - {id: markers, op: rank_genes_groups, input: logged, groupby: cell_type, method: $method, n_genes: 100}
  - {id: result, op: select, input: markers, obs: "0:1"}
outputs:
  - {step: result, path: "\${out}"}
YAML
    measure "engine run, $method ${limit[*]}" "$engine" run ".bench/rank_${method}.yaml" --param input="$counts" --param out=".bench/rank_engine_${method}.h5ad" --metrics --overwrite "${limit[@]}"
    cp "$measure_out" ".bench/rank_${size}_engine_${method}.txt"
done
for method in t-test wilcoxon; do
    rm -f ".bench/rank_scanpy_${method}.h5ad"
    measure_or_report "scanpy in memory, $method" "$bench_py" -c "
import anndata as ad, numpy as np, scanpy as sc
a = ad.read_h5ad('$counts')
# make_data.py writes int64 indptr with int32 indices, which scanpy's normalize_total refuses:
# one common index type, as ../shared/bench/scanpy_standard.py does.
x = a.X
if x.indptr.dtype != x.indices.dtype:
    dt = np.int32 if x.nnz <= np.iinfo(np.int32).max else np.int64
    x.indptr, x.indices = x.indptr.astype(dt), x.indices.astype(dt)
sc.pp.normalize_total(a, target_sum=1e4)
sc.pp.log1p(a)
sc.tl.rank_genes_groups(a, 'cell_type', method='$method', n_genes=100)
ad.AnnData(obs=a.obs[[]], uns={'rank_genes_groups': a.uns['rank_genes_groups']}).write_h5ad('.bench/rank_scanpy_${method}.h5ad')
"
done
for method in t-test wilcoxon; do
    [[ -f .bench/rank_scanpy_${method}.h5ad ]] || continue
    "$bench_py" -c "
import anndata as ad
e = ad.read_h5ad('.bench/rank_scanpy_${method}.h5ad').uns['rank_genes_groups']['names']
g = ad.read_h5ad('.bench/rank_engine_${method}.h5ad', backed='r').uns['rank_genes_groups']['names']
shared = [len(set(e[c]) & set(g[c])) for c in e.dtype.names]
print(f'$method: top-100 genes shared per cell type: {min(shared)}..{max(shared)} of 100')
"
done
