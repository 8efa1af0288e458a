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

measure() { # label, command...
    local label="$1"
    shift
    /usr/bin/time -v "$@" >/tmp/sq_out.$$ 2>/tmp/sq_time.$$ || { cat /tmp/sq_out.$$ /tmp/sq_time.$$ >&2; exit 1; }
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' /tmp/sq_time.$$)
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' /tmp/sq_time.$$)
    printf '| %s | %s | %d |\n' "$label" "$wall" "$((rss / 1024))"
}

query="SELECT cell_type, count(*) AS n, avg(total_counts) AS mean_counts FROM obs
       WHERE n_genes_by_counts > 500 AND pct_counts_mt < 10 GROUP BY cell_type ORDER BY cell_type"
echo "| run | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
for _ in 1 2 3; do
    measure "anndata (backed) + pandas" "$py" benches/python/sql_obs_pandas.py "$data"
    measure "engine sql" "$engine" sql "$query" --data "$data"
done
rm -f /tmp/sq_out.$$ /tmp/sq_time.$$
