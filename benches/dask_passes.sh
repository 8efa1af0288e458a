#!/usr/bin/env bash
# The counts workflow's passes in process and on a dask LocalCluster (WORKERS processes, one
# thread each) on sparse_N counts from ../shared/bench/make_data.py, with the package's
# release build in the bench venv; wall times, peak RSS and the results' agreement. FULL=1
# adds neighbors, Leiden and UMAP (on the client).
#   benches/dask_passes.sh [10k|100k|1m]      (default 100k)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh build
export CMAKE="$PWD/.venv/bin/cmake"
size="${1:-100k}"
shared="$(cd .. && pwd)/shared/bench"
[[ -x .bench/venv/bin/python ]] || VENV=.bench/venv bash "$shared/setup.sh" >/dev/null
bench_py="$PWD/.bench/venv/bin/python"
# The package, release build (reinstall after changing it: .bench/venv/bin/pip install ./python).
"$bench_py" -c "import engine" 2>/dev/null || "$bench_py" -m pip install --quiet ./python
counts=".bench/data/sparse_${size}.h5ad"
[[ -f "$counts" ]] || "$bench_py" "$shared/make_data.py" --out .bench/data --no-blobs --sparse "$size" --formats h5ad >/dev/null
"$bench_py" benches/python/dask_passes.py "$counts" --workers "${WORKERS:-2}" --memory-limit "${MEMORY_LIMIT:-1G}" ${FULL:+--full}
