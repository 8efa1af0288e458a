#!/usr/bin/env bash
# `engine sql` over a 1,000,000-cell obs against anndata + pandas (open + query), same file,
# same run: wall time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
py="$PWD/.venv/bin/python"
cargo build --release -q -p engine-cli
engine="${CARGO_TARGET_DIR:-$PWD/target}/release/engine"
data=.bench/data/obs_1m.h5ad
[[ -f "$data" ]] || "$py" benches/python/make_obs_1m.py "$data"

source benches/measure.sh

query="SELECT cell_type, count(*) AS n, avg(total_counts) AS mean_counts FROM obs
       WHERE n_genes_by_counts > 500 AND pct_counts_mt < 10 GROUP BY cell_type ORDER BY cell_type"
echo "| run | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
for _ in 1 2 3; do
    measure "anndata (backed) + pandas" "$py" benches/python/sql_obs_pandas.py "$data"
    measure "engine sql" "$engine" sql "$query" --data "$data"
done
