#!/usr/bin/env bash
# The EHR tutorial workflow (scale, PCA, neighbors, Leiden, PCA plot) on the same 50,000 x 1,000
# blobs file: Python scanpy in memory (../shared/bench/seed000_inmemory.py), scanpy on dask
# reading the file lazily (../shared/bench/seed000_dask.py, in the pinned venv
# ../shared/bench/setup.sh makes at .bench/venv) and `engine run pipelines/blobs_file.yaml`,
# in the same run. Prints wall time and peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export CMAKE="$PWD/.venv/bin/cmake"
py="$PWD/.venv/bin/python"
shared="$(cd .. && pwd)/shared/bench"
[[ -x .bench/venv/bin/python ]] || VENV=.bench/venv bash "$shared/setup.sh" >/dev/null
bench_py="$PWD/.bench/venv/bin/python"
cargo build --release -q -p engine-cli
engine="${CARGO_TARGET_DIR:-$PWD/target}/release/engine"
data=.bench/data
[[ -f "$data/blobs_50k_f64.h5ad" ]] || "$py" "$shared/make_data.py" --out "$data" --sparse none --formats h5ad >/dev/null

source benches/measure.sh

echo "| run | wall (m:ss) | peak RSS (MiB) |"
echo "|---|---|---|"
measure "scanpy in memory (h5ad f64)" "$py" "$shared/seed000_inmemory.py" --source h5ad --dtype f64 --data "$data" --figdir .bench/blobs_scanpy --result .bench/blobs_scanpy.json
measure "scanpy + dask, X read lazily (h5ad f64)" "$bench_py" "$shared/seed000_dask.py" --source h5ad --dtype f64 --data "$data" --figdir .bench/blobs_dask --result .bench/blobs_dask.json
measure "engine run (h5ad f64)" "$engine" run pipelines/blobs_file.yaml --param input="$data/blobs_50k_f64.h5ad" --param out=.bench/blobs_engine --memory-limit 64M --overwrite
measure "engine run (synthetic, no file)" "$engine" run pipelines/blobs.yaml --param out=.bench/blobs_synth --memory-limit 64M --overwrite
"$py" - <<'PY'
import anndata as ad, json, warnings
from sklearn.metrics import adjusted_rand_score as ari
warnings.filterwarnings("ignore")
a = ad.read_h5ad(".bench/blobs_engine/result.h5ad")
print()
print("engine on the file: clusters", a.obs["leiden"].nunique(), "ARI vs true label", round(ari(a.obs["label"], a.obs["leiden"]), 4))
print("scanpy result:", json.load(open(".bench/blobs_scanpy.json")).get("checks", "see .bench/blobs_scanpy.json"))
PY
